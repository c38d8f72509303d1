// main.js: the web app's entry. It learns who this node is, keeps the
// acting account (the account picker), shows the unlock screen whenever
// the API answers 423 Locked, and routes the hash to the pages.
import { $, api, el, failed, live, onLocked, route, show, state } from "./core.js";
import "./records.js";
import "./record.js";
import { showCreate } from "./account.js";
import "./contacts.js";
import { refreshBadge } from "./requests.js";
import "./activity.js";
import "./audit.js";
import "./devices.js";
import "./directory.js";
import "./guardians.js";
import "./recovery.js";
import "./write.js";
import "./labs.js";
import { refreshBanner } from "./emergency.js";

// pick makes account the acting one and remembers it for this tab.
function pick(account) {
  state.me = account;
  if (account) {
    sessionStorage.setItem("blockmrs-account", account.id);
  }
  $("lock-button").hidden = !(account && account.encrypted);
  document.body.dataset.role = account ? account.role : "";
}

function renderPicker(local) {
  const sel = $("account-picker");
  sel.replaceChildren();
  for (const a of local) {
    const o = el("option", a.name + " (" + a.role + ")");
    o.value = a.id;
    o.selected = state.me && a.id === state.me.id;
    sel.append(o);
  }
  $("picker").hidden = local.length < 2;
}

function showUnlock() {
  $("unlock-name").textContent = state.me ? state.me.name : "";
  $("unlock-error").hidden = true;
  $("passphrase").value = "";
  show("unlock");
  $("passphrase").focus();
}

async function unlock(ev) {
  ev.preventDefault();
  const b = $("unlock-button");
  const err = $("unlock-error");
  b.disabled = true;
  err.hidden = true;
  try {
    await api("POST", "/api/v1/sessions/unlock", { account: state.me.id, passphrase: $("passphrase").value });
    $("passphrase").value = "";
    await route();
  } catch (e) {
    err.textContent = e.message;
    err.hidden = false;
    $("passphrase").select();
  } finally {
    b.disabled = false;
  }
}

async function lock() {
  try {
    await api("POST", "/api/v1/sessions/lock", { account: state.me.id });
    for (const s of document.querySelectorAll("main > section")) {
      if (s.dataset.private !== undefined) {
        s.hidden = true;
      }
    }
    showUnlock();
  } catch (e) {
    failed($("error-text"), e);
    show("error");
  }
}

// loadID (re)reads the node's identity and accounts.
export async function loadID() {
  const id = await api("GET", "/api/v1/id");
  state.id = id;
  const local = (id.accounts || []).filter(function (a) { return a.local; });
  const kept = sessionStorage.getItem("blockmrs-account");
  let me = local.find(function (a) { return a.id === kept; }) || id.account || local[0] || null;
  if (me && !me.local) {
    me = local[0] || null;
  }
  pick(me);
  renderPicker(local);
  return local;
}

async function start() {
  $("unlock-form").addEventListener("submit", unlock);
  $("lock-button").addEventListener("click", lock);
  $("account-picker").addEventListener("change", function () {
    const a = (state.id.accounts || []).find(function (x) { return x.id === $("account-picker").value; });
    pick(a || null);
    refreshBadge();
    refreshBanner();
    route();
  });
  onLocked(showUnlock);
  // A page that made an account (guardians.js: a child's) asks for the
  // picker to list it.
  document.addEventListener("blockmrs:accounts", function () {
    loadID().catch(function (e) { failed($("error-text"), e); });
  });
  let local;
  try {
    local = await loadID();
  } catch (e) {
    if (e.status === 401) {
      show("out");
      return;
    }
    $("error-text").textContent = e.message;
    show("error");
    return;
  }
  if (local.length === 0) {
    showCreate();
    return;
  }
  $("nav").hidden = false;
  window.addEventListener("hashchange", route);
  live();
  refreshBadge();
  refreshBanner();
  await route();
}

document.addEventListener("DOMContentLoaded", start);
