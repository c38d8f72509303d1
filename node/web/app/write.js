// write.js: a clinician writes for a patient (#/write): a lab panel (the
// fields of GET /api/v1/labs/panel, each labelled with its unit, plus free
// rows), sent as POST /api/v1/labs, which writes one signed FHIR
// Observation record per value; or a file, uploaded as a record about the
// patient (POST /api/v1/records?for=).
import { $, api, button, el, errorLine, failed, page, show, statusLine } from "./core.js";
import { labsLink } from "./labs.js";

let built = null;
let rows = 0;

// today is the local date as YYYY-MM-DD.
function today() {
  const d = new Date();
  const pad = function (n) { return String(n).padStart(2, "0"); };
  return d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate());
}

// labelled makes a div.field holding a label and its control.
function labelled(text, control) {
  const div = el("div", undefined, "field");
  const l = el("label", text);
  l.htmlFor = control.id;
  div.append(l, control);
  return div;
}

function input(id, type) {
  const i = el("input");
  i.id = id;
  i.type = type || "text";
  i.autocomplete = "off";
  return i;
}

// addRow adds a free name/value/unit row.
function addRow() {
  rows++;
  const n = rows;
  const fs = el("fieldset", undefined, "free-row");
  fs.append(el("legend", "Other value " + n));
  const name = input("lab-free-name-" + n);
  name.maxLength = 256;
  name.className = "free-name";
  const value = input("lab-free-value-" + n);
  value.className = "free-value";
  const unit = input("lab-free-unit-" + n);
  unit.className = "free-unit";
  const rm = el("button", "Remove", "quiet");
  rm.type = "button";
  rm.setAttribute("aria-label", "Remove other value " + n);
  rm.addEventListener("click", function () { fs.remove(); });
  fs.append(labelled("Name", name), labelled("Value", value), labelled("Unit (optional)", unit), rm);
  built.free.append(fs);
  name.focus();
}

function build(fields) {
  const s = $("screen-write");
  const h = el("h2", "Write a lab panel");
  const err = errorLine("write-error");
  const none = el("p", "No patients yet: add a patient by their share code on the Contacts page first.");
  none.id = "write-no-patients";
  none.hidden = true;

  const form = el("form");
  form.id = "lab-form";
  const patient = el("select");
  patient.id = "lab-patient";
  patient.required = true;
  const date = input("lab-date", "date");
  date.required = true;
  form.append(labelled("Patient", patient), labelled("Date measured", date));

  const panel = el("fieldset", undefined, "panel");
  panel.append(el("legend", "Lab panel (leave empty what was not measured)"));
  for (const f of fields) {
    let control;
    if (f.answers && f.answers.length) {
      control = el("select");
      control.append(el("option", "(not measured)"));
      control.firstChild.value = "";
      for (const a of f.answers) {
        const o = el("option", a.text);
        o.value = a.text;
        control.append(o);
      }
    } else {
      control = input("", "text");
      control.inputMode = "decimal";
    }
    control.id = "lab-f-" + f.key;
    control.dataset.test = f.key;
    control.className = "panel-value";
    const unit = f.unit ? " (" + f.unit + ")" : "";
    const div = labelled(f.name + unit, control);
    div.title = f.display + " — LOINC " + f.loinc;
    panel.append(div);
  }
  const free = el("div");
  free.id = "lab-free-rows";
  const other = el("fieldset", undefined, "panel");
  other.append(el("legend", "Other values (a name, a value and its unit)"), free);
  const add = button("Add a row", "quiet", async function () { addRow(); });
  add.id = "lab-add-row";
  other.append(add);
  const submit = el("button", "Write the panel");
  submit.id = "lab-submit";
  submit.type = "submit";
  form.append(panel, other, submit);
  const status = statusLine("lab-status");
  const written = el("ul", undefined, "written");
  written.id = "lab-written";

  const h3 = el("h2", "Or upload a file for this patient");
  const up = el("form");
  up.id = "patient-upload-form";
  const file = input("patient-file", "file");
  file.required = true;
  const title = input("patient-file-title");
  title.placeholder = "the file name if empty";
  const upb = el("button", "Upload for the patient");
  upb.id = "patient-upload-button";
  upb.type = "submit";
  up.append(labelled("File", file), labelled("Title", title), upb);
  const upStatus = statusLine("patient-upload-status");

  s.append(h, err, none, form, status, written, h3, up, upStatus);
  built = { err: err, none: none, form: form, patient: patient, date: date, free: free, status: status, written: written,
    submit: submit, upHead: h3, up: up, file: file, title: title, upb: upb, upStatus: upStatus };
  form.addEventListener("submit", submitPanel);
  up.addEventListener("submit", uploadFile);
}

// values collects the filled panel fields and free rows.
function values() {
  const out = [];
  for (const c of built.form.querySelectorAll(".panel-value")) {
    const v = c.value.trim();
    if (v !== "") {
      out.push({ test: c.dataset.test, value: v });
    }
  }
  for (const fs of built.free.querySelectorAll(".free-row")) {
    const name = fs.querySelector(".free-name").value.trim();
    const value = fs.querySelector(".free-value").value.trim();
    const unit = fs.querySelector(".free-unit").value.trim();
    if (name !== "" || value !== "") {
      const row = { name: name, value: value };
      if (unit !== "") {
        row.unit = unit;
      }
      out.push(row);
    }
  }
  return out;
}

async function submitPanel(ev) {
  ev.preventDefault();
  const b = built;
  b.err.hidden = true;
  const vals = values();
  if (vals.length === 0) {
    b.status.textContent = "Enter at least one value.";
    return;
  }
  b.submit.disabled = true;
  b.written.replaceChildren();
  b.status.textContent = "Writing " + vals.length + " value(s)…";
  try {
    const out = await api("POST", "/api/v1/labs", { for: b.patient.value, effective: b.date.value, values: vals });
    const recs = (out && out.records) || [];
    b.status.textContent = "Wrote " + recs.length + " record(s) for " + b.patient.selectedOptions[0].textContent + ", signed by you:";
    for (const r of recs) {
      const li = el("li", undefined, "written-record");
      li.dataset.cid = r.cid;
      const a = el("a", "over time");
      a.href = labsLink(r.code || r.name);
      li.append(el("span", r.title, "title"), " ", a);
      b.written.append(li);
    }
    for (const c of b.form.querySelectorAll(".panel-value")) {
      c.value = "";
    }
    b.free.replaceChildren();
  } catch (e) {
    b.status.textContent = "";
    failed(b.err, e);
  } finally {
    b.submit.disabled = false;
  }
}

// uploadFile sends the chosen file as a record about the chosen patient.
async function uploadFile(ev) {
  ev.preventDefault();
  const b = built;
  const file = b.file.files[0];
  if (!file) {
    b.upStatus.textContent = "Choose a file first.";
    return;
  }
  const q = new URLSearchParams();
  q.set("for", b.patient.value);
  q.set("title", b.title.value.trim() || file.name);
  q.set("file_name", file.name);
  if (file.type) {
    q.set("media_type", file.type);
  }
  b.upb.disabled = true;
  b.upStatus.textContent = "Uploading " + file.name + "…";
  try {
    const data = await api("POST", "/api/v1/records?" + q.toString(), new Blob([file], { type: "application/octet-stream" }));
    b.upStatus.textContent = "Added " + ((data && data.title) || file.name) + " for " + b.patient.selectedOptions[0].textContent + ".";
    b.up.reset();
  } catch (e) {
    b.upStatus.textContent = "";
    failed(b.err, e);
  } finally {
    b.upb.disabled = false;
  }
}

page("write", async function () {
  if (!built) {
    const fields = await api("GET", "/api/v1/labs/panel");
    build((fields && fields.fields) || []);
  }
  const b = built;
  const contacts = await api("GET", "/api/v1/contacts");
  const patients = ((contacts && contacts.accounts) || []).filter(function (a) { return a.role === "patient"; });
  const keep = b.patient.value;
  b.patient.replaceChildren();
  for (const p of patients) {
    const o = el("option", p.name || p.id);
    o.value = p.id;
    o.selected = p.id === keep;
    b.patient.append(o);
  }
  b.none.hidden = patients.length > 0;
  b.form.hidden = patients.length === 0;
  b.up.hidden = patients.length === 0;
  b.upHead.hidden = patients.length === 0;
  if (!b.date.value) {
    b.date.value = today();
  }
  b.date.max = today();
  show("write");
});
