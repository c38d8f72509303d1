// labs.js: lab values over time (#/labs/CODE): choose a test, see its
// values as a table and as a chart drawn in SVG. The values come from
// GET /api/v1/labs, which reads every FHIR Observation the acting account
// can read with the node's FHIR library. Names, values and units are the
// writers' text: they reach the page through textContent and
// setAttribute only.
//
// renderObservation(record, container) shows one Observation record's
// values; it is the record page's viewer for FHIR Observations.
import { $, api, cell, el, errorLine, failed, formatDate, go, onLive, page, shortID, show, state, who } from "./core.js";
import { viewer } from "./record.js";

const SVG = "http://www.w3.org/2000/svg";

// svgEl makes an SVG element with attributes (set as attributes, never
// parsed as markup).
function svgEl(tag, attrs, text) {
  const e = document.createElementNS(SVG, tag);
  for (const k of Object.keys(attrs || {})) {
    e.setAttribute(k, String(attrs[k]));
  }
  if (text !== undefined) {
    e.textContent = text;
  }
  return e;
}

// seriesKey names the test a value belongs to: its code (LOINC), else
// its name (a free row).
export function seriesKey(v) {
  return v.code || v.name;
}

// labDate shows an effectiveDateTime: a date as it is, a date-time in
// local time.
export function labDate(s) {
  return s && s.length === 10 ? s : formatDate(s);
}

function valueText(v) {
  return v.unit ? v.value + " " + v.unit : v.value;
}

// labsLink is the labs page of a test.
export function labsLink(key) {
  return "#/labs/" + encodeURIComponent(key);
}

// renderObservation fills container with the values of one FHIR
// Observation record (name, value and unit, date, LOINC code) and a link
// to the test's values over time; record is a row of GET
// /api/v1/records (its cid is what is used).
export async function renderObservation(record, container) {
  const data = await api("GET", "/api/v1/labs?record=" + encodeURIComponent(record.cid));
  container.replaceChildren();
  const values = (data && data.values) || [];
  if (values.length === 0) {
    const why = data && data.problems && data.problems.length ? data.problems[0] : "it holds no lab value this page can show";
    container.append(el("p", "This FHIR record is not shown as a lab value: " + why, "hint"));
    return;
  }
  for (const v of values) {
    const dl = el("dl", undefined, "observation");
    const add = function (term, node) {
      dl.append(el("dt", term));
      const dd = el("dd");
      dd.append(node);
      dl.append(dd);
    };
    add("Test", document.createTextNode(v.name));
    add("Value", el("span", valueText(v), "obs-value"));
    add("Date", document.createTextNode(labDate(v.effective)));
    add("LOINC code", document.createTextNode(v.system === "http://loinc.org" && v.code ? v.code : "none (a free-text name)"));
    const a = el("a", "See " + v.name + " over time");
    a.href = labsLink(seriesKey(v));
    add("Over time", a);
    container.append(dl);
  }
}

// observationViewer tells whether renderObservation is the viewer for a
// record: a FHIR record whose content is an Observation.
export function observationViewer(record, json) {
  return !!(record && record.kind === "fhir" && json && json.resourceType === "Observation");
}

viewer(observationViewer, function (box, rec) { return renderObservation(rec, box); });

// chart draws the numeric values (oldest first) as points over time:
// each point labelled with its value and date and titled for assistive
// technology; the table beside it is the accessible alternative.
function chart(values, name) {
  const pts = values.filter(function (v) { return typeof v.number === "number" && isFinite(v.number); });
  if (pts.length === 0) {
    return el("p", "No numeric values to chart.", "hint");
  }
  const W = 640, H = 280, L = 56, R = 48, T = 24, B = 56;
  const times = pts.map(function (v) { return Date.parse(v.effective); });
  const nums = pts.map(function (v) { return v.number; });
  let t0 = Math.min.apply(null, times), t1 = Math.max.apply(null, times);
  let y0 = Math.min.apply(null, nums), y1 = Math.max.apply(null, nums);
  if (y0 === y1) {
    const pad = Math.abs(y0) * 0.1 || 1;
    y0 -= pad;
    y1 += pad;
  } else {
    const pad = (y1 - y0) * 0.15;
    y0 -= pad;
    y1 += pad;
  }
  const x = function (t) {
    return t1 === t0 ? L + (W - L - R) / 2 : L + (t - t0) / (t1 - t0) * (W - L - R);
  };
  const y = function (n) { return T + (y1 - n) / (y1 - y0) * (H - T - B); };
  const unit = pts[0].unit || "";
  const svg = svgEl("svg", { viewBox: "0 0 " + W + " " + H, class: "chart", role: "img", "aria-labelledby": "labs-chart-title labs-chart-desc" });
  svg.append(svgEl("title", { id: "labs-chart-title" }, name + " over time"));
  svg.append(svgEl("desc", { id: "labs-chart-desc" },
    pts.length + " value(s) from " + labDate(pts[0].effective) + " to " + labDate(pts[pts.length - 1].effective) + "; the table lists them."));
  svg.append(svgEl("line", { x1: L, y1: H - B, x2: W - R, y2: H - B, class: "axis" }));
  svg.append(svgEl("line", { x1: L, y1: T, x2: L, y2: H - B, class: "axis" }));
  const fmt = function (n) { return String(Math.round(n * 100) / 100); };
  svg.append(svgEl("text", { x: L - 6, y: y(y1) + 4, class: "tick", "text-anchor": "end" }, fmt(y1)));
  svg.append(svgEl("text", { x: L - 6, y: y(y0) + 4, class: "tick", "text-anchor": "end" }, fmt(y0)));
  if (unit) {
    svg.append(svgEl("text", { x: 4, y: T - 8, class: "tick" }, unit));
  }
  if (pts.length > 1) {
    const line = pts.map(function (v, i) { return x(times[i]).toFixed(1) + "," + y(v.number).toFixed(1); }).join(" ");
    svg.append(svgEl("polyline", { points: line, class: "series" }));
  }
  pts.forEach(function (v, i) {
    const px = x(times[i]), py = y(v.number);
    const g = svgEl("g", { class: "point" });
    g.dataset.cid = v.cid;
    const c = svgEl("circle", { cx: px.toFixed(1), cy: py.toFixed(1), r: 5 });
    c.append(svgEl("title", {}, valueText(v) + " on " + labDate(v.effective)));
    g.append(c);
    g.append(svgEl("text", { x: px.toFixed(1), y: (py - 10).toFixed(1), class: "point-value", "text-anchor": "middle" }, v.value));
    g.append(svgEl("text", { x: px.toFixed(1), y: H - B + 18 + (i % 2) * 14, class: "point-date", "text-anchor": "middle" },
      labDate(v.effective).slice(0, 10)));
    svg.append(g);
  });
  return svg;
}

function table(values) {
  const t = el("table", undefined, "rows");
  t.id = "labs-table";
  const head = el("thead");
  const tr = el("tr");
  for (const h of ["Date", "Test", "Value", "Unit", "Author", "Record"]) {
    const th = el("th", h);
    th.scope = "col";
    tr.append(th);
  }
  head.append(tr);
  const body = el("tbody");
  for (const v of values) {
    const row = el("tr", undefined, "lab-value");
    row.dataset.cid = v.cid;
    const rec = cell("Record");
    const a = el("a", shortID(v.cid));
    a.href = "#/record/" + encodeURIComponent(v.cid);
    a.title = v.cid;
    rec.append(a);
    const author = cell("Author", who(v.author), "author");
    author.title = v.author;
    row.append(cell("Date", labDate(v.effective), "date"), cell("Test", v.name, "name"), cell("Value", v.value, "value"),
      cell("Unit", v.unit || "", "unit"), author, rec);
    body.append(row);
  }
  t.append(head, body);
  return t;
}

// built holds the screen's fixed parts once made.
let built = null;

function build() {
  const s = $("screen-labs");
  const h = el("h2", "Lab values over time");
  const err = errorLine("labs-error");
  const pick = el("div", undefined, "field");
  const lab = el("label", "Test");
  lab.htmlFor = "labs-code";
  const sel = el("select");
  sel.id = "labs-code";
  sel.addEventListener("change", function () { go(labsLink(sel.value)); });
  pick.append(lab, sel);
  const whose = el("div", undefined, "field");
  whose.hidden = true;
  const wl = el("label", "Whose values");
  wl.htmlFor = "labs-subject";
  const ws = el("select");
  ws.id = "labs-subject";
  ws.addEventListener("change", function () { render(current).catch(function (e) { failed(err, e); }); });
  whose.append(wl, ws);
  const empty = el("p", "No lab values yet. A clinician's lab panel for you appears here once it reaches this node.");
  empty.id = "labs-empty";
  empty.hidden = true;
  const skipped = el("p", undefined, "hint");
  skipped.id = "labs-skipped";
  skipped.hidden = true;
  const fig = el("div", undefined, "chart-box");
  fig.id = "labs-chart";
  const tbl = el("div");
  tbl.id = "labs-values";
  s.append(h, err, pick, whose, empty, fig, tbl, skipped);
  built = { err: err, sel: sel, whose: whose, ws: ws, empty: empty, skipped: skipped, fig: fig, tbl: tbl };
  onLive("chain", function () {
    if (document.body.dataset.screen === "labs") {
      render(current).catch(function (e) { failed(err, e); });
    }
  });
}

let current = "";

async function render(code) {
  current = code;
  const data = await api("GET", "/api/v1/labs");
  const all = (data && data.values) || [];
  const b = built;
  // Whose values: the subjects present, the acting account first.
  const subjects = [];
  for (const v of all) {
    if (subjects.indexOf(v.subject) < 0) {
      subjects.push(v.subject);
    }
  }
  const me = state.me && state.me.id;
  let subject = b.ws.value || (subjects.indexOf(me) >= 0 ? me : subjects[0]);
  if (subjects.indexOf(subject) < 0) {
    subject = subjects[0];
  }
  b.ws.replaceChildren();
  for (const s of subjects) {
    const o = el("option", who(s) === "you" ? "you" : who(s));
    o.value = s;
    o.selected = s === subject;
    b.ws.append(o);
  }
  b.whose.hidden = subjects.length < 2;
  const mine = all.filter(function (v) { return v.subject === subject; });
  // The tests present, in the order first seen.
  const series = new Map();
  for (const v of mine) {
    const k = seriesKey(v);
    if (!series.has(k)) {
      series.set(k, v.name);
    }
  }
  if (!series.has(code)) {
    code = series.size ? series.keys().next().value : "";
  }
  b.sel.replaceChildren();
  for (const [k, name] of series) {
    const o = el("option", k === name ? name : name + " (" + k + ")");
    o.value = k;
    o.selected = k === code;
    b.sel.append(o);
  }
  b.sel.disabled = series.size === 0;
  const values = mine.filter(function (v) { return seriesKey(v) === code; });
  b.empty.hidden = values.length > 0;
  b.fig.replaceChildren();
  b.tbl.replaceChildren();
  if (values.length > 0) {
    b.fig.append(chart(values, series.get(code)));
    b.tbl.append(table(values));
  }
  b.skipped.hidden = !(data && data.skipped);
  b.skipped.textContent = data && data.skipped ? data.skipped + " FHIR record(s) could not be read as lab values and are left out." : "";
  b.err.hidden = true;
  show("labs");
}

page("labs", async function (code) {
  if (!built) {
    build();
  }
  await render(code);
});
