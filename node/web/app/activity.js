// activity.js: the activity page (#/activity): the acting account's
// chain log (GET /api/v1/log), newest first, one readable line per entry:
// when, what, by whom, and the block that holds it.
import { $, api, cell, el, errorLine, failed, formatDate, onMyChain, page, rowsTable, shortID, show, state, who } from "./core.js";

// pageSize is how many entries (whole blocks) one page asks for.
const pageSize = 50;

// view is what the page shows: the entries so far (newest first), the
// record titles known, and whether older entries remain.
const view = { entries: [], titles: new Map(), more: false, account: "" };

// build fills the section once: heading, explanation, table, paging.
function build() {
  const s = $("screen-activity");
  if (s.childElementCount > 0) {
    return;
  }
  const table = rowsTable("activity", ["When", "What", "By", "Block"]);
  const more = el("button", "Show older entries", "quiet");
  more.id = "activity-more";
  more.type = "button";
  more.hidden = true;
  more.addEventListener("click", older);
  const err = errorLine("activity-error");
  const empty = el("p", "Nothing on your chain yet.");
  empty.id = "activity-empty";
  empty.hidden = true;
  const note = el("p", undefined, "hint");
  note.id = "activity-titles";
  note.hidden = true;
  s.append(
    el("h2", "Activity"),
    el("p", "Everything your account has signed on its chain, newest first: records added, " +
      "shares and revocations, records hidden, devices declared. Every node that holds your " +
      "chain sees the same entries and checks your signature on each block; none can be " +
      "changed or taken back, only followed by a newer one.", "hint"),
    note, err, table, empty, more);
}

// title names a record by its title when the page knows it, else by its
// short CID.
function title(cid) {
  const t = view.titles.get(cid);
  if (t) {
    const q = el("q", t, "title");
    q.title = cid;
    return q;
  }
  const c = el("code", "record " + shortID(cid), "cid");
  c.title = cid;
  return c;
}

// records appends the titles of cids to parts, joined by commas.
function records(parts, cids) {
  (cids || []).forEach(function (c, i) {
    if (i > 0) {
      parts.push(", ");
    }
    parts.push(title(c));
  });
}

function dateOnly(s) {
  return formatDate(s).slice(0, 10);
}

// nodeName names a device entry's node: its label and short peer ID.
function nodeName(e) {
  const c = el("code", shortID(e.peer_id), "peer");
  c.title = e.peer_id;
  const parts = [];
  if (e.name) {
    parts.push(el("q", e.name, "name"), " ");
  }
  parts.push(c);
  if (state.id && e.peer_id === state.id.peer_id) {
    parts.push(" (this node)");
  }
  return parts;
}

// describe returns what entry e did, as text and elements (never markup),
// and who did it.
function describe(e) {
  const parts = [];
  let by = who(e.account);
  const party = e.party ? who(e.party) : "";
  switch (e.type) {
    case "profile":
      parts.push(e.seq === 0 ? "created the account " : "updated the profile: ", el("q", e.name, "name"));
      break;
    case "record":
      if (e.party === e.account) {
        parts.push("added ");
        records(parts, e.records);
      } else {
        parts.push("wrote ");
        records(parts, e.records);
        parts.push(" for " + party);
      }
      break;
    case "grant":
      parts.push("shared ");
      records(parts, e.records);
      parts.push(" with " + party + (e.expires ? " until " + dateOnly(e.expires) : ", with no end date"));
      break;
    case "revoke":
      parts.push("revoked ");
      records(parts, e.records);
      parts.push(" from " + party);
      break;
    case "hide":
      parts.push("hid ");
      records(parts, e.records);
      break;
    case "unhide":
      parts.push("showed again ");
      records(parts, e.records);
      break;
    case "device": {
      const kind = e.replica ? "replica " : "device ";
      parts.push((e.removed ? "withdrew " : "declared ") + kind);
      parts.push(...nodeName(e));
      break;
    }
    case "ack":
      // The record is the author's; this entry accepts it.
      by = party;
      parts.push("wrote ");
      records(parts, e.records);
      parts.push(" for " + who(e.account) + " (acknowledged)");
      break;
    case "rekey":
      // records: the record re-keyed, then its new version.
      parts.push("re-keyed ");
      records(parts, (e.records || []).slice(0, 1));
      parts.push(" (written by " + party + ") as ");
      records(parts, (e.records || []).slice(1));
      parts.push(": the old copy is given out by no node");
      break;
    default:
      parts.push(e.summary);
  }
  return { parts: parts, by: by };
}

function entryRow(e) {
  const tr = el("tr", undefined, "entry");
  tr.dataset.type = e.type;
  tr.dataset.block = e.block;
  const d = describe(e);
  const what = cell("What", undefined, "what");
  what.append(...d.parts);
  if (e.critical) {
    what.append(" ", el("span", "critical", "badge"));
  }
  const block = cell("Block", undefined, "block");
  const code = el("code", shortID(e.block));
  code.title = e.block;
  block.append(code);
  tr.append(cell("When", formatDate(e.time), "when"), what, cell("By", d.by, "by"), block);
  return tr;
}

function renderEntries() {
  const body = $("activity-body");
  body.replaceChildren();
  for (const e of view.entries) {
    body.append(entryRow(e));
  }
  $("activity").hidden = view.entries.length === 0;
  $("activity-empty").hidden = view.entries.length > 0;
  $("activity-more").hidden = !view.more;
}

// fetchPage asks for the page of entries before block `before` (0: the
// newest) and returns them newest first, with whether older ones remain.
async function fetchPage(before) {
  let path = "/api/v1/log?limit=" + pageSize;
  if (before > 0) {
    path += "&before=" + before;
  }
  const got = (await api("GET", path)) || [];
  got.reverse();
  const last = got[got.length - 1];
  return { entries: got, more: !!last && last.seq > 0 };
}

// loadTitles reads the titles of the records the account can read or
// could read. A locked account's titles are unknown: the page still
// shows the log (it needs no keys) and says why titles are missing.
async function loadTitles() {
  const note = $("activity-titles");
  try {
    const list = await api("GET", "/api/v1/records?all=true");
    view.titles = new Map();
    for (const r of (list && list.records) || []) {
      if (r.title || r.file_name) {
        view.titles.set(r.cid, r.title || r.file_name);
      }
    }
    note.hidden = true;
  } catch (e) {
    view.titles = new Map();
    note.textContent = e.status === 423 ?
      "Record titles are encrypted: unlock your account to see them here." :
      "Record titles could not be read: " + e.message;
    note.hidden = false;
  }
}

// render shows the newest page.
async function render() {
  build();
  $("activity-error").hidden = true;
  const [p] = await Promise.all([fetchPage(0), loadTitles()]);
  view.entries = p.entries;
  view.more = p.more;
  view.account = state.me ? state.me.id : "";
  renderEntries();
  show("activity");
}

async function older() {
  const b = $("activity-more");
  const oldest = view.entries[view.entries.length - 1];
  if (!oldest) {
    return;
  }
  b.disabled = true;
  try {
    const p = await fetchPage(oldest.seq);
    view.entries = view.entries.concat(p.entries);
    view.more = p.more;
    renderEntries();
  } catch (e) {
    failed($("activity-error"), e);
  } finally {
    b.disabled = false;
  }
}

let wired = false;

page("activity", async function () {
  if (!wired) {
    wired = true;
    onMyChain("activity", function () {
      render().catch(function (e) { failed($("activity-error"), e); });
    });
  }
  await render();
});
