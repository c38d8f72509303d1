package main

import (
	"strings"
	"testing"
)

// TestAccountsAndAdd covers several accounts in one repo, --account,
// accounts --set-default, profiles through stdin, notes from stdin and
// --supersedes.
func TestAccountsAndAdd(t *testing.T) {
	t.Parallel()
	n := newNode(t, "")
	alice := n.initAccount("--name", "alice", "--no-passphrase")
	clinic := n.initAccount("--name", "clinic", "--role", "clinic", "--no-passphrase")
	var list struct {
		Accounts []struct {
			ID      string `json:"id"`
			Default bool   `json:"default"`
			Local   bool   `json:"local"`
		} `json:"accounts"`
	}
	n.json(&list, "accounts", "--json")
	accts := list.Accounts
	if len(accts) != 2 || !accts[0].Default || accts[0].ID != alice || accts[1].Default {
		t.Fatalf("accounts: %+v", accts)
	}
	n.json(&list, "accounts", "--set-default", clinic[len(clinic)-6:], "--json")
	accts = list.Accounts
	if !accts[1].Default || accts[1].ID != clinic {
		t.Fatalf("accounts after --set-default: %+v", accts)
	}
	if r := n.fail(1, "accounts", "--set-default", "nobody"); !strings.Contains(r.stderr, `no account named "nobody"`) {
		t.Fatalf("--set-default nobody: %q", r.stderr)
	}
	if !strings.Contains(n.ok("id"), clinic) || !strings.Contains(n.ok("id", "--account", "alice"), alice) {
		t.Fatal("id does not follow the default or --account")
	}
	n.fail(1, "id", "--account", "nobody")

	// A second repo learns alice's profile through a pipe.
	other := newNode(t, "")
	other.initAccount("--name", "bob", "--no-passphrase")
	profile := n.ok("id", "--account", "alice", "--export", "-")
	if r := other.exec(strings.NewReader(profile), "contact", "add", "-"); r.code != 0 || !strings.Contains(r.stdout, "added") {
		t.Fatalf("contact add -: %+v", r)
	}
	if !strings.Contains(other.ok("contact", "ls"), alice) {
		t.Fatal("contact ls: alice missing")
	}
	// Her chain, readable as a contact's log; importing it twice changes
	// nothing.
	if !strings.Contains(other.ok("log", "alice"), "profile") {
		t.Fatal("log of a contact")
	}
	if r := other.exec(strings.NewReader(profile), "import", "-"); r.code != 0 || !strings.Contains(r.stdout, "unchanged") {
		t.Fatalf("import again: %+v", r)
	}

	// A note from stdin, then a corrected version superseding it.
	r := n.exec(strings.NewReader("BP 120/80\n"), "add", "--account", "alice", "--kind", "note", "--title", "BP", "--json", "-")
	if r.code != 0 {
		t.Fatalf("add note: %+v", r)
	}
	var ls struct {
		Records []listed `json:"records"`
	}
	n.json(&ls, "ls", "--account", "alice", "--json")
	l := ls.Records
	if len(l) != 1 || l[0].Title != "BP" || l[0].Media != "text/plain; charset=utf-8" || l[0].Kind != "note" {
		t.Fatalf("ls: %+v", l)
	}
	first := l[0].CID
	r = n.exec(strings.NewReader("BP 125/80\n"), "add", "-", "--account", "alice", "--kind", "note", "--supersedes", first)
	if r.code != 0 {
		t.Fatalf("add --supersedes: %+v", r)
	}
	second := strings.TrimSpace(r.stdout)
	if got := n.ok("get", "--account", "alice", second); got != "BP 125/80\n" {
		t.Fatalf("get: %q", got)
	}
	if !strings.Contains(n.ok("log", "--account", "alice"), "supersedes "+first) {
		t.Fatal("log: no supersedes")
	}
	// The clinic cannot supersede alice's record, nor read it.
	n.failIn(strings.NewReader("x"), 1, "add", "-", "--supersedes", first)
	if r := n.fail(1, "get", first); !strings.Contains(r.stderr, "no access") {
		t.Fatalf("get as clinic: %q", r.stderr)
	}
	n.verifyOK(second)
	if out := n.ok("gc"); !strings.Contains(out, "removed 0 block(s)") {
		t.Fatalf("gc: %s", out)
	}
	n.verifyOK(second, "--account", "alice")
}
