// The message catalogue: zh-CN first, English on request. Markup carries keys only
// (data-i18n for text, data-i18n-aria-label for labels); scripts call t(key, values).
const STORE = "gradeline.lang";
export const LANGUAGES = ["zh-CN", "en"];
let catalogue = {};
let lang = "zh-CN";
const listeners = [];

export async function loadCatalogue() {
  const response = await fetch("/assets/hmi/messages.json", {cache: "no-cache"});
  catalogue = await response.json();
  const saved = localStorage.getItem(STORE);
  setLanguage(LANGUAGES.includes(saved) ? saved : "zh-CN");
}

export function language() { return lang; }

export function t(key, values = {}) {
  const text = (catalogue[lang] && catalogue[lang][key]) ?? (catalogue["zh-CN"] && catalogue["zh-CN"][key]) ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => (name in values ? String(values[name]) : `{${name}}`));
}

// A language's own name for itself ("中文", "English"), whatever the current language.
export function nameOf(code) { return (catalogue[code] && catalogue[code]["lang.name"]) || code; }

export function has(key) { return Boolean(catalogue[lang] && key in catalogue[lang]); }

export function applyTo(root) {
  for (const el of root.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll("[data-i18n-aria-label]")) el.setAttribute("aria-label", t(el.dataset.i18nAriaLabel));
}

export function setLanguage(next) {
  lang = next;
  localStorage.setItem(STORE, next);
  document.documentElement.lang = next;
  applyTo(document);
  document.title = t("app.title");
  for (const fn of listeners) fn(next);
}

export function onLanguage(fn) { listeners.push(fn); }
