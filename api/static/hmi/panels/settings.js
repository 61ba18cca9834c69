// Settings: the language for everyone; users and their PIN lock-outs for admins.
import {h, rows} from "../dom.js";
import {LANGUAGES, language, nameOf, setLanguage, t} from "../i18n.js";

let users = null;
let status = null;
let lastUsers = [];

function renderUsers(ctx) {
  rows(users, lastUsers, u => [
    h("td", {text: u.name}),
    h("td", {text: t(`role.${u.role}`)}),
    h("td", {class: u.locked ? "alarm" : undefined, text: t(u.locked ? "settings.locked" : u.active ? "settings.active" : "settings.disabled")}),
    h("td", {}, u.locked ? h("button", {type: "button", class: "unlock", dataset: {user: u.name}, i18n: "settings.unlock",
      onclick: () => unlock(ctx, u.name)}) : null),
  ]);
}

async function loadUsers(ctx) {
  const page = await ctx.get("/api/v1/users?limit=500");
  lastUsers = page.items;
  renderUsers(ctx);
}

async function unlock(ctx, name) {
  try {
    await ctx.post(`/api/v1/users/${encodeURIComponent(name)}/unlock`);
    status.textContent = t("settings.unlocked", {name});
    status.className = "note";
  } catch (e) {
    status.textContent = t("error.generic", {detail: e.message});
    status.className = "alarm";
  }
  status.hidden = false;
  await loadUsers(ctx);
}

export default {
  id: "settings",
  nav: "nav.settings",
  least: "operator",

  mount(root, ctx) {
    const languages = h("div", {class: "commands"}, ...LANGUAGES.map(lang => h("button", {
      type: "button", class: "language", dataset: {lang}, onclick: () => setLanguage(lang),
      text: nameOf(lang),
    })));
    root.append(h("div", {class: "card"}, h("h2", {i18n: "settings.language"}), languages));
    users = h("table", {id: "users"});
    status = h("p", {role: "status", hidden: true});
    const card = h("div", {class: "card"}, h("h2", {i18n: "settings.users"}));
    if (ctx.atLeast("admin")) {
      card.append(h("div", {class: "scroll"},
        h("table", {}, h("tr", {}, h("th", {i18n: "settings.user"}), h("th", {i18n: "settings.role"}), h("th", {i18n: "settings.status"}), h("th", {}))),
        users), status);
    } else {
      card.append(h("p", {class: "note", i18n: "settings.admin_only"}));
    }
    root.append(card);
  },

  show(ctx) {
    for (const b of document.querySelectorAll("button.language")) b.setAttribute("aria-pressed", String(b.dataset.lang === language()));
    if (ctx.atLeast("admin")) loadUsers(ctx).catch(() => {});
  },

  relabel(ctx) {
    for (const b of document.querySelectorAll("button.language")) b.setAttribute("aria-pressed", String(b.dataset.lang === language()));
    if (users) renderUsers(ctx);
  },
};
