// requests.js: the requests page (#/requests, #/requests/ACCOUNT to ask
// that contact): the inbox, each new request answered with the records
// and the expiry chosen, or denied; the outbox; the form that asks a
// contact for access. The Requests link in the nav carries a badge
// counting new inbox requests, kept up to date on every page.
import { $, api, cell, el, errorLine, failed, formatDate, onLive, page, shortID, show, state, who } from "./core.js";
import { roleBadge } from "./roles.js";

// duration says how long a number of seconds is, in words.
function duration(s) {
  if (!s) {
    return "no end";
  }
  const day = 86400;
  if (s % day === 0) {
    const d = s / day;
    return d === 1 ? "1 day" : d + " days";
  }
  const h = Math.round(s / 3600);
  return h <= 1 ? "1 hour" : h + " hours";
}

// localInput formats a time for an <input type=datetime-local>.
function localInput(d) {
  const pad = function (n) { return String(n).padStart(2, "0"); };
  return d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) +
    "T" + pad(d.getHours()) + ":" + pad(d.getMinutes());
}

// badge is the count on the nav link, made on first use.
function badge() {
  let b = $("requests-badge");
  if (!b) {
    const link = document.querySelector('#nav a[data-page="requests"]');
    if (!link) {
      return null;
    }
    b = el("span", "", "count");
    b.id = "requests-badge";
    b.hidden = true;
    link.append(" ", b);
  }
  return b;
}

function newInbox(list) {
  return ((list && list.inbox) || []).filter(function (q) {
    return q.state === "new" && (!state.me || q.to === state.me.id);
  });
}

function showBadge(n) {
  const b = badge();
  if (!b) {
    return;
  }
  b.hidden = n === 0;
  b.replaceChildren(String(n), el("span", n === 1 ? " new request" : " new requests", "vh"));
  b.dataset.count = String(n);
}

// refreshBadge counts the acting account's new inbox requests (no keys
// needed: it works while the account is locked too).
export async function refreshBadge() {
  if (!state.me) {
    return;
  }
  try {
    showBadge(newInbox(await api("GET", "/api/v1/requests")).length);
  } catch (e) {
    // The badge is a hint; the page itself reports errors.
  }
}

// names maps account IDs to the names contacts go by.
function namer(contacts) {
  const byID = new Map();
  for (const a of (contacts && contacts.accounts) || []) {
    byID.set(a.id, a);
  }
  return function (id) {
    const a = byID.get(id);
    return a ? a.name : who(id);
  };
}

// recordLabel names one of my records for a checkbox.
function recordLabel(r) {
  return (r.title || r.file_name || "untitled") + (r.created ? " (" + formatDate(r.created) + ")" : "");
}

// answerForm is the approve-or-deny form of a new inbox request: the
// records to share (those asked for, or all of mine), the end of access
// (by default the duration asked for, from now) and an optional reason
// for a refusal.
function answerForm(q, mine) {
  const form = el("form", undefined, "answer");
  const fs = el("fieldset");
  fs.append(el("legend", "Records to share"));
  let offered = mine;
  if (q.records && q.records.length) {
    const asked = new Set(q.records);
    offered = mine.filter(function (r) { return asked.has(r.cid); });
  }
  offered.forEach(function (r, i) {
    const box = el("input");
    box.type = "checkbox";
    box.name = "record";
    box.value = r.cid;
    box.id = "rec-" + q.id + "-" + i;
    box.checked = !!(q.records && q.records.length);
    const label = el("label", recordLabel(r), "check");
    label.htmlFor = box.id;
    label.prepend(box, " ");
    fs.append(label);
  });
  if (!offered.length) {
    fs.append(el("p", "You have no records to share yet.", "hint"));
  }
  const exp = el("input");
  exp.type = "datetime-local";
  exp.id = "exp-" + q.id;
  exp.name = "expires";
  exp.min = localInput(new Date());
  if (q.duration_seconds) {
    exp.value = localInput(new Date(Date.now() + q.duration_seconds * 1000));
  }
  const expLabel = el("label", "Access ends");
  expLabel.htmlFor = exp.id;
  const expHint = el("p", q.duration_seconds ? "They asked for " + duration(q.duration_seconds) + "." : "Leave it empty for no end.", "hint");
  const reason = el("input");
  reason.type = "text";
  reason.id = "deny-reason-" + q.id;
  reason.name = "reason";
  reason.maxLength = 1024;
  const reasonLabel = el("label", "Reason, if you deny (optional)");
  reasonLabel.htmlFor = reason.id;
  const err = errorLine();

  const approve = el("button", "Approve", "approve");
  approve.type = "submit";
  approve.disabled = !offered.length;
  const deny = el("button", "Deny", "deny quiet");
  deny.type = "button";
  const asker = q.from_name || shortID(q.from);
  approve.setAttribute("aria-label", "Approve the request of " + asker);
  deny.setAttribute("aria-label", "Deny the request of " + asker);

  const answer = async function (verb, body) {
    err.hidden = true;
    approve.disabled = deny.disabled = true;
    try {
      await api("POST", "/api/v1/requests/" + encodeURIComponent(q.id) + "/" + verb, body);
      await render();
    } catch (e) {
      approve.disabled = deny.disabled = false;
      failed(err, e);
    }
  };
  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    const records = Array.from(form.querySelectorAll("input[name=record]:checked")).map(function (b) { return b.value; });
    if (!records.length) {
      err.textContent = "Choose at least one record to share.";
      err.hidden = false;
      return;
    }
    const body = { records: records };
    if (exp.value) {
      const end = new Date(exp.value);
      if (isNaN(end.getTime()) || end.getTime() <= Date.now()) {
        err.textContent = "The end of access must be in the future.";
        err.hidden = false;
        return;
      }
      body.expires = end.toISOString();
    }
    answer("approve", body);
  });
  deny.addEventListener("click", function () {
    const body = {};
    if (reason.value.trim()) {
      body.reason = reason.value.trim();
    }
    answer("deny", body);
  });
  const buttons = el("div", undefined, "buttons");
  buttons.append(approve, " ", deny);
  form.append(fs, expLabel, exp, expHint, reasonLabel, reason, buttons, err);
  return form;
}

// stateText says where a request stands, with its answer.
function stateText(q) {
  let s = q.state;
  if (q.no_longer_yours) {
    s += ", no longer yours to answer";
  }
  if (q.state === "approved" && q.expires) {
    s += ", until " + formatDate(q.expires);
  }
  if (q.answer_reason) {
    s += ": " + q.answer_reason;
  }
  // Who answered (the first answer stands: the account asked, or a
  // guardian of it), unless it goes without saying: the acting account
  // did, or, in the outbox, the account asked did.
  const mine = state.me && q.answered_by === state.me.id;
  if (q.answered_by && !mine && !(q.box === "outbox" && q.answered_by === q.to)) {
    s += " — answered by " + who(q.answered_by) + (q.answered_by_guardian ? " (guardian)" : "");
  }
  return s;
}

function inboxItem(q, mine) {
  const li = el("li", undefined, "request");
  li.dataset.id = q.id;
  li.dataset.state = q.state;
  li.dataset.stale = q.no_longer_yours ? "yes" : "";
  li.dataset.rule = (q.role_proof && q.role_proof.rule) || "";
  const head = el("p", undefined, "who");
  const from = el("span", q.from_name || shortID(q.from), "name");
  from.title = q.from;
  head.append(from);
  if (q.from_role) {
    head.append(" ", el("span", q.from_role, "role"));
    const badge = roleBadge(q.role_proof);
    if (badge) {
      head.append(" ", badge);
    }
  }
  head.append(" asks for ", el("span", q.records && q.records.length ? q.records.length + " of your records" : "your records"),
    " for ", el("span", duration(q.duration_seconds), "duration"));
  const reason = el("p", q.reason || "(no reason given)", "reason");
  const meta = el("p", undefined, "meta");
  meta.append(el("span", stateText(q), "state"), " · received ", el("span", formatDate(q.created), "date"));
  li.append(head, reason, meta);
  if (q.state === "new" && q.no_longer_yours) {
    li.append(el("p", "Asked of " + who(q.to) + ": you may no longer answer for them, so there is nothing to do.", "hint"));
  } else if (q.state === "new" && state.me && q.to !== state.me.id) {
    // Asked of a ward of the acting account: answered as its guardian.
    const a = el("a", "Answer as guardian", "as-guardian");
    a.href = "#/guardians/" + encodeURIComponent(q.to);
    li.append(el("p", "Asked of " + who(q.to) + ", whom you are guardian of.", "hint"), a);
  } else if (q.state === "new") {
    li.append(answerForm(q, mine));
  }
  return li;
}

function outboxRow(q, name) {
  const tr = el("tr", undefined, "request");
  tr.dataset.id = q.id;
  tr.dataset.state = q.state;
  const to = cell("To", name(q.to), "to");
  to.title = q.to;
  tr.append(to, cell("Reason", q.reason || "", "reason"), cell("For", duration(q.duration_seconds), "duration"),
    cell("State", stateText(q), "state"), cell("Sent", formatDate(q.created), "date"));
  return tr;
}

// renderInbox lists the inbox, keeping the item (and what is typed in its
// form) of every request whose state did not change.
function renderInbox(inbox, mine) {
  const list = $("inbox");
  const kept = new Map();
  for (const li of list.children) {
    kept.set(li.dataset.id + " " + li.dataset.state + li.dataset.stale + " " + li.dataset.rule, li);
  }
  const items = inbox.map(function (q) {
    return kept.get(q.id + " " + q.state + (q.no_longer_yours ? "yes" : "") + " " + ((q.role_proof && q.role_proof.rule) || "")) || inboxItem(q, mine);
  });
  list.replaceChildren(...items);
  $("inbox-empty").hidden = inbox.length > 0;
}

function renderAskForm(contacts, arg) {
  const sel = $("ask-to");
  const chosen = arg || sel.value;
  sel.replaceChildren();
  const all = ((contacts && contacts.accounts) || []);
  for (const a of all) {
    const o = el("option", a.name + " (" + a.role + ", " + shortID(a.id) + ")");
    o.value = a.id;
    o.selected = a.id === chosen;
    sel.append(o);
  }
  $("ask-nobody").hidden = all.length > 0;
  $("ask-button").disabled = all.length === 0;
}

// render lists the inbox and the outbox of the acting account; with arg
// (an account ID) the ask form has that contact chosen.
async function render(arg) {
  const [list, contacts, records] = await Promise.all([
    api("GET", "/api/v1/requests"),
    api("GET", "/api/v1/contacts"),
    api("GET", "/api/v1/records"),
  ]);
  const me = state.me ? state.me.id : "";
  const mine = ((records && records.records) || []).filter(function (r) { return r.subject === me && !r.hidden; });
  const inbox = (list.inbox || []).filter(function (q) { return !me || q.to === me; });
  inbox.forEach(function (q) { q.role_proof = (list.roles || {})[q.from]; });
  const outbox = (list.outbox || []).filter(function (q) { return !me || q.from === me; });
  renderInbox(inbox, mine);
  const name = namer(contacts);
  const body = $("outbox-body");
  const kept = new Map();
  for (const tr of body.children) {
    kept.set(tr.dataset.id + " " + tr.dataset.state, tr);
  }
  body.replaceChildren(...outbox.map(function (q) {
    return kept.get(q.id + " " + q.state) || outboxRow(q, name);
  }));
  $("outbox").hidden = outbox.length === 0;
  $("outbox-empty").hidden = outbox.length > 0;
  renderAskForm(contacts, arg);
  showBadge(newInbox(list).length);
  $("requests-error").hidden = true;
  show("requests");
}

async function ask(ev) {
  ev.preventDefault();
  const status = $("ask-status");
  const b = $("ask-button");
  status.classList.remove("error");
  b.disabled = true;
  try {
    const q = await api("POST", "/api/v1/requests", {
      to: $("ask-to").value,
      reason: $("ask-reason").value.trim(),
      duration_s: Number($("ask-duration").value),
    });
    $("ask-reason").value = "";
    status.textContent = "Sent to " + $("ask-to").selectedOptions[0].textContent + " (" + q.state + ").";
    await render();
  } catch (e) {
    status.textContent = e.message || String(e);
    status.classList.add("error");
    failed(null, e);
  } finally {
    b.disabled = false;
  }
}

let wired = false;

page("requests", async function (arg) {
  if (!wired) {
    wired = true;
    $("ask-form").addEventListener("submit", ask);
  }
  await render(arg);
});

// Every change of the inbox or the outbox: the badge everywhere, the
// lists when they are shown. A grant landing changes the records to
// offer.
onLive("request", function () {
  refreshBadge();
  if (document.body.dataset.screen === "requests") {
    render().catch(function (e) { failed($("requests-error"), e); });
  }
});
