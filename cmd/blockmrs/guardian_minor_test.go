package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// accountRow is one account of 'accounts --json'.
type accountRow struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	Local     bool   `json:"local"`
	Encrypted bool   `json:"encrypted"`
}

// accountNamed returns n's account named name ("" ID when none).
func accountNamed(t *testing.T, n *node, name string) accountRow {
	t.Helper()
	var l struct {
		Accounts []accountRow `json:"accounts"`
	}
	n.json(&l, "accounts", "--json")
	for _, a := range l.Accounts {
		if a.Name == name {
			return a
		}
	}
	return accountRow{}
}

// TestGuardianCreatePassphrase: guardian create stores a minor's keys
// under a passphrase as init does: $BLOCKMRS_PASSPHRASE (the key file is
// an age file, the plain key nowhere in it, and opens with that passphrase only), --no-passphrase explicitly
// unencrypted, and neither with no terminal is refused before anything is
// made; through the daemon the client's passphrase is used, and the
// daemon refuses when the client sent none.
func TestGuardianCreatePassphrase(t *testing.T) {
	mum := newNode(t, "mum pass")
	mum.initAccount("--name", "Mum", "--role", "patient")
	var minor struct {
		Ward string `json:"ward"`
	}
	mum.json(&minor, "guardian", "create", "Kim", "--json")
	kim := accountNamed(t, mum, "Kim")
	if kim.ID != minor.Ward || !kim.Encrypted || !kim.Local {
		t.Fatalf("Kim's account: %+v (ward %s)", kim, minor.Ward)
	}
	raw, err := os.ReadFile(filepath.Join(mum.dir, "keys", kim.ID+".key"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(raw, []byte("-----BEGIN AGE ENCRYPTED FILE-----")) || bytes.Contains(raw, []byte("AGE-SECRET-KEY")) {
		t.Fatalf("Kim's key file is not encrypted with a passphrase: %.60q", raw)
	}
	// The minor's keys open with the passphrase, and not without it.
	mum.ok("add", "--account", "Kim", "--title", "Vaccinations", writeTemp(t, "v.txt", []byte("MMR")))
	mum.env[envPassphrase] = "wrong"
	if r := mum.fail(1, "add", "--account", "Kim", "--title", "x", writeTemp(t, "x.txt", []byte("x"))); !strings.Contains(r.stderr, "passphrase") {
		t.Fatalf("Kim's keys under a wrong passphrase: %q", r.stderr)
	}
	mum.env[envPassphrase] = "mum pass"

	// Neither a passphrase nor --no-passphrase, and no terminal: refused,
	// nothing made.
	dad := newNode(t, "")
	dad.initAccount("--name", "Dad", "--role", "patient", "--no-passphrase")
	r := dad.fail(1, "guardian", "create", "Lea")
	if !strings.Contains(r.stderr, "no terminal to ask for a passphrase") || !strings.Contains(r.stderr, "--no-passphrase") {
		t.Fatalf("no passphrase source: %q", r.stderr)
	}
	if a := accountNamed(t, dad, "Lea"); a.ID != "" {
		t.Fatalf("a refused create made the account: %+v", a)
	}
	dad.ok("guardian", "create", "Lea", "--no-passphrase")
	if a := accountNamed(t, dad, "Lea"); a.ID == "" || a.Encrypted {
		t.Fatalf("--no-passphrase: %+v", a)
	}
	// Accepted by construction: the parent made the appointment.
	var ls struct {
		Wards []struct {
			WardName string `json:"ward_name"`
			Consent  string `json:"consent"`
		} `json:"wards"`
	}
	dad.json(&ls, "guardian", "ls", "--json")
	if len(ls.Wards) != 1 || ls.Wards[0].WardName != "Lea" || ls.Wards[0].Consent != "accepted" {
		t.Fatalf("the minor's appointment is not accepted on the parent's node: %+v", ls)
	}

	// Through the daemon: the client's passphrase, or a refusal without
	// one (the acting account unlocked in a session, so that only the
	// minor's passphrase is missing).
	md := startDaemon(t, mum)
	mum.json(&minor, "guardian", "create", "Max", "--json")
	if a := accountNamed(t, mum, "Max"); a.ID != minor.Ward || !a.Encrypted {
		t.Fatalf("Max made through the daemon: %+v", a)
	}
	mum.ok("unlock", "--account", "Mum")
	delete(mum.env, envPassphrase)
	r = mum.fail(1, "guardian", "create", "Ben", "--account", "Mum")
	if !strings.Contains(r.stderr, "no passphrase for the minor's keys") {
		t.Fatalf("through the daemon without a passphrase: %q", r.stderr)
	}
	if a := accountNamed(t, mum, "Ben"); a.ID != "" {
		t.Fatalf("a refused create made the account: %+v", a)
	}
	mum.ok("guardian", "create", "Ben", "--account", "Mum", "--no-passphrase")
	if a := accountNamed(t, mum, "Ben"); a.ID == "" || a.Encrypted {
		t.Fatalf("--no-passphrase through the daemon: %+v", a)
	}
	md.stop()
}

// TestGuardianHandoverEncrypted hands over a minor's account whose keys
// are encrypted, over two daemons on 127.0.0.1: the hand-over is refused
// while the minor's account is locked on the guardian's node, and once it
// is unlocked (a session, as for any account) the grown-up's node takes
// it over under its own passphrase and the guardian's repo forgets the
// keys and the session.
func TestGuardianHandoverEncrypted(t *testing.T) {
	mum, kim := newNode(t, "mum pass"), newNode(t, "kim pass")
	mum.initAccount("--name", "Mum", "--role", "patient")
	var minor struct {
		Ward string `json:"ward"`
	}
	mum.json(&minor, "guardian", "create", "Kim", "--json")
	kimID := minor.Ward
	md, kd := startDaemon(t, mum), startDaemon(t, kim)
	all := []*daemonProc{md, kd}

	r := mum.fail(1, "guardian", "handover", "Kim", "--account", "Mum", "--json")
	if !strings.Contains(r.stderr, "unlock the ward's account first") {
		t.Fatalf("hand-over of a locked ward: %q", r.stderr)
	}
	mum.ok("unlock", "--account", "Kim")
	var offer handoverOffer
	mum.json(&offer, "guardian", "handover", "Kim", "--account", "Mum", "--json")
	if offer.Account != kimID {
		t.Fatalf("offer: %+v", offer)
	}
	var took struct {
		Account struct {
			ID        string `json:"id"`
			Encrypted bool   `json:"encrypted"`
		} `json:"account"`
		From    string `json:"from"`
		Removed struct {
			Signing bool `json:"signing"`
		} `json:"removed"`
	}
	kim.json(&took, "device", "join", "--takeover", "--json", offer.Code)
	if took.Account.ID != kimID || !took.Account.Encrypted || took.From != md.info.PeerID || !took.Removed.Signing {
		t.Fatalf("takeover: %+v", took)
	}
	waitUntil(t, 30*time.Second, "the mother's repo forgets Kim's keys", func() bool { return !localAccount(t, mum, kimID) }, all...)
	var sess struct {
		Sessions []struct {
			Account string `json:"account"`
		} `json:"sessions"`
	}
	mum.json(&sess, "sessions", "--json")
	for _, s := range sess.Sessions {
		if s.Account == kimID {
			t.Fatalf("the mother's node keeps Kim's session after the hand-over: %+v", sess)
		}
	}
	// The grown-up's keys open with the grown-up's passphrase.
	kim.ok("add", "--title", "Grown up", writeTemp(t, "g.txt", []byte("my own note")))
	kim.verifyOK()
	for _, d := range all {
		d.stop()
	}
}
