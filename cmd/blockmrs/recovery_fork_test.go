package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// theftScene is the fork choice's scene over files (no daemons): a thief
// holding Pat's only device grants her record to Mal and the clinic
// imports that chain; Pat recovers on a new repo with Cam's and Dee's
// approvals. The clinic has not yet seen the recovered chain.
type theftScene struct {
	pat, clinic *node  // the stolen device; the clinic
	patID       string // Pat's account
	record      string // Pat's record, which she shared with the clinic before the theft
	recovered   string // the recovered repo's export for Cam: the chain with the recovery
	dir         string // where the scene's files are
}

// newTheftScene plays the scene up to the recovered chain's export.
func newTheftScene(t *testing.T) *theftScene {
	t.Helper()
	pat, cam, dee, clinic, mal, fresh := newNode(t, ""), newNode(t, ""), newNode(t, ""), newNode(t, ""), newNode(t, ""), newNode(t, "")
	patID := pat.initAccount("--name", "Pat", "--role", "patient", "--no-passphrase")
	camID := cam.initAccount("--name", "Cam", "--role", "patient", "--no-passphrase")
	deeID := dee.initAccount("--name", "Dee", "--role", "patient", "--no-passphrase")
	clinicID := clinic.initAccount("--name", "St Mary's", "--role", "clinic", "--no-passphrase")
	malID := mal.initAccount("--name", "Mal", "--role", "patient", "--no-passphrase")
	s := &theftScene{pat: pat, clinic: clinic, patID: patID, dir: t.TempDir()}
	for _, c := range []*node{cam, dee, clinic, mal} {
		pat.ok("contact", "add", s.car(c, "contact.car"))
	}
	var added struct {
		CID string `json:"cid"`
	}
	pat.json(&added, "add", writeTemp(t, "allergies.txt", []byte("penicillin")), "--title", "Allergies", "--json")
	s.record = added.CID
	pat.ok("grant", added.CID, "--to", clinicID)
	pat.ok("recovery", "setup", "--contacts", camID+","+deeID, "--threshold", "2")
	before := s.car(pat, "pat.car")
	for _, n := range []*node{cam, dee, clinic} {
		n.ok("import", before)
	}

	// The theft: the thief's grant reaches the clinic.
	pat.ok("grant", added.CID, "--to", malID)
	clinic.ok("import", s.car(pat, "thief.car"))

	// Pat recovers on a new repo.
	chain := filepath.Join(s.dir, "recovery.car")
	cam.ok("recovery", "export", patID, "-o", chain)
	var started struct {
		Token string `json:"token"`
	}
	fresh.json(&started, "recovery", "start", patID, "--chain", chain, "--json")
	for _, c := range []*node{cam, dee} {
		var resp struct {
			Response string `json:"response"`
		}
		c.json(&resp, "recovery", "approve", started.Token, "--json")
		fresh.ok("recovery", "respond", patID, resp.Response)
	}
	fresh.ok("recovery", "finish", patID)

	// The new repo has not fetched the old record's ciphertext: its export
	// carries the chain and the records Cam may read (none).
	s.recovered = filepath.Join(s.dir, "recovered.car")
	fresh.ok("export", "--for", camID, s.recovered)
	return s
}

// car exports n's repo to a file named name in the scene's folder.
func (s *theftScene) car(n *node, name string) string {
	p := filepath.Join(s.dir, name)
	n.ok("export", p)
	return p
}

// TestRecoveryBeatsThiefInCLI walks the fork choice with the command line
// alone: the clinic's import of the recovered chain switches to it and
// says so, and verify passes, listing the thief's branch as superseded by
// recovery; the thief's branch offered again changes nothing.
func TestRecoveryBeatsThiefInCLI(t *testing.T) {
	s := newTheftScene(t)
	out := s.clinic.ok("import", s.recovered)
	if !strings.Contains(out, "switched to the arriving recovery") {
		t.Fatalf("the clinic's import of the recovered chain: %q", out)
	}
	v := s.clinic.ok("verify", "--chains")
	if !strings.Contains(v, "superseded by recovery: chain of Pat") || !strings.Contains(v, "verified: ok") || strings.Contains(v, "FORK") {
		t.Fatalf("the clinic's verify: %q", v)
	}
	// The thief's branch, offered again, is kept as evidence and changes nothing.
	out = s.clinic.ok("import", s.car(s.pat, "thief-again.car"))
	if !strings.Contains(out, "the arriving branch is superseded by recovery") || !strings.Contains(out, "0 new chain block(s)") {
		t.Fatalf("the thief's branch offered again: %q", out)
	}
}
