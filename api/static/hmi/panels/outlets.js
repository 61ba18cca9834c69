// Outlets and cartons: each outlet's group, open carton fill and full flag (pushed on the live
// feed as "outlets"), with the packer's buttons: mark full / clear, close carton. A closed
// carton out of its class's tolerance is flagged; a tap on its number opens it (codes, label,
// reprint) in the cartons panel.
import {h, rows} from "../dom.js";
import {t} from "../i18n.js";
import {openCarton} from "./cartons.js";

let table = null;
let closedList = null;
let ctx = null;
let last = [];
const closed = [];

async function act(path, body) {
  try { return await ctx.post(path, body); } catch (error) { alert(t("error.generic", {detail: error.message})); return null; }
}

function render() {
  rows(table, last, o => [
    h("td", {text: `${o.number} ${o.name}`}),
    h("td", {text: o.group}),
    h("td", {class: "n", text: o.fruit_assigned}),
    h("td", {class: "n", id: `carton-fill-${o.number}`, text: o.carton ? `${o.carton.fruit_count} / ${(o.carton.fruit_weight_g / 1000).toFixed(2)} kg` : "—"}),
    h("td", {class: o.full ? "fault" : "", text: t(o.full ? (o.full_by_plc ? "outlets.full_plc" : "outlets.full") : "outlets.open")}),
    h("td", {},
      h("button", {type: "button", id: `outlet-full-${o.number}`, i18n: o.full_by_hand ? "outlets.clear_full" : "outlets.mark_full",
        onclick: () => act(`/api/v1/outlets/${o.number}/full`, {full: !o.full_by_hand})}),
      o.carton ? h("button", {type: "button", id: `carton-close-${o.number}`, i18n: "outlets.close_carton", onclick: async () => {
        const carton = await act(`/api/v1/outlets/${o.number}/carton/close`);
        if (carton) { closed.unshift(carton); renderClosed(); }
      }}) : null),
  ]);
}

function renderClosed() {
  rows(closedList, closed.slice(0, 10), c => [
    h("td", {}, h("button", {type: "button", class: "carton-open", text: `#${c.id}`, onclick: () => openCarton(c.id)})),
    h("td", {text: c.outlet}), h("td", {text: t(`grade.${c.quality_class}`)}),
    h("td", {class: "n", text: c.fruit_count}), h("td", {class: "n", text: ((c.net_weight_g || 0) / 1000).toFixed(2)}),
    h("td", {class: c.compliant === false ? "fault carton-flag" : "carton-ok",
      text: c.compliant === false ? `${t("outlets.out_of_tolerance")} ${(c.issues || []).join("; ")}` : t("outlets.in_tolerance")}),
  ]);
}

export default {
  id: "outlets",
  nav: "nav.outlets",
  least: "operator",

  mount(root, context) {
    ctx = context;
    table = h("table", {id: "outlet-table"});
    closedList = h("table", {id: "cartons-closed"});
    root.append(
      h("div", {class: "card"},
        h("h2", {i18n: "outlets.title"}),
        h("table", {}, h("tr", {}, h("th", {i18n: "outlets.outlet"}), h("th", {i18n: "outlets.group"}),
          h("th", {class: "n", i18n: "outlets.count"}), h("th", {class: "n", i18n: "outlets.carton"}),
          h("th", {i18n: "outlets.state"}), h("th", {}))),
        table),
      h("div", {class: "card"}, h("h2", {i18n: "outlets.closed_cartons"}), closedList));
  },

  message(m) {
    if (m.type === "outlets") { last = m.data.items; render(); }
    if (m.type === "carton_closed" && !closed.some(c => c.id === m.data.id)) { closed.unshift(m.data); renderClosed(); }
  },

  relabel() { if (table) { render(); renderClosed(); } },
};
