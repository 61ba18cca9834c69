// The audit log for supervisors and admins: newest first, one page at a time.
import {h, rows} from "../dom.js";
import {t} from "../i18n.js";

let table = null;
let more = null;
let entries = [];
let cursor = null;

function change(e) {
  if (e.before === null && e.after === null) return e.detail || "";
  return `${JSON.stringify(e.before)} → ${JSON.stringify(e.after)}`;
}

function render() {
  rows(table, entries.length ? entries : [null], e => e === null ? [h("td", {class: "note", i18n: "audit.empty"})] : [
    h("td", {text: new Date(e.at).toLocaleString()}),
    h("td", {text: `${e.actor}${e.role ? ` (${t(`role.${e.role}`)})` : ""}`}),
    h("td", {text: e.action}),
    h("td", {text: e.target || ""}),
    h("td", {class: e.outcome === "ok" ? undefined : "alarm", text: t(e.outcome === "ok" ? "audit.ok" : "audit.refused")}),
    h("td", {text: e.client_address}),
    h("td", {text: change(e)}),
  ]);
  more.hidden = cursor === null;
}

async function load(ctx, next) {
  const page = await ctx.get(`/api/v1/audit?limit=50${next ? `&cursor=${encodeURIComponent(next)}` : ""}`);
  entries = next ? [...entries, ...page.items] : page.items;
  cursor = page.next_cursor;
  render();
}

export default {
  id: "audit",
  nav: "nav.audit",
  least: "supervisor",

  mount(root, ctx) {
    table = h("tbody", {id: "audit-entries"});
    more = h("button", {type: "button", i18n: "audit.more", hidden: true, onclick: () => load(ctx, cursor)});
    const heads = ["audit.at", "audit.who", "audit.action", "audit.target", "audit.outcome", "audit.from", "audit.change"];
    root.append(h("div", {class: "card wide"},
      h("h2", {i18n: "audit.title"}),
      h("div", {class: "commands"}, h("button", {type: "button", i18n: "audit.refresh", onclick: () => load(ctx, null)})),
      h("div", {class: "scroll"}, h("table", {}, h("thead", {}, h("tr", {}, ...heads.map(k => h("th", {i18n: k})))), table)),
      h("div", {class: "commands"}, more)));
  },

  show(ctx) { load(ctx, null).catch(() => {}); },
  relabel() { if (table) render(); },
};
