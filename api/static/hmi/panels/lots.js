// Lots: the lot being graded now. Opening and closing lots plug in here with the lots feature.
import {h} from "../dom.js";

let el = {};

export default {
  id: "lots",
  nav: "nav.lots",
  least: "operator",

  mount(root) {
    const row = (label, key) => {
      el[key] = h("td", {id: `lot-${key}`});
      return h("tr", {}, h("th", {i18n: label}), el[key]);
    };
    root.append(h("div", {class: "card"},
      h("h2", {i18n: "lots.current"}),
      h("table", {}, row("lots.code", "lot"), row("lots.grower", "grower"), row("lots.product", "product"), row("lots.recipe", "recipe")),
      h("p", {class: "note", i18n: "lots.later"})));
  },

  snapshot(s) {
    for (const key of ["lot", "grower", "product", "recipe"]) el[key].textContent = s[key];
  },
};
