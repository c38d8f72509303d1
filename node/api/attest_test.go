package api

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/protocol"
)

// The attestation, role and trust endpoints over one repo holding an
// authority, a clinic and a clinician: attest, refuse what the rules
// refuse, verify once the authority is trusted, withdraw; the network
// endpoints answer 400 for bad input and 501 without the node's service.
func TestAttestationEndpoints(t *testing.T) {
	ctx := t.Context()
	repo := openRepo(t)
	auth, err := repo.CreateAccount(ctx, "Authority", protocol.RoleAuthority, nil)
	if err != nil {
		t.Fatal(err)
	}
	clinic, err := repo.CreateAccount(ctx, "Clinic", protocol.RoleClinic, nil)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := repo.CreateAccount(ctx, "Dr Grey", protocol.RoleClinician, []byte("secret"))
	if err != nil {
		t.Fatal(err)
	}
	e := serve(t, repo, nil)
	post := func(path, body string) *http.Response { return e.postJSON(t, path, body) }
	as := func(k *keyshare.Keys) string { return "?account=" + url.QueryEscape(string(k.ID)) }

	var att Attested
	decode(t, post("/api/v1/attestations"+as(clinic), `{"account":"`+string(doc.ID)+`","role":"clinician","department":"Cardiology","emergency":true}`), http.StatusOK, &att)
	if att.Account != doc.ID || att.Role != protocol.RoleClinician || att.Block == "" || att.Name != "Dr Grey" {
		t.Fatalf("attest: %+v", att)
	}
	decode(t, post("/api/v1/attestations"+as(auth), `{"account":"`+string(clinic.ID)+`","role":"clinic"}`), http.StatusOK, &att)

	// Refusals.
	wantError(t, post("/api/v1/attestations"+as(clinic), `{"account":"`+string(auth.ID)+`","role":"authority"}`), http.StatusBadRequest, "cannot attest")
	wantError(t, post("/api/v1/attestations"+as(clinic), `{"account":"`+string(doc.ID)+`","role":"patient"}`), http.StatusBadRequest, "cannot be attested")
	wantError(t, post("/api/v1/attestations"+as(auth), `{"account":"`+string(clinic.ID)+`","role":"clinic","emergency":true}`), http.StatusBadRequest, "emergency")
	wantError(t, post("/api/v1/attestations"+as(clinic), `{"account":"`+string(doc.ID)+`","role":"clinician","x":1}`), http.StatusBadRequest, "unknown field")
	wantError(t, post("/api/v1/attestations"+as(doc), `{"account":"`+string(clinic.ID)+`","role":"clinic"}`), http.StatusLocked, "locked")

	// Not verified until the authority is trusted.
	var rc RoleChecked
	decode(t, e.do(t, req{path: "/api/v1/roles?account=" + string(doc.ID)}), http.StatusOK, &rc)
	if rc.Proof.Verified || rc.Proof.Rule != keyshare.RuleRoleUntrusted || rc.Name != "Dr Grey" {
		t.Fatalf("before trust: %+v", rc)
	}
	var tl TrustList
	wantError(t, post("/api/v1/trust", `{"account":"`+string(clinic.ID)+`"}`), http.StatusBadRequest, "only an authority")
	decode(t, post("/api/v1/trust", `{"account":"`+string(auth.ID)+`"}`), http.StatusOK, &tl)
	if len(tl.Trusted) != 1 || tl.Trusted[0].Account != auth.ID {
		t.Fatalf("trust: %+v", tl)
	}
	decode(t, e.do(t, req{path: "/api/v1/roles?account=" + string(doc.ID)}), http.StatusOK, &rc)
	if !rc.Proof.Verified || !rc.Proof.Emergency || rc.Proof.Department != "Cardiology" || len(rc.Proof.Path) != 3 {
		t.Fatalf("after trust: %+v", rc)
	}
	var accounts AccountList
	decode(t, e.do(t, req{path: "/api/v1/accounts"}), http.StatusOK, &accounts)
	for _, a := range accounts.Accounts {
		if a.ID == doc.ID && (a.RoleProof == nil || !a.RoleProof.Verified) {
			t.Fatalf("accounts list: %+v", a)
		}
	}
	var list AttestationList
	decode(t, e.do(t, req{path: "/api/v1/attestations" + as(clinic)}), http.StatusOK, &list)
	if len(list.Given) != 1 || !list.Given[0].Live || len(list.Received) != 1 || !list.Role.Verified {
		t.Fatalf("attestations: %+v", list)
	}

	// Withdrawal.
	decode(t, post("/api/v1/attestations/withdraw"+as(clinic), `{"account":"`+string(doc.ID)+`"}`), http.StatusOK, &att)
	wantError(t, post("/api/v1/attestations/withdraw"+as(clinic), `{"account":"`+string(doc.ID)+`"}`), http.StatusNotFound, "no live attestation")
	decode(t, e.do(t, req{path: "/api/v1/roles?account=" + string(doc.ID)}), http.StatusOK, &rc)
	if rc.Proof.Verified || rc.Proof.Rule != keyshare.RuleRoleWithdrawn {
		t.Fatalf("after withdrawal: %+v", rc)
	}

	// The network endpoints.
	wantError(t, e.do(t, req{path: "/api/v1/directory?clinic="}), http.StatusBadRequest, "clinic")
	wantError(t, e.do(t, req{path: "/api/v1/directory?clinic=" + url.QueryEscape("/ip4/127.0.0.1/tcp/1")}), http.StatusNotImplemented, "running node")
	wantError(t, e.do(t, req{path: "/api/v1/directory?clinic=x&limit=99"}), http.StatusBadRequest, "limit")
	wantError(t, e.do(t, req{path: "/api/v1/roles?account=" + string(doc.ID) + "&from=" + url.QueryEscape("/ip4/127.0.0.1/tcp/1")}), http.StatusNotImplemented, "running node")
	wantError(t, post("/api/v1/directory/contact", `{"account":"`+string(doc.ID)+`"}`), http.StatusBadRequest, "account of this repo")

	decode(t, post("/api/v1/trust/remove", `{"account":"`+string(auth.ID)+`"}`), http.StatusOK, &tl)
	if len(tl.Trusted) != 0 {
		t.Fatalf("trust after remove: %+v", tl)
	}
	wantError(t, post("/api/v1/trust/remove", `{"account":"`+string(auth.ID)+`"}`), http.StatusNotFound, "not a trusted authority")
}
