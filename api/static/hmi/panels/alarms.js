// Alarms: the line's alarm list (every source: cold rooms, drift, ...) with acknowledge and shelve,
// then devices in fault and recent events from the live feed. ISA-101 colours: priority colour
// only on abnormal alarms; an unacknowledged alarm is outlined and marked, an acknowledged one
// is filled; shelved, suppressed and out-of-service alarms are grey.
import {h, rows} from "../dom.js";
import {has, t} from "../i18n.js";

const KEEP = 50;
let list = null;
const STATE_TYPES = ["coldrooms", "outlets", "lot"];
let active = null;
let recent = null;
let error = null;
let alarms = [];
let events = [];
let faults = [];
let context = null;

function eventText(m) {
  return has(`event.${m.type}`) ? t(`event.${m.type}`, m.data) : `${m.type} ${JSON.stringify(m.data)}`;
}

const UNACKED = ["unacknowledged", "returned_unacknowledged"];

async function command(alarm, path, body) {
  error.hidden = true;
  try {
    const updated = await context.post(`/api/v1/alarms/${encodeURIComponent(alarm)}/${path}`, body);
    alarms = alarms.map(a => (a.alarm === updated.alarm ? updated : a));
    render();
  } catch (exc) {
    error.textContent = t("alarms.error", {detail: exc.message});
    error.hidden = false;
  }
}

async function shelve(a) {
  const ok = await context.confirm({
    title: t("alarms.shelve_title", {alarm: a.alarm}), body: t("alarms.shelve_body"), yes: t("alarms.shelve"), interlocks: [],
  });
  if (ok) await command(a.alarm, "shelve", {reason: t("alarms.shelve_reason"), duration_s: 3600});
}

// The catalogue's words for the alarm kinds it knows; other sources' alarms show their own message.
function alarmText(a) {
  const key = `alarms.kind.${a.kind}`;
  return has(key) ? t(key, {source: a.source, setpoint: a.setpoint, percent: a.setpoint === null ? "" : Math.round(a.setpoint * 100)})
    : a.message || a.alarm;
}

function alarmRow(a) {
  const hidden = ["shelved", "suppressed", "out_of_service"].includes(a.state);
  const cls = `alarm-row prio-${a.priority} state-${a.state}${hidden ? " hidden-alarm" : ""}`;
  const buttons = [];
  if (UNACKED.includes(a.state)) {
    buttons.push(h("button", {type: "button", class: "ack", "data-alarm": a.alarm, i18n: "alarms.acknowledge", onclick: () => command(a.alarm, "acknowledge")}));
  }
  if (context.atLeast("supervisor")) {
    if (a.state === "shelved") buttons.push(h("button", {type: "button", class: "unshelve", i18n: "alarms.unshelve", onclick: () => command(a.alarm, "unshelve")}));
    else if (!hidden) buttons.push(h("button", {type: "button", class: "shelve", i18n: "alarms.shelve", onclick: () => shelve(a)}));
  }
  return h("tr", {class: cls, "data-alarm": a.alarm, "data-state": a.state},
    h("td", {}, h("span", {class: `prio prio-${a.priority}`, text: t(`alarms.priority.${a.priority}`)})),
    h("td", {text: alarmText(a)}),
    h("td", {class: "state", text: (UNACKED.includes(a.state) ? "◆ " : "") + t(`alarms.state.${a.state}`)}),
    h("td", {class: "n", text: a.value === null ? "—" : Number(a.value).toFixed(1)}),
    h("td", {text: a.raised_at ? new Date(a.raised_at).toLocaleTimeString() : ""}),
    h("td", {class: "actions"}, ...buttons));
}

// ISA-18.2 list order: waiting for acknowledgement first, then by priority, newest first.
const PRIORITY = ["urgent", "high", "medium", "low"];
const order = a => [UNACKED.includes(a.state) ? 0 : ["shelved", "suppressed", "out_of_service"].includes(a.state) ? 2 : 1, PRIORITY.indexOf(a.priority)];

function render() {
  const shown = alarms.filter(a => a.state !== "normal").sort((a, b) => {
    const [x, y] = [order(a), order(b)];
    return x[0] - y[0] || x[1] - y[1] || String(b.raised_at || "").localeCompare(String(a.raised_at || ""));
  });
  list.replaceChildren(...(shown.length ? shown.map(alarmRow) : [h("tr", {}, h("td", {class: "note", i18n: "alarms.no_alarms"}))]));
  rows(active, faults.length ? faults : [null], device => [
    device === null ? h("td", {i18n: "alarms.none"}) : h("td", {class: "fault", text: t("event.device_fault", {device})}),
  ]);
  rows(recent, events.length ? events : [null], m => m === null
    ? [h("td", {class: "note", i18n: "alarms.no_events"})]
    : [h("td", {text: new Date(m.at).toLocaleTimeString()}), h("td", {class: m.type === "device_fault" ? "fault" : undefined, text: eventText(m)})]);
}

export default {
  id: "alarms",
  nav: "nav.alarms",
  least: "operator",

  mount(root, ctx) {
    context = ctx;
    list = h("tbody", {id: "alarm-list"});
    active = h("table", {id: "alarms-active"});
    recent = h("table", {id: "alarms-recent"});
    error = h("p", {class: "fault", hidden: true, id: "alarm-error"});
    alarms = [];
    events = [];
    faults = [];
    root.append(
      h("div", {class: "card wide"}, h("h2", {i18n: "alarms.list"}), error,
        h("div", {class: "scroll"}, h("table", {}, h("thead", {}, h("tr", {},
          h("th", {i18n: "alarms.priority"}), h("th", {i18n: "alarms.message"}), h("th", {i18n: "alarms.state"}),
          h("th", {class: "n", i18n: "alarms.value"}), h("th", {i18n: "alarms.raised"}), h("th", {}))), list))),
      h("div", {class: "card"}, h("h2", {i18n: "alarms.active"}), active),
      h("div", {class: "card"}, h("h2", {i18n: "alarms.recent"}), recent));
    render();
  },

  snapshot(s) {
    const now = Object.entries(s.devices).filter(([, state]) => state !== "ok").map(([d]) => d).sort();
    if (now.join() !== faults.join()) { faults = now; render(); }
  },

  message(m) {
    if (m.type === "alarms") { alarms = m.data.items; render(); return; }
    if (STATE_TYPES.includes(m.type)) return;  // state pushed every tick, not events
    if (m.type === "alarm") { alarms = alarms.map(a => (a.alarm === m.data.alarm ? m.data : a)); }
    events = [m, ...events].slice(0, KEEP);
    render();
  },

  relabel() { render(); },
};
