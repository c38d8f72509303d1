// devices.js: the devices page (#/devices): the nodes the acting
// account declares on its chain (GET /api/v1/devices), declaring a
// replica (POST /api/v1/devices) and withdrawing a device or replica
// (POST /api/v1/devices/remove).
import { $, api, button, cell, el, failed, onMyChain, page, shortID, show, state } from "./core.js";

// field makes a labelled input in a div.
function field(id, label, attrs) {
  const d = el("div", undefined, "field");
  const l = el("label", label);
  l.htmlFor = id;
  const i = el("input");
  i.id = id;
  i.type = "text";
  for (const k in attrs) {
    i.setAttribute(k, attrs[k]);
  }
  d.append(l, i);
  return d;
}

// nodeTable makes the table of one kind of node.
function nodeTable(id) {
  const t = el("table", undefined, "rows nodes");
  t.id = id;
  const head = el("tr");
  for (const h of ["Name", "Peer ID", ""]) {
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

// build fills the section once.
function build() {
  const s = $("screen-devices");
  if (s.childElementCount > 0) {
    return;
  }
  const err = el("p", undefined, "error");
  err.id = "devices-error";
  err.setAttribute("role", "alert");
  err.hidden = true;
  const status = el("p");
  status.id = "devices-status";
  status.setAttribute("role", "status");

  const thisNode = el("p");
  thisNode.id = "this-node";
  thisNode.hidden = true;

  const noReplicas = el("p", "No replicas.", "hint");
  noReplicas.id = "replicas-empty";

  const form = el("form");
  form.id = "replica-form";
  const b = el("button", "Declare replica");
  b.type = "submit";
  b.id = "replica-button";
  form.append(
    field("replica-peer", "Peer ID of the replica", { required: "", maxlength: "128", autocomplete: "off", spellcheck: "false", placeholder: "12D3KooW…" }),
    field("replica-name", "Name (for you: home backup, clinic server)", { maxlength: "200", autocomplete: "off" }),
    b);
  form.addEventListener("submit", declareReplica);

  s.append(
    el("h2", "Devices"),
    el("p", "A device is a node that acts for your account: this computer, your phone, the " +
      "clinic server that hosts a clinician. Your chain declares it, signed, so other nodes " +
      "send it what your account may read and deliver your requests to it.", "hint"),
    err, thisNode, nodeTable("devices"),
    el("h2", "Replicas"),
    el("p", "A replica is a node that keeps your chain and the encrypted copies of your records " +
      "available while your own nodes are offline: a clinic server, or a stock IPFS node you " +
      "chose as a backup (ipfs id prints its peer ID). It acts for nobody and can decrypt " +
      "nothing: it holds only ciphertext.", "hint"),
    nodeTable("replicas"),
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
  act.append(withdrawButton(d, replica, act));
  tr.append(name, peer, act);
  return tr;
}

// withdrawButton asks once more in the row before withdrawing (no
// dialogs): Withdraw, then Withdraw now or Keep.
function withdrawButton(d, replica, act) {
  const label = (d.name || shortID(d.peer_id));
  const b = el("button", "Withdraw", "quiet withdraw");
  b.type = "button";
  b.setAttribute("aria-label", "Withdraw " + label);
  b.addEventListener("click", function () {
    const sure = button("Withdraw now", "confirm", async function () {
      await withdraw(d, replica);
    });
    sure.setAttribute("aria-label", "Withdraw " + label + " now");
    const keep = button("Keep", "quiet", async function () {
      act.replaceChildren(withdrawButton(d, replica, act));
    });
    act.replaceChildren(el("span", "Withdraw " + label + "? ", "ask"), sure, " ", keep);
    sure.focus();
  });
  return b;
}

async function withdraw(d, replica) {
  const status = $("devices-status");
  $("devices-error").hidden = true;
  try {
    await api("POST", "/api/v1/devices/remove", { peer_id: d.peer_id, replica: replica });
    status.textContent = "Withdrew " + (replica ? "replica " : "device ") + (d.name || d.peer_id) + ".";
    await render();
  } catch (e) {
    failed($("devices-error"), e);
  }
}

async function declareReplica(ev) {
  ev.preventDefault();
  const b = $("replica-button");
  const status = $("devices-status");
  $("devices-error").hidden = true;
  const peer = $("replica-peer").value.trim();
  const name = $("replica-name").value.trim();
  b.disabled = true;
  try {
    await api("POST", "/api/v1/devices", { peer_id: peer, name: name, replica: true });
    $("replica-form").reset();
    status.textContent = "Declared replica " + (name || peer) + ".";
    await render();
  } catch (e) {
    failed($("devices-error"), e);
  } finally {
    b.disabled = false;
  }
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
