package main

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// recoveryInbox is what 'recovery requests --json' prints.
type recoveryInbox struct {
	Requests []struct {
		ID         string   `json:"id"`
		Account    string   `json:"account"`
		SafetyCode string   `json:"safety_code"`
		Approved   []string `json:"approved"`
	} `json:"requests"`
	Instruction string `json:"instruction"`
}

// recoveryState is what 'recovery status --json' prints.
type recoveryState struct {
	Request    string   `json:"request"`
	SafetyCode string   `json:"safety_code"`
	Threshold  int      `json:"threshold"`
	Approved   []string `json:"approved"`
	Ready      bool     `json:"ready"`
}

// waitContactOf waits until c's node holds account's recovery setup,
// which names an account of c's.
func waitContactOf(t *testing.T, c *node, account string, logs ...*daemonProc) {
	t.Helper()
	waitUntil(t, 60*time.Second, "the recovery setup reaches a contact's node", func() bool {
		var shown struct {
			ContactOf []struct {
				Account string `json:"account"`
			} `json:"contact_of"`
		}
		c.json(&shown, "recovery", "show", "--json")
		return slices.ContainsFunc(shown.ContactOf, func(o struct {
			Account string `json:"account"`
		}) bool {
			return o.Account == account
		})
	}, logs...)
}

// writeReplicated has Pat write a record and name Cam's node (cd) her
// replica, and waits until it holds the record; it returns the record's
// bytes and CID.
func writeReplicated(t *testing.T, pat, cam *node, cd *daemonProc, logs ...*daemonProc) ([]byte, string) {
	t.Helper()
	before := []byte("Pat's allergy list, written before the loss")
	var added struct {
		CID string `json:"cid"`
	}
	pat.json(&added, "add", writeTemp(t, "allergies.txt", before), "--title", "Allergies", "--json")
	pat.ok("replica", "add", cd.info.PeerID, "--name", "Cam's node")
	waitUntil(t, 60*time.Second, "Cam's node holds Pat's record as her replica", func() bool {
		return cam.run("cat", "--raw", added.CID).code == 0
	}, logs...)
	return before, added.CID
}

// TestRecoveryRequestsOverNetwork walks a recovery the nodes carry, over
// daemons on 127.0.0.1: Pat names Cam, Dee and Eve as recovery contacts
// (2 of 3) and loses her only device (its repo deleted); a new node
// imports her chain from Cam's recovery export and starts the recovery
// naming no node (no --via): the export gave it Cam's and Dee's first
// blocks and where Cam's node reached their nodes, and both see the request with the safety code the new node shows; with
// Cam's approval only, finish fails; once Dee approves on her node too,
// the new node has both responses by itself, finishes, and reads Pat's
// old record. A third party's request (for Mal, whose setup names Eve
// only) is refused by Cam's node and never shows in its inbox.
func TestRecoveryRequestsOverNetwork(t *testing.T) {
	pat, cam, dee, eve, fresh := newNode(t, ""), newNode(t, ""), newNode(t, ""), newNode(t, ""), newNode(t, "")
	patID := pat.initAccount("--name", "Pat", "--role", "patient", "--no-passphrase")
	camID := cam.initAccount("--name", "Cam", "--role", "patient", "--no-passphrase")
	deeID := dee.initAccount("--name", "Dee", "--role", "patient", "--no-passphrase")
	eveID := eve.initAccount("--name", "Eve", "--role", "patient", "--no-passphrase")

	pd, cd, dd, ed := startDaemon(t, pat), startDaemon(t, cam), startDaemon(t, dee), startDaemon(t, eve)
	all := []*daemonProc{pd, cd, dd, ed}
	for _, c := range []*node{cam, dee, eve} {
		c.ok("contact", "add", pd.addr(), patID)
	}
	pat.ok("contact", "add", cd.addr(), camID)
	pat.ok("contact", "add", dd.addr(), deeID)
	pat.ok("contact", "add", ed.addr(), eveID)
	cam.ok("contact", "add", dd.addr(), deeID) // Cam's node knows Dee's: the export hands it over

	before, added := writeReplicated(t, pat, cam, cd, all...)
	pat.ok("recovery", "setup", "--contacts", camID+","+deeID+","+eveID, "--threshold", "2")
	for _, c := range []*node{cam, dee} {
		waitContactOf(t, c, patID, all...)
	}

	// Every device of Pat's is lost: the node stops, its repo is gone.
	pd.stop()
	if err := os.RemoveAll(pat.dir); err != nil {
		t.Fatal(err)
	}
	chain := filepath.Join(t.TempDir(), "pat.car")
	var exported struct {
		Contacts []string `json:"contacts"`
		Peers    []string `json:"peers"`
	}
	cam.json(&exported, "recovery", "export", patID, "-o", chain, "--json")
	if !slices.Contains(exported.Contacts, camID) || !slices.Contains(exported.Contacts, deeID) ||
		!slices.Contains(exported.Peers, cd.info.PeerID) || !slices.Contains(exported.Peers, dd.info.PeerID) {
		t.Fatalf("Cam's recovery export holds %+v, want Cam's and Dee's first blocks and nodes", exported)
	}

	fd := startDaemon(t, fresh)
	all = []*daemonProc{cd, dd, ed, fd}
	var started recoveryState
	fresh.json(&started, "recovery", "start", patID, "--chain", chain, "--json")
	if started.Threshold != 2 || len(started.SafetyCode) != len("123-456-789") || started.Request == "" {
		t.Fatalf("recovery start: %+v", started)
	}
	if out := fresh.ok("recovery", "status", patID); !strings.Contains(out, started.SafetyCode) {
		t.Fatalf("recovery status does not show the safety code %s: %q", started.SafetyCode, out)
	}

	// Both contacts' nodes receive the request, with the same code.
	for _, c := range []*node{cam, dee} {
		waitUntil(t, 60*time.Second, "the request reaches a contact's node", func() bool {
			var in recoveryInbox
			c.json(&in, "recovery", "requests", "--json")
			return len(in.Requests) == 1
		}, all...)
		var in recoveryInbox
		c.json(&in, "recovery", "requests", "--json")
		if r := in.Requests[0]; r.ID != started.Request || r.Account != patID || r.SafetyCode != started.SafetyCode || !strings.Contains(in.Instruction, "compare this code") {
			t.Fatalf("the contact's inbox: %+v; the new node shows %s, code %s", in, started.Request, started.SafetyCode)
		}
		if out := c.ok("recovery", "requests"); !strings.Contains(out, started.SafetyCode) || !strings.Contains(out, "Call them and compare this code before approving") {
			t.Fatalf("recovery requests: %q", out)
		}
	}

	// A third party's request: Mal's setup names Eve only; Cam's node
	// refuses it.
	mal, mal2 := newNode(t, ""), newNode(t, "")
	malID := mal.initAccount("--name", "Mal", "--role", "patient", "--no-passphrase")
	md := startDaemon(t, mal)
	mal.ok("contact", "add", ed.addr(), eveID)
	eve.ok("contact", "add", md.addr(), malID)
	mal.ok("recovery", "setup", "--contacts", eveID, "--threshold", "1")
	waitContactOf(t, eve, malID, ed, md)
	malChain := filepath.Join(t.TempDir(), "mal.car")
	eve.ok("recovery", "export", malID, "-o", malChain)
	md.stop()
	m2d := startDaemon(t, mal2)
	mal2.ok("recovery", "start", malID, "--chain", malChain, "--via", cd.addr())
	waitUntil(t, 60*time.Second, "Cam's node refuses the third party's request", func() bool {
		return strings.Contains(cd.logs.String(), "names no account of this node as a recovery contact")
	}, cd, m2d)
	m2d.stop()

	// One approval: the new node fetches it, and finish still fails.
	var approved struct {
		Queued bool `json:"queued"`
	}
	cam.json(&approved, "recovery", "approve", started.Request, "--json")
	if !approved.Queued {
		t.Fatalf("approve by inbox ID did not queue the response: %+v", approved)
	}
	waitUntil(t, 60*time.Second, "the new node fetches Cam's response", func() bool {
		var s recoveryState
		fresh.json(&s, "recovery", "status", patID, "--json")
		return len(s.Approved) == 1
	}, all...)
	if r := fresh.run("recovery", "finish", patID); r.code == 0 || !strings.Contains(r.stderr, "1 of the 2 approvals") {
		t.Fatalf("recovery finished with one approval: exit %d, %s", r.code, r.stderr)
	}

	// Dee approves on her node; the new node gets it and finishes.
	dee.ok("recovery", "approve", started.Request)
	waitUntil(t, 60*time.Second, "the new node fetches Dee's response", func() bool {
		var s recoveryState
		fresh.json(&s, "recovery", "status", patID, "--json")
		return s.Ready
	}, all...)
	var in recoveryInbox
	cam.json(&in, "recovery", "requests", "--json")
	if len(in.Requests) != 1 || in.Requests[0].Account != patID {
		t.Fatalf("Cam's inbox holds %+v, want Pat's request only", in)
	}
	var finished struct {
		Account string `json:"account"`
	}
	fresh.json(&finished, "recovery", "finish", patID, "--json")
	if finished.Account != patID {
		t.Fatalf("recovery finish: %+v", finished)
	}
	fresh.ok("contact", "add", cd.addr(), camID) // Cam's node holds the replica
	out := filepath.Join(t.TempDir(), "old.out")
	waitUntil(t, 120*time.Second, "the recovered account reads its old record", func() bool {
		return fresh.run("get", added, "-o", out).code == 0
	}, all...)
	if !bytes.Equal(readFile(t, out), before) {
		t.Fatal("the recovered account read other bytes than it wrote")
	}
	fresh.verifyOK()
}
