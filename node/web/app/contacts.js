// contacts.js: the contacts page (#/contacts): the acting account's share
// code (text, copy button, QR code), its contacts with where their
// nodes were last reached (the address book) and what is shared
// each way (record grants and standing grants, which a "Share a
// category" form per contact makes and an "End" button ends), and adding
// a contact by share code or by profile file.
import { $, api, button, cell, el, failed, formatDate, page, shortID, show, state, statusLine, withAccount } from "./core.js";
import { roleCell } from "./roles.js";
import { followJob } from "./record.js";

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

// The categories the "Share a category" form offers: each a label and
// the SMART on FHIR scopes it grants (medications are two resource types).
const presets = [
  ["Lab results", ["patient/Observation.rs?category=laboratory"]],
  ["Vital signs", ["patient/Observation.rs?category=vital-signs"]],
  ["Conditions", ["patient/Condition.rs"]],
  ["Medications", ["patient/MedicationRequest.rs", "patient/MedicationStatement.rs"]],
  ["Files", ["patient/Binary.rs"]],
  ["Notes", ["patient/DocumentReference.rs"]],
  ["All records", ["patient/*.rs"]],
];

let formCount = 0;

// standingForm is contact a's "Share a category" form: a preset or a
// scope of one's own, an optional end date; it makes one standing grant
// per scope (POST /api/v1/scopes).
function standingForm(a) {
  const n = ++formCount;
  const details = el("details", undefined, "share-scope");
  const summary = el("summary", "Share a category");
  summary.setAttribute("aria-label", "Share a category of your records with " + a.name);
  const form = el("form", undefined, "answer");
  const pick = el("label", "Category");
  pick.htmlFor = "scope-preset-" + n;
  const sel = el("select");
  sel.id = "scope-preset-" + n;
  sel.name = "preset";
  presets.forEach(function (p, i) {
    const o = el("option", p[0]);
    o.value = String(i);
    sel.append(o);
  });
  const own = el("label", "Or a scope of your own (SMART on FHIR, read only)");
  own.htmlFor = "scope-own-" + n;
  const input = el("input");
  input.type = "text";
  input.id = "scope-own-" + n;
  input.name = "scope";
  input.maxLength = 256;
  input.spellcheck = false;
  input.autocomplete = "off";
  input.placeholder = "patient/Immunization.rs";
  const untilLabel = el("label", "Until (optional)");
  untilLabel.htmlFor = "scope-until-" + n;
  const until = el("input");
  until.type = "date";
  until.id = "scope-until-" + n;
  until.name = "expires";
  const hint = el("p", "Present and future records of yours in the category, whoever writes them, until you end it. Hidden records are not shared.", "hint");
  const submit = el("button", "Share");
  submit.type = "submit";
  const status = statusLine("", "scope-status");
  form.append(pick, sel, own, input, untilLabel, until, hint, submit, status);
  form.addEventListener("submit", async function (ev) {
    ev.preventDefault();
    const typed = input.value.trim();
    const preset = presets[Number(sel.value)];
    const scopes = typed ? [typed] : preset[1];
    const body = { to: a.id };
    if (until.value) {
      body.expires = new Date(until.value + "T00:00:00Z").toISOString();
    }
    submit.disabled = true;
    status.classList.remove("error");
    status.textContent = "Sharing…";
    try {
      let covered = 0;
      for (const scope of scopes) {
        const res = await api("POST", "/api/v1/scopes", Object.assign({ scope: scope }, body));
        covered += res.covered;
      }
      await render();
      $("standing-status").textContent = "Now sharing " + (typed || preset[0].toLowerCase()) + " with " + a.name + ": " +
        covered + " record(s) you have now, and every future one as it is written.";
    } catch (e) {
      status.textContent = e.message || String(e);
      status.classList.add("error");
      failed(null, e);
    } finally {
      submit.disabled = false;
    }
  });
  details.append(summary, form);
  return details;
}

// standingLine lists one standing grant s (GET /api/v1/grants' standing)
// in contact a's sharing cell; one the acting account gave has an End
// button (POST /api/v1/scopes/end) and a "Re-key" choice, explained by
// #standing-rekey-note, that re-keys the records it covered as a job.
function standingLine(a, s, mine) {
  const p = el("p", undefined, "standing");
  p.dataset.scope = s.scope;
  p.append(el("strong", s.covers), " ");
  const code = el("code", s.scope);
  p.append("(", code, ")");
  p.append(", " + s.records + " record(s) now and future ones");
  if (s.expires) {
    p.append(", until " + formatDate(s.expires));
  }
  if (mine) {
    const n = ++standingN;
    const rekey = el("input");
    rekey.type = "checkbox";
    rekey.id = "standing-rekey-" + n;
    rekey.className = "rekey";
    rekey.setAttribute("aria-describedby", "standing-rekey-note");
    const rekeyLabel = el("label", "Re-key when ending");
    rekeyLabel.htmlFor = rekey.id;
    const bar = el("progress");
    bar.hidden = true;
    bar.setAttribute("aria-label", "Re-key progress");
    const end = button("End", "revoke", async function () {
      if (rekey.checked) {
        return endAndRekey(a, s, end, bar);
      }
      try {
        await api("POST", "/api/v1/scopes/end", { scope: s.scope, from: a.id });
        await render();
        $("standing-status").textContent = "Ended: " + a.name + " gets no more " + s.covers +
          " and can no longer open the " + s.records + " record(s) it covered (what it already opened cannot be taken back).";
      } catch (e) {
        $("standing-status").textContent = e.message || String(e);
        failed(null, e);
      }
    });
    end.setAttribute("aria-label", "End sharing " + s.covers + " with " + a.name);
    const choice = el("span", undefined, "field check");
    choice.append(rekey, rekeyLabel);
    p.append(" ", end, " ", choice, bar);
  }
  return p;
}

// standingN numbers the re-key checkboxes, for their ids.
let standingN = 0;

// endAndRekey ends standing grant s to contact a and re-keys every record
// a lost by it (POST /api/v1/scopes/end with rekey: a job whose progress
// bar shows), then says what was done, what was kept and what it cannot
// undo.
async function endAndRekey(a, s, end, bar) {
  const status = $("standing-status");
  end.disabled = true;
  try {
    let job = await api("POST", "/api/v1/scopes/end", { scope: s.scope, from: a.id, rekey: true });
    status.textContent = "Ended; re-keying the " + job.total + " record(s) " + a.name + " lost, for everyone who can still read them…";
    job = await followJob(job, bar);
    const kept = (job.kept || []).length;
    let text = "Ended: " + a.name + " gets no more " + s.covers + ", and the " + job.done + " record(s) it covered are re-keyed: " +
      "no BlockMRS node gives out the old copies any more, and the new versions are not theirs; whatever " + a.name +
      "'s node fetched before stays with them.";
    if (kept) {
      text += " " + kept + " record(s) you also shared with them one by one (or under another standing grant) stay shared and were not re-keyed.";
    }
    if (job.state !== "done") {
      text = "Ended, but the re-key did not finish (" + (job.error || job.failed + " record(s) failed") + "): run it again from the command line, blockmrs revoke --scope " + s.scope + " --from " + a.id + " --rekey.";
    }
    await render();
    status.textContent = text;
  } catch (e) {
    end.disabled = false;
    status.textContent = e.message || String(e);
    failed(null, e);
  }
}

// sharingCell lists, as links to the records' pages, what the acting
// account shares with contact a and what a shares with it (grants, from
// GET /api/v1/grants; null when the account is locked) and the standing
// grants each way.
function sharingCell(a, grants, standing) {
  const td = cell("Sharing", undefined, "sharing");
  if (!grants) {
    td.textContent = "unlock to see";
    return td;
  }
  const me = state.me ? state.me.id : "";
  const given = (standing || []).filter(function (s) { return s.from === me && s.to === a.id; });
  const received = (standing || []).filter(function (s) { return s.from === a.id && s.to === me; });
  if (given.length) {
    td.append(el("p", "you share standing:", "grants"));
    given.forEach(function (s) { td.append(standingLine(a, s, true)); });
  }
  if (received.length) {
    td.append(el("p", "shares with you standing:", "grants"));
    received.forEach(function (s) { td.append(standingLine(a, s, false)); });
  }
  grants = grants.filter(function (g) { return !g.scope; }); // listed above, as their standing grant
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

// addrCell shows where the node of contact a was last reached, from the
// node's address book (GET /api/v1/peers' kept), or that it is not kept
// yet (a contact added from a file is kept once its node connects).
function addrCell(a, kept) {
  const td = cell("Last known address", undefined, "addr");
  const mine = (kept || []).filter(function (k) { return (k.accounts || []).includes(a.id); });
  if (mine.length === 0) {
    td.textContent = "not known yet";
    return td;
  }
  for (const k of mine) {
    const p = el("p");
    const c = el("code", k.addrs[0] || "");
    c.title = k.addrs.join("\n") + "\nnode " + k.id;
    p.append(c, " (seen " + formatDate(k.seen) + ")");
    td.append(p);
  }
  return td;
}

function contactRow(a, grants, standing, kept) {
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
  if (grants) {
    tdAct.append(standingForm(a));
  }
  tr.append(cell("Name", a.name, "name"), roleCell(cell("Role", undefined, "role"), a.role, a.role_proof), tdID, addrCell(a, kept), sharingCell(a, grants, standing), tdAct);
  return tr;
}

function renderContacts(list, grants, standing, kept) {
  const body = $("contacts-body");
  body.replaceChildren();
  const all = (list && list.accounts) || [];
  for (const a of all) {
    body.append(contactRow(a, grants, standing, kept));
  }
  $("contacts").hidden = all.length === 0;
  $("contacts-empty").hidden = all.length > 0;
}

async function render() {
  $("contacts-error").hidden = true;
  const [id, list, grants, peers] = await Promise.all([refreshAccounts(), api("GET", "/api/v1/contacts"),
    api("GET", "/api/v1/grants").catch(function (e) {
      if (e.status === 423) {
        return null;
      }
      throw e;
    }), api("GET", "/api/v1/peers")]);
  renderShare(id);
  renderContacts(list, grants && grants.grants, grants && grants.standing, peers.kept);
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
