// account.js: this node and its accounts (#/account), and the form that
// creates a fresh node's first account.
import { $, api, el, page, show, state } from "./core.js";

page("account", async function () {
  const id = state.id;
  $("peer-id").textContent = id.peer_id;
  const list = $("accounts");
  list.replaceChildren();
  for (const a of (id.accounts || []).filter(function (x) { return x.local; })) {
    const li = el("li", undefined, "account");
    li.append(el("span", a.name, "name"), " ", el("span", a.role, "role"));
    if (a.default) {
      li.append(" ", el("span", "default", "badge"));
    }
    li.append(el("code", a.id, "account-id"));
    list.append(li);
  }
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
