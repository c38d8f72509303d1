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
  show("home");
}

async function start() {
  try {
    renderHome(await api("GET", "/api/v1/id"));
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
