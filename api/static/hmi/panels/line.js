// The line: big totals, counts per class, devices, and start/stop behind a confirmation.
import {ApiError} from "../api.js";
import {byKey, h, rows} from "../dom.js";
import {has, t} from "../i18n.js";

let el = {};

const grade = k => (has(`grade.${k}`) ? t(`grade.${k}`) : k);

function figure(id, label, big = false) {
  return h("div", {class: "figure"}, h("div", {class: "label", i18n: label}), h("div", {id, class: big ? "big" : "value", text: "0"}));
}

async function command(ctx, verb) {
  const s = ctx.snapshot || {devices: {}};
  const faults = Object.entries(s.devices || {}).filter(([, state]) => state !== "ok");
  const interlocks = faults.length
    ? faults.map(([device]) => [t("confirm.device_fault", {device}), true])
    : [[t("confirm.all_ok"), false]];
  const yes = await ctx.confirm({
    title: t(`confirm.${verb}.title`), body: t(`confirm.${verb}.body`), yes: t(`confirm.yes.${verb}`), interlocks,
  });
  if (!yes) return;
  el.error.hidden = true;
  try {
    await ctx.post(`/api/v1/line/${verb}`);
  } catch (e) {
    el.error.textContent = e instanceof ApiError && e.status === 403 ? t("error.forbidden") : t("line.command_failed", {detail: e.message});
    el.error.hidden = false;
  }
}

export default {
  id: "line",
  nav: "nav.line",
  least: "operator",

  mount(root, ctx) {
    el = {
      quality: h("table", {id: "quality"}),
      size: h("table", {id: "size"}),
      devices: h("table", {id: "devices"}),
      lot: h("span", {id: "lot"}),
      product: h("span", {id: "product"}),
      start: h("button", {id: "start", type: "button", class: "primary", i18n: "line.start", onclick: () => command(ctx, "start")}),
      stop: h("button", {id: "stop", type: "button", class: "primary", i18n: "line.stop", onclick: () => command(ctx, "stop")}),
      error: h("p", {id: "command-error", class: "alarm", role: "alert", hidden: true}),
    };
    root.append(
      h("div", {class: "card"},
        h("h2", {i18n: "line.fruit_total"}),
        h("div", {id: "fruit_total", class: "big", text: "0"}),
        h("div", {class: "figures"},
          figure("rate", "line.rate"), figure("late", "line.late"), figure("noweight", "line.noweight")),
        h("p", {}, h("span", {class: "label", i18n: "line.lot"}), " ", el.lot, " · ", h("span", {class: "label", i18n: "line.product"}), " ", el.product),
        h("div", {class: "commands"}, el.start, el.stop),
        el.error),
      h("div", {class: "card"}, h("h2", {i18n: "line.quality"}), el.quality),
      h("div", {class: "card"}, h("h2", {i18n: "line.size"}), el.size),
      h("div", {class: "card"}, h("h2", {i18n: "line.devices"}), el.devices),
    );
  },

  snapshot(s) {
    document.getElementById("fruit_total").textContent = s.fruit_total;
    document.getElementById("rate").textContent = s.fruit_per_second.toFixed(1);
    document.getElementById("late").textContent = s.late_total;
    document.getElementById("noweight").textContent = s.weights_missing_total;
    el.lot.textContent = s.lot;
    el.product.textContent = s.product;
    el.start.disabled = s.state === "running";
    el.stop.disabled = s.state !== "running";
    const counts = (table, data) => rows(table, Object.entries(data).sort(byKey),
      ([k, v]) => [h("td", {text: grade(k)}), h("td", {class: "n", text: v})]);
    counts(el.quality, s.quality_classes);
    counts(el.size, s.size_classes);
    rows(el.devices, Object.entries(s.devices).sort(byKey), ([name, state]) => [
      h("td", {text: name}),
      h("td", {class: state === "ok" ? "n" : "n fault", text: t(`device.${state === "ok" ? "ok" : "fault"}`)}),
    ]);
  },
};
