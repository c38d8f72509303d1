package main

// Attested roles over real daemons on 127.0.0.1: an authority attests a
// clinic, the clinic attests Dr Grey; a patient who never met any of them
// trusts the authority, fetches Dr Grey's role proof from Dr Grey's own
// node and sees the role verified; Dr Grey's access request shows as from
// a verified clinician; the clinic's directory finds him by name; a
// self-declared "clinician" never verifies; once the clinic withdraws the
// attestation the role is not verified, and a stale proof from Dr Grey's
// node does not bring it back.

import (
	"strings"
	"testing"
	"time"

	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/node/ops"
	"github.com/blockmrs/blockmrs/protocol"
)

// attestWorld is the authority, the clinic, Dr Grey, a self-declared
// clinician and the patient, each a node of its own, the first three
// attested offline (profiles exchanged as files) before their daemons
// start.
type attestWorld struct {
	auth, clinic, doc, mal, pat           *node
	authID, clinicID, docID, malID, patID string
}

func newAttestWorld(t *testing.T) *attestWorld {
	t.Helper()
	w := &attestWorld{auth: newNode(t, ""), clinic: newNode(t, ""), doc: newNode(t, ""), mal: newNode(t, ""), pat: newNode(t, "")}
	w.authID = w.auth.initAccount("--name", "Health Authority", "--role", "authority", "--no-passphrase")
	w.clinicID = w.clinic.initAccount("--name", "St Mary's", "--role", "clinic", "--no-passphrase")
	w.docID = w.doc.initAccount("--name", "Dr Grey", "--role", "clinician", "--no-passphrase")
	w.malID = w.mal.initAccount("--name", "Dr Mal", "--role", "clinician", "--no-passphrase")
	w.patID = w.pat.initAccount("--name", "Pat", "--role", "patient", "--no-passphrase")
	exchange := func(from, to *node) {
		if r := to.exec(strings.NewReader(from.ok("id", "--export", "-")), "contact", "add", "-"); r.code != 0 {
			t.Fatalf("contact add: %+v", r)
		}
	}
	exchange(w.clinic, w.auth)
	exchange(w.doc, w.clinic)
	w.auth.ok("attest", w.clinicID, "--role", "clinic")
	w.clinic.ok("attest", w.docID, "--role", "clinician", "--department", "Cardiology", "--emergency")
	return w
}

func checkRole(t *testing.T, n *node, account, from string) ops.RoleChecked {
	t.Helper()
	var out ops.RoleChecked
	args := []string{"attest", "check", account, "--json"}
	if from != "" {
		args = append(args, "--from", from)
	}
	n.json(&out, args...)
	return out
}

func TestAttestedRolesOverDaemons(t *testing.T) {
	w := newAttestWorld(t)
	ad, cd, dd := startDaemon(t, w.auth), startDaemon(t, w.clinic), startDaemon(t, w.doc)
	md, pd := startDaemon(t, w.mal), startDaemon(t, w.pat)

	// The clinic's node and Dr Grey's get the chains above them by role
	// proofs (the clinic's from the authority's node, Dr Grey's from the
	// clinic's): nobody copies a chain by hand.
	if got := checkRole(t, w.clinic, w.clinicID, ad.addr()); got.Fetched == nil || len(got.Fetched.Changed) == 0 {
		t.Fatalf("the clinic's proof from the authority's node brought nothing: %+v", got)
	}
	checkRole(t, w.doc, w.docID, cd.addr())

	// The patient has met nobody but the authority, whom she trusts.
	w.pat.ok("contact", "add", ad.addr(), w.authID)
	if out := w.pat.ok("trust", "ls"); !strings.Contains(out, "no trusted authority") {
		t.Fatalf("trust ls before trust add:\n%s", out)
	}
	w.pat.ok("trust", "add", w.authID)
	var tl ops.TrustList
	w.pat.json(&tl, "trust", "ls", "--json")
	if len(tl.Trusted) != 1 || tl.Trusted[0].Account != protocol.AccountID(w.authID) || tl.Trusted[0].Sources[0] != keyshare.TrustUser {
		t.Fatalf("trust ls: %+v", tl)
	}

	// Dr Grey's role, verified from his own node's proof.
	got := checkRole(t, w.pat, w.docID, dd.addr())
	p := got.Proof
	if !p.Verified || p.Rule != keyshare.RuleRoleVerified || p.Department != "Cardiology" || !p.Emergency || got.Name != "Dr Grey" {
		t.Fatalf("Dr Grey from his node: %+v", got)
	}
	if len(p.Path) != 3 || string(p.Path[0]) != w.authID || string(p.Path[1]) != w.clinicID || string(p.Path[2]) != w.docID {
		t.Fatalf("path %v", p.Path)
	}
	if out := w.pat.ok("attest", "check", w.docID); !strings.Contains(out, "clinician verified") || !strings.Contains(out, "Health Authority → St Mary's → Dr Grey") {
		t.Fatalf("attest check text:\n%s", out)
	}

	// A self-declared clinician never verifies, whatever his node sends.
	if m := checkRole(t, w.pat, w.malID, md.addr()).Proof; m.Verified || m.Rule != keyshare.RuleRoleDeclared {
		t.Fatalf("self-declared clinician: %+v", m)
	}
	if out := w.pat.ok("contact", "ls"); !strings.Contains(out, "clinician declared (not verified)") || !strings.Contains(out, "clinician verified") {
		t.Fatalf("contact ls shows no verdicts:\n%s", out)
	}

	// Dr Grey asks the patient for access: her inbox shows him verified.
	w.doc.ok("contact", "add", pd.addr(), w.patID)
	w.doc.ok("request", w.patID, "--reason", "cardiology follow-up")
	waitUntil(t, time.Minute, "the request arrives with the requester's role verified", func() bool {
		var rl ops.RequestList
		w.pat.json(&rl, "requests", "--json")
		return len(rl.Inbox) == 1 && rl.Roles[rl.Inbox[0].From].Verified
	}, pd, dd)
	if out := w.pat.ok("requests"); !strings.Contains(out, "[clinician verified]") {
		t.Fatalf("requests table:\n%s", out)
	}

	// The clinic's directory, searched by name.
	var dir ops.DirectoryResults
	w.pat.json(&dir, "directory", cd.addr(), "grey", "--json")
	if len(dir.Results) != 1 || dir.Results[0].Name != "Dr Grey" || !dir.Results[0].Proof.Verified || dir.Results[0].ClinicName != "St Mary's" {
		t.Fatalf("directory grey: %+v", dir)
	}
	w.pat.json(&dir, "directory", cd.addr(), "nobody-by-that-name", "--json")
	if len(dir.Results) != 0 {
		t.Fatalf("directory nobody: %+v", dir)
	}
	// By the clinic's account ID: its chain declares its node.
	w.pat.json(&dir, "directory", w.clinicID, "cardio", "--json")
	if len(dir.Results) != 1 || dir.Results[0].Department != "Cardiology" {
		t.Fatalf("directory by clinic ID: %+v", dir)
	}

	// The clinic withdraws; the clinic's node proves it.
	w.clinic.ok("attest", "rm", w.docID)
	if p := checkRole(t, w.pat, w.docID, cd.addr()).Proof; p.Verified || p.Rule != keyshare.RuleRoleWithdrawn {
		t.Fatalf("after withdrawal: %+v", p)
	}
	// Dr Grey's node still holds the clinic's older chain: its proof
	// does not undo the withdrawal.
	if p := checkRole(t, w.pat, w.docID, dd.addr()).Proof; p.Verified {
		t.Fatalf("a stale proof restored the role: %+v", p)
	}
	w.pat.json(&dir, "directory", cd.addr(), "grey", "--json")
	if len(dir.Results) != 0 {
		t.Fatalf("withdrawn clinician still listed: %+v", dir)
	}
	w.pat.ok("trust", "rm", w.authID)
	if out := w.pat.ok("trust", "ls"); !strings.Contains(out, "no trusted authority") {
		t.Fatalf("trust ls after trust rm:\n%s", out)
	}
}

// The commands without a daemon: usage errors exit 2, refusals 1, each
// with one line; what needs the network says to start the daemon.
func TestAttestCommandsOffline(t *testing.T) {
	w := newAttestWorld(t)
	w.clinic.fail(2, "attest", w.docID)
	w.clinic.fail(2, "attest", w.docID, "--role", "clinician", "--until", "soon")
	w.clinic.fail(2, "attest", "rm")
	w.clinic.fail(2, "directory")
	w.clinic.fail(1, "attest", w.docID, "--role", "patient")
	w.clinic.fail(1, "attest", w.authID, "--role", "authority") // unknown here, and no clinic may
	w.auth.fail(1, "trust", "add", w.clinicID)                  // declares clinic
	w.auth.fail(1, "trust", "rm", w.clinicID)                   // not trusted
	w.pat.fail(1, "directory", "/ip4/127.0.0.1/tcp/1/p2p/"+w.clinicID, "grey")
	w.pat.fail(1, "attest", "check", w.docID, "--from", "/ip4/127.0.0.1/tcp/1/p2p/"+w.clinicID)
	if r := w.pat.fail(1, "directory", "/ip4/127.0.0.1/tcp/1/p2p/"+w.clinicID); !strings.Contains(r.stderr, "blockmrs daemon") {
		t.Fatalf("directory without a daemon: %q", r.stderr)
	}
	out := w.clinic.ok("attest", "ls")
	if !strings.Contains(out, "Dr Grey") || !strings.Contains(out, "Cardiology, emergency access") || !strings.Contains(out, "live") {
		t.Fatalf("attest ls:\n%s", out)
	}
	var list ops.AttestationList
	w.clinic.json(&list, "attest", "ls", "--json")
	if len(list.Given) != 1 || len(list.Received) != 0 || list.Role.Verified || list.Role.Rule != keyshare.RuleRoleDeclared { // the authority's attestation is not held here yet
		t.Fatalf("attest ls --json: %+v", list)
	}
	w.clinic.ok("attest", "rm", w.docID)
	w.clinic.fail(1, "attest", "rm", w.docID)
	if out := w.clinic.ok("attest", "ls"); !strings.Contains(out, "withdrawn") {
		t.Fatalf("attest ls after rm:\n%s", out)
	}
}
