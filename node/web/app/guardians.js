// guardians.js: the guardians page (#/guardians, #/guardians/WARD to act
// for a ward). "My guardians": the guardians the acting account appointed
// (GET /api/v1/guardians), appointing one with its rights and end (POST
// /api/v1/guardians) and removing one (POST /api/v1/guardians/remove).
// "I am guardian of": the wards that appointed it; acting for a ward
// shows the ward's records this account reads, shares one with a contact
// as the ward's guardian (POST /api/v1/guardians/grant) and answers the
// ward's open requests (POST /api/v1/requests/ID/approve|deny). Creating
// a minor's account (POST /api/v1/guardians/minor), and handing it over
// to the grown-up's own node (POST /api/v1/guardians/handover: a pairing
// code, watched with GET /api/v1/devices/pair). Offers: appointments of
// the acting account it has not answered, with Accept and Decline (POST
// /api/v1/guardians/accept|decline); until it accepts, an appointment
// counts for nothing here, and the ward row offers no acting.
import { $, api, askFirst, button, caught, cell, el, errorLine, failed, field, formatDate, go, labelled, onLive, page, rowsTable, shortID, show, state, statusLine, submitForm } from "./core.js";

const rights = [
  ["read", "read the records"],
  ["grant", "share them"],
  ["revoke", "unshare them"],
  ["approve", "answer access requests"],
];

// consentText says what a guardian answered, for people.
function consentText(g) {
  switch (g.consent) {
    case "accepted":
      return "accepted";
    case "declined":
      return "declined";
  }
  return "not accepted yet";
}

function statusOf(g) {
  if (g.live) {
    return "in office";
  }
  return g.ended ? "removed" : "ended";
}

// build fills the section once.
function build() {
  const s = $("screen-guardians");
  if (s.childElementCount > 0) {
    return;
  }
  const err = errorLine("guardians-error");
  const status = statusLine("guardians-status");

  const fs = el("fieldset");
  fs.append(el("legend", "They may"));
  for (const [r, text] of rights) {
    const box = el("input");
    box.type = "checkbox";
    box.id = "may-" + r;
    box.name = "may";
    box.value = r;
    box.checked = true;
    const l = el("label", text + " (" + r + ")", "check");
    l.htmlFor = box.id;
    l.prepend(box, " ");
    fs.append(l);
  }
  const form = submitForm("appoint-form", {
    label: "Appoint guardian", buttonId: "appoint-button", error: "guardians-error", run: appoint,
    fields: [field("appoint-who", "Guardian (a contact, or another account of this node)", { required: "" }, "select"),
      fs, field("appoint-until", "Until (optional)", { type: "date" })],
  });

  const minor = submitForm("minor-form", {
    label: "Create the account", buttonId: "minor-button", error: "guardians-error", run: createMinor,
    fields: [field("minor-name", "The child's name", { required: "", maxlength: "200", autocomplete: "off" }),
      field("minor-until", "Your rights end (optional, e.g. at 18)", { type: "date" }),
      field("minor-pass", "Passphrase for the child's keys (empty: unencrypted)", { type: "password", maxlength: "1024", autocomplete: "new-password" }),
      field("minor-pass2", "Repeat the passphrase", { type: "password", maxlength: "1024", autocomplete: "new-password" })],
  });

  const ward = el("div");
  ward.id = "ward-view";
  ward.hidden = true;

  s.append(
    el("h2", "Guardians"),
    el("p", "A guardian acts for you from their own account and node: reads your records, shares " +
      "or unshares them and answers requests addressed to you, as far as the rights you give " +
      "and until the date you choose. What they do is signed on their chain and names you, so " +
      "every node shows who did it. Removing a guardian cuts their chain where your node has " +
      "it: nothing they sign later counts, whatever date it bears; what they did before stands.", "hint"),
    err,
    offersBox(),
    el("h3", "My guardians"),
    rowsTable("my-guardians", ["Guardian", "May", "Until", "State", "Answer", ""], "guardians"),
    el("p", "Nobody acts for you.", "hint empty-guardians"),
    el("h3", "Appoint a guardian"),
    form,
    el("h3", "I am guardian of"),
    rowsTable("my-wards", ["Ward", "May", "Until", "State", "Answer", ""], "guardians"),
    el("p", "You act for nobody.", "hint empty-wards"),
    handoverBox(),
    ward,
    el("h3", "A child's account"),
    el("p", "Creates an account for your child on this node, with you as guardian. Its keys " +
      "stay on this node, under the passphrase you choose here, until you hand the account over to the " +
      "child's own (\"Hand over\" above; the child's account must be unlocked then).", "hint"),
    minor,
    status);
}

function mayText(g) {
  return (g.may || []).join(", ");
}

function guardianRow(g) {
  const tr = el("tr", undefined, "guardian");
  tr.dataset.id = g.guardian;
  tr.dataset.live = String(g.live);
  const name = cell("Guardian", g.guardian_name || shortID(g.guardian), "name");
  name.title = g.guardian;
  const act = cell("Actions", undefined, "actions");
  if (g.live) {
    act.append(removeButton(g, act));
  }
  tr.dataset.consent = g.consent;
  tr.append(name, cell("May", mayText(g), "may"), cell("Until", g.until ? formatDate(g.until) : "no end", "until"),
    cell("State", statusOf(g), "state"), cell("Answer", consentText(g), "consent"), act);
  return tr;
}

// offersBox lists the appointments waiting for the acting account's
// answer.
function offersBox() {
  const d = el("section", undefined, "offers");
  d.id = "guardian-offers";
  d.hidden = true;
  d.setAttribute("aria-label", "Guardian offers");
  return d;
}

// renderOffers fills offersBox: "Sam appointed you guardian (read,
// approve) until …: accept or decline", with both buttons.
function renderOffers(wards) {
  const d = $("guardian-offers");
  const pending = wards.filter(function (g) { return g.live && g.consent === "pending"; });
  d.replaceChildren();
  d.hidden = pending.length === 0;
  if (pending.length === 0) {
    return;
  }
  d.append(el("h3", "Offers to be guardian"),
    el("p", "Until you accept, an appointment counts for nothing here: this node does not act for " +
      "them, takes no requests addressed to them, does not fetch their records and does not give " +
      "them your chain. Accepting is signed on your chain; declining too (and, later, resigns).", "hint"));
  const ul = el("ul", undefined, "cards offers-list");
  for (const g of pending) {
    const who = g.ward_name || shortID(g.ward);
    const li = el("li", undefined, "offer");
    li.dataset.id = g.ward;
    li.append(el("p", who + " appointed you guardian (" + mayText(g) + ")" +
      (g.until ? " until " + formatDate(g.until) : "") + ": accept or decline.", "offer-text"));
    const yes = button("Accept", "accept", caught($("guardians-error"), answerWard(g, "accept", "Accepted " + who + "'s appointment.")));
    yes.setAttribute("aria-label", "Accept " + who + "'s appointment");
    const no = button("Decline", "quiet decline", caught($("guardians-error"), answerWard(g, "decline", "Declined " + who + "'s appointment.")));
    no.setAttribute("aria-label", "Decline " + who + "'s appointment");
    li.append(yes, " ", no);
    ul.append(li);
  }
  d.append(ul);
}

// answerWard makes what signs the acting account's answer (verb: accept
// or decline) to ward g's appointment, then says done and shows the
// page again. It throws what fails (see caught in core.js).
function answerWard(g, verb, done) {
  return async function () {
    await api("POST", "/api/v1/guardians/" + verb, { ward: g.ward });
    $("guardians-status").textContent = done;
    await render(shownArg);
  };
}

// removeButton removes guardian g, after asking in the row.
function removeButton(g, act) {
  const label = g.guardian_name || shortID(g.guardian);
  return askFirst(act, "Remove", "quiet remove", "Remove " + label, "Remove " + label + "?", "Remove now", $("guardians-error"), async function () {
    await api("POST", "/api/v1/guardians/remove", { guardian: g.guardian });
    $("guardians-status").textContent = "Removed " + label + " as your guardian.";
    await render();
  });
}

function wardRow(g, here) {
  const tr = el("tr", undefined, "ward");
  tr.dataset.id = g.ward;
  tr.dataset.live = String(g.live);
  const name = cell("Ward", g.ward_name || shortID(g.ward), "name");
  name.title = g.ward;
  tr.dataset.consent = g.consent;
  const act = cell("Actions", undefined, "actions");
  const label = g.ward_name || shortID(g.ward);
  if (g.live && g.consent === "accepted") {
    const a = el("a", "Act for " + label, "act-for");
    a.href = "#/guardians/" + encodeURIComponent(g.ward);
    act.append(a);
  }
  if (here.has(g.ward) && !g.ended && g.consent === "accepted") {
    const h = button("Hand over", "quiet handover", function () { return startHandover(g); });
    h.setAttribute("aria-label", "Hand " + label + "'s account over to their own node");
    act.append(" ", h);
  }
  if (g.live && g.consent === "accepted") {
    act.append(" ", askFirst(act, "Resign", "quiet resign", "Resign as " + label + "'s guardian",
      "Resign as " + label + "'s guardian?", "Resign now", $("guardians-error"),
      answerWard(g, "decline", "You resigned as " + label + "'s guardian.")));
  }
  if (g.live && g.consent === "declined") {
    // A decline or a resignation can be taken back while the
    // appointment stands: accepting again is signed like the first time.
    const a = button("Accept", "quiet accept-again", caught($("guardians-error"), answerWard(g, "accept", "Accepted " + label + "'s appointment again.")));
    a.setAttribute("aria-label", "Accept " + label + "'s appointment again");
    act.append(" ", a);
  }
  tr.append(name, cell("May", mayText(g), "may"), cell("Until", g.until ? formatDate(g.until) : "no end", "until"),
    cell("State", statusOf(g), "state"), cell("Answer", consentText(g), "consent"), act);
  return tr;
}

// handoverBox holds a hand-over's pairing code while it is pending.
function handoverBox() {
  const d = el("section", undefined, "handover");
  d.id = "handover";
  d.hidden = true;
  d.setAttribute("aria-labelledby", "handover-h");
  return d;
}

let handoverTimer = null;

// startHandover offers the ward's account to the grown-up's node and
// shows the code until a node takes it or the code ends.
async function startHandover(g) {
  $("guardians-error").hidden = true;
  try {
    const offer = await api("POST", "/api/v1/guardians/handover", { ward: g.ward });
    const name = offer.ward_name || shortID(offer.account);
    const box = $("handover");
    const h = el("h3", "Hand " + name + "'s account over");
    h.id = "handover-h";
    const secret = el("p", undefined, "pair-secret");
    secret.append("Code: ", el("strong", offer.secret));
    secret.id = "handover-secret";
    const img = el("img");
    img.id = "handover-qr";
    img.alt = "QR code of the hand-over code";
    img.src = "/api/v1/devices/pair/qr?t=" + Date.now();
    const code = el("code", offer.code);
    code.id = "handover-code";
    const cmd = el("p");
    cmd.append(el("code", offer.join));
    const cancel = button("Cancel", "quiet", caught($("guardians-error"), async function () {
      await api("POST", "/api/v1/devices/pair/cancel", {});
      endHandover(name + "'s account stays on this node: the hand-over was cancelled.");
    }));
    cancel.id = "handover-cancel";
    box.replaceChildren(h,
      el("p", "On " + name + "'s own node, join with this code and take the account over (Devices page, " +
        "\"Take the account over\"), or run the command below. That node stores the keys under " + name +
        "'s own passphrase, removes this node from the account and changes its keys; this node then " +
        "forgets them. What you were given stays readable here; what " + name + " writes later is yours " +
        "to read only while your appointment gives read. Valid until " +
        new Date(offer.expires).toLocaleTimeString() + ".", "hint"),
      img, secret, code, cmd, cancel);
    box.hidden = false;
    $("guardians-status").textContent = "Waiting for " + name + "'s node…";
    watchHandover(name, offer.account);
    cancel.focus();
  } catch (e) {
    failed($("guardians-error"), e);
  }
}

function endHandover(line) {
  if (handoverTimer) {
    clearTimeout(handoverTimer);
    handoverTimer = null;
  }
  $("handover").hidden = true;
  $("handover").replaceChildren();
  $("guardians-status").textContent = line;
}

// watchHandover polls the pairing offer until it ends.
function watchHandover(name, account) {
  if (handoverTimer) {
    clearTimeout(handoverTimer);
  }
  handoverTimer = setTimeout(async function () {
    handoverTimer = null;
    try {
      const st = await api("GET", "/api/v1/devices/pair");
      const other = (st.offer && st.offer.account !== account) || (st.joined && st.joined.account !== account);
      if (other) {
        endHandover("The hand-over code ended: another pairing code replaced it. " + name + "'s keys stay here.");
        return;
      }
      if (st.pending || st.joining) {
        watchHandover(name, account);
        return;
      }
      if (st.joined) {
        endHandover(name + "'s account now lives on their own node: this node no longer holds its keys.");
        document.dispatchEvent(new CustomEvent("blockmrs:accounts"));
        await render(shownArg);
      } else {
        endHandover("The hand-over code ended: " + (st.ended || "no node joined") + ". " + name + "'s keys stay here.");
      }
    } catch (e) {
      failed($("guardians-error"), e);
    }
  }, 1500);
}

async function appoint() {
  const may = Array.from(document.querySelectorAll("#appoint-form input[name=may]:checked")).map(function (x) { return x.value; });
  const body = { guardian: $("appoint-who").value, may: may };
  const until = $("appoint-until").value;
  if (until) {
    body.until = new Date(until + "T00:00:00Z").toISOString();
  }
  const a = await api("POST", "/api/v1/guardians", body);
  $("guardians-status").textContent = "Appointed " + (a.guardian_name || shortID(a.guardian)) + " your guardian (may " + a.may.join(", ") + ").";
  await render();
}

async function createMinor() {
  const pass = $("minor-pass").value;
  if (pass !== $("minor-pass2").value) {
    throw new Error("The two passphrases differ: type the same one twice.");
  }
  const body = { name: $("minor-name").value.trim(), passphrase: pass };
  const until = $("minor-until").value;
  if (until) {
    body.until = new Date(until + "T00:00:00Z").toISOString();
  }
  const a = await api("POST", "/api/v1/guardians/minor", body);
  $("minor-form").reset();
  let line = "Created " + a.ward_name + "'s account, with you as guardian";
  if (pass) {
    // The child's account starts unlocked on this node (a session, as any
    // account's): the passphrase was just typed.
    await api("POST", "/api/v1/sessions/unlock", { account: a.ward, passphrase: pass });
    line += "; its keys are encrypted with the passphrase you chose, and it is unlocked on this node";
  } else {
    line += "; its keys are stored unencrypted on this node";
  }
  $("guardians-status").textContent = line + ".";
  // The account picker learns the new account (main.js).
  document.dispatchEvent(new CustomEvent("blockmrs:accounts"));
  await render();
}

// renderWard fills the view of one ward: its records this account
// reads, each with a form to share it as the ward's guardian, and the
// ward's open requests.
async function renderWard(g, contacts) {
  const v = $("ward-view");
  const name = g.ward_name || shortID(g.ward);
  const [recs, reqs] = await Promise.all([api("GET", "/api/v1/records"), api("GET", "/api/v1/requests")]);
  const mine = (recs.records || []).filter(function (r) { return r.subject === g.ward && r.readable; });
  const open = (reqs.inbox || []).filter(function (q) { return q.to === g.ward && q.state === "new"; });
  const list = el("ul", undefined, "cards ward-records");
  for (const r of mine) {
    const li = el("li", undefined, "ward-record");
    li.dataset.cid = r.cid;
    li.append(el("p", (r.title || "untitled") + (r.created ? " (" + formatDate(r.created) + ")" : ""), "title"));
    if ((g.may || []).includes("grant")) {
      const f = el("form", undefined, "ward-share");
      const sel = el("select");
      for (const c of contacts) {
        if (c.id === g.ward || (state.me && c.id === state.me.id)) {
          continue;
        }
        const o = el("option", c.name);
        o.value = c.id;
        sel.append(o);
      }
      const sb = el("button", "Share as guardian");
      sb.type = "submit";
      sb.setAttribute("aria-label", "Share " + (r.title || "untitled") + " as " + name + "'s guardian");
      const msg = statusLine("", "ward-status");
      f.append(labelled("ward-to-" + r.cid, "Share with", sel), sb, msg);
      f.addEventListener("submit", async function (ev) {
        ev.preventDefault();
        sb.disabled = true;
        try {
          const a = await api("POST", "/api/v1/guardians/grant", { ward: g.ward, records: [r.cid], to: sel.value });
          msg.textContent = "Shared with " + (a.account_name || shortID(a.account)) + " as " + name + "'s guardian.";
          $("guardians-status").textContent = (r.title || "The record") + ": " + msg.textContent;
        } catch (e) {
          failed(msg, e);
        } finally {
          sb.disabled = false;
        }
      });
      li.append(f);
    }
    list.append(li);
  }
  const reqList = el("ul", undefined, "cards ward-requests");
  for (const q of open) {
    const li = el("li", undefined, "ward-request");
    li.dataset.id = q.id;
    li.append(el("p", (q.from_name || shortID(q.from)) + " asks " + name + " for " +
      (q.records && q.records.length ? q.records.length + " record(s)" : "every record"), "who"),
    el("p", q.reason || "(no reason given)", "reason"));
    const msg = statusLine("", "ward-status");
    const answer = function (verb) {
      return caught(msg, async function () {
        await api("POST", "/api/v1/requests/" + encodeURIComponent(q.id) + "/" + verb, {});
        await render(g.ward);
      });
    };
    if ((g.may || []).includes("approve")) {
      const ok = button("Approve", "approve", answer("approve"));
      ok.setAttribute("aria-label", "Approve the request of " + (q.from_name || shortID(q.from)) + " as " + name + "'s guardian");
      const no = button("Deny", "deny quiet", answer("deny"));
      no.setAttribute("aria-label", "Deny the request of " + (q.from_name || shortID(q.from)));
      li.append(ok, " ", no);
    }
    li.append(msg);
    reqList.append(li);
  }
  const h = el("h3", "Acting for " + name);
  h.id = "ward-heading";
  v.replaceChildren(h,
    el("p", "What you do here is signed by your own account, as " + name + "'s guardian (you may " + mayText(g) + ").", "hint"),
    el("h4", name + "'s records"),
    mine.length ? list : el("p", "No record of " + name + "'s has reached you yet.", "hint"),
    el("h4", "Requests to " + name),
    open.length ? reqList : el("p", "No open request.", "hint"),
    button("Done", "quiet", async function () { go("#/guardians"); }));
  v.hidden = false;
}

async function render(arg) {
  build();
  $("guardians-error").hidden = true;
  const [list, contacts, locals] = await Promise.all([api("GET", "/api/v1/guardians"), api("GET", "/api/v1/contacts"), api("GET", "/api/v1/accounts")]);
  // Anyone this node knows may be appointed: contacts, and the other
  // accounts of this node (a parent of a child whose account is here).
  const known = (locals.accounts || []).concat(contacts.accounts || []);
  const people = known.filter(function (a) { return !state.me || a.id !== state.me.id; });
  const sel = $("appoint-who");
  const kept = sel.value;
  sel.replaceChildren();
  for (const c of people) {
    const o = el("option", c.name + " (" + c.role + ")");
    o.value = c.id;
    o.selected = c.id === kept;
    sel.append(o);
  }
  $("appoint-button").disabled = people.length === 0;
  const gb = $("my-guardians-body");
  gb.replaceChildren(...(list.guardians || []).map(guardianRow));
  $("my-guardians").hidden = !(list.guardians || []).length;
  document.querySelector("#screen-guardians .empty-guardians").hidden = (list.guardians || []).length > 0;
  const wb = $("my-wards-body");
  const here = new Set((locals.accounts || []).map(function (a) { return a.id; }));
  wb.replaceChildren(...(list.wards || []).map(function (g) { return wardRow(g, here); }));
  $("my-wards").hidden = !(list.wards || []).length;
  document.querySelector("#screen-guardians .empty-wards").hidden = (list.wards || []).length > 0;
  renderOffers(list.wards || []);
  const ward = arg && (list.wards || []).find(function (g) { return g.ward === arg && g.live && g.consent === "accepted"; });
  if (ward) {
    await renderWard(ward, known);
  } else {
    $("ward-view").hidden = true;
  }
  show("guardians");
}

let wired = false;
let shownArg = "";

page("guardians", async function (arg) {
  shownArg = arg || "";
  if (!wired) {
    wired = true;
    const again = function () {
      if (document.body.dataset.screen === "guardians") {
        render(shownArg).catch(function (e) { failed($("guardians-error"), e); });
      }
    };
    onLive("chain", again); // a ward's chain, or a guardian's, changed
    onLive("request", again);
  }
  await render(arg);
});
