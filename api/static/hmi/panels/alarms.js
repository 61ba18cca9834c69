// Alarms: what is abnormal now (devices in fault) and recent events from the live feed.
// Cold-chain alarms publish on the same feed and plug in here.
import {h, rows} from "../dom.js";
import {has, t} from "../i18n.js";

const KEEP = 50;
const STATE_TYPES = ["coldrooms", "outlets", "lot"];
let active = null;
let recent = null;
let events = [];
let faults = [];

function eventText(m) {
  return has(`event.${m.type}`) ? t(`event.${m.type}`, m.data) : `${m.type} ${JSON.stringify(m.data)}`;
}

function render() {
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

  mount(root) {
    active = h("table", {id: "alarms-active"});
    recent = h("table", {id: "alarms-recent"});
    events = [];
    faults = [];
    root.append(h("div", {class: "card"}, h("h2", {i18n: "alarms.active"}), active),
      h("div", {class: "card"}, h("h2", {i18n: "alarms.recent"}), recent));
    render();
  },

  snapshot(s) {
    const now = Object.entries(s.devices).filter(([, state]) => state !== "ok").map(([d]) => d).sort();
    if (now.join() !== faults.join()) { faults = now; render(); }
  },

  message(m) {
    if (STATE_TYPES.includes(m.type)) return;  // state pushed every tick, not events
    events = [m, ...events].slice(0, KEEP);
    render();
  },

  relabel() { render(); },
};
