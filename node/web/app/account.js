// account.js: this node and its accounts (#/account), and the form that
// creates a fresh node's first account.
import { $, api, button, el, failed, page, show, state } from "./core.js";

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

document.addEventListener("DOMContentLoaded", function () {
  $("create-form").addEventListener("submit", create);
});
