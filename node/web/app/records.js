// records.js: the records page (#/records): the acting account's
// records, with hide, and the upload form.
import { $, api, cell, el, failed, formatDate, onLive, page, show, state, who, withAccount } from "./core.js";

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
  const author = who(r.author);
  const tdAuthor = cell("Author", author, "author");
  if (r.author) {
    tdAuthor.title = r.author;
  }
  let status = r.status || (r.readable ? "readable" : "");
  if (r.error) {
    status = status ? status + ": " + r.error : r.error;
  }
  const tdAct = cell("Actions", undefined, "actions");
  if (state.me && r.subject === state.me.id && !r.hidden) {
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
  show("records");
  performance.mark("records-ready"); // scripts/bench-web.sh times the page by it
}


async function hideRecord(cid, b) {
  b.disabled = true;
  try {
    await api("POST", "/api/v1/records/" + encodeURIComponent(cid) + "/hide");
    await render();
  } catch (e) {
    b.disabled = false;
    failed($("records-error"), e);
  }
}

// render lists the records (a 423 goes to the unlock screen).
async function render() {
  renderRecords(await api("GET", "/api/v1/records"));
}

let wired = false;

page("records", async function () {
  if (!wired) {
    wired = true;
    $("upload-form").addEventListener("submit", upload);
    onLive("chain", function () {
      if (document.body.dataset.screen === "records") {
        render().catch(function (e) { failed($("records-error"), e); });
      }
    });
  }
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


