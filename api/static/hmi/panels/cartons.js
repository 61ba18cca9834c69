// Cartons: the recent closed cartons (all, or one lot's), and one carton's detail: its GS1 codes
// (GTIN, serial, lot, the element string as printed, the Digital Link), counts, weights and
// compliance, the label preview as the printer gets it (PNG from the label route), and reprint
// behind the confirmation dialog with what came of it (printed, or the API's problem, e.g. no
// printer). Other panels open a carton here with openCarton(id).
import {h, rows} from "../dom.js";
import {t} from "../i18n.js";

let el = {};
let ctx = null;
let lotFilter = "";
let selected = null;  // the carton shown in the detail card
let pending = null;   // a carton another panel asked for before this one was shown

const kg = g => (g === null || g === undefined ? "—" : (g / 1000).toFixed(2));
const when = iso => (iso ? new Date(iso).toLocaleString() : "—");

async function loadLots() {
  const page = await ctx.get("/api/v1/lots?limit=20");
  el.lot.replaceChildren(h("option", {value: "", i18n: "cartons.all_lots"}),
    ...page.items.map(lot => h("option", {value: String(lot.id), text: `${lot.code} · ${lot.grower}`})));
  el.lot.value = lotFilter;
}

async function loadList() {
  const query = lotFilter ? `&lot=${encodeURIComponent(lotFilter)}` : "";
  const page = await ctx.get(`/api/v1/cartons?limit=20${query}`);
  const closed = page.items.filter(c => c.closed_at);
  el.none.hidden = closed.length > 0;
  rows(el.list, closed, c => [
    h("td", {}, h("button", {type: "button", class: "carton-open", id: `carton-open-${c.id}`, text: `#${c.id}`, onclick: () => open(c.id)})),
    h("td", {text: t(`grade.${c.quality_class}`)}),
    h("td", {class: "n", text: c.fruit_count ?? "—"}), h("td", {class: "n", text: kg(c.net_weight_g)}),
    h("td", {text: c.serial || t("cartons.uncoded")}),
    h("td", {class: c.compliant === false ? "fault" : "", text: t(c.compliant === false ? "outlets.out_of_tolerance" : "outlets.in_tolerance")}),
  ]);
}

function field(label, value, id, code = false) {
  return h("tr", {}, h("th", {i18n: label}), h("td", {id, class: code ? "code" : undefined, text: value ?? "—"}));
}

function renderDetail() {
  const c = selected;
  el.detail.hidden = !c;
  if (!c) return;
  el.title.textContent = t("cartons.detail_title", {id: c.id});
  el.codes.replaceChildren(
    field("cartons.gtin", c.gtin, "carton-gtin", true), field("cartons.serial", c.serial, "carton-serial", true),
    field("cartons.lot", c.lot_code, "carton-lot", true), field("cartons.hri", c.hri, "carton-hri", true),
    field("cartons.digital_link", c.digital_link, "carton-link", true),
    field("cartons.pack_date", c.pack_date, "carton-pack-date"),
  );
  el.counts.replaceChildren(
    field("cartons.outlet", String(c.outlet)), field("cartons.class", t(`grade.${c.quality_class}`)),
    field("cartons.size", c.size_class || t("cartons.all_sizes")),
    field("cartons.fruit", c.fruit_count === null ? null : String(c.fruit_count)),
    field("cartons.fruit_kg", kg(c.fruit_weight_g)), field("cartons.scale_kg", kg(c.scale_weight_g)),
    field("cartons.net_kg", kg(c.net_weight_g)), field("cartons.closed", `${when(c.closed_at)} ${c.closed_by || ""}`),
    h("tr", {}, h("th", {i18n: "cartons.compliance"}), h("td", {id: "carton-compliance",
      class: c.compliant === false ? "fault" : "",
      text: c.compliant === false ? `${t("outlets.out_of_tolerance")} ${(c.issues || []).join("; ")}` : t("outlets.in_tolerance")})),
  );
  const coded = Boolean(c.serial);
  el.uncoded.hidden = coded;
  el.preview.hidden = !coded;
  el.reprint.hidden = !coded || !ctx.atLeast("operator");
  // a fresh URL each time: the route answers no-store, and a reprint must show what was printed
  if (coded) el.preview.src = `/api/v1/cartons/${c.id}/label?format=png&v=${Date.now()}`;
  else el.preview.removeAttribute("src");
}

async function open(id) {
  el.result.textContent = "";
  el.result.className = "note";
  try {
    const carton = await ctx.get(`/api/v1/cartons/${id}`);
    const lot = await ctx.get(`/api/v1/lots/${carton.lot_id}`).catch(() => null);
    selected = {...carton, lot_code: lot ? lot.code : String(carton.lot_id)};
  } catch (error) {
    selected = null;
    el.result.textContent = t("error.generic", {detail: error.message});
  }
  renderDetail();
}

async function reprint() {
  const c = selected;
  if (!c) return;
  const ok = await ctx.confirm({
    title: t("cartons.reprint"), body: t("cartons.reprint_body", {id: c.id, serial: c.serial}),
    yes: t("cartons.reprint"), interlocks: [],
  });
  if (!ok) return;
  try {
    const out = await ctx.post(`/api/v1/cartons/${c.id}/label/print`);
    el.result.className = "note";
    el.result.textContent = t("cartons.printed", {serial: out.serial, printer: out.printer});
  } catch (error) {
    el.result.className = "fault";
    el.result.textContent = t("cartons.print_failed", {detail: error.message});
  }
  el.result.dataset.status = "done";
}

export function openCarton(id) {
  if (el.detail) open(id); else pending = id;
  location.hash = "cartons";
}

export default {
  id: "cartons",
  nav: "nav.cartons",
  least: "operator",

  mount(root, context) {
    ctx = context;
    el.root = root;
    el.lot = h("select", {id: "cartons-lot", onchange: () => { lotFilter = el.lot.value; loadList().catch(() => {}); }});
    el.list = h("tbody", {id: "cartons-list"});
    el.none = h("p", {class: "note", id: "cartons-none", i18n: "cartons.none", hidden: true});
    el.title = h("h2", {id: "carton-title"});
    el.codes = h("table", {id: "carton-codes"});
    el.counts = h("table", {id: "carton-counts"});
    el.uncoded = h("p", {class: "note", id: "carton-uncoded", i18n: "cartons.no_label"});
    el.preview = h("img", {id: "carton-label", class: "label-preview", alt: t("cartons.preview"), hidden: true});
    el.reprint = h("button", {type: "button", id: "carton-reprint", class: "primary", i18n: "cartons.reprint", onclick: reprint});
    el.result = h("p", {id: "carton-print-result", class: "note", role: "status"});
    el.detail = h("div", {class: "card wide", id: "carton-detail", hidden: true},
      el.title,
      h("div", {class: "carton-detail"},
        h("div", {}, h("h3", {i18n: "cartons.codes"}), el.codes, h("h3", {i18n: "cartons.counts"}), el.counts),
        h("div", {}, h("h3", {i18n: "cartons.preview"}), el.uncoded, el.preview, el.reprint, el.result)));
    root.append(
      h("div", {class: "card wide"},
        h("h2", {i18n: "cartons.recent"}),
        h("label", {class: "filter"}, h("span", {i18n: "cartons.filter_lot"}), el.lot),
        h("div", {class: "scroll"}, h("table", {},
          h("thead", {}, h("tr", {}, ...[["cartons.carton"], ["cartons.class"], ["cartons.fruit", "n"], ["cartons.net_kg", "n"],
            ["cartons.serial"], ["cartons.compliance"]].map(([key, cls]) => h("th", {class: cls, i18n: key})))),
          el.list)), el.none),
      el.detail);
    if (pending !== null) { open(pending); pending = null; }
  },

  show() {
    loadLots().then(loadList).catch(() => {});
  },

  message(m) {
    // a carton closed while the list is on screen: show it (the list is the lot's or all)
    if (m.type === "carton_closed" && el.root && !el.root.hidden) loadList().catch(() => {});
  },

  relabel() {
    if (!el.detail) return;
    el.preview.alt = t("cartons.preview");
    renderDetail();
    if (!el.root.hidden) loadList().catch(() => {});
  },
};
