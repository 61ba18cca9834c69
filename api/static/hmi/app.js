// The HMI shell: login, navigation, the live feed, the confirmation dialog, the language.
// Feature panels plug in below: each is a module in panels/ exporting
//   {id, nav, least, mount(root, ctx), show?(ctx), snapshot?(s, ctx), message?(m, ctx), relabel?(ctx)}
// and is listed once in PANELS. `least` is the least role that sees it.
import {ApiError, get, post, setCsrfToken} from "./api.js";
import {h} from "./dom.js";
import {applyTo, language, loadCatalogue, onLanguage, setLanguage, t} from "./i18n.js";
import {LiveFeed} from "./live.js";
import line from "./panels/line.js";
import lots from "./panels/lots.js";
import outlets from "./panels/outlets.js";
import cartons from "./panels/cartons.js";
import coldrooms from "./panels/coldrooms.js";
import alarms from "./panels/alarms.js";
import settings from "./panels/settings.js";
import audit from "./panels/audit.js";
import pallets from "./panels/pallets.js";

const PANELS = [line, lots, outlets, cartons, pallets, coldrooms, alarms, settings, audit];
const RANK = {integrator: 1, operator: 2, supervisor: 3, admin: 4};
const $ = id => document.getElementById(id);

const live = new LiveFeed();
const ctx = {
  t, h, get, post, live, session: null, snapshot: null,
  atLeast(role) { return Boolean(this.session) && RANK[this.session.role] >= RANK[role]; },
  confirm,
};
let mounted = [];

function panelFor(id) { return mounted.find(p => p.id === id) || mounted[0]; }

function show(id) {
  const panel = panelFor(id);
  for (const p of mounted) {
    p.root.hidden = p !== panel;
    p.button.setAttribute("aria-current", p === panel ? "page" : "false");
  }
  if (panel.show) panel.show(ctx);
}

function mountPanels() {
  const nav = $("nav");
  const host = $("panels");
  nav.replaceChildren();
  host.replaceChildren();
  mounted = PANELS.filter(p => ctx.atLeast(p.least)).map(p => {
    const root = h("section", {id: `panel-${p.id}`, class: "panel", hidden: true});
    const button = h("button", {type: "button", id: `nav-${p.id}`, i18n: p.nav, onclick: () => { location.hash = p.id; }});
    nav.append(button);
    host.append(root);
    p.mount(root, ctx);
    return Object.assign(Object.create(p), {root, button});
  });
  nav.hidden = false;
  show(location.hash.slice(1) || "line");
}

function renderHeader(s) {
  $("line").textContent = s.line;
  const state = $("state");
  state.dataset.state = s.state;
  state.textContent = t(`state.${s.state}`);
}

function setSession(session) {
  ctx.session = session;
  setCsrfToken(session ? session.csrf_token : null);
  $("who").textContent = session ? t("auth.who", {name: session.name, role: t(`role.${session.role}`)}) : "";
  $("logout").hidden = !session;
}

async function signedIn(session) {
  setSession(session);
  $("login").hidden = true;
  mountPanels();
  live.start();
}

function signedOut() {
  live.stop();
  setSession(null);
  mounted = [];
  $("panels").replaceChildren();
  $("nav").hidden = true;
  $("conn").hidden = true;
  $("login").hidden = false;
  $("login-pin").value = "";
  $("login-user").focus();
}

async function checkSession() {
  try {
    return await get("/api/v1/auth/session");
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) return null;
    throw e;
  }
}

// ------------------------------------------------------------------ login

function keypad() {
  const pin = $("login-pin");
  const key = (label, action, i18n) => h("button", {type: "button", class: "key", i18n, text: i18n ? undefined : label, onclick: action});
  const digits = [1, 2, 3, 4, 5, 6, 7, 8, 9].map(d => key(String(d), () => { pin.value += d; }));
  $("keypad").replaceChildren(
    ...digits,
    key("", () => { pin.value = ""; }, "auth.clear"),
    key("0", () => { pin.value += "0"; }),
    key("", () => { pin.value = pin.value.slice(0, -1); }, "auth.back"),
  );
}

async function login(event) {
  event.preventDefault();
  const error = $("login-error");
  error.hidden = true;
  try {
    const session = await post("/api/v1/auth/login", {user: $("login-user").value.trim(), pin: $("login-pin").value});
    await signedIn(session);
  } catch (e) {
    $("login-pin").value = "";
    const status = e instanceof ApiError ? e.status : 0;
    error.textContent = status === 401 || status === 422 ? t("auth.error.bad")
      : status === 423 ? t("auth.error.locked")
      : status === 429 ? t("auth.error.limited", {seconds: Math.ceil(e.problem.retry_after_s || 60)})
      : t("auth.error.other", {detail: e.message});
    error.dataset.status = String(status);
    error.hidden = false;
  }
}

async function logout() {
  try { await post("/api/v1/auth/logout"); } catch (e) { /* the login is gone either way */ }
  signedOut();
}

// ------------------------------------------------------------------ confirmation

function confirm({title, body, yes, interlocks}) {
  const dialog = $("confirm");
  $("confirm-title").textContent = title;
  $("confirm-body").textContent = body;
  $("confirm-yes").textContent = yes;
  $("confirm-interlocks").replaceChildren(...interlocks.map(([text, abnormal]) => h("li", {class: abnormal ? "fault" : undefined, text})));
  dialog.showModal();
  return new Promise(resolve => {
    const done = answer => {
      $("confirm-yes").onclick = null;
      $("confirm-no").onclick = null;
      dialog.onclose = null;
      if (dialog.open) dialog.close();
      resolve(answer);
    };
    $("confirm-yes").onclick = () => done(true);
    $("confirm-no").onclick = () => done(false);
    dialog.onclose = () => done(false);
  });
}

// ------------------------------------------------------------------ start

live.on("snapshot", message => {
  ctx.snapshot = message.data;
  renderHeader(message.data);
  for (const p of mounted) if (p.snapshot) p.snapshot(message.data, ctx);
});
live.on("*", message => {
  if (message.type === "snapshot") return;
  for (const p of mounted) if (p.message) p.message(message, ctx);
});
live.on("connection", connected => { $("conn").hidden = connected; });
live.on("logged_out", () => signedOut());
live.on("refused", async () => { if ((await checkSession().catch(() => ctx.session)) === null) signedOut(); });

onLanguage(() => {
  $("lang").textContent = t("lang.switch");
  if (ctx.session) setSession(ctx.session);
  if (ctx.snapshot) renderHeader(ctx.snapshot);
  for (const p of mounted) {
    if (p.relabel) p.relabel(ctx);
    if (p.snapshot && ctx.snapshot) p.snapshot(ctx.snapshot, ctx);
  }
});

window.addEventListener("hashchange", () => { if (mounted.length) show(location.hash.slice(1)); });

async function main() {
  await loadCatalogue();
  keypad();
  applyTo(document);
  $("lang").onclick = () => setLanguage(language() === "zh-CN" ? "en" : "zh-CN");
  $("logout").onclick = logout;
  $("login-form").addEventListener("submit", login);
  const session = await checkSession();
  if (session) await signedIn(session); else signedOut();
  document.body.dataset.ready = "true";
}

main();
