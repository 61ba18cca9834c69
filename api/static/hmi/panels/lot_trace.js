// A lot's trace view (追溯), opened from the lots panel: the grower, the lot, its pack-out, its
// cartons with their codes (a tap opens the carton in the cartons panel) and its stays in the
// cold rooms, from GET /api/v1/lots/{id}/trace. Staff see the grower's full name, with the name
// the labels and the consumer page show beside it. One section per part of the record: a new
// part of the record is one more section() call.
import {h, rows} from "../dom.js";
import {t} from "../i18n.js";
import {openCarton} from "./cartons.js";

let el = {};
let ctx = null;
let last = null;

const dash = v => (v === null || v === undefined || v === "" ? "—" : String(v));
const when = iso => (iso ? new Date(iso).toLocaleString() : "—");
const num = (v, digits) => (v === null || v === undefined ? "—" : Number(v).toFixed(digits));

function pairs(table, entries) {
  rows(table, entries, ([label, value]) => [h("th", {text: t(label)}), h("td", {text: dash(value)})]);
}

function section(title, id, ...body) {
  return h("section", {class: "trace-part", id}, h("h3", {i18n: title}), ...body);
}

function render() {
  const tr = last;
  if (!tr) return;
  el.title.textContent = t("trace.title", {code: tr.lot.code});
  pairs(el.grower, [
    ["trace.grower_name", tr.grower.name], ["lots.grower_id", tr.grower.grower_id],
    ["trace.grower_public", tr.grower.public_name ?? t("trace.grower_hidden")],
  ]);
  pairs(el.lot, [
    ["lots.code", tr.lot.code], ["lots.product", tr.lot.product], ["lots.variety", tr.lot.variety],
    ["lots.village", tr.lot.origin_village], ["lots.plot", tr.lot.origin_plot],
    ["lots.harvest_date", tr.lot.harvest_date], ["lots.received_kg", tr.lot.received_weight_kg],
    ["lots.trace_code", tr.lot.platform_trace_code],
    ["lots.recipe", tr.lot.recipe_hash ? `${tr.lot.recipe} · ${tr.lot.recipe_hash.slice(0, 12)}` : tr.lot.recipe],
    ["trace.started", `${when(tr.lot.started_at)} ${tr.lot.started_by}`],
    ["trace.closed", tr.lot.closed_at ? `${when(tr.lot.closed_at)} ${tr.lot.closed_by || ""}` : t("lots.open")],
  ]);
  const p = tr.packout;
  pairs(el.packout, [
    ["lots.fruit", p.fruit], ["lots.kg", num(p.weight_kg, 1)], ["trace.yield", p.yield_percent === null ? null : `${p.yield_percent} %`],
    ["trace.cartons_closed", p.cartons_closed], ["trace.cartons_out", p.cartons_out_of_tolerance],
  ]);
  rows(el.classes, p.quality_classes, c => [
    h("td", {text: t(`grade.${c.quality_class}`)}), h("td", {class: "n", text: c.fruit}),
    h("td", {class: "n", text: num(c.weight_kg, 1)}), h("td", {class: "n", text: `${c.fruit_percent} %`}),
  ]);
  el.cartonsNote.textContent = t("trace.cartons_shown", {shown: tr.cartons.length, total: tr.cartons_total});
  rows(el.cartons, tr.cartons, c => [
    h("td", {}, h("button", {type: "button", class: "trace-carton", text: `#${c.id}`, onclick: () => openCarton(c.id)})),
    h("td", {text: t(`grade.${c.quality_class}`)}), h("td", {class: "n", text: dash(c.fruit_count)}),
    h("td", {class: "code", text: c.serial || t("cartons.uncoded")}), h("td", {class: "code", text: dash(c.gtin)}),
    h("td", {class: c.compliant === false ? "fault" : "", text: t(c.compliant === false ? "outlets.out_of_tolerance" : "outlets.in_tolerance")}),
  ]);
  el.palletsNone.hidden = tr.pallets.length > 0;
  el.palletsTable.hidden = tr.pallets.length === 0;
  rows(el.pallets, tr.pallets, p => [
    h("td", {class: "code", text: p.sscc}), h("td", {class: "n", text: `${p.cartons_of_lot} / ${p.carton_count}`}),
    h("td", {text: p.lots.join("、")}),
    h("td", {text: p.shipped_at ? `${when(p.shipped_at)} ${p.destination || ""}` : t("trace.pallet_building")}),
    h("td", {class: "code", text: dash(p.certificate_number)}),
  ]);
  const certs = [
    ...tr.incoming_certificates.map(c => [t("trace.cert_incoming"), c.number, c.issuer, c.issued_on, `${when(c.received_at)} ${c.received_by}`]),
    ...tr.center_certificates.map(c => [t("trace.cert_center"), c.number, c.issuer, c.lot_codes.join("、"), `${when(c.issued_at)} ${c.issued_by}`]),
  ];
  el.certsNone.hidden = certs.length > 0;
  el.certsTable.hidden = certs.length === 0;
  rows(el.certs, certs, cells => cells.map((v, i) => h("td", {class: i === 1 ? "code" : "", text: dash(v)})));
  el.coldNone.hidden = tr.cold_stays.length > 0;
  el.coldTable.hidden = tr.cold_stays.length === 0;
  rows(el.cold, tr.cold_stays, s => [
    h("td", {text: s.pallet ? `${s.room} (${s.pallet})` : s.room}), h("td", {text: when(s.entered_at)}),
    h("td", {text: s.left_at ? when(s.left_at) : t("trace.still_in")}),
    h("td", {class: "n", text: `${num(s.temperature_min_c, 1)} / ${num(s.temperature_mean_c, 1)} / ${num(s.temperature_max_c, 1)}`}),
    h("td", {class: s.minutes_out_of_band > 0 ? "n alarm" : "n", text: num(s.minutes_out_of_band, 1)}),
  ]);
}

export async function openTrace(lotId) {
  el.card.hidden = false;
  el.message.textContent = "";
  try {
    last = await ctx.get(`/api/v1/lots/${lotId}/trace?cartons=200`);  // the newest; the note gives the total
    el.body.hidden = false;
    render();
  } catch (error) {
    last = null;
    el.body.hidden = true;
    el.message.textContent = t("error.generic", {detail: error.message});
  }
  el.card.scrollIntoView({block: "start"});
}

// The trace card, mounted once inside the lots panel.
export function traceCard(context) {
  ctx = context;
  const head = (...keys) => h("tr", {}, ...keys.map(([key, cls]) => h("th", {class: cls, i18n: key})));
  el.title = h("h2", {id: "trace-title"});
  el.grower = h("table", {id: "trace-grower"});
  el.lot = h("table", {id: "trace-lot"});
  el.packout = h("table", {id: "trace-packout"});
  el.classes = h("tbody", {id: "trace-classes"});
  el.cartons = h("tbody", {id: "trace-cartons"});
  el.cartonsNote = h("p", {class: "note", id: "trace-cartons-note"});
  el.cold = h("tbody", {id: "trace-cold"});
  el.coldNone = h("p", {class: "note", id: "trace-cold-none", i18n: "trace.no_cold"});
  el.certs = h("tbody", {id: "trace-certs"});
  el.pallets = h("tbody", {id: "trace-pallets"});
  el.palletsNone = h("p", {class: "note", id: "trace-pallets-none", i18n: "trace.no_pallets"});
  el.certsNone = h("p", {class: "note", id: "trace-certs-none", i18n: "trace.no_certs"});
  el.message = h("p", {class: "note", id: "trace-message"});
  el.body = h("div", {class: "trace-parts"},
    section("trace.grower", "trace-part-grower", el.grower),
    section("trace.lot", "trace-part-lot", el.lot),
    section("trace.packout", "trace-part-packout", el.packout,
      h("table", {}, h("thead", {}, head(["cartons.class"], ["lots.fruit", "n"], ["lots.kg", "n"], ["trace.share", "n"])), el.classes)),
    section("trace.certs", "trace-part-certs", el.certsNone, el.certsTable = h("div", {class: "scroll"},
      h("table", {}, h("thead", {}, head(["trace.cert_kind"], ["trace.cert_number"], ["trace.cert_issuer"],
        ["trace.cert_detail"], ["trace.cert_recorded"])), el.certs))),
    section("trace.cartons", "trace-part-cartons", el.cartonsNote, h("div", {class: "scroll"},
      h("table", {}, h("thead", {}, head(["cartons.carton"], ["cartons.class"], ["cartons.fruit", "n"], ["cartons.serial"],
        ["cartons.gtin"], ["cartons.compliance"])), el.cartons))),
    section("trace.pallets", "trace-part-pallets", el.palletsNone, el.palletsTable = h("div", {class: "scroll"},
      h("table", {}, h("thead", {}, head(["trace.pallet_sscc"], ["trace.pallet_cartons", "n"], ["trace.pallet_lots"],
        ["trace.pallet_shipped"], ["trace.cert_number"])), el.pallets))),
    section("trace.cold", "trace-part-cold", el.coldNone, el.coldTable = h("div", {class: "scroll"},
      h("table", {}, h("thead", {}, head(["trace.room"], ["trace.entered"], ["trace.left"], ["trace.temps", "n"],
        ["trace.out_of_band", "n"])), el.cold))));
  el.card = h("div", {class: "card wide", id: "lot-trace", hidden: true},
    h("div", {class: "trace-head"}, el.title,
      h("button", {type: "button", id: "trace-close", i18n: "trace.close", onclick: () => { el.card.hidden = true; }})),
    el.message, el.body);
  return el.card;
}

export function relabelTrace() { if (last) render(); }
