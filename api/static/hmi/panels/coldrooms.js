// Cold rooms: each sensor's last reading, pushed on the live feed. Alarms plug in with the cold-chain feature.
import {h, rows} from "../dom.js";
import {t} from "../i18n.js";

let table = null;
let empty = null;
let last = [];

function render() {
  empty.hidden = last.length > 0;
  rows(table, last, r => [
    h("td", {text: r.device}),
    h("td", {class: "n", text: r.temperature_celsius === null ? "—" : `${r.temperature_celsius.toFixed(1)} °C`}),
    h("td", {class: "n", text: r.relative_humidity_ratio === null ? "—" : `${Math.round(r.relative_humidity_ratio * 100)} %RH`}),
    h("td", {class: r.state === "up" ? "n" : "n fault", text: t(r.state === "up" ? "coldrooms.up" : "coldrooms.stale")}),
  ]);
}

export default {
  id: "coldrooms",
  nav: "nav.coldrooms",
  least: "operator",

  mount(root) {
    table = h("table", {id: "coldrooms"});
    empty = h("p", {class: "note", i18n: "coldrooms.none", hidden: true});
    root.append(h("div", {class: "card"},
      h("h2", {i18n: "coldrooms.title"}),
      h("table", {}, h("tr", {},
        h("th", {i18n: "coldrooms.device"}), h("th", {class: "n", i18n: "coldrooms.temperature"}),
        h("th", {class: "n", i18n: "coldrooms.humidity"}), h("th", {class: "n", i18n: "coldrooms.state"}))),
      table, empty));
  },

  message(m) {
    if (m.type !== "coldrooms") return;
    last = m.data.items;
    render();
  },

  relabel() { if (table) render(); },
};
