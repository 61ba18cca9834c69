// Building the DOM without markup strings: h("td", {i18n: "line.late", class: "n"}, child...).
// {i18n: key} sets data-i18n, so a language switch relabels the element.
import {t} from "./i18n.js";

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "i18n") { el.dataset.i18n = value; el.textContent = t(value); }
    else if (name === "class") el.className = value;
    else if (name === "text") el.textContent = value;
    else if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
    else if (name === "dataset") Object.assign(el.dataset, value);
    else el.setAttribute(name, value === true ? "" : value);
  }
  el.append(...children.filter(c => c !== null && c !== undefined));
  return el;
}

// Table rows for counts keyed by name, in a stable order (grades in grade order, then numeric-aware).
const GRADE_ORDER = ["extra", "class_i", "class_ii", "cull", "recheck", "none"];
const rank = k => { const i = GRADE_ORDER.indexOf(k); return i < 0 ? GRADE_ORDER.length : i; };
export const byKey = ([a], [b]) => rank(a) - rank(b) || a.localeCompare(b, undefined, {numeric: true});

export function rows(table, entries, cells) {
  table.replaceChildren(...entries.map(entry => h("tr", {}, ...cells(entry))));
}
