package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/node/ops"
	"github.com/blockmrs/blockmrs/protocol"
)

// fakeProfiles stands in for chain sync: it records what it was asked
// and answers with res or err.
type fakeProfiles struct {
	asked []protocol.AccountID
	res   *keyshare.ImportResult
	err   error
}

func (f *fakeProfiles) Profile(_ context.Context, node peer.AddrInfo, id protocol.AccountID) (*keyshare.ImportResult, error) {
	f.asked = append(f.asked, id)
	return f.res, f.err
}

// The account and contact endpoints answer what the operations in
// node/ops return, create accounts declaring this node, and refuse bad
// input with one-line errors.
func TestAccountsAndContacts(t *testing.T) {
	ctx := t.Context()
	repo, err := keyshare.Open(ctx, t.TempDir(), keyshare.Options{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	defer repo.Close()
	profiles := &fakeProfiles{err: errors.New("peer refused")}
	e := startServer(t, Options{Repo: repo, Profiles: profiles})
	h := e.host
	post := func(path, body string) *http.Response { return e.postJSON(t, path, body) }

	// A fresh repo: no accounts, an identity without one.
	var list AccountList
	decode(t, e.do(t, req{path: "/api/v1/accounts"}), http.StatusOK, &list)
	if list.Accounts == nil || len(list.Accounts) != 0 {
		t.Fatalf("accounts of a fresh repo: %+v", list)
	}
	var id Identity
	decode(t, e.do(t, req{path: "/api/v1/id"}), http.StatusOK, &id)
	if id.Account != nil || id.ShareCode != "" || id.PeerID != h.ID().String() {
		t.Fatalf("identity of a fresh repo: %+v", id)
	}

	// The first account, then a second.
	var pat, sam Account
	decode(t, post("/api/v1/accounts", `{"name":"Pat","role":"patient","passphrase":""}`), http.StatusCreated, &pat)
	if !pat.Local || !pat.Default || pat.Encrypted || pat.Name != "Pat" || pat.Role != protocol.RolePatient || pat.Seq != 0 ||
		len(pat.Devices) != 1 || pat.Devices[0].PeerID != h.ID().String() {
		t.Fatalf("created %+v", pat)
	}
	decode(t, post("/api/v1/accounts", `{"name":"Sam Jones","role":"clinician","passphrase":"secret"}`), http.StatusCreated, &sam)
	if sam.Default || !sam.Encrypted || sam.Role != protocol.RoleClinician {
		t.Fatalf("second account %+v", sam)
	}
	if _, err := repo.Unlock(ctx, sam.ID, []byte("secret")); err != nil {
		t.Fatalf("the passphrase does not unlock the new keys: %v", err)
	}
	decode(t, e.do(t, req{path: "/api/v1/accounts"}), http.StatusOK, &list)
	if len(list.Accounts) != 2 || list.Accounts[0].ID != pat.ID || list.Accounts[1].ID != sam.ID {
		t.Fatalf("accounts: %+v", list)
	}
	want, err := ops.Accounts(ctx, repo)
	if err != nil || !equalJSON(t, list, want) {
		t.Fatalf("GET /api/v1/accounts is not ops.Accounts: %v", err)
	}

	// The identity names the default account and its share code; another
	// one on request.
	decode(t, e.do(t, req{path: "/api/v1/id"}), http.StatusOK, &id)
	if id.Account == nil || id.Account.ID != pat.ID || len(id.Accounts) != 2 {
		t.Fatalf("identity: %+v", id)
	}
	code, err := ops.ParseShareCode(id.ShareCode)
	if err != nil || code.Account != pat.ID || code.Node.ID != h.ID() || !strings.HasPrefix(id.ShareCode, id.Addrs[0][:5]) {
		t.Fatalf("share code %q: %v", id.ShareCode, err)
	}
	decode(t, e.do(t, req{path: "/api/v1/id?account=" + string(sam.ID)}), http.StatusOK, &id)
	if id.Account == nil || id.Account.ID != sam.ID || !strings.HasSuffix(id.ShareCode, " "+string(sam.ID)) {
		t.Fatalf("identity of Sam: %+v", id)
	}
	stranger, _ := keyshare.GenerateKeys()
	wantError(t, e.do(t, req{path: "/api/v1/id?account=" + string(stranger.ID)}), http.StatusNotFound, "not a local account")
	wantError(t, e.do(t, req{path: "/api/v1/id?account=nobody"}), http.StatusBadRequest, "account")

	// The default account: Sam, by name, then back to Pat by ID suffix;
	// a contact, an unknown account and bad bodies are refused.
	list = AccountList{} // (decoding into it would keep omitted fields)
	decode(t, post("/api/v1/accounts/default", `{"account":"sam jones"}`), http.StatusOK, &list)
	if len(list.Accounts) != 2 || list.Accounts[1].ID != sam.ID || !list.Accounts[1].Default || list.Accounts[0].Default {
		t.Fatalf("after making Sam the default: %+v", list)
	}
	if want, _ := ops.Accounts(ctx, repo); !equalJSON(t, list, want) {
		t.Fatal("POST /api/v1/accounts/default does not answer ops.Accounts")
	}
	decode(t, e.do(t, req{path: "/api/v1/id"}), http.StatusOK, &id)
	if id.Account == nil || id.Account.ID != sam.ID {
		t.Fatalf("identity after the default changed: %+v", id.Account)
	}
	list = AccountList{}
	decode(t, post("/api/v1/accounts/default", `{"account":"`+string(pat.ID[len(pat.ID)-8:])+`"}`), http.StatusOK, &list)
	if !list.Accounts[0].Default || list.Accounts[1].Default {
		t.Fatalf("after making Pat the default again: %+v", list)
	}
	wantError(t, post("/api/v1/accounts/default", `{"account":"nobody"}`), http.StatusNotFound, "no account named")
	wantError(t, post("/api/v1/accounts/default", `{"account":""}`), http.StatusBadRequest, "account: empty")
	wantError(t, post("/api/v1/accounts/default", `{"account":"Pat","x":1}`), http.StatusBadRequest, "unknown field")
	wantError(t, e.do(t, req{path: "/api/v1/accounts/default"}), http.StatusMethodNotAllowed, "POST")

	// Bad new accounts.
	for _, c := range []struct {
		body   string
		status int
		substr string
	}{
		{`{"name":"pat","role":"patient","passphrase":""}`, http.StatusConflict, "already has an account named"},
		{`{"name":"","role":"patient","passphrase":""}`, http.StatusBadRequest, "name: empty"},
		{`{"name":"Eve\u0007","role":"patient","passphrase":""}`, http.StatusBadRequest, "control characters"},
		{`{"name":" Eve","role":"patient","passphrase":""}`, http.StatusBadRequest, "spaces"},
		{`{"name":"` + strings.Repeat("e", protocol.MaxNameLen+1) + `","role":"patient","passphrase":""}`, http.StatusBadRequest, "longer than"},
		{`{"name":"Eve","role":"wizard","passphrase":""}`, http.StatusBadRequest, "unknown role"},
		{`{"name":"Eve","role":"patient","passphrase":"","admin":true}`, http.StatusBadRequest, "unknown field"},
		{`{"name":"Eve","role":"patient","passphrase":"` + strings.Repeat("p", ops.MaxPassphrase+1) + `"}`, http.StatusBadRequest, "passphrase"},
		{`[]`, http.StatusBadRequest, "bad JSON"},
	} {
		wantError(t, post("/api/v1/accounts", c.body), c.status, c.substr)
	}
	if l, _ := ops.Accounts(ctx, repo); len(l.Accounts) != 2 {
		t.Fatalf("a refused request created an account: %+v", l)
	}

	// Contacts: bad share codes never reach the network; a refusal of the
	// other node is 502; a profile fetched is reported as added.
	for _, bad := range []string{"", "12D3KooW", "/ip4/127.0.0.1/tcp/1 " + string(stranger.ID), "/ip4/127.0.0.1/tcp/1/p2p/" + h.ID().String() + " nobody",
		"a b c", strings.Repeat("x ", ops.MaxShareCode)} {
		wantError(t, post("/api/v1/contacts", `{"share_code":"`+bad+`"}`), http.StatusBadRequest, "share code")
	}
	wantError(t, post("/api/v1/contacts", `{"share":"x"}`), http.StatusBadRequest, "unknown field")
	if len(profiles.asked) != 0 {
		t.Fatalf("bad share codes were sent on: %v", profiles.asked)
	}
	share := "/ip4/127.0.0.1/tcp/1/p2p/" + h.ID().String() + " " + string(stranger.ID)
	wantError(t, post("/api/v1/contacts", `{"share_code":"`+share+`"}`), http.StatusBadGateway, "peer refused")
	profiles.err = nil
	profiles.res = &keyshare.ImportResult{Accounts: []keyshare.AccountInfo{{ID: stranger.ID, Name: "Dr Who", Role: protocol.RoleClinician}}, NewBlocks: 1}
	var added ContactAdded
	decode(t, post("/api/v1/contacts", `{"share_code":"  `+share+`\n"}`), http.StatusOK, &added)
	if len(added.Added) != 1 || added.Added[0].ID != stranger.ID || len(added.Updated) != 0 || added.NewBlocks != 1 || profiles.asked[len(profiles.asked)-1] != stranger.ID {
		t.Fatalf("contact added: %+v", added)
	}
	decode(t, e.do(t, req{path: "/api/v1/contacts"}), http.StatusOK, &list)
	if len(list.Accounts) != 0 {
		t.Fatalf("contacts (the fake imports nothing): %+v", list)
	}
	wantError(t, e.do(t, req{method: http.MethodDelete, path: "/api/v1/contacts"}), http.StatusMethodNotAllowed, "GET, HEAD, POST")
}

// Without a repo or chain sync the endpoints that need them answer 501.
func TestAccountsNotProvided(t *testing.T) {
	e := newEnv(t)
	post := func(path, body string) *http.Response {
		return e.do(t, req{method: http.MethodPost, path: path, body: strings.NewReader(body), length: int64(len(body)), header: map[string]string{"Content-Type": "application/json"}})
	}
	wantError(t, post("/api/v1/accounts", `{"name":"Eve","role":"patient","passphrase":""}`), http.StatusNotImplemented, "cannot create")
	wantError(t, post("/api/v1/contacts", `{"share_code":"x y"}`), http.StatusNotImplemented, "cannot add contacts")
	wantError(t, post("/api/v1/accounts/default", `{"account":"x"}`), http.StatusNotImplemented, "no repo")
	var list AccountList
	decode(t, e.do(t, req{path: "/api/v1/contacts"}), http.StatusOK, &list)
	if len(list.Accounts) != 1 || list.Accounts[0].ID != e.contact {
		t.Fatalf("contacts: %+v", list)
	}
}

// equalJSON tells whether a and b encode to the same JSON.
func equalJSON(t *testing.T, a, b any) bool {
	t.Helper()
	ja, err1 := json.Marshal(a)
	jb, err2 := json.Marshal(b)
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	return bytes.Equal(ja, jb)
}
