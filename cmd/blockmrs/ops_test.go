package main

// The command line and the API are two faces of the operations in
// node/ops: walked through both against a running daemon, they give the
// same JSON.

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/blockmrs/blockmrs/node/api"
)

// sameJSON fails unless the command's --json output and the API's
// answer decode to the same value.
func sameJSON(t *testing.T, what, cli string, fromAPI any) {
	t.Helper()
	data, err := json.Marshal(fromAPI)
	if err != nil {
		t.Fatal(err)
	}
	var a, b any
	if err := json.Unmarshal([]byte(cli), &a); err != nil {
		t.Fatalf("%s: command output %q: %v", what, cli, err)
	}
	json.Unmarshal(data, &b)
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("%s differs:\ncommand line %s\nAPI          %s", what, strings.TrimSpace(cli), data)
	}
}

func TestOpsThroughCLIAndAPI(t *testing.T) {
	ctx := t.Context()
	// A newcomer starts with the daemon alone and creates the account
	// through the API.
	p := newNode(t, "")
	startAPIDaemon(t, p)
	pc, err := api.NewClient(p.dir)
	if err != nil {
		t.Fatal(err)
	}
	list, err := pc.Accounts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sameJSON(t, "accounts of a fresh repo", p.ok("accounts", "--json"), list)
	pat, err := pc.CreateAccount(ctx, api.NewAccount{Name: "Pat", Role: "patient", Passphrase: ""})
	if err != nil {
		t.Fatal(err)
	}
	if !pat.Default || len(pat.Devices) != 1 {
		t.Fatalf("created %+v", pat)
	}
	if _, err := pc.CreateAccount(ctx, api.NewAccount{Name: "PAT", Role: "patient"}); err == nil || !strings.Contains(err.Error(), "already has an account named") || strings.Contains(err.Error(), "\n") {
		t.Fatalf("a second Pat: %v", err)
	}
	if list, err = pc.Accounts(ctx); err != nil || len(list.Accounts) != 1 {
		t.Fatal(list, err)
	}
	sameJSON(t, "accounts", p.ok("accounts", "--json"), list)

	id, err := pc.Identity(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if id.Account == nil || id.Account.ID != pat.ID || len(id.Addrs) == 0 || id.ShareCode == "" || pat.Devices[0].PeerID != id.PeerID {
		t.Fatalf("identity %+v", id)
	}
	sameJSON(t, "id", p.ok("id", "--json"), id)
	// The text shows the same addresses and share code.
	var addrs []string
	text := p.ok("id")
	for line := range strings.Lines(text) {
		if f := strings.Fields(line); len(f) == 2 && f[0] == "address" {
			addrs = append(addrs, f[1])
		}
	}
	if !reflect.DeepEqual(addrs, id.Addrs) || !strings.Contains(text, "blockmrs contact add "+id.ShareCode+"\n") {
		t.Fatalf("id text %q, API addrs %v", text, id.Addrs)
	}
	share := strings.TrimSpace(p.ok("id", "--share"))
	if share != id.ShareCode {
		t.Fatalf("id --share %q, API share code %q", share, id.ShareCode)
	}

	// A clinician (init, offline) adds Pat by share code: through the
	// command line first, then the same again through both faces.
	d := newNode(t, "")
	d.initAccount("--name", "Dr Grey", "--role", "clinician", "--no-passphrase")
	startAPIDaemon(t, d)
	dc, err := api.NewClient(d.dir)
	if err != nil {
		t.Fatal(err)
	}
	addr, acct, _ := strings.Cut(share, " ")
	var first struct {
		Added []struct{ ID, Name string } `json:"added"`
	}
	d.json(&first, "contact", "add", addr, acct, "--json")
	if len(first.Added) != 1 || first.Added[0].ID != string(pat.ID) || first.Added[0].Name != "Pat" {
		t.Fatalf("contact add: %+v", first)
	}
	again, err := dc.AddContact(ctx, api.AddContactRequest{ShareCode: share})
	if err != nil {
		t.Fatal(err)
	}
	if len(again.Added) != 0 {
		t.Fatalf("added twice: %+v", again)
	}
	sameJSON(t, "contact add again", d.ok("contact", "add", addr, acct, "--json"), again)
	contacts, err := dc.Contacts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(contacts.Accounts) != 1 || contacts.Accounts[0].ID != pat.ID || len(contacts.Accounts[0].Devices) != 1 {
		t.Fatalf("contacts %+v", contacts)
	}
	sameJSON(t, "contacts", d.ok("contact", "ls", "--json"), contacts)
	dAccts, err := dc.Accounts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sameJSON(t, "the clinician's accounts", d.ok("accounts", "--json"), dAccts)

	// Bad share codes: one line from both faces, nothing dialled.
	if r := d.fail(2, "contact", "add", addr, "nobody"); strings.Count(r.stderr, "\n") != 1 || !strings.Contains(r.stderr, "share code: account") {
		t.Fatalf("contact add with a bad account: %+v", r)
	}
	if _, err := dc.AddContact(ctx, api.AddContactRequest{ShareCode: addr}); err == nil || strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), "share code") {
		t.Fatalf("API share code without an account: %v", err)
	}
}
