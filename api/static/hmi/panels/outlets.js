// Outlets and cartons: fruit per outlet now; cartons and labels plug in with the packing feature.
import {h, rows} from "../dom.js";
import {t} from "../i18n.js";

let table = null;

export default {
  id: "outlets",
  nav: "nav.outlets",
  least: "operator",

  mount(root) {
    table = h("table", {id: "outlet-counts"});
    root.append(h("div", {class: "card"},
      h("h2", {i18n: "outlets.title"}),
      h("table", {}, h("tr", {}, h("th", {i18n: "outlets.outlet"}), h("th", {class: "n", i18n: "outlets.count"}))),
      table,
      h("p", {class: "note", i18n: "outlets.later"})));
  },

  snapshot(s) {
    const entries = Object.entries(s.outlets).sort(([a], [b]) => Number(a) - Number(b));
    rows(table, entries, ([outlet, n]) => [h("td", {text: outlet === "0" ? t("outlets.recirculate") : outlet}), h("td", {class: "n", text: n})]);
  },
};
