// recovery.js: the recovery page (#/recovery): the acting account's
// recovery contacts (GET|POST /api/v1/recovery), approving a contact's
// recovery request (POST /api/v1/recovery/approve), and recovering an
// account on this node after losing every device
// (POST /api/v1/recovery/start, /recovery/{account}/respond, /finish).
import { $, api, el, errorLine, failed, field, onMyChain, page, show, statusLine, submitForm, who } from "./core.js";

// form makes a form with fields and a submit button that runs fn.
function form(id, fields, label, fn) {
  return submitForm(id, { fields: fields, label: label, error: "recovery-error", run: fn });
}

// output makes a read-only box a token is shown in, to copy.
function output(id, label) {
  const d = field(id, label, { readonly: "", rows: "3", spellcheck: "false" }, "textarea");
  d.hidden = true;
  d.id = id + "-box";
  return d;
}

function showToken(id, text) {
  $(id).value = text;
  $(id + "-box").hidden = false;
}

function build() {
  const s = $("screen-recovery");
  if (s.childElementCount > 0) {
    return;
  }
  const err = errorLine("recovery-error");
  const status = statusLine("recovery-status");
  const mine = el("div");
  mine.id = "recovery-setup";
  const of = el("ul", undefined, "plain");
  of.id = "recovery-contact-of";

  const setup = form("recovery-form", [
    field("recovery-contacts", "Recovery contacts (names or account IDs, comma-separated)", { required: "", autocomplete: "off", spellcheck: "false" }),
    field("recovery-threshold", "How many must approve", { required: "", inputmode: "numeric", pattern: "[0-9]+", autocomplete: "off" }),
  ], "Save recovery contacts", async function () {
    const contacts = $("recovery-contacts").value.split(",").map(function (x) { return x.trim(); }).filter(Boolean);
    const got = await api("POST", "/api/v1/recovery", { contacts: contacts, threshold: parseInt($("recovery-threshold").value, 10) || 0 });
    $("recovery-form").reset();
    $("recovery-status").textContent = "Saved: " + got.setup.threshold + " of " + got.setup.contacts.length + " contacts can recover this account.";
    renderShown(got);
  });

  const approve = form("recovery-approve-form", [
    field("recovery-request", "Recovery request (the code your contact gave you)", { required: "", rows: "3", spellcheck: "false" }, "textarea"),
  ], "Approve", async function () {
    const got = await api("POST", "/api/v1/recovery/approve", { request: $("recovery-request").value.trim() });
    $("recovery-status").textContent = "Approved the recovery of " + who(got.account) + ". Give them the response below.";
    showToken("recovery-response-out", got.response);
  });

  const start = form("recovery-start-form", [
    field("recovery-account", "Account ID to recover", { required: "", autocomplete: "off", spellcheck: "false", placeholder: "12D3KooW…" }),
  ], "Start recovery", async function () {
    const got = await api("POST", "/api/v1/recovery/start", { account: $("recovery-account").value.trim() });
    $("recovery-status").textContent = "Recovery started: " + got.threshold + " of " + got.contacts.length + " contacts must approve. Give each the request below.";
    showToken("recovery-request-out", got.token);
  });

  const respond = form("recovery-respond-form", [
    field("recovery-response", "A contact's response", { required: "", rows: "3", spellcheck: "false" }, "textarea"),
  ], "Add response", async function () {
    const account = $("recovery-account").value.trim();
    const got = await api("POST", "/api/v1/recovery/" + encodeURIComponent(account) + "/respond", { response: $("recovery-response").value.trim() });
    $("recovery-response").value = "";
    $("recovery-status").textContent = got.approved.length + " of " + got.threshold + " approvals" + (got.ready ? ": ready to finish." : ".");
  });

  const finish = form("recovery-finish-form", [], "Finish recovery", async function () {
    const account = $("recovery-account").value.trim();
    const got = await api("POST", "/api/v1/recovery/" + encodeURIComponent(account) + "/finish", {});
    $("recovery-status").textContent = "Recovered " + got.account + ": it continues under a new key, and this node acts for it. Reload to use it.";
  });

  s.append(
    el("h2", "Recovery contacts"),
    el("p", "If you lose every device, enough of these people can let a new device continue your " +
      "account: your decryption key is split among them, and a new key needs their signed " +
      "approvals. Fewer than the number you choose get nothing; that many together could take " +
      "your account over, so choose people who would not collude.", "hint"),
    err, mine, setup,
    el("h2", "Approve a contact's recovery"),
    el("p", "Approve only a request the account's owner gave you themselves (in person, by a call)." , "hint"),
    of, approve, output("recovery-response-out", "Response to give back"),
    el("h2", "Recover an account on this node"),
    el("p", "On a new device: import your chain from a contact first (Contacts, from the file " +
      "'blockmrs recovery export' writes), then start, give each contact the request, add their " +
      "responses and finish.", "hint"),
    start, output("recovery-request-out", "Request to give your contacts"), respond, finish,
    status);
}

// renderShown shows the acting account's setup and whose contact it is.
function renderShown(got) {
  const mine = $("recovery-setup");
  mine.replaceChildren();
  if (!got.setup) {
    mine.append(el("p", "No recovery contacts yet.", "hint"));
  } else {
    mine.append(el("p", got.setup.threshold + " of these " + got.setup.contacts.length + " contacts must approve a recovery:"));
    const ul = el("ul", undefined, "plain");
    ul.id = "recovery-contact-list";
    for (const c of got.setup.contacts) {
      ul.append(el("li", who(c), "contact"));
    }
    mine.append(ul);
  }
  const of = $("recovery-contact-of");
  of.replaceChildren();
  for (const o of got.contact_of || []) {
    of.append(el("li", "You are a recovery contact of " + who(o.account) + " (" + o.threshold + " must approve).", "contact-of"));
  }
}

async function render() {
  build();
  $("recovery-error").hidden = true;
  renderShown(await api("GET", "/api/v1/recovery"));
  show("recovery");
}

let wired = false;

page("recovery", async function () {
  if (!wired) {
    wired = true;
    onMyChain("recovery", function () {
      api("GET", "/api/v1/recovery").then(renderShown).catch(function (e) { failed($("recovery-error"), e); });
    });
  }
  try {
    await render();
  } catch (e) {
    show("recovery");
    failed($("recovery-error"), e);
  }
});
