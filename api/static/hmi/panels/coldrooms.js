// Cold rooms: each room's temperature against its band with a short trend, humidity, door,
// pre-cooling progress and the lots in it; moving a lot into or out of a room. Pushed on the
// live feed. A stale sensor shows no value (its last one is not current).
import {h} from "../dom.js";
import {t} from "../i18n.js";

let host = null;
let empty = null;
let form = null;
let message = null;
let last = [];
let context = null;

// The trend on a canvas with the band as a grey strip and the line in dark grey (ISA-101: no
// colour for normal values; the current value turns the alarm colour outside the band).
function trend(r) {
  const w = 240, hgt = 60;
  const canvas = h("canvas", {width: w, height: hgt, class: "trend", role: "img", "aria-label": r.room});
  const g = canvas.getContext("2d");
  if (!g) return canvas;
  const points = r.trend;
  const values = points.map(p => p[1]).concat([r.band.temperature_low_celsius, r.band.temperature_high_celsius]);
  const lo = Math.min(...values) - 0.5, hi = Math.max(...values) + 0.5;
  const span = Math.max(...points.map(p => p[0]), 60);
  const x = ago => w - (ago / span) * w;
  const y = v => hgt - ((v - lo) / (hi - lo)) * hgt;
  g.fillStyle = "#bdbdbd";
  g.fillRect(0, y(r.band.temperature_high_celsius), w, Math.max(1, y(r.band.temperature_low_celsius) - y(r.band.temperature_high_celsius)));
  if (points.length > 1) {
    g.strokeStyle = "#424242";
    g.lineWidth = 2;
    g.beginPath();
    points.forEach(([ago, v], i) => (i ? g.lineTo(x(ago), y(v)) : g.moveTo(x(ago), y(v))));
    g.stroke();
  }
  return canvas;
}

function cooling(r) {
  const entries = Object.entries(r.cooling || {});
  if (!entries.length) return null;
  return h("div", {class: "cooling"}, ...entries.map(([probe, c]) => c === null
    ? h("p", {class: "note", text: t("coldrooms.cooling_wait", {probe})})
    : h("div", {},
      h("div", {text: t("coldrooms.cooling", {probe, core: c.core_celsius.toFixed(1), percent: Math.round(c.progress * 100)})}),
      h("progress", {max: 100, value: Math.round(c.progress * 100)}),
      h("div", {class: "note", text: t("coldrooms.cooling_times", {
        half: c.half_cooling_measured_s !== null ? `${(c.half_cooling_measured_s / 3600).toFixed(1)} h` : "—",
        eighth: c.seven_eighths_predicted_s !== null ? `${(c.seven_eighths_predicted_s / 3600).toFixed(1)} h` : "—",
      })}))));
}

function card(r) {
  const out = r.temperature_celsius !== null
    && (r.temperature_celsius > r.band.temperature_high_celsius || r.temperature_celsius < r.band.temperature_low_celsius);
  const value = r.temperature_celsius === null ? "—" : `${r.temperature_celsius.toFixed(1)} °C`;
  return h("div", {class: "card room", "data-room": r.room},
    h("h2", {text: `${r.room} · ${t(`coldrooms.purpose.${r.purpose}`)}`}),
    h("div", {class: "big"}, h("span", {class: out ? "alarm" : r.state === "up" ? undefined : "fault", text: value})),
    h("div", {class: "note", text: t("coldrooms.band", {
      low: r.band.temperature_low_celsius, high: r.band.temperature_high_celsius, setpoint: r.band.setpoint_celsius})}),
    trend(r),
    h("div", {text: r.relative_humidity_ratio === null ? "— %RH" : `${Math.round(r.relative_humidity_ratio * 100)} %RH`}),
    r.state === "up" ? null : h("div", {class: "fault", text: t("coldrooms.stale")}),
    r.door_open === null ? null : h("div", {class: r.door_open ? "alarm" : undefined, text: t(r.door_open ? "coldrooms.door_open" : "coldrooms.door_shut")}),
    r.loading ? h("div", {class: "note", text: t("coldrooms.loading")}) : null,
    cooling(r),
    h("div", {class: "note", text: r.residents.length
      ? t("coldrooms.residents", {lots: r.residents.map(x => x.lot_code + (x.pallet ? `/${x.pallet}` : "")).join(", ")})
      : t("coldrooms.empty")}));
}

function render() {
  empty.hidden = last.length > 0;
  form.hidden = last.length === 0;
  host.replaceChildren(...last.map(card));
  const select = form.querySelector("select");
  const chosen = select.value;
  select.replaceChildren(h("option", {value: "", text: t("coldrooms.out")}), ...last.map(r => h("option", {value: r.room, text: r.room})));
  select.value = chosen;
}

async function move(event) {
  event.preventDefault();
  const lot = Number(form.querySelector("input[name=lot]").value);
  const pallet = form.querySelector("input[name=pallet]").value.trim();
  const room = form.querySelector("select").value || null;
  try {
    const moved = await context.post(`/api/v1/lots/${lot}/coldchain/moves`, {room, pallet});
    message.className = "note";
    message.textContent = t("coldrooms.moved", {lot, room: moved.entered || t("coldrooms.out")});
  } catch (exc) {
    message.className = "fault";
    message.textContent = t("coldrooms.move_failed", {detail: exc.message});
  }
}

export default {
  id: "coldrooms",
  nav: "nav.coldrooms",
  least: "operator",

  mount(root, ctx) {
    context = ctx;
    host = h("div", {id: "coldrooms", class: "panel"});
    empty = h("p", {class: "note", i18n: "coldrooms.none", hidden: true});
    message = h("p", {class: "note"});
    form = h("form", {class: "move", onsubmit: move, hidden: true},
      h("label", {}, h("span", {i18n: "coldrooms.lot"}), h("input", {name: "lot", type: "number", min: 1, required: true})),
      h("label", {}, h("span", {i18n: "coldrooms.pallet"}), h("input", {name: "pallet", maxlength: 64})),
      h("label", {}, h("span", {i18n: "coldrooms.to"}), h("select", {name: "room"})),
      h("button", {type: "submit", i18n: "coldrooms.move"}));
    root.append(h("div", {class: "card wide"}, h("h2", {i18n: "coldrooms.title"}), empty, host),
      h("div", {class: "card wide"}, h("h2", {i18n: "coldrooms.move_title"}), form, message));
  },

  message(m) {
    if (m.type !== "coldrooms") return;
    last = m.data.items;
    render();
  },

  relabel() { if (host) render(); },
};
