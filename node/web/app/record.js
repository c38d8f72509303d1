// record.js: one record (#/record/CID): what it is, its content shown
// without letting it run anything, its chain of custody, who can read
// it, and (for its subject) share, revoke, hide and unhide.
//
// Content is hostile. Images go into <img> (the server serves only PNG,
// JPEG, GIF and WebP as images), text and JSON are read with fetch and
// written with textContent, a PDF is shown on request in a frame whose
// document the server sandboxes, and everything else is a download (the
// server sends it as an attachment). Other modules show kinds of their
// own with viewer().
import { $, api, button, current, el, failed, formatDate, onLive, page, show, state, who, withAccount } from "./core.js";
import { readersText, signatureMark } from "./records.js";

// viewers are the renderers other modules registered, in order.
const viewers = [];

// viewer registers a renderer for some records: test(rec, json) says
// whether it applies, where rec is the record's row (GET
// /api/v1/records/{cid}: title, kind, media_type, author, created, …)
// and json the parsed content for a JSON record (kind fhir, or a JSON
// media type), else null; render(box, rec, json) fills the element box,
// with textContent only, and may return a promise. The first viewer
// whose test passes shows the record; a JSON record keeps its "Show raw
// JSON" button below. A labs module, say:
//
//   viewer((rec, json) => json && json.resourceType === "Observation",
//          (box, rec, json) => { ... values, units, dates, a chart ... });
export function viewer(test, render) {
  viewers.push({ test: test, render: render });
}

// contentURL is the address of a record's decrypted content, as the
// acting account.
export function contentURL(cid) {
  return withAccount("/api/v1/records/" + encodeURIComponent(cid) + "/content");
}

// MaxText is how much of a text or JSON record the page reads to show.
const MaxText = 1 << 20;

const imageTypes = new Set(["image/png", "image/jpeg", "image/gif", "image/webp"]);

function baseType(mt) {
  return (mt || "").split(";")[0].trim().toLowerCase();
}

function isJSON(rec, t) {
  return rec.kind === "fhir" || t === "application/json" || t.endsWith("+json");
}

function isText(rec, t) {
  return rec.kind === "note" || t.startsWith("text/") || t === "application/xml" || t.endsWith("+xml");
}

// readText reads at most limit bytes of a record's content, as text.
async function readText(cid, limit) {
  let resp;
  try {
    resp = await fetch(contentURL(cid), { credentials: "same-origin" });
  } catch (e) {
    throw new Error("The node did not answer: is the daemon still running?");
  }
  if (!resp.ok) {
    let msg = "HTTP " + resp.status;
    try {
      msg = (await resp.json()).error || msg;
    } catch (e) {
      // not JSON: the status says it
    }
    const err = new Error(msg);
    err.status = resp.status;
    throw err;
  }
  const reader = resp.body.getReader();
  const chunks = [];
  let n = 0;
  let truncated = false;
  for (;;) {
    const r = await reader.read();
    if (r.done) {
      break;
    }
    chunks.push(r.value);
    n += r.value.length;
    if (n > limit) {
      truncated = true;
      await reader.cancel();
      break;
    }
  }
  const all = new Uint8Array(n);
  let off = 0;
  for (const c of chunks) {
    all.set(c, off);
    off += c.length;
  }
  return { text: new TextDecoder().decode(all.subarray(0, Math.min(n, limit))), truncated: truncated };
}

// recordLink is a link to the page of record cid, then text.
function recordLink(cid, text) {
  const span = el("span");
  span.append(versionLink(cid), text);
  return span;
}

function recordTitle(rec) {
  return rec.title || rec.file_name || (rec.readable ? "untitled" : "A record you cannot read");
}

function downloadLink(rec, text) {
  const a = el("a", text || "Download", "download");
  a.href = contentURL(rec.cid);
  a.download = rec.file_name || "record";
  return a;
}

function meta(dl, term, value, cls) {
  const dd = el("dd", undefined, cls);
  if (value instanceof Node) {
    dd.append(value);
  } else {
    dd.textContent = value;
  }
  dl.append(el("dt", term), dd);
  return dd;
}

// notReadable says why the account cannot read a record now.
function notReadable(status) {
  switch (status) {
    case "revoked":
      return "You cannot read this record any more: its subject revoked your access.";
    case "expired":
      return "You cannot read this record any more: your access to it expired.";
  }
  return "You may not read this record: nobody shared it with you.";
}

// resourceType is the FHIR resource type of the record shown, once its
// content was read.
let resourceType = { cid: "", type: "" };

function kindText(rec) {
  const kind = rec.kind || "unknown";
  const type = (rec.fhir && rec.fhir.resource_type) || (resourceType.cid === rec.cid && resourceType.type);
  return type ? kind + " · " + type : kind;
}

// versionLink links to one version of a record.
function versionLink(cid, text) {
  const a = el("a", text || cid);
  a.href = "#/record/" + encodeURIComponent(cid);
  return a;
}

// renderVersions lists the record's versions, newest first, when it has
// more than one: the one shown is marked, the others link to their pages.
function renderVersions(rec) {
  const list = $("record-versions");
  const history = rec.history || [];
  list.replaceChildren();
  $("record-versions-box").hidden = history.length === 0;
  if (history.length === 0) {
    return;
  }
  // A superseded version carries the whole history; the newest is the
  // head of it, named by superseded_by for the version just before it.
  const shown = rec.superseded_by ? history.findIndex(function (v) { return v.cid === rec.cid; }) : -1;
  if (!rec.superseded_by) {
    const li = el("li", undefined, "version current");
    li.append(el("strong", recordTitle(rec)), " · " + who(rec.author) + " · " + formatDate(rec.created) + " · shown here");
    list.append(li);
  }
  history.forEach(function (v, i) {
    const li = el("li", undefined, "version");
    li.dataset.cid = v.cid;
    if (i === shown) {
      li.classList.add("current");
      li.append(el("strong", v.title || v.cid), " · " + who(v.author) + " · " + formatDate(v.created) + " · shown here");
    } else {
      li.append(versionLink(v.cid, v.title || v.cid), " · " + who(v.author) + " · " + formatDate(v.created) + (v.status && v.status !== "readable" ? " · " + v.status : ""));
    }
    list.append(li);
  });
}

function renderMeta(rec) {
  $("record-title").textContent = recordTitle(rec);
  const dl = $("record-meta");
  dl.replaceChildren();
  meta(dl, "Kind", kindText(rec), "kind");
  const author = el("span");
  author.append(el("span", who(rec.author), "name"), " ", signatureMark(rec));
  meta(dl, "Author", author, "author").title = rec.author || "";
  meta(dl, "About", who(rec.subject), "subject").title = rec.subject || "";
  meta(dl, "Date", formatDate(rec.created), "date");
  if (rec.fhir) {
    if (rec.fhir.date) {
      meta(dl, "Clinical date", rec.fhir.date, "clinical-date");
    }
    if (rec.fhir.code) {
      meta(dl, "Code", (rec.fhir.display ? rec.fhir.display + " · " : "") + rec.fhir.code, "code");
    }
    if (rec.fhir.category && rec.fhir.category.length) {
      meta(dl, "Category", rec.fhir.category.join(", "), "category");
    }
    if (rec.fhir.id) {
      meta(dl, "Resource id", rec.fhir.id, "resource-id");
    }
  }
  if (rec.media_type) {
    meta(dl, "Media type", rec.media_type, "media-type");
  }
  if (rec.file_name) {
    meta(dl, "File name", rec.file_name, "file-name");
  }
  meta(dl, "Who can read it", readersText(rec.readers), "readers");
  meta(dl, "Status", rec.status + (rec.error ? ": " + rec.error : ""), "status");
  if (rec.superseded_by) {
    meta(dl, "Replaced by", versionLink(rec.superseded_by), "superseded-by");
  }
  if (rec.supersedes && !(rec.rekey_of && rec.rekey_of.record === rec.supersedes)) {
    meta(dl, "Replaces", versionLink(rec.supersedes), "supersedes");
  }
  if (rec.rekey_of) {
    meta(dl, "Re-keyed from", recordLink(rec.rekey_of.record, " (written by " + who(rec.rekey_of.author) + ")"), "rekey-of");
  }
  if (rec.rekeyed) {
    meta(dl, "Re-keyed as", recordLink(rec.rekeyed.new, ""), "rekeyed");
  }
  meta(dl, "CID", el("code", rec.cid), "cid");
  renderVersions(rec);
}

// renderContent shows the record's content in box.
async function renderContent(rec, box) {
  box.replaceChildren();
  if (!rec.readable) {
    box.append(el("p", notReadable(rec.status), "not-readable"));
    return;
  }
  if (rec.error) {
    box.append(el("p", "This record does not open: " + rec.error, "error"));
    return;
  }
  if (rec.status === "rekeyed" && rec.rekeyed) {
    const p = el("p", "Its subject re-keyed this record: its content is in the new version, ", "rekeyed-note");
    p.append(recordLink(rec.rekeyed.new, ". This copy is given out by no BlockMRS node any more."));
    box.append(p);
    return;
  }
  if (rec.status === "arriving") {
    // The page redraws when the record's chain changes (an
    // acknowledgement follows its arrival); Reload re-reads it sooner.
    box.append(el("p", "This record's content is still on its way from its author's node: its title and who wrote it are here, the content is not yet.", "arriving"));
    return;
  }
  const t = baseType(rec.media_type);
  if (isJSON(rec, t)) {
    await jsonView(rec, box);
    return;
  }
  if (await viewed(box, rec, null)) {
    return;
  }
  if (imageTypes.has(t)) {
    const img = el("img", undefined, "content-image");
    img.alt = recordTitle(rec);
    img.src = contentURL(rec.cid);
    box.append(img, el("p", undefined, "links"));
    box.lastChild.append(downloadLink(rec));
    return;
  }
  if (t === "application/pdf") {
    pdfView(rec, box);
    return;
  }
  if (isText(rec, t)) {
    const got = await readText(rec.cid, MaxText);
    box.append(el("pre", got.text, "content-text"));
    const p = el("p", got.truncated ? "Only the first 1 MiB is shown. " : "", "links");
    p.append(downloadLink(rec));
    box.append(p);
    return;
  }
  const p = el("p", "Files of this type (" + (t || "unknown") + ") are not shown here: download it and open it with a program you trust. ");
  p.append(downloadLink(rec));
  box.append(p);
}

// viewed lets the first registered viewer that takes the record show it.
async function viewed(box, rec, json) {
  for (const v of viewers) {
    let takes = false;
    try {
      takes = v.test(rec, json);
    } catch (e) {
      console.warn("viewer test: " + e);
    }
    if (!takes) {
      continue;
    }
    const inner = el("div", undefined, "viewer");
    box.append(inner);
    try {
      await v.render(inner, rec, json);
      return true;
    } catch (e) {
      inner.replaceChildren(el("p", "This record could not be shown: " + (e.message || e), "error"));
      return true;
    }
  }
  return false;
}

async function jsonView(rec, box) {
  const got = await readText(rec.cid, MaxText);
  if (got.truncated) {
    const p = el("p", "This JSON record is over 1 MiB: download it to read it. ");
    p.append(downloadLink(rec));
    box.append(p);
    return;
  }
  let json;
  try {
    json = JSON.parse(got.text);
  } catch (e) {
    box.append(el("p", "This record is not valid JSON; its text:", "hint"), el("pre", got.text, "content-text"));
    return;
  }
  const type = json && typeof json === "object" && typeof json.resourceType === "string" ? json.resourceType : "";
  if (type) {
    resourceType = { cid: rec.cid, type: type };
    $("record-meta").querySelector("dd.kind").textContent = kindText(rec);
  }
  if (!(await viewed(box, rec, json))) {
    box.append(el("p", type ? "A FHIR " + type + " resource." : "A JSON document.", "summary"));
  }
  const raw = el("pre", undefined, "content-json");
  raw.id = "record-raw";
  raw.hidden = true;
  const toggle = el("button", "Show raw JSON", "quiet raw-toggle");
  toggle.type = "button";
  toggle.setAttribute("aria-expanded", "false");
  toggle.setAttribute("aria-controls", raw.id);
  toggle.addEventListener("click", function () {
    if (raw.hidden && !raw.textContent) {
      raw.textContent = JSON.stringify(json, null, 2);
    }
    raw.hidden = !raw.hidden;
    toggle.textContent = raw.hidden ? "Show raw JSON" : "Hide raw JSON";
    toggle.setAttribute("aria-expanded", String(!raw.hidden));
  });
  const p = el("p", undefined, "links");
  p.append(toggle, " ", downloadLink(rec));
  box.append(p, raw);
}

// pdfView offers the PDF in the browser's own viewer, in a frame on this
// page, once asked (see SECURITY.md: the viewer runs a PDF's scripts).
function pdfView(rec, box) {
  const note = el("p", "Your browser's PDF viewer shows it, walled off from this app: the file cannot reach " +
    "your records or this page. A PDF may carry scripts of its own, which the viewer runs and which can " +
    "open pop-ups; BlockMRS never asks for your passphrase in one.", "hint pdf-note");
  const links = el("p", undefined, "links");
  const open = el("a", "Open in a new tab");
  open.href = contentURL(rec.cid);
  open.target = "_blank";
  open.rel = "noopener noreferrer";
  const b = button("Show the PDF here", "show-pdf", async function () {
    const frame = el("iframe", undefined, "content-pdf");
    frame.title = "PDF: " + recordTitle(rec);
    frame.src = contentURL(rec.cid);
    b.replaceWith(frame);
  });
  links.append(open, " ", downloadLink(rec));
  box.append(b, note, links);
}

const roles = { author: "wrote it", subject: "it is about them", grantee: "shared with them" };

function renderReaders(rec, rd, mine) {
  const list = $("record-readers");
  list.replaceChildren();
  for (const r of rd.readers || []) {
    const li = el("li", undefined, "reader");
    li.dataset.account = r.account;
    li.append(el("span", who(r.account), "name"), " ", el("span", roles[r.role] || r.role, "role"));
    li.title = r.account;
    if (r.expires) {
      li.append(" ", el("span", "until " + formatDate(r.expires), "until"));
    }
    if (r.scope) {
      li.append(" ", el("span", "under the standing grant " + r.scope, "until"));
    }
    if (r.guardian) {
      li.append(" ", el("span", "by guardian " + who(r.guardian), "guardian"));
    }
    if (mine && r.role === "grantee") {
      const name = who(r.account);
      const b = button("Revoke", "revoke quiet", function () { return revoke(rec, r.account, name); });
      b.setAttribute("aria-label", "Revoke " + name + "'s access");
      b.setAttribute("aria-describedby", "revoke-note");
      li.append(" ", b);
    }
    list.append(li);
  }
  const gone = $("record-gone");
  gone.replaceChildren();
  for (const [rs, what] of [[rd.revoked, "revoked"], [rd.expired, "expired"]]) {
    for (const r of rs || []) {
      const li = el("li", undefined, "reader " + what);
      li.dataset.account = r.account;
      li.append(el("span", who(r.account), "name"), " ", el("span", "access " + what, "role"));
      if (r.guardian) {
        li.append(" ", el("span", "by guardian " + who(r.guardian), "guardian"));
      }
      gone.append(li);
    }
  }
  gone.hidden = gone.children.length === 0;
  $("revoke-note").hidden = !mine;
  // Re-keying stores the content again: only where it can be read and
  // has not been re-keyed already.
  $("rekey-box").hidden = !mine || !rec.readable || !!rec.rekeyed;
}

async function renderShare(rec, rd, mine) {
  const form = $("share-form");
  const none = $("share-none");
  const other = $("share-not-subject");
  other.hidden = mine;
  other.textContent = mine ? "" : "Only " + who(rec.subject) + ", whom the record is about, can share it or revoke access.";
  if (!mine) {
    form.hidden = true;
    none.hidden = true;
    return;
  }
  const contacts = (await api("GET", "/api/v1/contacts")).accounts || [];
  const reading = new Set((rd.readers || []).map(function (r) { return r.account; }));
  const sel = $("share-to");
  const kept = sel.value;
  sel.replaceChildren();
  for (const c of contacts) {
    if (reading.has(c.id)) {
      continue;
    }
    const o = el("option", (c.name || c.id) + (c.role ? " (" + c.role + ")" : ""));
    o.value = c.id;
    o.selected = c.id === kept;
    sel.append(o);
  }
  form.hidden = sel.options.length === 0;
  none.hidden = contacts.length > 0;
  if (contacts.length > 0 && sel.options.length === 0) {
    $("share-status").textContent = "Everyone in your contacts can read it already.";
  }
}

function renderHide(rec, mine) {
  const box = $("hide-box");
  box.hidden = !mine || !rec.readable;
  const b = $("hide-button");
  const hidden = rec.status === "hidden";
  b.textContent = hidden ? "Unhide" : "Hide";
  b.dataset.action = hidden ? "unhide" : "hide";
}

// renderVersion offers a new version of the record to its author and
// its subject, when they can read it; a fresh visit clears the last
// upload's message.
function renderVersion(rec, fresh) {
  const me = state.me ? state.me.id : "";
  $("version-box").hidden = !rec.readable || (rec.author !== me && rec.subject !== me);
  if (fresh) {
    $("version-status").textContent = "";
    $("version-status").classList.remove("error");
  }
}

// addVersion uploads the chosen file as a new record about the same
// subject that supersedes the one shown, then shows the new one.
async function addVersion(ev) {
  ev.preventDefault();
  const rec = shown;
  const file = $("version-file").files[0];
  const status = $("version-status");
  status.classList.remove("error");
  if (!rec || !file) {
    status.textContent = "Choose a file first.";
    return;
  }
  const q = new URLSearchParams();
  q.set("supersedes", rec.cid);
  q.set("for", rec.subject);
  q.set("title", $("version-title").value.trim() || rec.title || file.name);
  q.set("file_name", file.name);
  if (rec.kind) {
    q.set("kind", rec.kind);
  }
  if (file.type) {
    q.set("media_type", file.type);
  }
  const b = $("version-button");
  b.disabled = true;
  status.textContent = "Uploading " + file.name + "…";
  try {
    const added = await api("POST", "/api/v1/records?" + q.toString(), new Blob([file], { type: "application/octet-stream" }));
    $("version-form").reset();
    status.textContent = "";
    location.hash = "#/record/" + encodeURIComponent(added.cid);
  } catch (e) {
    if (e.status === 423) {
      failed(null, e);
      return;
    }
    status.textContent = e.message;
    status.classList.add("error");
  } finally {
    b.disabled = false;
  }
}

// pageCID is the record the page was opened for (the hash's CID), shown
// its row once loaded.
let pageCID = "";
let shown = null;
// shownFacts is the record's row and readers as last drawn (JSON).
let shownFacts = "";
// renders counts renders, so that a slow answer for a record left
// behind is dropped.
let renders = 0;

// render (re)draws the page of record cid; the content is drawn again
// only on a fresh visit or when the account's access to it changed.
async function render(cid, fresh) {
  const n = ++renders;
  const path = "/api/v1/records/" + encodeURIComponent(cid);
  const [rec, rd] = await Promise.all([api("GET", path), api("GET", path + "/readers")]);
  if (n !== renders || current.name !== "record" || cid !== pageCID) {
    return; // another render, or another page, came since
  }
  const redraw = fresh || !shown || shown.cid !== rec.cid || shown.readable !== rec.readable || shown.error !== rec.error ||
    (shown.status === "arriving") !== (rec.status === "arriving");
  shown = rec;
  const mine = !!(state.me && rec.subject === state.me.id);
  $("record-error").hidden = true;
  renderMeta(rec);
  renderReaders(rec, rd, mine);
  renderHide(rec, mine);
  renderVersion(rec, fresh);
  // A verification is of the record as it was: after a change of its
  // facts it is asked for again (a chain event that changed nothing here
  // keeps it).
  const facts = JSON.stringify([rec, rd]);
  if (fresh || facts !== shownFacts) {
    $("verify-result").hidden = true;
  }
  shownFacts = facts;
  if (fresh) {
    $("verify-error").hidden = true;
    $("share-status").textContent = "";
    $("share-until").value = "";
    $("rekey-check").checked = false;
    if (rekeyedNote && rekeyedNote.cid === rec.cid) {
      $("share-status").textContent = rekeyedNote.text;
    }
    rekeyedNote = null;
  }
  show("record");
  const jobs = [renderShare(rec, rd, mine)];
  if (redraw) {
    jobs.push(renderContent(rec, $("record-view")));
  }
  for (const r of await Promise.allSettled(jobs)) {
    if (r.status === "rejected" && n === renders) {
      failed($("record-error"), r.reason);
    }
  }
}

function again() {
  if (pageCID && current.name === "record") {
    render(pageCID, false).catch(function (e) { failed($("record-error"), e); });
  }
}

async function share(ev) {
  ev.preventDefault();
  const status = $("share-status");
  const to = $("share-to").value;
  const body = { records: [shown.cid], to: to };
  const until = $("share-until").value;
  if (until) {
    const [y, m, d] = until.split("-").map(Number);
    body.expires = new Date(y, m - 1, d, 23, 59, 59).toISOString();
  }
  $("share-button").disabled = true;
  try {
    const g = await api("POST", "/api/v1/grants", body);
    status.textContent = "Shared with " + (g.to_name || who(to)) + (until ? " until " + until : "") + ".";
    $("share-until").value = "";
    await render(pageCID, false);
  } catch (e) {
    status.textContent = "";
    failed($("record-error"), e);
  } finally {
    $("share-button").disabled = false;
  }
}

async function revoke(rec, account, name) {
  if ($("rekey-check").checked && !$("rekey-box").hidden) {
    return revokeAndRekey(rec, account, name);
  }
  try {
    await api("POST", "/api/v1/revocations", { records: [rec.cid], from: account });
    $("share-status").textContent = "Revoked " + name + "'s access. Whatever their node fetched while they had access stays with them.";
    await render(pageCID, false);
  } catch (e) {
    failed($("record-error"), e);
  }
}

// JobPoll is how often a re-key job's progress is asked for, in ms.
const JobPoll = 250;

// followJob waits for re-key job (as POST /api/v1/revocations or
// /api/v1/scopes/end with rekey answered it) to end, showing its progress
// in bar (a <progress>), and returns the job as it ended.
export async function followJob(job, bar) {
  bar.max = job.total || 1;
  bar.value = 0;
  bar.hidden = false;
  const path = withAccount("/api/v1/jobs/" + encodeURIComponent(job.id));
  try {
    while (job.state === "queued" || job.state === "running") {
      await new Promise(function (ok) { setTimeout(ok, JobPoll); });
      job = await api("GET", path);
      bar.value = job.done + job.failed;
    }
  } finally {
    bar.hidden = true;
  }
  return job;
}

// revokeAndRekey revokes account from the record and re-keys it: the
// daemon runs it as a job, whose progress the bar shows; then the page
// shows the new version, saying what was done and what it cannot undo.
async function revokeAndRekey(rec, account, name) {
  const bar = $("rekey-progress");
  const status = $("share-status");
  try {
    let job = await api("POST", "/api/v1/revocations", { records: [rec.cid], from: account, rekey: true });
    status.textContent = "Re-keying this record for everyone who can still read it…";
    job = await followJob(job, bar);
    const r = (job.records || [])[0] || {};
    if (job.state !== "done" || !r.new) {
      status.textContent = "";
      failed($("record-error"), new Error("The re-key did not finish: " + (r.error || job.error || job.state)));
      await render(pageCID, false);
      return;
    }
    rekeyedNote = { cid: r.new, text: "Revoked " + name + "'s access and re-keyed this record: this is the new version, for everyone " +
      "who could still read it. No BlockMRS node gives out the old copy any more; whatever " + name + "'s node fetched before stays with them." };
    location.hash = "#/record/" + encodeURIComponent(r.new);
  } catch (e) {
    bar.hidden = true;
    status.textContent = "";
    failed($("record-error"), e);
  }
}

// rekeyedNote is what the page of a new version says after a re-key made
// it here.
let rekeyedNote = null;

async function setHidden() {
  const b = $("hide-button");
  b.disabled = true;
  try {
    await api("POST", "/api/v1/records/" + encodeURIComponent(shown.cid) + "/" + b.dataset.action);
    await render(pageCID, false);
  } catch (e) {
    failed($("record-error"), e);
  } finally {
    b.disabled = false;
  }
}

const verdicts = {
  own: "written by the person it is about",
  acknowledged: "acknowledged by the person it is about",
  pending: "not yet acknowledged by the person it is about",
};

async function verify() {
  const b = $("verify-button");
  const err = $("verify-error");
  b.disabled = true;
  err.hidden = true;
  try {
    const cid = shown.cid;
    const out = await api("GET", "/api/v1/records/" + encodeURIComponent(cid) + "/verify");
    if (!shown || shown.cid !== cid) {
      return;
    }
    renderCustody(out);
  } catch (e) {
    failed(err, e);
  } finally {
    b.disabled = false;
  }
}

function renderCustody(out) {
  const rr = out.record || {};
  const a = rr.access || {};
  const badge = $("verify-badge");
  badge.textContent = out.ok ? "✓ Verified" : "✗ Not verified";
  badge.className = "verdict " + (out.ok ? "ok" : "bad");
  const dl = $("verify-fields");
  dl.replaceChildren();
  meta(dl, "CID", el("code", a.cid || ""), "v-cid");
  const author = el("span");
  author.append(el("span", who(a.author), "name"), " ", el("code", a.author || ""));
  meta(dl, "Author", author, "v-author");
  if (a.entry) {
    const blk = el("span");
    blk.append(el("code", a.entry.block), " (block " + a.entry.seq + " of the author's chain, " + formatDate(a.entry.time) + ")");
    meta(dl, "Signing block", blk, "v-block");
  }
  const ac = out.author_chain;
  let sig = "the author's chain is not on this node";
  if (ac) {
    sig = ac.problems && ac.problems.length
      ? "does not check out: " + ac.problems[0]
      : "OK: all " + ac.blocks + " blocks of the author's chain re-checked";
  }
  meta(dl, "Signature", sig, "v-signature");
  meta(dl, "About", who(a.subject) + (a.proof ? ", " + (verdicts[a.proof] || a.proof) : ""), "v-subject");
  meta(dl, "Content", rr.blocks + " block(s), " + rr.size + " bytes, hash-checked against the CID; " +
    (rr.decrypted ? "decrypted and authenticated" : "not decrypted (you may not read it)"), "v-content");
  const rk = rr.rekey;
  if (rk && a.rekey_of) {
    meta(dl, "Re-keyed", "by " + who(rk.by) + " from " + rk.record + ", written by " + who(rk.author) + "; " +
      (rk.envelope ? "envelope " + rk.envelope + ", " : "") + "content " + rk.content + (rk.note ? ": " + rk.note : ""), "v-rekey");
  } else if (rk) {
    meta(dl, "Re-keyed", "by " + who(rk.by) + " as " + rk.new + "; this copy is given out by no BlockMRS node", "v-rekey");
  }
  const readers = el("ul", undefined, "v-readers");
  for (const r of a.readers || []) {
    readers.append(el("li", who(r.account) + " (" + (roles[r.role] || r.role) + (r.expires ? ", until " + formatDate(r.expires) : "") + ")"));
  }
  meta(dl, "Who may read", readers, "v-readers");
  for (const [rs, what] of [[a.revoked, "Revoked"], [a.expired, "Expired"]]) {
    if (rs && rs.length) {
      meta(dl, what, rs.map(function (r) { return who(r.account); }).join(", "));
    }
  }
  const probs = $("verify-problems");
  probs.replaceChildren();
  for (const p of out.problems || []) {
    probs.append(el("li", p));
  }
  probs.hidden = probs.children.length === 0;
  const sup = $("verify-superseded");
  sup.replaceChildren();
  for (const f of out.superseded_forks || []) {
    const li = el("li", "Chain of " + who(f.account) + ", block " + f.seq + ": the branch ending at ");
    li.append(el("code", f.superseded), " is superseded by the recovery in block ", el("code", f.recovery),
      " (kept as evidence; it counts for nothing).");
    sup.append(li);
  }
  sup.hidden = sup.children.length === 0;
  $("verify-result").hidden = false;
}

let wired = false;

page("record", async function (cid) {
  if (!wired) {
    wired = true;
    $("share-form").addEventListener("submit", share);
    $("hide-button").addEventListener("click", setHidden);
    $("verify-button").addEventListener("click", verify);
    $("version-form").addEventListener("submit", addVersion);
    // A chain event naming this record (or all records) redraws it.
    onLive("chain", function (data) {
      if (!shown || current.name !== "record") {
        return;
      }
      if (!data || data.all || (data.records || []).indexOf(shown.cid) >= 0) {
        again();
      }
    });
  }
  if (!cid) {
    location.hash = "#/records";
    return;
  }
  pageCID = cid;
  shown = null;
  await render(cid, true);
});
