// records.js: the records page (#/records): the acting account's
// records, filtered by kind, title, resource type, code, date and author,
// one row per record (its earlier versions on its page), with who can read each and its
// author's signature mark; hide; the upload form; FHIR import and export
// (fhir.js).
import { $, api, cell, el, failed, formatDate, onLive, page, show, state, who, withAccount } from "./core.js";
import { fhirLinks, wireFHIR } from "./fhir.js";

// readersText says who can read a record, in a few words: "only you",
// or the first names and how many more.
export function readersText(readers) {
  const ids = (readers || []).map(function (r) { return r.account; });
  const others = ids.filter(function (id) { return !state.me || id !== state.me.id; });
  if (others.length === 0) {
    return ids.length ? "only you" : "nobody";
  }
  const names = others.slice(0, 2).map(who);
  if (ids.length > others.length) {
    names.unshift("you");
  }
  const more = others.length - 2;
  return names.join(", ") + (more > 0 ? " +" + more + " more" : "");
}

// signatureMark is the author's signature mark of a record row: every
// row the node lists sits in a chain whose block signatures were checked
// when it arrived, so a known, uncontested entry is "verified"; a
// contested one (another entry claims the same CID) is flagged. The
// record page's Verify checks everything again.
export function signatureMark(r) {
  const ok = r.known && !r.contested;
  const m = el("span", ok ? "✓ verified" : "⚠ contested", ok ? "sig ok" : "sig warn");
  m.title = ok
    ? "The author's signature on chain block " + ((r.entry && r.entry.block) || "") + " was checked when the block arrived."
    : "Another record entry claims the same CID: open the record and verify it.";
  return m;
}

function recordRow(r) {
  const tr = el("tr", undefined, "record");
  tr.dataset.cid = r.cid;
  tr.dataset.status = r.status || "";
  const title = r.title || r.file_name || "untitled";
  const tdTitle = cell("Title", undefined, "title");
  const a = el("a", title);
  a.href = "#/record/" + encodeURIComponent(r.cid);
  tdTitle.append(a);
  const tdAuthor = cell("Author", undefined, "author");
  tdAuthor.append(el("span", who(r.author), "name"), " ", signatureMark(r));
  if (r.author) {
    tdAuthor.title = r.author;
  }
  const tdReaders = cell("Readers", readersText(r.readers), "readers");
  tdReaders.title = (r.readers || []).map(function (x) { return who(x.account) + " (" + x.role + ")"; }).join(", ");
  let status = r.status || (r.readable ? "readable" : "");
  if (r.error) {
    status = status ? status + ": " + r.error : r.error;
  }
  const tdAct = cell("Actions", undefined, "actions");
  if (state.me && r.subject === state.me.id && r.readable) {
    const hidden = r.status === "hidden";
    const b = el("button", hidden ? "Unhide" : "Hide", hidden ? "unhide" : "hide");
    b.type = "button";
    b.setAttribute("aria-label", (hidden ? "Unhide " : "Hide ") + title);
    b.addEventListener("click", function () { setHidden(r.cid, !hidden, b); });
    tdAct.append(b);
  }
  const versions = (r.history || []).length;
  if (versions > 0) {
    tdTitle.append(" ", el("span", (versions + 1) + " versions", "versions"));
  }
  const fhir = r.fhir || {};
  const kind = fhir.resource_type || r.kind || "";
  const date = cell("Date", fhir.date || formatDate(r.created), "date");
  if (fhir.date) {
    date.title = "Clinical date; written " + formatDate(r.created);
  }
  tr.append(tdTitle, cell("Kind", kind, "kind"), tdAuthor, date, tdReaders, cell("Status", status, "status"), tdAct);
  return tr;
}

function renderRecords(list) {
  const body = $("records-body");
  const recs = (list && list.records) || [];
  const rows = document.createDocumentFragment();
  for (const r of recs) {
    rows.append(recordRow(r));
  }
  body.replaceChildren(rows);
  learnChoices(recs);
  const filtered = $("records-all").checked || filterFields.some(function (name) { return $("records-" + name).value.trim() !== ""; });
  $("records").hidden = recs.length === 0;
  $("records-empty").hidden = recs.length > 0;
  $("records-empty").textContent = filtered ? "No records match." : "No records yet. Add one below.";
  $("records-error").hidden = true;
  show("records");
  performance.mark("records-ready"); // scripts/bench-web.sh times the page by it
}

async function setHidden(cid, hide, b) {
  b.disabled = true;
  try {
    await api("POST", "/api/v1/records/" + encodeURIComponent(cid) + (hide ? "/hide" : "/unhide"));
    await render();
  } catch (e) {
    b.disabled = false;
    failed($("records-error"), e);
  }
}

// filterFields are the filter form's fields, each named as the list's
// query parameter (records-NAME).
const filterFields = ["q", "kind", "type", "code", "since", "until", "author"];

// seen holds the resource types and authors of every list the acting
// account was shown, the choices the type and author fields offer.
const seen = { account: "", types: new Set(), authors: new Set() };

// learnChoices adds the rows' resource types and authors to the choices
// (those of another account, after a switch, are forgotten).
function learnChoices(recs) {
  let changed = false;
  const me = (state.me && state.me.id) || "";
  if (seen.account !== me) {
    seen.account = me;
    seen.types.clear();
    seen.authors.clear();
    $("records-types").replaceChildren();
    changed = true;
  }
  for (const r of recs) {
    const t = r.fhir && r.fhir.resource_type;
    if (t && !seen.types.has(t)) {
      seen.types.add(t);
      const o = el("option");
      o.value = t;
      $("records-types").append(o);
    }
    if (r.author && !seen.authors.has(r.author)) {
      seen.authors.add(r.author);
      changed = true;
    }
  }
  if (!changed) {
    return;
  }
  const sel = $("records-author");
  const keep = sel.value;
  const opts = [el("option", "anyone")];
  opts[0].value = "";
  for (const id of seen.authors) {
    const o = el("option", who(id));
    o.value = id;
    opts.push(o);
  }
  sel.replaceChildren(...opts);
  sel.value = keep;
}

// listPath is the list's API path with the filters of the form.
function listPath() {
  const q = new URLSearchParams();
  if ($("records-all").checked) {
    q.set("all", "true");
  }
  for (const name of filterFields) {
    // A field still being typed into (a resource type must be a whole
    // name) is left out until it is valid.
    const f = $("records-" + name);
    const v = f.value.trim();
    if (v && f.checkValidity()) {
      q.set(name, v);
    }
  }
  const qs = q.toString();
  return "/api/v1/records" + (qs ? "?" + qs : "");
}

// asked counts list requests, so that an older answer arriving after a
// newer one (typing in the search field) is dropped.
let asked = 0;

// render lists the records (a 423 goes to the unlock screen).
async function render() {
  const n = ++asked;
  const list = await api("GET", listPath());
  if (n === asked) {
    renderRecords(list);
  }
}

function refilter() {
  render().catch(function (e) { failed($("records-error"), e); });
}

let wired = false;

page("records", async function () {
  if (!wired) {
    wired = true;
    $("upload-form").addEventListener("submit", upload);
    $("records-filter").addEventListener("submit", function (ev) { ev.preventDefault(); refilter(); });
    $("records-all").addEventListener("change", refilter);
    for (const name of ["kind", "since", "until", "author"]) {
      $("records-" + name).addEventListener("change", refilter);
    }
    let typing = 0;
    for (const name of ["q", "type", "code"]) {
      $("records-" + name).addEventListener("input", function () {
        clearTimeout(typing);
        typing = setTimeout(refilter, 200);
      });
    }
    onLive("chain", function () {
      if (document.body.dataset.screen === "records") {
        render().catch(function (e) { failed($("records-error"), e); });
      }
    });
    wireFHIR(refilter);
  }
  fhirLinks();
  await render();
});

// upload sends the chosen file as the request body with XMLHttpRequest,
// for its upload progress.
function upload(ev) {
  ev.preventDefault();
  const file = $("upload-file").files[0];
  const status = $("upload-status");
  if (!file) {
    status.textContent = "Choose a file first.";
    return;
  }
  const q = new URLSearchParams();
  q.set("title", $("upload-title").value.trim() || file.name);
  q.set("file_name", file.name);
  if (file.type) {
    q.set("media_type", file.type);
  }
  const bar = $("upload-progress");
  const button = $("upload-button");
  bar.value = 0;
  bar.hidden = false;
  button.disabled = true;
  status.textContent = "Uploading " + file.name + "…";
  const xhr = new XMLHttpRequest();
  xhr.open("POST", withAccount("/api/v1/records?" + q.toString()));
  xhr.setRequestHeader("X-BlockMRS-CSRF", "1");
  xhr.setRequestHeader("Content-Type", "application/octet-stream");
  xhr.upload.addEventListener("progress", function (e) {
    if (e.lengthComputable && e.total > 0) {
      bar.value = Math.round(100 * e.loaded / e.total);
    }
  });
  const done = function (msg, err) {
    button.disabled = false;
    bar.hidden = true;
    status.textContent = msg;
    status.classList.toggle("error", !!err);
  };
  xhr.addEventListener("load", function () {
    let data = null;
    try {
      data = JSON.parse(xhr.responseText);
    } catch (e) {
      data = null;
    }
    if (xhr.status === 201) {
      bar.value = 100;
      done("Added " + ((data && data.title) || file.name) + ".", false);
      $("upload-form").reset();
      render().catch(function (e) { failed($("records-error"), e); });
      return;
    }
    if (xhr.status === 423) {
      done("", false);
      failed(null, { status: 423 });
      return;
    }
    done((data && data.error) || ("HTTP " + xhr.status), true);
  });
  xhr.addEventListener("error", function () { done("The upload failed: the node did not answer.", true); });
  xhr.send(file);
}


