// directory.js: the directory page (#/directory): search a clinic's
// directory over the network (GET /api/v1/directory), each result with
// its role verified here or not, "Add as contact" (POST
// /api/v1/directory/contact); and the authorities this node trusts
// (GET, POST /api/v1/trust, POST /api/v1/trust/remove), which decide
// what "verified" means.
import { $, api, button, caught, cell, el, errorLine, failed, field, page, rowsTable, shortID, show, statusLine, submitForm } from "./core.js";
import { roleBadge } from "./roles.js";

function build() {
  const s = $("screen-directory");
  if (s.childElementCount > 0) {
    return;
  }
  const err = errorLine("directory-error");
  const status = statusLine("directory-status");

  const form = submitForm("directory-form", {
    label: "Search", buttonId: "directory-button", error: "directory-error", run: search,
    fields: [
      field("directory-clinic", "Clinic node address (/ip4/…/p2p/…) or clinic account ID", { required: "", maxlength: "1024", autocomplete: "off", spellcheck: "false", placeholder: "/ip4/192.0.2.7/tcp/4101/p2p/12D3KooW…" }),
      field("directory-query", "Name or department (empty: everyone)", { maxlength: "200", autocomplete: "off", type: "search" }),
    ],
  });

  const none = el("p", "No clinician matches.", "hint");
  none.id = "directory-empty";
  none.hidden = true;
  const results = rowsTable("directory-results", ["Name", "Role", "Department", "Clinic", "ID", ""]);
  results.hidden = true;

  const trustForm = submitForm("trust-form", {
    label: "Trust", buttonId: "trust-button", error: "directory-error", run: trustAdd,
    fields: [field("trust-account", "Account ID of an authority (a contact)", { required: "", maxlength: "128", autocomplete: "off", spellcheck: "false", placeholder: "12D3KooW…" })],
  });
  const trustNone = el("p", "You trust no authority yet, so no role shows as verified.", "hint");
  trustNone.id = "trust-empty";

  s.append(
    el("h2", "Find a clinician"),
    el("p", "Ask a clinic's node who works there. The answer carries the signed chains that prove it: " +
      "names come from the clinicians' own chains, and a role shows as verified only when " +
      "attestations lead to it from an authority you trust (below).", "hint"),
    err, form, status, results, none,
    el("h2", "Trusted authorities"),
    el("p", "An authority (a health authority, a professional body) attests clinics, and clinics attest " +
      "their clinicians. Trust only authorities you know.", "hint"),
    rowsTable("trust", ["Name", "ID", "Source", ""]), trustNone, trustForm);
}

function resultRow(r) {
  const tr = el("tr", undefined, "result");
  tr.dataset.id = r.account;
  tr.dataset.verified = String(!!(r.proof && r.proof.verified));
  const role = cell("Role", undefined, "role");
  role.append(el("span", r.role, "role-name"));
  const badge = roleBadge(r.proof);
  if (badge) {
    role.append(" ", badge);
  }
  if (r.emergency && r.proof && r.proof.verified) {
    role.append(" ", el("span", "emergency", "badge"));
  }
  const id = cell("ID", undefined, "account-id");
  const code = el("code", shortID(r.account));
  code.title = r.account;
  id.append(code);
  const act = cell("Actions", undefined, "actions");
  if (r.contact) {
    act.append(el("span", "a contact", "hint"));
  } else {
    const add = button("Add as contact", "add-contact", caught($("directory-error"), async function () {
      await api("POST", "/api/v1/directory/contact", { account: r.account });
      act.replaceChildren(el("span", "a contact", "hint"));
      $("directory-status").textContent = "Added " + r.name + " as a contact.";
    }));
    add.setAttribute("aria-label", "Add " + r.name + " as a contact");
    act.append(add);
  }
  tr.append(cell("Name", r.name, "name"), role, cell("Department", r.department || "", "department"),
    cell("Clinic", r.clinic_name || shortID(r.clinic), "clinic"), id, act);
  return tr;
}

async function search() {
  const status = $("directory-status");
  const q = new URLSearchParams({ clinic: $("directory-clinic").value.trim(), q: $("directory-query").value.trim() });
  status.textContent = "Asking the clinic's node…";
  try {
    const res = await api("GET", "/api/v1/directory?" + q.toString());
    const body = $("directory-results-body");
    body.replaceChildren(...(res.results || []).map(resultRow));
    $("directory-results").hidden = body.childElementCount === 0;
    $("directory-empty").hidden = body.childElementCount > 0;
    status.textContent = (res.results || []).length + " result(s).";
  } catch (e) {
    status.textContent = "";
    throw e;
  }
}

function trustRow(t) {
  const tr = el("tr", undefined, "trusted");
  tr.dataset.id = t.account;
  tr.dataset.removed = String(!!t.removed);
  const id = cell("ID", undefined, "account-id");
  const code = el("code", shortID(t.account));
  code.title = t.account;
  id.append(code);
  const act = cell("Actions", undefined, "actions");
  const label = t.name || shortID(t.account);
  if (t.removed) {
    act.append(el("span", "removed", "hint"), " ", button("Trust again", "quiet", function () { return trustChange("POST", "/api/v1/trust", t.account, "Trusted " + label + "."); }));
  } else {
    const rm = button("Stop trusting", "quiet", function () { return trustChange("POST", "/api/v1/trust/remove", t.account, "No longer trusting " + label + "."); });
    rm.setAttribute("aria-label", "Stop trusting " + label);
    act.append(rm);
  }
  tr.append(cell("Name", t.name || "(unknown)", "name"), id, cell("Source", (t.sources || []).join(", "), "source"), act);
  return tr;
}

async function trustChange(method, path, account, done) {
  $("directory-error").hidden = true;
  try {
    const list = await api(method, path, { account: account });
    renderTrust(list);
    $("directory-status").textContent = done;
  } catch (e) {
    failed($("directory-error"), e);
  }
}

async function trustAdd() {
  const account = $("trust-account").value.trim();
  await trustChange("POST", "/api/v1/trust", account, "Trusted " + shortID(account) + ".");
  if ($("directory-error").hidden) {
    $("trust-form").reset();
  }
}

function renderTrust(list) {
  const all = (list && list.trusted) || [];
  $("trust-body").replaceChildren(...all.map(trustRow));
  $("trust").hidden = all.length === 0;
  $("trust-empty").hidden = all.some(function (t) { return !t.removed; });
}

page("directory", async function () {
  build();
  $("directory-error").hidden = true;
  try {
    renderTrust(await api("GET", "/api/v1/trust"));
  } catch (e) {
    failed($("directory-error"), e);
  }
  show("directory");
});
