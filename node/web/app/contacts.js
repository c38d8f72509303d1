// contacts.js: the contacts page (#/contacts): the acting account's share
// code (text, copy button, QR code), its contacts, and adding one by
// share code or by profile file.
import { $, api, cell, el, failed, formatDate, page, shortID, show, state, withAccount } from "./core.js";

// refreshAccounts re-reads the accounts the node knows, so that who()
// names a contact added a moment ago.
export async function refreshAccounts() {
  const id = await api("GET", "/api/v1/id");
  if (state.id) {
    state.id.accounts = id.accounts;
  }
  return id;
}

function renderShare(id) {
  const code = id.share_code || "";
  $("share-none").hidden = code !== "";
  $("share").hidden = code === "";
  $("share-code").textContent = code;
  $("share-status").textContent = "";
  // The QR code is made by the node from the same share code.
  const box = $("share-qr-box");
  box.replaceChildren();
  if (code) {
    const img = el("img");
    img.id = "share-qr";
    img.alt = "QR code of your share code";
    img.src = withAccount("/api/v1/share-code.png");
    box.append(img);
  }
}

// sharingCell lists, as links to the records' pages, what the acting
// account shares with contact a and what a shares with it (grants, from
// GET /api/v1/grants; null when the account is locked).
function sharingCell(a, grants) {
  const td = cell("Sharing", undefined, "sharing");
  if (!grants) {
    td.textContent = "unlock to see";
    return td;
  }
  const me = state.me ? state.me.id : "";
  const groups = [
    ["you share: ", grants.filter(function (g) { return g.to === a.id && g.subject === me; })],
    ["shares with you: ", grants.filter(function (g) { return g.subject === a.id && g.to === me; })],
  ];
  for (const [label, gs] of groups) {
    if (gs.length === 0) {
      continue;
    }
    const p = el("p", label, "grants");
    gs.forEach(function (g, i) {
      if (i > 0) {
        p.append(", ");
      }
      const link = el("a", g.title || shortID(g.cid));
      link.href = "#/record/" + encodeURIComponent(g.cid);
      p.append(link);
      if (g.expires) {
        p.append(" (until " + formatDate(g.expires) + ")");
      }
    });
    td.append(p);
  }
  if (!td.firstChild) {
    td.textContent = "nothing shared";
  }
  return td;
}

function contactRow(a, grants) {
  const tr = el("tr", undefined, "contact");
  tr.dataset.id = a.id;
  const tdID = cell("ID", undefined, "account-id");
  const code = el("code", shortID(a.id));
  code.title = a.id;
  tdID.append(code);
  const tdAct = cell("Actions", undefined, "actions");
  const ask = el("a", "Ask for access");
  ask.href = "#/requests/" + encodeURIComponent(a.id);
  ask.setAttribute("aria-label", "Ask " + a.name + " for access");
  tdAct.append(ask);
  tr.append(cell("Name", a.name, "name"), cell("Role", a.role, "role"), tdID, sharingCell(a, grants), tdAct);
  return tr;
}

function renderContacts(list, grants) {
  const body = $("contacts-body");
  body.replaceChildren();
  const all = (list && list.accounts) || [];
  for (const a of all) {
    body.append(contactRow(a, grants));
  }
  $("contacts").hidden = all.length === 0;
  $("contacts-empty").hidden = all.length > 0;
}

async function render() {
  $("contacts-error").hidden = true;
  const [id, list, grants] = await Promise.all([refreshAccounts(), api("GET", "/api/v1/contacts"),
    api("GET", "/api/v1/grants").then(function (g) { return g.grants; }, function (e) {
      if (e.status === 423) {
        return null;
      }
      throw e;
    })]);
  renderShare(id);
  renderContacts(list, grants);
  show("contacts");
}

// copyCode puts the share code on the clipboard; where the browser
// refuses, it selects the code so that the reader can copy it.
async function copyCode() {
  const code = $("share-code");
  const status = $("share-status");
  try {
    await navigator.clipboard.writeText(code.textContent);
    status.textContent = "Copied.";
  } catch (e) {
    const range = document.createRange();
    range.selectNodeContents(code);
    const sel = window.getSelection();
    sel.removeAllRanges();
    sel.addRange(range);
    status.textContent = "The browser did not let the page copy: the code is selected, press Ctrl+C (or ⌘C).";
  }
}

// report says what an add changed, naming the accounts (as text).
function report(res) {
  const added = (res.added || []).map(function (a) { return a.name + " (" + a.role + ")"; });
  const updated = (res.updated || []).map(function (a) { return a.name; });
  const parts = [];
  if (added.length) {
    parts.push("Added " + added.join(", ") + ".");
  }
  if (updated.length) {
    parts.push("Updated " + updated.join(", ") + ".");
  }
  if (!parts.length) {
    parts.push("Already a contact: nothing new.");
  }
  return parts.join(" ");
}

// adding runs fn (the add) with the form's button disabled, then says
// what changed and lists the contacts again.
async function adding(form, buttonID, fn) {
  const status = $("contact-status");
  const b = $(buttonID);
  b.disabled = true;
  status.classList.remove("error");
  status.textContent = "Adding…";
  try {
    const res = await fn();
    form.reset();
    status.textContent = report(res);
    await render();
  } catch (e) {
    status.textContent = e.message || String(e);
    status.classList.add("error");
    failed(null, e);
  } finally {
    b.disabled = false;
  }
}

function addByCode(ev) {
  ev.preventDefault();
  const code = $("contact-code").value.trim();
  return adding($("contact-code-form"), "contact-code-button", function () {
    return api("POST", "/api/v1/contacts", { share_code: code });
  });
}

function addByFile(ev) {
  ev.preventDefault();
  const file = $("contact-file").files[0];
  if (!file) {
    $("contact-status").textContent = "Choose a profile file first.";
    return;
  }
  return adding($("contact-file-form"), "contact-file-button", function () {
    // Sent as a CAR whatever the browser guesses: the node verifies it.
    return api("POST", "/api/v1/contacts/import", new Blob([file], { type: "application/vnd.ipld.car" }));
  });
}

let wired = false;

page("contacts", async function () {
  if (!wired) {
    wired = true;
    $("share-copy").addEventListener("click", copyCode);
    $("contact-code-form").addEventListener("submit", addByCode);
    $("contact-file-form").addEventListener("submit", addByFile);
  }
  await render();
});
