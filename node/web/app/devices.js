// devices.js: the devices page (#/devices): the nodes the acting
// account declares on its chain (GET /api/v1/devices), pairing a new
// device by a one-time code and QR code (POST/GET /api/v1/devices/pair,
// /pair/qr, /pair/cancel), joining another device's account (POST
// /api/v1/devices/join), removing a lost device with a key rotation
// (POST /api/v1/devices/remove-and-rotate), declaring a replica (POST
// /api/v1/devices) and withdrawing a replica (POST /api/v1/devices/remove).
import { $, api, askFirst, button, cell, el, errorLine, failed, field, onMyChain, page, rowsTable, shortID, show, state, statusLine, submitForm } from "./core.js";

// build fills the section once.
function build() {
  const s = $("screen-devices");
  if (s.childElementCount > 0) {
    return;
  }
  const err = errorLine("devices-error");
  const status = statusLine("devices-status");

  const thisNode = el("p");
  thisNode.id = "this-node";
  thisNode.hidden = true;

  const noReplicas = el("p", "No replicas.", "hint");
  noReplicas.id = "replicas-empty";

  const form = submitForm("replica-form", {
    label: "Declare replica", buttonId: "replica-button", error: "devices-error", run: declareReplica,
    fields: [
      field("replica-peer", "Peer ID of the replica", { required: "", maxlength: "128", autocomplete: "off", spellcheck: "false", placeholder: "12D3KooW…" }),
      field("replica-name", "Name (for you: home backup, clinic server)", { maxlength: "200", autocomplete: "off" }),
    ],
  });

  s.append(
    el("h2", "Devices"),
    el("p", "A device is a node that acts for your account: this computer, your phone, the " +
      "clinic server that hosts a clinician. Your chain declares it, signed, so other nodes " +
      "send it what your account may read and deliver your requests to it.", "hint"),
    err, thisNode, rowsTable("devices", ["Name", "Peer ID", ""], "nodes"),
    pairSection(),
    joinSection(),
    el("h2", "Replicas"),
    el("p", "A replica is a node that keeps your chain and the encrypted copies of your records " +
      "available while your own nodes are offline: a clinic server, or a stock IPFS node you " +
      "chose as a backup (ipfs id prints its peer ID). It acts for nobody and can decrypt " +
      "nothing: it holds only ciphertext.", "hint"),
    rowsTable("replicas", ["Name", "Peer ID", ""], "nodes"),
    noReplicas,
    el("h3", "Declare a replica"),
    form,
    el("h2", "Withdrawing"),
    el("p", "Withdrawing signs, on your chain, that the node no longer acts for you or keeps your " +
      "copies. Every node that sees your chain then stops serving it your records and your " +
      "chain on its next request. It cannot erase what that node already holds: copies it " +
      "fetched while declared may stay there. Withdrawing this node means other nodes stop " +
      "sending it your records and requests.", "hint"),
    status);
}

// nodeRow makes the row of node d; replica tells the kind.
function nodeRow(d, replica) {
  const tr = el("tr", undefined, "node");
  tr.dataset.peer = d.peer_id;
  const name = cell("Name", d.name || "(no name)", "name");
  if (state.id && d.peer_id === state.id.peer_id) {
    name.append(" ", el("span", "this node", "badge"));
    tr.classList.add("this-node");
  }
  const peer = cell("Peer ID", undefined, "peer");
  const code = el("code", d.peer_id);
  peer.append(code);
  const act = cell("Actions", undefined, "actions");
  const self = state.id && d.peer_id === state.id.peer_id;
  act.append(replica || self ? withdrawButton(d, replica, act) : removeButton(d, act));
  tr.append(name, peer, act);
  return tr;
}

// withdrawButton asks once more in the row before withdrawing (no
// dialogs): Withdraw, then Withdraw now or Keep.
function withdrawButton(d, replica, act) {
  const label = (d.name || shortID(d.peer_id));
  return askFirst(act, "Withdraw", "quiet withdraw", "Withdraw " + label, "Withdraw " + label + "?", "Withdraw now", $("devices-error"), async function () {
    await api("POST", "/api/v1/devices/remove", { peer_id: d.peer_id, replica: replica });
    $("devices-status").textContent = "Withdrew " + (replica ? "replica " : "device ") + (d.name || d.peer_id) + ".";
    await render();
  });
}

// removeButton asks once more in the row, with what removal does and
// cannot do, before removing a device and rotating the account's keys.
function removeButton(d, act) {
  const label = (d.name || shortID(d.peer_id));
  let pass;
  const ask = function () {
    const warn = el("p", "Remove " + label + "? Other nodes stop serving it, and your keys rotate: " +
      "records written from now on are closed to it and blocks it signs are refused. It keeps " +
      "whatever it already holds: records it fetched stay readable there.", "ask warning");
    warn.id = "remove-warning";
    const f = field("remove-pass", "Passphrase (needed to rotate the signing key of encrypted keys)", { type: "password", autocomplete: "current-password" });
    pass = f.querySelector("input");
    return [warn, f];
  };
  return askFirst(act, "Remove", "quiet remove", "Remove " + label, ask, "Remove now", $("devices-error"), async function () {
    const out = await api("POST", "/api/v1/devices/remove-and-rotate", { peer_id: d.peer_id, passphrase: pass.value });
    let line = "Removed device " + (d.name || d.peer_id) + ". ";
    if (out.signing) {
      line += "Your signing and decryption keys rotated.";
    } else if (out.rotated) {
      line += "Your decryption key rotated.";
    }
    if (out.note) {
      line += " Note: " + out.note + ".";
    }
    $("devices-status").textContent = line;
    await render();
  });
}

// pairSection is the "Add a device" part: a one-time pairing code and
// its QR code, shown until the new device joins or the code ends.
function pairSection() {
  const d = el("section", undefined, "pairing");
  d.id = "pair";
  d.setAttribute("aria-labelledby", "pair-h");
  const h = el("h2", "Add a device");
  h.id = "pair-h";
  const start = button("Show a pairing code", "", startPairing);
  start.id = "pair-start";
  const box = el("div");
  box.id = "pair-offer";
  box.hidden = true;
  const status = statusLine("pair-status");
  d.append(h,
    el("p", "Show a one-time code to your new phone or laptop. Its node connects to this one over " +
      "an encrypted connection, proves it holds the code and receives your account's keys, which it " +
      "stores under its own passphrase. The code works once, for 10 minutes, and three wrong tries " +
      "end it. Anyone who sees it in time can join: show it only to your new device.", "hint"),
    start, box, status);
  return d;
}

let pollTimer = null;

async function startPairing() {
  $("devices-error").hidden = true;
  try {
    const offer = await api("POST", "/api/v1/devices/pair", {});
    showOffer(offer);
    watchPairing();
  } catch (e) {
    failed($("devices-error"), e);
  }
}

// showOffer shows a pending offer: its secret, the whole code, the QR
// code the node makes of it, and a cancel button.
function showOffer(offer) {
  const box = $("pair-offer");
  box.replaceChildren();
  const secret = el("p", undefined, "pair-secret");
  secret.append("Code: ", el("strong", offer.secret));
  secret.id = "pair-secret";
  const code = el("code", offer.code);
  code.id = "pair-code";
  const img = el("img");
  img.id = "pair-qr";
  img.alt = "QR code of the pairing code";
  img.src = "/api/v1/devices/pair/qr?t=" + Date.now();
  const until = el("p", "Valid until " + new Date(offer.expires).toLocaleTimeString() + ". On the new device run:", "hint");
  const cmd = el("p");
  cmd.append(el("code", "blockmrs device join '" + offer.code + "'"));
  const cancel = button("Cancel", "quiet", cancelPairing);
  cancel.id = "pair-cancel";
  box.append(img, secret, until, cmd, el("p", "Or paste this into the new device's Devices page:", "hint"), code, cancel);
  box.hidden = false;
  $("pair-start").hidden = true;
  $("pair-status").textContent = "Waiting for the new device…";
}

function endOffer(line) {
  if (pollTimer) {
    clearTimeout(pollTimer);
    pollTimer = null;
  }
  $("pair-offer").hidden = true;
  $("pair-offer").replaceChildren();
  $("pair-start").hidden = false;
  $("pair-status").textContent = line;
}

// watchPairing polls the offer until it ends.
function watchPairing() {
  if (pollTimer) {
    clearTimeout(pollTimer);
  }
  pollTimer = setTimeout(async function () {
    pollTimer = null;
    try {
      const st = await api("GET", "/api/v1/devices/pair");
      if (st.pending || st.joining) {
        watchPairing();
        return;
      }
      if (st.joined) {
        endOffer("Device " + (st.joined.name || st.joined.peer_id) + " joined your account.");
        await render();
      } else {
        endOffer("The pairing code ended: " + (st.ended || "no device joined") + ".");
      }
    } catch (e) {
      failed($("devices-error"), e);
    }
  }, 1500);
}

async function cancelPairing() {
  try {
    await api("POST", "/api/v1/devices/pair/cancel", {});
    endOffer("Cancelled the pairing code.");
  } catch (e) {
    failed($("devices-error"), e);
  }
}

// joinForm makes the form a new device uses to join an account another
// device shows a pairing code for (POST /api/v1/devices/join): the
// devices page has it, and so has the "create your account" screen of a
// node without an account. What goes wrong goes to the error line
// errorId; joined(result, passphrase, takeover) runs after the join.
// With takeover, the form offers a hand-over from a guardian's node
// (POST /api/v1/devices/takeover: join, then remove the node that offered
// the account and rotate its keys).
export function joinForm(errorId, joined, takeover) {
  const fields = [
    field("join-code", "Pairing code from the other device", { required: "", maxlength: "2048", autocomplete: "off", spellcheck: "false", placeholder: "/ip4/…/p2p/12D3KooW… 7KQ2-M9XF-3TRA" }),
    field("join-name", "Name for this device (phone, laptop)", { maxlength: "200", autocomplete: "off" }),
    field("join-pass", "Passphrase for the account's keys on this device (empty: unencrypted)", { type: "password", maxlength: "1024", autocomplete: "new-password" }),
  ];
  if (takeover) {
    const take = el("input");
    take.type = "checkbox";
    take.id = "join-takeover";
    const tl = el("label", "Take the account over (a guardian hands your account over to you): remove the node that shows the code and change the account's keys", "check");
    tl.htmlFor = take.id;
    tl.prepend(take, " ");
    fields.push(tl);
  }
  return submitForm("join-form", {
    label: "Join", buttonId: "join-button", error: errorId, fields: fields,
    run: async function () {
      const pass = $("join-pass").value;
      const take = takeover && $("join-takeover").checked;
      const out = await api("POST", take ? "/api/v1/devices/takeover" : "/api/v1/devices/join", {
        code: $("join-code").value.trim(), name: $("join-name").value.trim(), passphrase: pass,
      });
      $("join-form").reset();
      await joined(out, pass, take);
    },
  });
}

// joinSection is the devices page's join form.
function joinSection() {
  const d = el("div");
  d.append(el("h3", "Join an account shown on another device"), joinForm("devices-error", function (out, pass, takeover) {
    $("devices-status").textContent = "This node now acts for " + out.account.name + ": choose it in the account picker." +
      (takeover ? " The node that handed it over was removed and the account's keys changed." : "");
    // The account picker learns the joined account (main.js).
    document.dispatchEvent(new CustomEvent("blockmrs:accounts"));
  }, true));
  return d;
}

async function declareReplica() {
  const peer = $("replica-peer").value.trim();
  const name = $("replica-name").value.trim();
  await api("POST", "/api/v1/devices", { peer_id: peer, name: name, replica: true });
  $("replica-form").reset();
  $("devices-status").textContent = "Declared replica " + (name || peer) + ".";
  await render();
}

// declareThis declares this node as a device of the acting account (an
// account imported from elsewhere has not declared it).
async function declareThis() {
  $("devices-error").hidden = true;
  try {
    await api("POST", "/api/v1/devices", { peer_id: state.id.peer_id, name: "this node" });
    $("devices-status").textContent = "Declared this node as a device.";
    await render();
  } catch (e) {
    failed($("devices-error"), e);
  }
}

function renderList(list) {
  const devs = $("devices-body");
  devs.replaceChildren();
  for (const d of list.devices || []) {
    devs.append(nodeRow(d, false));
  }
  const reps = $("replicas-body");
  reps.replaceChildren();
  for (const d of list.replicas || []) {
    reps.append(nodeRow(d, true));
  }
  $("replicas").hidden = (list.replicas || []).length === 0;
  $("replicas-empty").hidden = (list.replicas || []).length > 0;
  const mine = state.id && (list.devices || []).some(function (d) { return d.peer_id === state.id.peer_id; });
  const p = $("this-node");
  p.replaceChildren();
  p.hidden = !!mine;
  if (!mine && state.id) {
    p.append("This node (", el("code", shortID(state.id.peer_id)), ") is not declared as your device, " +
      "so other nodes do not send it what your account may read. ",
    button("Declare this node", "quiet", declareThis));
  }
}

async function render() {
  build();
  $("devices-error").hidden = true;
  renderList(await api("GET", "/api/v1/devices"));
  show("devices");
}

let wired = false;

page("devices", async function () {
  if (!wired) {
    wired = true;
    onMyChain("devices", function () {
      api("GET", "/api/v1/devices").then(renderList).catch(function (e) { failed($("devices-error"), e); });
    });
  }
  await render();
});
