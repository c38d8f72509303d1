// emergency.js: emergency access (#/emergency) and the banner of uses.
// A patient sets up her emergency pack (POST /api/v1/emergency: a
// summary k-of-n custodians open together), sees it and every request
// custodians decided, and ends it (POST /api/v1/emergency/end); a
// clinician breaks glass with a reason (POST /api/v1/emergency/open);
// a custodian's node lists the packs it holds and the requests it
// decided. The banner at the top of every page says when shares of the
// acting account's pack were given, and is refreshed live ("audit"
// events of kind emergency).
import { $, api, button, caught, cell, el, errorLine, failed, field, formatDate, onLive, page, rowsTable, show, state, statusLine, submitForm, who } from "./core.js";

function build() {
  const s = $("screen-emergency");
  if (s.childElementCount > 0) {
    return;
  }
  const err = errorLine("emergency-error");
  const status = statusLine("emergency-status");

  const setup = submitForm("emergency-setup", {
    label: "Set up emergency access", error: "emergency-error", run: setUp,
    fields: [
      field("emergency-custodians", "Custodians (contacts' names or IDs, comma-separated: a guardian, your GP, your clinic)", { required: "", autocomplete: "off", spellcheck: "false" }),
      field("emergency-threshold", "How many of them are needed together (at least 2)", { required: "", inputmode: "numeric", pattern: "[0-9]+", value: "2" }),
      field("emergency-until", "Valid until (empty: a year)", { type: "date" }),
    ],
  });

  const open = submitForm("emergency-open", {
    label: "Break glass: open the emergency summary", buttonClass: "danger", error: "emergency-error", run: breakGlass,
    fields: [
      field("emergency-patient", "Patient's account ID (from the card or wristband)", { required: "", autocomplete: "off", spellcheck: "false", placeholder: "12D3KooW…" }),
      field("emergency-reason", "Reason (recorded by every custodian and shown to the patient)", { required: "", maxlength: "1024", rows: "3" }, "textarea"),
      field("emergency-via", "Custodians' node addresses to ask first (optional, comma-separated)", { autocomplete: "off", spellcheck: "false" }),
    ],
  });
  const summary = el("pre", undefined, "summary");
  summary.id = "emergency-summary";
  summary.hidden = true;

  const packs = el("div");
  packs.id = "emergency-packs";

  s.append(
    el("h2", "Emergency access"),
    el("p", "An emergency team may need your allergies, medication and conditions while you cannot " +
      "approve anything and your node is off. Emergency access seals your patient summary and " +
      "splits its key among custodians you choose: several of them are needed together, so none " +
      "can open it alone, and they give their part only to a clinician whose role is attested for " +
      "emergencies. Every request is recorded with its reason and shown to you here, and the " +
      "nodes of your guardians who accepted are told too.", "hint"),
    err, status,
    el("h3", "Your emergency pack"),
    packs,
    rowsTable("emergency-uses", ["When", "Clinician", "Custodian", "Reason", "Outcome"]),
    el("h3", "Set up (replaces the current pack)"),
    setup,
    el("div", undefined, "clinician-only"),
    el("h3", "Custodian of"),
    rowsTable("emergency-held", ["Patient", "Until", "State"]),
    rowsTable("emergency-decided", ["When", "Clinician", "Patient", "Reason", "Outcome"]));
  const clin = s.querySelector(".clinician-only");
  clin.append(
    el("h3", "Break glass (emergency clinicians)"),
    el("p", "Your request is signed, sent to the patient's custodians with your attested role, " +
      "recorded by each of them with your reason, and shown to the patient and her guardians.", "hint"),
    open, summary);
}

function outcome(u) {
  return u.given ? "share given" : "refused (" + u.rule + ")";
}

// renderBanner shows the banner when shares of the acting account's pack
// were given.
function renderBanner(shown) {
  const b = $("emergency-banner");
  const given = (shown.uses || []).filter(function (u) { return u.given; });
  const others = (shown.reported || []).filter(function (u) { return u.given; });
  b.replaceChildren();
  b.hidden = given.length === 0 && others.length === 0;
  const link = el("a", "See emergency access");
  link.href = "#/emergency";
  if (given.length === 0) {
    if (others.length > 0) {
      const o = others[0];
      b.append(el("strong", "Emergency access to " + who(o.patient) + "'s summary. "),
        who(o.clinician) + " was given custodians' shares on " + formatDate(o.time) + ": “" + o.reason + "”. ", link);
    }
    return;
  }
  const last = given[0];
  b.append(el("strong", "Emergency access to your summary. "),
    who(last.clinician) + " was given custodians' shares on " + formatDate(last.time) +
    ": “" + last.reason + "” (" + given.length + " custodian answer(s) giving shares). ", link);
}

function renderPage(shown) {
  const packs = $("emergency-packs");
  packs.replaceChildren();
  const live = (shown.packs || []).filter(function (p) { return !p.ended; });
  if (live.length === 0) {
    packs.append(el("p", "No live emergency pack.", "hint"));
  }
  for (const p of live) {
    const line = el("p", undefined, "pack");
    line.dataset.pack = p.id;
    line.append(p.title + ": " + p.threshold + " of " + p.custodians.length + " custodians (" +
      p.custodians.map(who).join(", ") + ") needed, until " + formatDate(p.until) + ". ");
    line.append(endButton(line));
    packs.append(line, deliveryList(p, "Delivered to custodians' nodes:"));
  }
  // An ended pack's end still on its way: the custodian drops the pack
  // when it arrives.
  for (const p of (shown.packs || []).filter(function (p) { return p.ended; })) {
    if ((p.delivery || []).some(function (d) { return d.state === "waiting"; })) {
      packs.append(deliveryList(p, "The end of an earlier pack is still on its way to:", "waiting"));
    }
  }
  const uses = $("emergency-uses-body");
  uses.replaceChildren();
  for (const u of shown.uses || []) {
    const tr = el("tr", undefined, u.given ? "use given" : "use");
    tr.append(cell("When", formatDate(u.time)), cell("Clinician", who(u.clinician)), cell("Custodian", who(u.custodian)),
      cell("Reason", u.reason), cell("Outcome", outcome(u)));
    uses.append(tr);
  }
  $("emergency-uses").hidden = (shown.uses || []).length === 0;
  const held = $("emergency-held-body");
  held.replaceChildren();
  for (const p of shown.held || []) {
    const tr = el("tr");
    tr.append(cell("Patient", who(p.patient)), cell("Until", formatDate(p.until)), cell("State", p.ended ? "ended" : (p.first_use ? "used " + formatDate(p.first_use) : "live")));
    held.append(tr);
  }
  $("emergency-held").hidden = (shown.held || []).length === 0;
  const dec = $("emergency-decided-body");
  dec.replaceChildren();
  for (const u of (shown.decided || []).concat(shown.reported || [])) {
    const tr = el("tr");
    tr.append(cell("When", formatDate(u.time)), cell("Clinician", who(u.clinician)), cell("Patient", who(u.patient)),
      cell("Reason", u.reason), cell("Outcome", outcome(u)));
    dec.append(tr);
  }
  $("emergency-decided").hidden = (shown.decided || []).length === 0;
}

// deliveryList lists, per custodian, whether its node took pack p (or,
// ended, its end): "delivered", "waiting" (retried while the node runs,
// also after a restart), "not needed"; only states `only` when given.
function deliveryList(p, title, only) {
  const box = el("div", undefined, "delivery");
  box.dataset.pack = p.id;
  const ul = el("ul");
  for (const d of p.delivery || []) {
    if (only && d.state !== only) {
      continue;
    }
    const li = el("li", who(d.custodian) + ": " + d.state, d.state === "waiting" ? "waiting" : "delivered");
    li.dataset.custodian = d.custodian;
    li.dataset.state = d.state;
    ul.append(li);
  }
  box.append(el("p", title, "delivery-title"), ul);
  return box;
}

// endButton asks once more in the line before ending (no dialogs).
function endButton(line) {
  const b = el("button", "End", "quiet");
  b.type = "button";
  b.id = "emergency-end";
  b.addEventListener("click", function () {
    const sure = button("End now", "confirm", caught($("emergency-error"), async function () {
      await api("POST", "/api/v1/emergency/end", {});
      $("emergency-status").textContent = "Ended the emergency pack: custodians refuse from now on.";
      await render();
    }));
    sure.id = "emergency-end-now";
    b.replaceWith(el("span", "End emergency access? ", "ask"), sure);
    sure.focus();
  });
  return b;
}

function list(s) {
  return s.split(",").map(function (x) { return x.trim(); }).filter(function (x) { return x; });
}

async function setUp() {
  const body = { custodians: list($("emergency-custodians").value), threshold: parseInt($("emergency-threshold").value, 10) };
  const until = $("emergency-until").value;
  if (until) {
    body.until = until + "T00:00:00Z";
  }
  const p = await api("POST", "/api/v1/emergency", body);
  $("emergency-setup").reset();
  $("emergency-status").textContent = "Emergency pack set up: " + p.threshold + " of " + p.custodians.length + " custodians needed.";
  await render();
}

async function breakGlass() {
  const out = $("emergency-summary");
  out.hidden = true;
  const r = await api("POST", "/api/v1/emergency/open", {
    patient: $("emergency-patient").value.trim(),
    reason: $("emergency-reason").value.trim(),
    via: list($("emergency-via").value),
  });
  out.textContent = r.summary !== undefined ? JSON.stringify(r.summary, null, 2) : r.text;
  out.hidden = false;
  $("emergency-status").textContent = "Opened " + r.pack.title + " with the shares of " + r.from.length +
    " custodians; each recorded your request and tells the patient.";
}

async function render() {
  build();
  const shown = await api("GET", "/api/v1/emergency");
  renderBanner(shown);
  renderPage(shown);
  show("emergency");
}

// refreshBanner updates the banner for the acting account.
export async function refreshBanner() {
  if (!state.me) {
    $("emergency-banner").hidden = true;
    return;
  }
  try {
    renderBanner(await api("GET", "/api/v1/emergency"));
  } catch (e) {
    // the page that failed says why; the banner stays as it was
  }
}

let wired = false;

page("emergency", async function () {
  if (!wired) {
    wired = true;
    onLive("audit", function (data) {
      if (data && data.kind !== "emergency") {
        return;
      }
      if (document.body.dataset.screen === "emergency") {
        render().catch(function (e) { failed($("emergency-error"), e); });
      }
    });
  }
  build();
  $("emergency-status").textContent = "";
  $("emergency-error").hidden = true;
  $("emergency-summary").hidden = true;
  await render();
});

onLive("audit", function (data) {
  if (!data || data.kind === "emergency") {
    refreshBanner();
  }
});
