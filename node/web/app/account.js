// account.js: this node and its accounts (#/account), and the screen of
// a fresh node: the form that creates its first account, and the form
// that joins an account another device shows a pairing code for.
import { $, api, button, el, errorLine, failed, page, show, state } from "./core.js";
import { joinForm } from "./devices.js";

// renderAccounts lists the local accounts, each not the default with a
// "Make default" button.
function renderAccounts() {
  const id = state.id;
  $("peer-id").textContent = id.peer_id;
  const list = $("accounts");
  list.replaceChildren();
  for (const a of (id.accounts || []).filter(function (x) { return x.local; })) {
    const li = el("li", undefined, "account");
    li.dataset.id = a.id;
    li.append(el("span", a.name, "name"), " ", el("span", a.role, "role"));
    if (a.default) {
      li.append(" ", el("span", "default", "badge"));
    } else {
      const b = button("Make default", "quiet make-default", function () { return makeDefault(a); });
      b.setAttribute("aria-label", "Make " + a.name + " the default account");
      li.append(" ", b);
    }
    li.append(el("code", a.id, "account-id"));
    list.append(li);
  }
}

// makeDefault makes a the repo's default account: the one commands and
// other clients act as when they name none. The account this tab acts as
// (the picker) stays as it is.
async function makeDefault(a) {
  const err = $("account-error");
  err.hidden = true;
  try {
    const got = await api("POST", "/api/v1/accounts/default", { account: a.id });
    const def = new Map(((got && got.accounts) || []).map(function (x) { return [x.id, !!x.default]; }));
    for (const x of state.id.accounts || []) {
      if (def.has(x.id)) {
        x.default = def.get(x.id);
      }
    }
    renderAccounts();
    $("account-status").textContent = a.name + " is now the default account.";
  } catch (e) {
    failed(err, e);
  }
}

page("account", async function () {
  renderAccounts();
  $("account-error").hidden = true;
  $("account-status").textContent = "";
  show("account");
});

// create sends the create-account form; on success the app starts over
// with the new account.
async function create(ev) {
  ev.preventDefault();
  const err = $("create-error");
  const b = $("create-button");
  err.hidden = true;
  const pass = $("create-pass").value;
  if (pass !== $("create-pass2").value) {
    err.textContent = "The two passphrases differ: type the same one twice.";
    err.hidden = false;
    return;
  }
  b.disabled = true;
  try {
    const a = await api("POST", "/api/v1/accounts", {
      name: $("create-name").value.trim(), role: $("create-role").value, passphrase: pass,
    });
    $("create-pass").value = "";
    $("create-pass2").value = "";
    if (a.encrypted) {
      // The new account starts unlocked: the passphrase was just typed.
      await api("POST", "/api/v1/sessions/unlock", { account: a.id, passphrase: pass });
    }
    location.hash = "#/records";
    location.reload();
  } catch (e) {
    err.textContent = e.message;
    err.hidden = false;
  } finally {
    b.disabled = false;
  }
}

// showCreate shows the screen of a node without an account: create one,
// or join one from another device (the app starts over with it).
export function showCreate() {
  $("peer-id-new").textContent = state.id.peer_id;
  const s = $("screen-create");
  if (!$("join-new")) {
    const d = el("div");
    d.id = "join-new";
    d.append(el("h2", "Or join an account from another device"),
      el("p", "Your account is on another phone or computer: there, open Devices and choose " +
        "\u201cShow a pairing code\u201d, then enter the code here. This node receives the " +
        "account's keys and stores them under the passphrase you type (empty: unencrypted).", "hint"),
      joinForm("join-error", async function (out, pass) {
        if (out.account.encrypted && pass) {
          // The joined account starts unlocked: the passphrase was just typed.
          await api("POST", "/api/v1/sessions/unlock", { account: out.account.id, passphrase: pass });
        }
        location.hash = "#/records";
        location.reload();
      }),
      errorLine("join-error"));
    s.append(d);
  }
  show("create");
}

document.addEventListener("DOMContentLoaded", function () {
  $("create-form").addEventListener("submit", create);
});
