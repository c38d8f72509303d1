package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestRecoveryOverDaemons walks "recovery of a lost key" over real nodes
// on 127.0.0.1: Pat names Cam and Dee as recovery contacts (threshold 2),
// her chain reaches their nodes (Cam's keeps a replica), she loses her
// only device; on a new repo
// she starts a recovery; a stranger's approval is refused, one approval
// (k−1) does not finish it, two do; the recovered account reads its old
// record and writes a new one that Dee's node receives and verifies.
func TestRecoveryOverDaemons(t *testing.T) {
	pat, cam, dee, mal, fresh := newNode(t, ""), newNode(t, ""), newNode(t, ""), newNode(t, ""), newNode(t, "")
	patID := pat.initAccount("--name", "Pat", "--role", "patient", "--no-passphrase")
	camID := cam.initAccount("--name", "Cam", "--role", "patient", "--no-passphrase")
	deeID := dee.initAccount("--name", "Dee", "--role", "patient", "--no-passphrase")
	mal.initAccount("--name", "Mal", "--role", "patient", "--no-passphrase")

	pd, cd, dd := startDaemon(t, pat), startDaemon(t, cam), startDaemon(t, dee)
	all := []*daemonProc{pd, cd, dd}
	cam.ok("contact", "add", pd.addr(), patID)
	dee.ok("contact", "add", pd.addr(), patID)
	pat.ok("contact", "add", cd.addr(), camID)
	pat.ok("contact", "add", dd.addr(), deeID)

	// Cam's node keeps a replica of Pat's chain and ciphertext.
	before, added := writeReplicated(t, pat, cam, cd, all...)
	pat.ok("recovery", "setup", "--contacts", camID+","+deeID, "--threshold", "2")
	for _, c := range []*node{cam, dee} {
		waitContactOf(t, c, patID, all...)
	}

	// Every device of Pat's is lost.
	pd.stop()
	chain := filepath.Join(t.TempDir(), "pat.car")
	cam.ok("recovery", "export", patID, "-o", chain)
	var started struct {
		Token     string `json:"token"`
		Threshold int    `json:"threshold"`
	}
	fresh.json(&started, "recovery", "start", patID, "--chain", chain, "--json")
	if started.Threshold != 2 || started.Token == "" {
		t.Fatalf("recovery start: %+v", started)
	}

	// A stranger holding Pat's chain cannot approve.
	mal.ok("contact", "add", chain)
	if r := mal.run("recovery", "approve", started.Token); r.code == 0 || !strings.Contains(r.stderr, "not one of the account's recovery contacts") {
		t.Fatalf("a stranger approved: exit %d, %s", r.code, r.stderr)
	}

	// One approval is not enough.
	var camResp struct {
		Response string `json:"response"`
	}
	cam.json(&camResp, "recovery", "approve", started.Token, "--json")
	fresh.ok("recovery", "respond", patID, camResp.Response)
	if r := fresh.run("recovery", "finish", patID); r.code == 0 || !strings.Contains(r.stderr, "1 of the 2 approvals") {
		t.Fatalf("recovery finished with k−1 approvals: exit %d, %s", r.code, r.stderr)
	}
	if r := fresh.run("add", writeTemp(t, "x.txt", []byte("x")), "--title", "x"); r.code == 0 {
		t.Fatal("the new repo writes for Pat before the recovery finished")
	}

	// The second contact approves; the new node finishes, connected to Dee's.
	var deeResp struct {
		Response string `json:"response"`
	}
	dee.json(&deeResp, "recovery", "approve", started.Token, "--json")
	fresh.ok("recovery", "respond", patID, deeResp.Response)
	fd := startDaemon(t, fresh)
	all = []*daemonProc{cd, dd, fd}
	fresh.ok("contact", "add", dd.addr(), deeID)
	fresh.ok("contact", "add", cd.addr(), camID) // Cam's node holds the replica
	var finished struct {
		Account string `json:"account"`
		Signing struct {
			Since      uint64 `json:"since"`
			ThisDevice bool   `json:"this_device"`
		} `json:"signing"`
	}
	fresh.json(&finished, "recovery", "finish", patID, "--json")
	if finished.Account != patID || !finished.Signing.ThisDevice || finished.Signing.Since == 0 {
		t.Fatalf("recovery finish: %+v", finished)
	}

	// The same account reads its old record (fetched from the replica)
	// and writes a new one...
	out := filepath.Join(t.TempDir(), "old.out")
	waitUntil(t, 120*time.Second, "the recovered account reads its old record", func() bool {
		return fresh.run("get", added, "-o", out).code == 0
	}, all...)
	if !bytes.Equal(readFile(t, out), before) {
		t.Fatal("the recovered account read other bytes than it wrote")
	}
	after := []byte("written by the recovered account")
	var again struct {
		CID string `json:"cid"`
	}
	fresh.json(&again, "add", writeTemp(t, "after.txt", after), "--title", "After", "--json")
	fresh.ok("grant", again.CID, "--to", deeID)

	// ...which Dee's node receives over the network and verifies.
	out = filepath.Join(t.TempDir(), "new.out")
	waitUntil(t, 60*time.Second, "Dee reads the recovered account's new record", func() bool {
		return dee.run("get", again.CID, "-o", out).code == 0
	}, all...)
	if !bytes.Equal(readFile(t, out), after) {
		t.Fatal("Dee read other bytes than the recovered account wrote")
	}
	dee.verifyOK()
	fresh.verifyOK()
}

// Mistakes get one line saying what is wrong, and change nothing.
func TestRecoveryCommandErrors(t *testing.T) {
	n := newNode(t, "")
	id := n.initAccount("--name", "Pat", "--no-passphrase")
	n.fail(2, "recovery", "setup")
	n.fail(2, "recovery", "setup", "--off", "--threshold", "1")
	if r := n.fail(1, "recovery", "setup", "--contacts", "Nobody", "--threshold", "1"); !strings.Contains(r.stderr, "add the contact first") {
		t.Fatalf("unknown contact: %s", r.stderr)
	}
	if r := n.fail(1, "recovery", "approve", "zz"); !strings.Contains(r.stderr, "not a hex token") {
		t.Fatalf("bad token: %s", r.stderr)
	}
	if r := n.fail(1, "recovery", "deny", "../zz"); !strings.Contains(r.stderr, "64 hex characters") {
		t.Fatalf("deny a bad ID: %s", r.stderr)
	}
	if r := n.fail(1, "recovery", "approve", strings.Repeat("ab", 32)); !strings.Contains(r.stderr, "no recovery request") {
		t.Fatalf("approve an ID not in the inbox: %s", r.stderr)
	}
	if r := n.fail(1, "recovery", "start", id, "--via", "/ip4/127.0.0.1/tcp/1"); !strings.Contains(r.stderr, "/p2p/PEER-ID") {
		t.Fatalf("start --via without a peer ID: %s", r.stderr)
	}
	if out := n.ok("recovery", "requests"); !strings.Contains(out, "no recovery requests") {
		t.Fatalf("requests: %q", out)
	}
	if r := n.fail(1, "recovery", "start", id); !strings.Contains(r.stderr, "holds its keys already") {
		t.Fatalf("start on the account's own repo: %s", r.stderr)
	}
	if r := n.fail(1, "recovery", "status", id); !strings.Contains(r.stderr, "no recovery of") {
		t.Fatalf("status: %s", r.stderr)
	}
	if out := n.ok("recovery", "show"); !strings.Contains(out, "no recovery contacts") {
		t.Fatalf("show: %q", out)
	}
	n.ok("recovery", "setup", "--off")
}
