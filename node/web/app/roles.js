// roles.js: how a role is shown wherever the app shows one (contacts,
// requests, the directory): the declared role, and beside it whether
// attestations from an authority this node trusts verify it
// (keyshare.RoleProof, the API's role_proof and roles fields).
import { el } from "./core.js";

// roleBadge makes the badge for proof p (null: nothing to show). Its
// title says why, in the policy's words.
export function roleBadge(p) {
  if (!p || p.rule === "role/not-attested") {
    return null;
  }
  const b = el("span", p.verified ? "verified" : (p.rule === "role/declared-only" ? "declared" : "not verified"),
    "badge " + (p.verified ? "verified" : "declared"));
  b.title = p.why || p.rule;
  b.dataset.rule = p.rule;
  return b;
}

// roleCell fills node with role r and the badge of proof p.
export function roleCell(node, r, p) {
  node.append(el("span", r, "role-name"));
  const b = roleBadge(p);
  if (b) {
    node.append(" ", b);
  }
  return node;
}
