// audit.js: the audit page (#/audit or #/audit/CID): who accessed the
// acting account's records, as a timeline from the node's audit log
// (GET /api/v1/audit), newest first, filtered by record and date, and
// updated live as entries are appended (the "audit" event).
import { $, api, cell, el, errorLine, failed, field, formatDate, labelled, onLive, page, rowsTable, shortID, show, state, who } from "./core.js";

// view is what the page shows: the entries (newest first), the record
// titles known, the filters.
const view = { entries: [], titles: new Map(), record: "", since: "" };

// build fills the section once: heading, explanation, filters, table.
function build() {
  const s = $("screen-audit");
  if (s.childElementCount > 0) {
    return;
  }
  const form = el("form", undefined, "filters");
  form.id = "audit-filters";
  const recField = labelled("audit-record", "Record", el("select"));
  const sinceField = field("audit-since", "Since", { type: "date" });
  const apply = el("button", "Show", "quiet");
  apply.type = "submit";
  apply.id = "audit-apply";
  form.append(recField, sinceField, apply);
  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    view.record = $("audit-record").value;
    view.since = $("audit-since").value;
    const hash = view.record ? "#/audit/" + encodeURIComponent(view.record) : "#/audit";
    if (location.hash !== hash) {
      location.hash = hash; // hashchange renders it
    } else {
      render().catch(function (e) { failed($("audit-error"), e); });
    }
  });

  const table = rowsTable("audit", ["When", "What", "Who", "Node", "Allowed by", "Reported by"]);
  const err = errorLine("audit-error");
  const empty = el("p", "No one accessed your records in this period.");
  empty.id = "audit-empty";
  empty.hidden = true;
  const verify = el("p", undefined, "hint");
  verify.id = "audit-verify";
  s.append(
    el("h2", "Who accessed my records"),
    el("p", "Every time this node opened one of your records, sent one to another node, or " +
      "recorded a share, a revocation or an answer to a request, it wrote an entry in its " +
      "audit log, newest first here. Your replicas and other nodes that serve your records " +
      "report what they served to this node when it next connects (\u201creported by\u201d). " +
      "Each entry is signed by the node and linked to the one before, so an entry edited or " +
      "taken out shows when the log is checked.", "hint"),
    form, verify, err, table, empty);
}

// title names a record by its title when the page knows it, else by its
// short CID.
function title(cid) {
  const t = view.titles.get(cid);
  const a = el("a", t || "record " + shortID(cid), t ? "title" : "cid");
  a.href = "#/record/" + encodeURIComponent(cid);
  a.title = cid;
  return a;
}

// describe says what entry e was, as text and elements (never markup).
function describe(e) {
  const parts = [];
  const recs = e.records || [];
  const named = function () {
    recs.forEach(function (c, i) {
      if (i > 0) {
        parts.push(", ");
      }
      parts.push(title(c));
    });
  };
  switch (e.kind) {
    case "read":
      parts.push("opened ");
      named();
      break;
    case "serve":
      parts.push("received ");
      named();
      parts.push(" from the node");
      break;
    case "grant":
      parts.push("was given access to ");
      named();
      break;
    case "revoke":
      parts.push("lost access to ");
      named();
      break;
    case "request":
      parts.push("asked for access");
      if (recs.length > 0) {
        parts.push(" to ");
        named();
      }
      break;
    case "approve":
      parts.push("had a request approved");
      break;
    case "deny":
      parts.push("had a request denied");
      break;
    case "emergency":
      parts.push("used emergency access");
      if (recs.length > 0) {
        parts.push(" to ");
        named();
      }
      break;
    default:
      parts.push(e.kind + " ");
      named();
  }
  // The end of a standing grant (revoke --scope) says its scope and how
  // many records it covered in its reason.
  const scopeEnd = e.kind === "revoke" && (e.reason || "").startsWith("ended standing grant");
  if (e.reason && (scopeEnd || e.kind === "emergency" || e.kind === "request" || e.kind === "deny")) {
    parts.push(": ", el("q", e.reason, "reason"));
  }
  return parts;
}

function peerCell(label, id) {
  const td = cell(label, undefined, "peer");
  if (!id) {
    td.append("\u2013");
    return td;
  }
  const c = el("code", shortID(id));
  c.title = id;
  td.append(c);
  if (state.id && id === state.id.peer_id) {
    td.append(" (this node)");
  }
  return td;
}

function entryRow(e) {
  const tr = el("tr", undefined, "entry");
  tr.dataset.kind = e.kind;
  tr.dataset.seq = String(e.seq);
  const what = cell("What", undefined, "what");
  what.append(...describe(e));
  const rule = cell("Allowed by", e.rule || "\u2013", "rule");
  if (e.reason) {
    rule.title = e.reason;
  }
  tr.append(cell("When", formatDate(e.time), "when"), what, cell("Who", who(e.account) || "\u2013", "who"),
    peerCell("Node", e.peer), rule, peerCell("Reported by", e.reported_by));
  if (e.kind === "emergency") {
    tr.classList.add("alert");
  }
  return tr;
}

function renderEntries() {
  const body = $("audit-body");
  body.replaceChildren();
  for (const e of view.entries) {
    body.append(entryRow(e));
  }
  $("audit").hidden = view.entries.length === 0;
  $("audit-empty").hidden = view.entries.length > 0;
}

// renderPicker lists the records named in the log, and the one chosen.
function renderPicker(seen) {
  const sel = $("audit-record");
  sel.replaceChildren();
  const all = el("option", "All records");
  all.value = "";
  sel.append(all);
  const cids = new Set(seen);
  if (view.record) {
    cids.add(view.record);
  }
  for (const c of cids) {
    const o = el("option", view.titles.get(c) || "record " + shortID(c));
    o.value = c;
    o.selected = c === view.record;
    sel.append(o);
  }
  $("audit-since").value = view.since;
}

// loadTitles reads the titles of the records the account can read (none
// while it is locked: the log needs no keys, so the page still shows).
async function loadTitles() {
  try {
    const list = await api("GET", "/api/v1/records?all=true");
    view.titles = new Map();
    for (const r of (list && list.records) || []) {
      if (r.title || r.file_name) {
        view.titles.set(r.cid, r.title || r.file_name);
      }
    }
  } catch (e) {
    view.titles = new Map();
  }
}

async function loadVerify() {
  const p = $("audit-verify");
  try {
    const v = await api("GET", "/api/v1/audit/verify");
    if (v.problems && v.problems.length > 0) {
      p.textContent = "This node's audit log was tampered with: " + v.problems[0];
      p.className = "error";
    } else {
      p.textContent = "The audit log checks out: " + v.entries + " signed, linked entries.";
      p.className = "hint";
    }
  } catch (e) {
    p.textContent = "";
  }
}

function query(withRecord) {
  const q = new URLSearchParams();
  if (state.me) {
    q.set("account", state.me.id);
  }
  if (withRecord && view.record) {
    q.set("record", view.record);
  }
  if (view.since) {
    q.set("since", view.since);
  }
  return q.toString();
}

async function render() {
  build();
  $("audit-error").hidden = true;
  const [got, everything] = await Promise.all([
    api("GET", "/api/v1/audit?" + query(true)),
    api("GET", "/api/v1/audit?" + query(false)),
    loadTitles(),
    loadVerify(),
  ]);
  view.entries = ((got && got.entries) || []).slice().reverse();
  const seen = [];
  for (const e of (everything && everything.entries) || []) {
    for (const c of e.records || []) {
      if (!seen.includes(c)) {
        seen.push(c);
      }
    }
  }
  renderPicker(seen);
  renderEntries();
  show("audit");
}

let wired = false;

page("audit", async function (arg) {
  if (!wired) {
    wired = true;
    onLive("audit", function (data) {
      if (document.body.dataset.screen !== "audit" || !state.me) {
        return;
      }
      if (data && data.subject !== state.me.id) {
        return;
      }
      render().catch(function (e) { failed($("audit-error"), e); });
    });
  }
  view.record = arg || "";
  await render();
});
