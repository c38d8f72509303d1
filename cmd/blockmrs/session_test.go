package main

import (
	"strings"
	"testing"
	"time"
)

// After 'blockmrs unlock', commands through the daemon need no passphrase
// and so run no scrypt unlock: the client below has no passphrase to send
// and no terminal to ask on, so a command that works was served from the
// session. 'lock' ends it, a wrong passphrase is refused, the session
// locks itself after its idle time, and without a daemon unlock says
// where sessions live.
func TestUnlockSession(t *testing.T) {
	n := newNode(t, "sesame")
	n.initAccount("--name", "Pat", "--role", "patient")
	added := n.exec(strings.NewReader("ferritin 40"), "add", "-", "--title", "Ferritin")
	if added.code != 0 {
		t.Fatalf("add: %+v", added)
	}
	rec := strings.TrimSpace(added.stdout)
	if r := n.run("unlock"); r.code != 1 || !strings.Contains(r.stderr, "sessions live in the running daemon") {
		t.Fatalf("unlock without a daemon: %+v", r)
	}

	dmn := startAPIDaemon(t, n)
	defer dmn.stop(t)
	n.env[envPassphrase] = "wrong"
	if r := n.run("unlock"); r.code != 1 || !strings.HasSuffix(r.stderr, "wrong passphrase\n") || strings.Count(r.stderr, "\n") != 1 {
		t.Fatalf("unlock with a wrong passphrase: %+v", r)
	}
	delete(n.env, envPassphrase)
	if r := n.run("get", rec); r.code != 1 || !strings.Contains(r.stderr, "no terminal to ask for the passphrase") {
		t.Fatalf("get before unlock, without a passphrase: %+v", r)
	}

	n.env[envPassphrase] = "sesame"
	if out := n.ok("unlock", "--idle", "1h"); !strings.HasPrefix(out, "unlocked Pat") {
		t.Fatalf("unlock: %q", out)
	}
	delete(n.env, envPassphrase)
	for range 3 {
		if out := n.ok("get", rec); out != "ferritin 40" {
			t.Fatalf("get from the session: %q", out)
		}
	}
	if out := n.ok("add", "--title", "note", "-"); out == "" {
		// (stdin empty: an empty record is still a record)
		t.Fatal("add from the session printed nothing")
	}
	if out := n.ok("lock"); out != "locked 1 session(s)\n" {
		t.Fatalf("lock: %q", out)
	}
	if r := n.run("get", rec); r.code != 1 || !strings.Contains(r.stderr, "passphrase") {
		t.Fatalf("get after lock: %+v", r)
	}

	// A short idle time: the session locks itself when unused.
	n.env[envPassphrase] = "sesame"
	n.ok("unlock", "--idle", "1s")
	delete(n.env, envPassphrase)
	if out := n.ok("get", rec); out != "ferritin 40" {
		t.Fatalf("get right after unlock: %q", out)
	}
	time.Sleep(2500 * time.Millisecond)
	if r := n.run("get", rec); r.code != 1 || !strings.Contains(r.stderr, "passphrase") {
		t.Fatalf("get after the idle time: %+v", r)
	}
	if r := n.run("unlock", "--idle", "48h"); r.code != 2 {
		t.Fatalf("an idle time over 24h: %+v", r)
	}
}
