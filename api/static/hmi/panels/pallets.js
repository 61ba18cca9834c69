// Pallet build: create a pallet (it gets its SSCC), put cartons on it with the barcode scanner
// (the scanner types the code and Enter into the scan field: element string or Digital Link) or
// by clicking a recent closed, coded carton, take one off, print the SSCC label, and ship it
// behind the confirmation dialog. The label preview is the label route's PNG.
import {request} from "../api.js";
import {h, rows} from "../dom.js";
import {t} from "../i18n.js";

let el = {};
let ctx = null;
let pallet = null;

function say(key, params) { el.message.textContent = t(key, params); }

async function act(call) {
  try { return await call(); } catch (error) { say("error.generic", {detail: error.message}); return null; }
}

function kg(grams) { return (grams / 1000).toFixed(2); }

function render() {
  const open = Boolean(pallet) && !pallet.shipped_at;
  el.none.hidden = Boolean(pallet);
  el.current.hidden = !pallet;
  el.scan.disabled = !open;
  el.ship.disabled = !open || !pallet.carton_count;
  el.print.disabled = !pallet;
  if (!pallet) return;
  el.sscc.textContent = pallet.hri;
  el.count.textContent = pallet.carton_count;
  el.weight.textContent = kg(pallet.net_weight_g);
  el.lots.textContent = pallet.lots.join("、") || "—";
  // several lots: it ships with the center's own 合格证 (issued at shipping)
  el.cert.textContent = pallet.certificate ? t("pallets.certificate", {number: pallet.certificate.number})
    : pallet.lots.length > 1 ? t("pallets.certificate_at_ship") : "";
  el.state.textContent = pallet.shipped_at ? t("pallets.shipped_at", {at: new Date(pallet.shipped_at).toLocaleString()}) : t("pallets.open");
  rows(el.cartons, pallet.cartons, c => [
    h("td", {text: c.carton_id}), h("td", {text: c.serial}), h("td", {text: c.lot}),
    h("td", {text: t(`grade.${c.quality_class}`)}), h("td", {class: "n", text: kg(c.net_weight_g)}),
    h("td", {}, open ? h("button", {type: "button", class: "pallet-remove", i18n: "pallets.remove",
      onclick: () => change(() => request("DELETE", `/api/v1/pallets/${pallet.id}/cartons/${c.carton_id}`), "pallets.removed")}) : null),
  ]);
  el.preview.src = `/api/v1/pallets/${pallet.id}/label?format=png&n=${pallet.carton_count}-${pallet.shipped_at || ""}`;
}

async function loadLoose() {
  const loose = await act(() => ctx.get("/api/v1/pallets/loose-cartons?limit=20"));
  if (!loose) return;
  const open = Boolean(pallet) && !pallet.shipped_at;
  rows(el.loose, loose.items, c => [
    h("td", {text: c.carton_id}), h("td", {text: c.serial}), h("td", {text: c.lot}),
    h("td", {text: t(`grade.${c.quality_class}`)}), h("td", {class: "n", text: kg(c.net_weight_g)}),
    h("td", {}, open ? h("button", {type: "button", class: "pallet-add", i18n: "pallets.add",
      onclick: () => change(() => ctx.post(`/api/v1/pallets/${pallet.id}/cartons`, {carton_id: c.carton_id}), "pallets.added")}) : null),
  ]);
}

async function change(call, done) {
  const out = await act(call);
  if (!out) return;
  pallet = out;
  say(done, {sscc: pallet.hri, count: pallet.carton_count});
  render();
  await loadLoose();
}

async function scanned(event) {
  event.preventDefault();
  const code = el.scan.value.trim();
  el.scan.value = "";
  if (!code || !pallet) return;
  await change(() => ctx.post(`/api/v1/pallets/${pallet.id}/cartons`, {code}), "pallets.added");
  el.scan.focus();
}

async function ship() {
  const yes = await ctx.confirm({
    title: t("pallets.ship_title", {sscc: pallet.hri}), body: t("pallets.ship_body", {count: pallet.carton_count}),
    yes: t("pallets.ship"), interlocks: [],
  });
  if (yes) await change(() => ctx.post(`/api/v1/pallets/${pallet.id}/ship`), "pallets.shipped");
}

export default {
  id: "pallets",
  nav: "nav.pallets",
  least: "operator",

  mount(root, context) {
    ctx = context;
    el.none = h("p", {i18n: "pallets.none"});
    el.sscc = h("strong", {id: "pallet-sscc"});
    el.count = h("span", {id: "pallet-count"});
    el.weight = h("span", {id: "pallet-weight"});
    el.lots = h("span", {id: "pallet-lots"});
    el.cert = h("span", {id: "pallet-certificate"});
    el.state = h("span", {id: "pallet-state"});
    el.cartons = h("table", {id: "pallet-cartons"});
    el.loose = h("table", {id: "pallet-loose"});
    el.scan = h("input", {id: "pallet-scan", type: "text", autocomplete: "off", spellcheck: "false", "aria-label": t("pallets.scan")});
    el.ship = h("button", {type: "button", id: "pallet-ship", i18n: "pallets.ship", onclick: ship});
    el.print = h("button", {type: "button", id: "pallet-print", i18n: "pallets.print", onclick: async () => {
      const out = await act(() => ctx.post(`/api/v1/pallets/${pallet.id}/label/print`));
      if (out) say("pallets.printed", {sscc: pallet.hri, printer: out.printer});
    }});
    el.preview = h("img", {id: "pallet-label", class: "label-preview", alt: ""});
    el.message = h("p", {id: "pallet-message", role: "status"});
    el.current = h("div", {},
      h("p", {}, el.sscc, " ", el.state),
      h("p", {}, h("span", {i18n: "pallets.count"}), " ", el.count, "  ", h("span", {i18n: "pallets.weight"}), " ", el.weight,
        "  ", h("span", {i18n: "pallets.lots"}), " ", el.lots, "  ", el.cert),
      h("form", {id: "pallet-scan-form", onsubmit: scanned}, h("label", {for: "pallet-scan", i18n: "pallets.scan"}), el.scan),
      el.cartons,
      h("p", {}, el.print, " ", el.ship),
      el.preview);
    root.append(
      h("div", {class: "card"},
        h("h2", {i18n: "pallets.title"}),
        h("button", {type: "button", id: "pallet-new", i18n: "pallets.new",
          onclick: () => change(() => ctx.post("/api/v1/pallets", {}), "pallets.created")}),
        el.none, el.current, el.message),
      h("div", {class: "card"}, h("h2", {i18n: "pallets.loose"}), el.loose));
    render();
  },

  async show() {
    if (!pallet) {  // after a reload: carry on with the newest pallet still open
      const open = await act(() => ctx.get("/api/v1/pallets?shipped=false&limit=1"));
      if (open && open.items.length) { pallet = open.items[0]; render(); }
    }
    await loadLoose();
    if (pallet && !pallet.shipped_at) el.scan.focus();
  },

  message(m) { if (m.type === "carton_closed") loadLoose(); },

  relabel() { if (el.cartons) render(); },
};
