// fhir.js: FHIR in and out on the records page. Import FHIR sends a FHIR
// R4 JSON file (a Bundle, a resource or Bulk Data NDJSON) to POST
// /api/v1/fhir/import, shows how many resources were checked while it
// runs (the server's "import" events) and then the counts, or the
// server's one-line error; Export FHIR and Patient summary are downloads
// of GET /api/v1/fhir/export and /api/v1/fhir/summary, as the acting
// account.
import { $, api, failed, onLive, withAccount } from "./core.js";

// importing is the progress id of the import in flight, "" when none.
let importing = "";

function count(n) {
  return Number(n || 0).toLocaleString("en-US");
}

function plural(n, word) {
  return count(n) + " " + word + (n === 1 ? "" : "s");
}

// importLine says what an import did, as the command line does: from
// the answer's counts (its lists are a bounded sample of a big import).
export function importLine(out) {
  let s = "Imported " + plural(out.resources, "resource") + " as " + plural(out.records, "record") +
    " (" + count(out.counts.unchanged) + " unchanged, " + count(out.counts.superseded) + " superseded";
  if (out.counts.skipped > 0) {
    s += ", " + count(out.counts.skipped) + " skipped: other patients";
  }
  return s + ").";
}

function progressID() {
  const b = new Uint8Array(8);
  crypto.getRandomValues(b);
  return Array.from(b, function (x) { return x.toString(16).padStart(2, "0"); }).join("");
}

// importFHIR imports the chosen file, then calls refresh.
async function importFHIR(refresh) {
  const file = $("fhir-file").files[0];
  const status = $("fhir-import-status");
  status.classList.remove("error");
  if (!file) {
    status.textContent = "Choose a FHIR file first.";
    return;
  }
  const q = new URLSearchParams();
  importing = progressID();
  q.set("progress", importing);
  q.set("file_name", file.name);
  const patient = $("fhir-patient").value.trim();
  if (patient) {
    q.set("patient", patient);
  }
  const button = $("fhir-import-button");
  button.disabled = true;
  status.textContent = "Importing " + file.name + "…";
  try {
    const out = await api("POST", "/api/v1/fhir/import?" + q.toString(), new Blob([file], { type: "application/fhir+json" }));
    status.textContent = importLine(out);
    $("fhir-import-form").reset();
    refresh();
  } catch (e) {
    if (e.status === 423) {
      status.textContent = "";
      failed(null, e);
    } else {
      status.textContent = e.message || String(e);
      status.classList.add("error");
    }
  } finally {
    importing = "";
    button.disabled = false;
  }
}

// fhirLinks points the downloads at the acting account.
export function fhirLinks() {
  $("fhir-export").href = withAccount("/api/v1/fhir/export");
  $("fhir-summary").href = withAccount("/api/v1/fhir/summary");
}

let wired = false;

// wireFHIR sets up the import form once; refresh reloads the list.
export function wireFHIR(refresh) {
  if (wired) {
    return;
  }
  wired = true;
  $("fhir-import-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    importFHIR(refresh);
  });
  onLive("import", function (data) {
    if (data && importing && data.id === importing) {
      $("fhir-import-status").textContent = "Checked " + plural(data.read, "resource") + "…";
    }
  });
}
