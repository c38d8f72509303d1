// core.js: what every page of the BlockMRS web app shares. Plain ES
// modules, no build step, no libraries.
//
// Rules for every page: data reaches the page through textContent (el,
// cell), never innerHTML, so names and record contents can never become
// markup; api() is the one way to talk to the node; a page is a
// <section id="screen-NAME"> in index.html plus a module that calls
// page(NAME, render) and is imported by main.js. The URL's hash names the
// page and its argument: #/record/CID shows page "record" with "CID".

// state is what the pages share: the node's identity (GET /api/v1/id)
// and the acting account.
export const state = {
  id: null,
  // me is the acting account (an entry of id.accounts), or null.
  me: null,
};

// withAccount adds the acting account to an API path, so that every
// call acts as the account chosen in the account picker.
export function withAccount(path) {
  if (!state.me || !state.me.id) {
    return path;
  }
  const sep = path.indexOf("?") >= 0 ? "&" : "?";
  return path + sep + "account=" + encodeURIComponent(state.me.id);
}

// api calls the node's API as the acting account with the session
// cookie; requests other than GET carry the CSRF header the server
// requires. body is sent as JSON, or as it is when it is a Blob (a File:
// its type, else application/octet-stream). It resolves to the JSON
// body, or rejects with an Error whose status is the HTTP status and
// whose message is the server's one line.
export async function api(method, path, body) {
  const opts = { method: method, credentials: "same-origin", headers: {} };
  if (method !== "GET" && method !== "HEAD") {
    opts.headers["X-BlockMRS-CSRF"] = "1";
  }
  if (body instanceof Blob) {
    opts.headers["Content-Type"] = body.type || "application/octet-stream";
    opts.body = body;
  } else if (body !== undefined) {
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body);
  }
  let resp;
  try {
    resp = await fetch(withAccount(path), opts);
  } catch (e) {
    const err = new Error("The node did not answer: is the daemon still running?");
    err.status = 0;
    throw err;
  }
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

export function $(id) {
  return document.getElementById(id);
}

// el makes an element holding text (as text, never as markup).
export function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) {
    e.textContent = text;
  }
  if (cls) {
    e.className = cls;
  }
  return e;
}

// cell makes a table cell holding text, labelled for the narrow layout.
export function cell(label, text, cls) {
  const td = el("td", text, cls);
  td.dataset.label = label;
  return td;
}

// button makes a button that runs fn when clicked, disabled while fn's
// promise runs.
export function button(text, cls, fn) {
  const b = el("button", text, cls);
  b.type = "button";
  b.addEventListener("click", async function () {
    b.disabled = true;
    try {
      await fn();
    } finally {
      b.disabled = false;
    }
  });
  return b;
}

// caught makes what runs fn with errLine hidden and shows there what
// fails (see failed).
export function caught(errLine, fn) {
  return async function () {
    errLine.hidden = true;
    try {
      await fn();
    } catch (e) {
      failed(errLine, e);
    }
  };
}

// askFirst makes a button (text, class cls, aria label aria) that asks
// once more in the cell act before it acts, without dialogs. It shows
// ask (a question, or a function making the nodes to show each time it
// asks, such as a warning and a field), a button labelled sure that runs
// run, and Keep, which puts the cell back as it was. A failure of run
// goes to errLine (see caught).
export function askFirst(act, text, cls, aria, ask, sure, errLine, run) {
  const b = button(text, cls, async function () {
    const before = Array.from(act.childNodes);
    const yes = button(sure, "confirm", caught(errLine, run));
    yes.setAttribute("aria-label", aria + " now");
    const keep = button("Keep", "quiet keep", async function () {
      act.replaceChildren(...before);
    });
    const asked = typeof ask === "string" ? [el("span", ask, "ask"), " "] : ask();
    act.replaceChildren(...asked, yes, " ", keep);
    yes.focus();
  });
  b.setAttribute("aria-label", aria);
  return b;
}

// labelled puts control, given the id, under its label in a div.field,
// so that every form field is labelled.
export function labelled(id, label, control) {
  const d = el("div", undefined, "field");
  const l = el("label", label);
  l.htmlFor = id;
  control.id = id;
  d.append(l, control);
  return d;
}

// field makes a labelled control in a div.field: a text input, or the
// element tag names (textarea, select). attrs are set as attributes
// (type among them: {type: "date"}).
export function field(id, label, attrs, tag) {
  const i = el(tag || "input");
  if (!tag || tag === "input") {
    i.type = "text";
  }
  for (const k in attrs || {}) {
    i.setAttribute(k, attrs[k]);
  }
  return labelled(id, label, i);
}

// rowsTable makes an empty table of class "rows" (and cls) with id: a
// header row of heads (an empty head is named "Actions" for screen
// readers) and an empty tbody with id ID-body that the page fills.
export function rowsTable(id, heads, cls) {
  const t = el("table", undefined, cls ? "rows " + cls : "rows");
  t.id = id;
  const head = el("tr");
  for (const h of heads) {
    const th = el("th", h);
    th.scope = "col";
    if (!h) {
      th.append(el("span", "Actions", "vh"));
    }
    head.append(th);
  }
  const thead = el("thead");
  thead.append(head);
  const body = el("tbody");
  body.id = id + "-body";
  t.append(thead, body);
  return t;
}

// errorLine makes a page's error line (role=alert, hidden until
// failed() writes into it).
export function errorLine(id) {
  const p = el("p", undefined, "error");
  if (id) {
    p.id = id;
  }
  p.setAttribute("role", "alert");
  p.hidden = true;
  return p;
}

// statusLine makes a status line (role=status, id when given, class
// cls): what the last action did, read out by screen readers.
export function statusLine(id, cls) {
  const p = el("p", undefined, cls);
  if (id) {
    p.id = id;
  }
  p.setAttribute("role", "status");
  return p;
}

// submitForm makes a form with id: the fields (elements, e.g. from
// field()) and a submit button (label, id buttonId or ID-button, class
// buttonClass). On submit it hides the error line (its element, or the
// id of one), disables the button while run() runs, and puts what run
// throws into the error line with failed().
export function submitForm(id, opts) {
  const f = el("form", undefined, opts.cls);
  f.id = id;
  const b = el("button", opts.label, opts.buttonClass);
  b.type = "submit";
  b.id = opts.buttonId || id + "-button";
  f.append(...(opts.fields || []), b);
  f.addEventListener("submit", async function (ev) {
    ev.preventDefault();
    const line = typeof opts.error === "string" ? $(opts.error) : opts.error;
    if (line) {
      line.hidden = true;
    }
    b.disabled = true;
    try {
      await opts.run(ev);
    } catch (e) {
      failed(line, e);
    } finally {
      b.disabled = false;
    }
  });
  return f;
}

// shortID shortens an account ID to its start and end.
export function shortID(id) {
  if (!id) {
    return "";
  }
  return id.length > 14 ? id.slice(0, 6) + "…" + id.slice(-6) : id;
}

// who names an account: "you" for the acting account, else the name
// known for it, else its short ID.
export function who(id) {
  if (!id) {
    return "";
  }
  if (state.me && id === state.me.id) {
    return "you";
  }
  for (const a of (state.id && state.id.accounts) || []) {
    if (a.id === id && a.name) {
      return a.name;
    }
  }
  return shortID(id);
}

export function formatDate(s) {
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

// show hides every screen but the one named, and marks its nav link.
export function show(name) {
  $("loading").hidden = true;
  for (const s of document.querySelectorAll("main > section")) {
    s.hidden = s.id !== "screen-" + name;
  }
  for (const a of document.querySelectorAll("#nav a")) {
    if (a.dataset.page === name) {
      a.setAttribute("aria-current", "page");
    } else {
      a.removeAttribute("aria-current");
    }
  }
  document.body.dataset.screen = name;
}

// pages maps a page's name to its render function.
const pages = new Map();

// page registers a page: render(arg) fills and shows its screen (it
// calls show(name)); arg is the hash's part after the name, decoded.
export function page(name, render) {
  pages.set(name, render);
}

// go shows the page the hash names (e.g. "#/record/CID").
export function go(hash) {
  if (location.hash !== hash) {
    location.hash = hash; // hashchange renders it
    return;
  }
  return route();
}

// lockedHandler is what to do when the API says the account is locked
// (set by main.js: show the unlock screen).
let lockedHandler = null;

export function onLocked(fn) {
  lockedHandler = fn;
}

// failed reports an error of a page: 423 goes to the unlock screen,
// anything else into the page's error line (an element with role=alert).
export function failed(line, e) {
  if (e && e.status === 423 && lockedHandler) {
    lockedHandler();
    return;
  }
  if (line) {
    line.textContent = e.message || String(e);
    line.hidden = false;
  }
}

// current is the page shown, and its argument.
export const current = { name: "", arg: "" };

// route renders the page the hash names; the default page is records.
export async function route() {
  const m = /^#\/([a-z-]+)(?:\/(.*))?$/.exec(location.hash);
  let name = m ? m[1] : "records";
  let arg = m && m[2] ? decodeURIComponent(m[2]) : "";
  if (!pages.has(name)) {
    name = "records";
    arg = "";
  }
  current.name = name;
  current.arg = arg;
  try {
    await pages.get(name)(arg);
  } catch (e) {
    if (e && e.status === 423 && lockedHandler) {
      lockedHandler();
      return;
    }
    $("error-text").textContent = e.message || String(e);
    show("error");
  }
}

// listeners of live events, by event name (chain, request, import,
// audit, resync).
const listeners = new Map();

// onLive calls fn(data) for every live event of that name from the
// node's event stream (GET /api/v1/events). A "resync" event (events
// were dropped) reaches every listener with data null.
export function onLive(name, fn) {
  if (!listeners.has(name)) {
    listeners.set(name, []);
  }
  listeners.get(name).push(fn);
}

function dispatch(name, data) {
  for (const fn of listeners.get(name) || []) {
    try {
      fn(data);
    } catch (e) {
      console.warn("live " + name + ": " + e);
    }
  }
}

// live opens the event stream; EventSource reconnects by itself.
export function live() {
  if (typeof EventSource === "undefined") {
    return;
  }
  const es = new EventSource("/api/v1/events", { withCredentials: true });
  for (const name of ["chain", "request", "import", "audit"]) {
    es.addEventListener(name, function (ev) {
      let data = null;
      try {
        data = JSON.parse(ev.data);
      } catch (e) {
        return;
      }
      dispatch(name, data);
    });
  }
  es.addEventListener("resync", function () {
    for (const name of listeners.keys()) {
      dispatch(name, null);
    }
  });
}

// onMyChain calls fn() for every chain event that names the acting
// account (and every resync) while the page named screen is shown.
export function onMyChain(screen, fn) {
  onLive("chain", function (data) {
    if (document.body.dataset.screen !== screen || !state.me) {
      return;
    }
    if (data && !(data.accounts || []).includes(state.me.id)) {
      return;
    }
    fn();
  });
}
