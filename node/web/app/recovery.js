// recovery.js: the recovery page (#/recovery): the acting account's
// recovery contacts (GET|POST /api/v1/recovery), approving a contact's
// recovery request that came over the network (GET
// /api/v1/recovery/requests, POST /api/v1/recovery/approve with its ID,
// POST /api/v1/recovery/requests/deny) or by hand (a token), and
// recovering an account on this node after losing every device
// (POST /api/v1/recovery/start, GET /recovery/{account},
// /recovery/{account}/respond, /finish).
import { $, api, button, el, errorLine, failed, field, onMyChain, page, show, statusLine, submitForm, who } from "./core.js";

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
    field("recovery-via", "Your contacts' node addresses (optional, one a line, ending in /p2p/…)", { rows: "2", spellcheck: "false" }, "textarea"),
  ], "Start recovery", async function () {
    const via = $("recovery-via").value.split("\n").map(function (x) { return x.trim(); }).filter(Boolean);
    const got = await api("POST", "/api/v1/recovery/start", { account: $("recovery-account").value.trim(), via: via });
    $("recovery-status").textContent = "Recovery started: " + got.threshold + " of " + got.contacts.length + " contacts must approve. " +
      "This node sends them the request; offline, give each the request below.";
    showCode(got);
    showToken("recovery-request-out", got.token);
  });

  const check = form("recovery-check-form", [], "Check approvals", async function () {
    const account = $("recovery-account").value.trim();
    const got = await api("GET", "/api/v1/recovery/" + encodeURIComponent(account));
    showCode(got);
    $("recovery-status").textContent = got.approved.length + " of " + got.threshold + " approvals" + (got.ready ? ": ready to finish." : ".");
  });
  const code = el("p", undefined, "safety-code");
  code.id = "recovery-code";
  code.hidden = true;

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
    el("h2", "Recovery requests from your contacts"),
    el("p", "Someone holding a contact's chain can ask in their name: before approving, call the " +
      "person (on a number you already know) and compare the safety code their new device shows.", "hint"),
    inboxList(), button("Check for requests", "recovery-refresh", inboxAction(async function () {})),
    el("h2", "Approve a recovery request given by hand"),
    el("p", "Approve only a request the account's owner gave you themselves (in person, by a call)." , "hint"),
    of, approve, output("recovery-response-out", "Response to give back"),
    el("h2", "Recover an account on this node"),
    el("p", "On a new device: import your chain from a contact first (Contacts, from the file " +
      "'blockmrs recovery export' writes: it also tells this node where your contacts' nodes are, " +
      "so the addresses below are needed only for contacts it does not reach), then start, give " +
      "each contact the request, add their responses and finish.", "hint"),
    start, code, output("recovery-request-out", "Request to give your contacts"), check, respond, finish,
    status);
}

function inboxList() {
  const ul = el("ul", undefined, "plain");
  ul.id = "recovery-inbox";
  return ul;
}

// showCode shows the safety code of the recovery started here.
function showCode(got) {
  $("recovery-code").textContent = "Safety code: " + got.safety_code + " — your contacts see it with your request; tell it to them when they call.";
  $("recovery-code").hidden = false;
}

// renderInbox shows the recovery requests this node received, each with
// its safety code, the instruction, and approve and deny buttons.
function renderInbox(got) {
  const ul = $("recovery-inbox");
  ul.replaceChildren();
  if (got.requests.length === 0) {
    ul.append(el("li", "No recovery requests.", "hint"));
    return;
  }
  for (const r of got.requests) {
    const li = el("li", undefined, "recovery-request");
    li.dataset.id = r.id;
    const codeLine = el("p", undefined);
    codeLine.append("Safety code ", el("strong", r.safety_code, "safety-code"));
    const state = el("p", r.approved.length > 0 ? "Approved by " + r.approved.map(who).join(", ") + ": their node fetches it." : "Waiting for you.", "hint");
    li.append(el("p", who(r.account) + " asks to recover their account."), codeLine);
    if (r.others > 0) {
      li.append(el("p", r.others + " other request(s) for this account are here too: only one can be theirs. Ask which code they see, and deny the others.", "recovery-warning error"));
    }
    li.append(
      el("p", got.instruction.charAt(0).toUpperCase() + got.instruction.slice(1) + ".", "hint"), state,
      button("Approve", "recovery-approve", inboxAction(async function () {
        const done = await api("POST", "/api/v1/recovery/approve", { request: r.id });
        $("recovery-status").textContent = "Approved the recovery of " + who(done.account) + "; their node fetches the response.";
      })),
      button("Deny", "recovery-deny", inboxAction(async function () {
        await api("POST", "/api/v1/recovery/requests/deny", { id: r.id });
        $("recovery-status").textContent = "Denied the request for " + who(r.account) + ".";
      })));
    ul.append(li);
  }
}

// inboxAction runs fn for a button of the inbox, then shows the inbox
// again; a refusal goes to the page's error line.
function inboxAction(fn) {
  return async function () {
    $("recovery-error").hidden = true;
    try {
      await fn();
      await refreshInbox();
    } catch (e) {
      failed($("recovery-error"), e);
    }
  };
}

async function refreshInbox() {
  renderInbox(await api("GET", "/api/v1/recovery/requests"));
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
  await refreshInbox();
  show("recovery");
}

let wired = false;

page("recovery", async function () {
  if (!wired) {
    wired = true;
    onMyChain("recovery", function () {
      api("GET", "/api/v1/recovery").then(renderShown).then(refreshInbox).catch(function (e) { failed($("recovery-error"), e); });
    });
  }
  try {
    await render();
  } catch (e) {
    show("recovery");
    failed($("recovery-error"), e);
  }
});
