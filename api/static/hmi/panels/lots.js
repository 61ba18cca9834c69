// Lots: the lot being graded now with its counts (pushed on the live feed as "lot"), the form
// that starts the next lot (a switch when one is open), closing the lot, and recent lots with
// their pack-out and settlement pages, and each one's trace view (追溯, panels/lot_trace.js).
import {h, rows, byKey} from "../dom.js";
import {t, language} from "../i18n.js";
import {openTrace, relabelTrace, traceCard} from "./lot_trace.js";

let el = {};
let ctx = null;
let current = null;

const FIELDS = [
  ["code", "lots.code", "text", true], ["grower", "lots.grower", "text", true], ["grower_id", "lots.grower_id", "text"],
  ["variety", "lots.variety", "text"], ["origin_village", "lots.village", "text"], ["origin_plot", "lots.plot", "text"],
  ["harvest_date", "lots.harvest_date", "date"], ["received_weight_kg", "lots.received_kg", "number"],
  ["platform_trace_code", "lots.trace_code", "text"],
];

function renderCurrent() {
  const lot = current;
  el.none.hidden = Boolean(lot);
  el.close.hidden = !lot;
  for (const key of ["code", "grower", "product", "recipe"]) el[key].textContent = lot ? (lot[key] || "") : "—";
  const counts = lot && lot.counts;
  el.fruit.textContent = counts ? counts.fruit_total : "0";
  el.kg.textContent = counts ? counts.weight_kg.toFixed(1) : "0.0";
  const entries = counts ? Object.entries(counts.quality_classes).sort(byKey) : [];
  rows(el.classes, entries, ([q, n]) => [h("td", {text: t(`grade.${q}`)}), h("td", {class: "n", text: n})]);
}

function pageUrl(id, kind) { return `/api/v1/lots/${id}/${kind}/page?lang=${language() === "en" ? "en" : "zh-CN"}`; }

async function loadList() {
  const page = await ctx.get("/api/v1/lots?limit=10");
  rows(el.list, page.items, lot => [
    h("td", {text: lot.code}), h("td", {text: lot.grower}), h("td", {text: lot.product}),
    h("td", {text: t(lot.open ? "lots.open" : "lots.closed")}),
    h("td", {}, h("a", {href: pageUrl(lot.id, "packout"), target: "_blank", class: "packout-link", i18n: "lots.packout"}),
      ctx.atLeast("supervisor") ? h("a", {href: pageUrl(lot.id, "settlement"), target: "_blank", class: "settlement-link", i18n: "lots.settlement"}) : null),
    h("td", {}, h("button", {type: "button", class: "trace-open", id: `lot-trace-${lot.id}`, i18n: "lots.trace", onclick: () => openTrace(lot.id)})),
  ]);
}

async function start(event) {
  event.preventDefault();
  const body = {};
  for (const [key, , type] of FIELDS) {
    const value = el.form.elements[key].value.trim();
    if (value === "") continue;
    body[key] = type === "number" ? Number(value) : value;
  }
  el.message.textContent = "";
  try {
    const out = await ctx.post("/api/v1/lots", body);
    current = out.lot;
    renderCurrent();
    el.form.reset();
    el.message.textContent = t("lots.started", {code: out.lot.code});
    await loadList();
  } catch (error) {
    el.message.textContent = t("error.generic", {detail: error.message});
  }
}

async function close() {
  // the lot as it was asked about: the live feed may replace `current` (null once closed)
  // while the dialog or the request is pending
  const lot = current;
  if (!lot) return;
  const ok = await ctx.confirm({title: t("lots.close"), body: t("lots.close_body", {code: lot.code}), yes: t("lots.close"), interlocks: []});
  if (!ok) return;
  try {
    await ctx.post(`/api/v1/lots/${lot.id}/close`);
    el.message.textContent = t("lots.closed_msg", {code: lot.code});
    current = null;
    renderCurrent();
    await loadList();
  } catch (error) {
    el.message.textContent = t("error.generic", {detail: error.message});
  }
}

export default {
  id: "lots",
  nav: "nav.lots",
  least: "operator",

  mount(root, context) {
    ctx = context;
    const row = (label, key) => {
      el[key] = h("td", {id: `lot-${key}`});
      return h("tr", {}, h("th", {i18n: label}), el[key]);
    };
    el.classes = h("table", {id: "lot-classes"});
    el.none = h("p", {class: "note", id: "lot-none", i18n: "lots.none", hidden: true});
    el.close = h("button", {type: "button", id: "lot-close", i18n: "lots.close", onclick: close});
    el.message = h("p", {id: "lot-message", class: "note"});
    el.form = h("form", {id: "lot-start", onsubmit: start},
      ...FIELDS.map(([key, label, type, required]) => h("label", {}, h("span", {i18n: label}),
        h("input", {name: key, id: `lot-start-${key}`, type, required: Boolean(required), step: type === "number" ? "0.1" : undefined}))),
      h("button", {type: "submit", id: "lot-start-submit", i18n: "lots.start"}));
    el.list = h("table", {id: "lot-list"});
    root.append(
      h("div", {class: "card"},
        h("h2", {i18n: "lots.current"}),
        h("table", {}, row("lots.code", "code"), row("lots.grower", "grower"), row("lots.product", "product"),
          row("lots.recipe", "recipe"), row("lots.fruit", "fruit"), row("lots.kg", "kg")),
        el.classes, el.none, el.close, el.message),
      h("div", {class: "card"}, h("h2", {i18n: "lots.start_title"}), el.form),
      h("div", {class: "card wide"}, h("h2", {i18n: "lots.recent"}), el.list),
      traceCard(ctx));
    renderCurrent();
  },

  show() { loadList().catch(() => {}); },

  message(m) {
    if (m.type !== "lot") return;
    current = m.data.lot;
    renderCurrent();
  },

  relabel() { if (el.classes) { renderCurrent(); relabelTrace(); } },
};
