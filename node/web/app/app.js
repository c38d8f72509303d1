// The BlockMRS web app. Plain script, no build step, no libraries.
//
// Rules: every piece of data reaches the page through textContent (never
// innerHTML), so names and record contents can never become markup; the
// one function api() talks to the node; a screen is a <section> in
// index.html shown by show().
"use strict";

// api calls the node's API with the session cookie; requests other than
// GET carry the CSRF header the server requires. It resolves to the JSON
// body, or rejects with an Error whose status is the HTTP status.
async function api(method, path, body) {
  const opts = { method: method, credentials: "same-origin", headers: {} };
  if (method !== "GET" && method !== "HEAD") {
    opts.headers["X-BlockMRS-CSRF"] = "1";
  }
  if (body !== undefined) {
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body);
  }
  const resp = await fetch(path, opts);
  let data = null;
  try {
    data = await resp.json();
  } catch (e) {
    data = null;
  }
  if (!resp.ok) {
    const err = new Error((data && data.error) || ("HTTP " + resp.status));
    err.status = resp.status;
    throw err;
  }
  return data;
}

function $(id) {
  return document.getElementById(id);
}

// show hides every screen but the one named.
function show(name) {
  $("loading").hidden = true;
  for (const s of document.querySelectorAll("main > section")) {
    s.hidden = s.id !== "screen-" + name;
  }
  document.body.dataset.screen = name;
}

// el makes an element holding text (as text, never as markup).
function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined) {
    e.textContent = text;
  }
  if (cls) {
    e.className = cls;
  }
  return e;
}

// me is the acting account (from GET /api/v1/id), or null.
let me = null;

function renderHome(id) {
  $("peer-id").textContent = id.peer_id;
  const list = $("accounts");
  list.replaceChildren();
  const mine = (id.accounts || []).filter(function (a) { return a.local; });
  for (const a of mine) {
    const li = el("li", undefined, "account");
    li.append(el("span", a.name, "name"), " ", el("span", a.role, "role"));
    if (a.default) {
      li.append(" ", el("span", "default", "badge"));
    }
    li.append(el("code", a.id, "account-id"));
    list.append(li);
  }
  $("no-account").hidden = mine.length > 0;
}

// shortID shortens an account ID to its start and end.
function shortID(id) {
  if (!id) {
    return "";
  }
  return id.length > 14 ? id.slice(0, 6) + "…" + id.slice(-6) : id;
}

function formatDate(s) {
  if (!s) {
    return "";
  }
  const d = new Date(s);
  if (isNaN(d.getTime())) {
    return s;
  }
  const pad = function (n) { return String(n).padStart(2, "0"); };
  return d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) +
    " " + pad(d.getHours()) + ":" + pad(d.getMinutes());
}

// cell makes a table cell holding text, labelled for the narrow layout.
function cell(label, text, cls) {
  const td = el("td", text, cls);
  td.dataset.label = label;
  return td;
}

function recordRow(r) {
  const tr = el("tr", undefined, "record");
  tr.dataset.cid = r.cid;
  const title = r.title || r.file_name || "untitled";
  const tdTitle = cell("Title", undefined, "title");
  if (r.readable) {
    const a = el("a", title);
    a.href = "/api/v1/records/" + encodeURIComponent(r.cid) + "/content";
    a.target = "_blank";
    a.rel = "noopener noreferrer";
    tdTitle.append(a);
  } else {
    tdTitle.textContent = title;
  }
  const author = me && r.author === me.id ? "you" : shortID(r.author);
  const tdAuthor = cell("Author", author, "author");
  if (r.author) {
    tdAuthor.title = r.author;
  }
  let status = r.status || (r.readable ? "readable" : "");
  if (r.error) {
    status = status ? status + ": " + r.error : r.error;
  }
  const tdAct = cell("Actions", undefined, "actions");
  if (me && r.subject === me.id && !r.hidden) {
    const b = el("button", "Hide", "hide");
    b.type = "button";
    b.setAttribute("aria-label", "Hide " + title);
    b.addEventListener("click", function () { hideRecord(r.cid, b); });
    tdAct.append(b);
  }
  tr.append(tdTitle, cell("Kind", r.kind || "", "kind"), tdAuthor,
    cell("Date", formatDate(r.created), "date"), cell("Status", status, "status"), tdAct);
  return tr;
}

function renderRecords(list) {
  const body = $("records-body");
  body.replaceChildren();
  const recs = (list && list.records) || [];
  for (const r of recs) {
    body.append(recordRow(r));
  }
  $("records").hidden = recs.length === 0;
  $("records-empty").hidden = recs.length > 0;
  $("records-error").hidden = true;
  $("lock-button").hidden = !(me && me.encrypted);
  $("records-part").hidden = false;
  show("home");
}

// loadRecords lists the records, or shows the unlock screen when the
// account is locked.
async function loadRecords() {
  try {
    renderRecords(await api("GET", "/api/v1/records"));
  } catch (e) {
    if (e.status === 423 && me) {
      showUnlock();
      return;
    }
    throw e;
  }
}

function showUnlock() {
  $("unlock-name").textContent = me.name;
  $("unlock-error").hidden = true;
  $("passphrase").value = "";
  show("unlock");
  $("passphrase").focus();
}

async function unlock(ev) {
  ev.preventDefault();
  const button = $("unlock-button");
  const err = $("unlock-error");
  button.disabled = true;
  err.hidden = true;
  try {
    await api("POST", "/api/v1/sessions/unlock", { account: me.id, passphrase: $("passphrase").value });
    $("passphrase").value = "";
    await loadRecords();
  } catch (e) {
    err.textContent = e.message;
    err.hidden = false;
    $("passphrase").select();
  } finally {
    button.disabled = false;
  }
}

async function lock() {
  try {
    await api("POST", "/api/v1/sessions/lock", {});
    $("records-body").replaceChildren();
    showUnlock();
  } catch (e) {
    showRecordsError(e);
  }
}

function showRecordsError(e) {
  if (e.status === 423 && me) {
    showUnlock();
    return;
  }
  $("records-error").textContent = e.message;
  $("records-error").hidden = false;
}

async function hideRecord(cid, button) {
  button.disabled = true;
  try {
    await api("POST", "/api/v1/records/" + encodeURIComponent(cid) + "/hide");
    await loadRecords();
  } catch (e) {
    button.disabled = false;
    showRecordsError(e);
  }
}

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
  xhr.open("POST", "/api/v1/records?" + q.toString());
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
      loadRecords().catch(showRecordsError);
      return;
    }
    if (xhr.status === 423) {
      done("", false);
      showUnlock();
      return;
    }
    done((data && data.error) || ("HTTP " + xhr.status), true);
  });
  xhr.addEventListener("error", function () { done("The upload failed: the node did not answer.", true); });
  xhr.send(file);
}

async function start() {
  $("unlock-form").addEventListener("submit", unlock);
  $("upload-form").addEventListener("submit", upload);
  $("lock-button").addEventListener("click", lock);
  try {
    const id = await api("GET", "/api/v1/id");
    me = id.account || null;
    renderHome(id);
    if (me && me.local) {
      await loadRecords();
    } else {
      show("home");
    }
  } catch (e) {
    if (e.status === 401) {
      show("out");
      return;
    }
    $("error-text").textContent = e.message;
    show("error");
  }
}

document.addEventListener("DOMContentLoaded", start);
