package keyshare

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/blockmrs/blockmrs/protocol"
)

// The attack of the issue "Access you can trust": someone who learned a
// record's CID signs a record entry claiming it, with junk wrapped keys and
// the record's sealed envelope copied, dated before the record, and chain
// sync (here a CAR of the attacker's chain alone) delivers it to the
// patient's node. Every variant must leave the patient reading her record
// with its true title and author, give the attacker's node and the nodes
// it names no block, keep a real grantee reading and served, and be named
// by verify.

// forgery is one forged claim: whom it names as subject, which further
// readers it wraps junk keys for, and which CID it claims.
type forgery struct {
	name    string
	subject func(v *victims) protocol.AccountID
	readers func(v *victims) []protocol.AccountID
	target  func(v *victims) cid.Cid
}

// victims is the scene: Pat's record (several blocks), Gus her live
// grantee, Rev a grantee she revoked, Stan a contact never granted.
type victims struct {
	pat, gus, rev, stan *party
	rec                 cid.Cid
	blocks              []cid.Cid
	meta                []byte
	node                map[*party]string // declared device of each party
}

const forgedBody = "HbA1c 5.4 %\n"

func newVictims(t *testing.T) *victims {
	ctx := context.Background()
	v := &victims{
		pat:  newParty(t, "Pat", protocol.RolePatient),
		gus:  newParty(t, "Gus", protocol.RoleClinician),
		rev:  newParty(t, "Rev", protocol.RoleClinician),
		stan: newParty(t, "Stan", protocol.RoleClinician),
		node: map[*party]string{},
	}
	for _, p := range []*party{v.pat, v.gus, v.rev, v.stan} {
		v.node[p] = newPeerID(t)
		if _, err := p.repo.SetDevice(ctx, p.keys, v.node[p], "", false); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []*party{v.gus, v.rev, v.stan} {
		send(t, p, v.pat)
		send(t, v.pat, p)
	}
	body := strings.Repeat(forgedBody, 250_000) // about 3 MB: several blocks
	rec, err := v.pat.repo.AddRecord(ctx, v.pat.keys, NewRecord{Title: "HbA1c", Kind: protocol.KindNote, MediaType: "text/plain", Body: strings.NewReader(body)})
	if err != nil {
		t.Fatal(err)
	}
	v.rec, v.blocks = rec, recordBlocks(t, v.pat, rec)
	if len(v.blocks) < 3 {
		t.Fatalf("record has %d blocks; the inner-block variant needs more", len(v.blocks))
	}
	for _, p := range []*party{v.gus, v.rev} {
		if _, err := v.pat.repo.Grant(ctx, v.pat.keys, []cid.Cid{rec}, p.keys.ID, time.Time{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := v.pat.repo.Revoke(ctx, v.pat.keys, []cid.Cid{rec}, v.rev.keys.ID); err != nil {
		t.Fatal(err)
	}
	f := &recordFacts{}
	if _, err := getJSON(ctx, v.pat.repo.ds, keyRecordFacts(rec), f); err != nil {
		t.Fatal(err)
	}
	v.meta = f.Claims[0].Meta
	// Gus holds the record, as a grantee's node does.
	var car bytes.Buffer
	if _, err := v.pat.repo.ExportCAR(ctx, &car, v.pat.keys.ID, ExportOptions{For: v.gus.keys.ID}); err != nil {
		t.Fatal(err)
	}
	if _, err := v.gus.repo.ImportCAR(ctx, &car); err != nil {
		t.Fatal(err)
	}
	return v
}

// forge appends the forged claim to attacker's chain, dated to the epoch
// (before every real block), and delivers that chain alone to each repo.
func forge(t *testing.T, attacker *party, subject protocol.AccountID, readers []protocol.AccountID, target cid.Cid, meta []byte, to ...*party) {
	t.Helper()
	ctx := context.Background()
	rec := &protocol.Record{Record: protocol.NewLink(target), Subject: keyOf(subject), Meta: meta}
	seen := map[protocol.AccountID]bool{}
	for _, id := range append([]protocol.AccountID{attacker.keys.ID, subject}, readers...) {
		if !seen[id] {
			seen[id] = true
			rec.Keys = append(rec.Keys, protocol.WrappedKey{To: keyOf(id), Key: []byte("junk, not an age file")})
		}
	}
	st, err := attacker.repo.state(ctx, attacker.keys.ID)
	if err != nil {
		t.Fatal(err)
	}
	prev := protocol.NewLink(st.head())
	b := &protocol.Block{Seq: st.Seq + 1, Prev: &prev, Time: st.Time, Entries: []protocol.Entry{protocol.NewEntry(rec)}}
	raw, c, err := b.Sign(attacker.keys.Sign)
	if err != nil {
		t.Fatal(err)
	}
	attacker.repo.mu.Lock()
	err = attacker.repo.commit(ctx, []verifiedBlock{{cid: c, block: b, raw: raw}})
	attacker.repo.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range to {
		var car bytes.Buffer
		if err := exportChainOnly(ctx, attacker.repo, &car, c); err != nil {
			t.Fatal(err)
		}
		if _, err := p.repo.ImportCAR(ctx, &car); err != nil {
			t.Fatal(err)
		}
	}
}

// newEarlyParty is newParty with every block dated to the epoch, so its
// claims come first in claim order.
func newEarlyParty(t *testing.T, name string, role protocol.Role) *party {
	t.Helper()
	return newPartyWith(t, name, role, Options{Clock: func() time.Time { return time.UnixMilli(1) }})
}

func forgeries() []forgery {
	rec := func(v *victims) cid.Cid { return v.rec }
	none := func(*victims) []protocol.AccountID { return nil }
	return []forgery{
		{"subject is the victim", func(v *victims) protocol.AccountID { return v.pat.keys.ID }, none, rec},
		{"victim and her grantee named as readers", nil, func(v *victims) []protocol.AccountID {
			return []protocol.AccountID{v.pat.keys.ID, v.gus.keys.ID}
		}, rec},
		{"claim on an inner block", func(v *victims) protocol.AccountID { return v.pat.keys.ID }, none,
			func(v *victims) cid.Cid { return v.blocks[1] }},
		{"claim under another codec", func(v *victims) protocol.AccountID { return v.pat.keys.ID }, none,
			func(v *victims) cid.Cid { return cid.NewCidV1(cid.Raw, v.rec.Hash()) }},
	}
}

func TestForgedClaims(t *testing.T) {
	ctx := context.Background()
	for _, fg := range forgeries() {
		for _, who := range []string{"revoked grantee", "never-granted contact", "stranger"} {
			t.Run(fg.name+"/by a "+who, func(t *testing.T) {
				v := newVictims(t)
				attacker := map[string]*party{"revoked grantee": v.rev, "never-granted contact": v.stan}[who]
				if attacker == nil {
					attacker = newEarlyParty(t, "Mallory", protocol.RolePatient)
					v.node[attacker] = newPeerID(t)
					if _, err := attacker.repo.SetDevice(ctx, attacker.keys, v.node[attacker], "", false); err != nil {
						t.Fatal(err)
					}
				} else {
					// Backdate: the attacker's node clock goes to the epoch
					// (block times only move forward, so the forged block
					// is dated like the attacker's previous one).
					attacker.repo.clock = func() time.Time { return time.UnixMilli(1) }
				}
				subject := attacker.keys.ID
				if fg.subject != nil {
					subject = fg.subject(v)
				}
				forge(t, attacker, subject, fg.readers(v), fg.target(v), v.meta, v.pat, v.gus)
				checkVictims(t, v, attacker)
			})
		}
	}
}

// checkVictims asserts everything the forged claim must not change.
func checkVictims(t *testing.T, v *victims, attacker *party) {
	t.Helper()
	ctx := context.Background()
	// Pat reads her record, with its true title and author.
	env, data, err := readAll(t, v.pat, v.rec)
	if err != nil {
		t.Fatalf("Pat cannot read her record: %v", err)
	}
	if env.Title != "HbA1c" || protocol.AccountIDFromKey(env.Author) != v.pat.keys.ID || !strings.HasPrefix(string(data), forgedBody) {
		t.Fatalf("Pat reads %q by %s", env.Title, protocol.AccountIDFromKey(env.Author))
	}
	if _, _, err := v.pat.repo.RecordKey(ctx, v.pat.keys, v.rec); err != nil {
		t.Fatalf("Pat's key export fails: %v", err)
	}
	listed, err := v.pat.repo.List(ctx, v.pat.keys, true)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, l := range listed {
		if l.Record != v.rec {
			continue
		}
		found = true
		if l.Author != v.pat.keys.ID || l.Title != "HbA1c" || l.Status != "readable" || l.Error != "" {
			t.Fatalf("Pat's listing shows author %s title %q status %q error %q", l.Author, l.Title, l.Status, l.Error)
		}
	}
	if !found {
		t.Fatal("Pat's listing lost the record")
	}
	if len(listed) != 1 {
		t.Fatalf("Pat's listing holds %d rows, want her one record: a forged claim added rows", len(listed))
	}
	// Gus, her live grantee, reads it too, with its true title.
	env, _, err = readAll(t, v.gus, v.rec)
	if err != nil || env.Title != "HbA1c" {
		t.Fatalf("Gus, a live grantee, reads %v: %v", env, err)
	}
	// Pat's node serves Gus every block and the attacker, the revoked
	// grantee and the never-granted contact none.
	for _, c := range v.blocks {
		if ok, why, err := mayServe(ctx, v.pat.repo, v.node[v.gus], c); err != nil || !ok {
			t.Fatalf("block %s refused to the live grantee: %s %v", c, why, err)
		}
		for _, p := range []*party{attacker, v.rev, v.stan} {
			if ok, why, err := mayServe(ctx, v.pat.repo, v.node[p], c); err != nil || ok {
				t.Fatalf("block %s served to %s: %s %v", c, p.keys.ID, why, err)
			}
		}
	}
	// Gus's node, holding the record as a grantee, serves the attacker
	// nothing either.
	for _, c := range v.blocks {
		if ok, why, _ := mayServe(ctx, v.gus.repo, v.node[attacker], c); ok {
			t.Fatalf("the grantee's node served block %s to the attacker: %s", c, why)
		}
	}
	// verify names the contested CID.
	rep, err := v.pat.repo.Verify(ctx, VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK || !strings.Contains(strings.Join(rep.Problems, "\n"), "contested") {
		t.Fatalf("verify does not report the contest: %v", rep.Problems)
	}
	// Pat does not acknowledge the forged claim.
	if n, err := v.pat.repo.Acknowledge(ctx, v.pat.keys); err != nil || n != 0 {
		t.Fatalf("Pat acknowledged %d claims: %v", n, err)
	}
}

// A real record a clinician writes about a patient reaches her, is
// acknowledged once her key opens it, and is then served to a grantee of
// hers; before that the patient's node gives the clinician's claim no
// weight, and the clinician's own node serves it to her.
func TestRealClinicianRecordIsAcknowledgedAndServed(t *testing.T) {
	ctx := context.Background()
	pat := newParty(t, "Pat", protocol.RolePatient)
	doc := newParty(t, "Doc", protocol.RoleClinician)
	gp := newParty(t, "GP", protocol.RoleClinician)
	patNode, docNode, gpNode := newPeerID(t), newPeerID(t), newPeerID(t)
	for p, n := range map[*party]string{pat: patNode, doc: docNode, gp: gpNode} {
		if _, err := p.repo.SetDevice(ctx, p.keys, n, "", false); err != nil {
			t.Fatal(err)
		}
	}
	send(t, pat, doc)
	send(t, gp, pat)
	rec, err := doc.repo.AddRecord(ctx, doc.keys, NewRecord{Title: "Lipids", Kind: protocol.KindNote, MediaType: "text/plain", Subject: pat.keys.ID, Body: strings.NewReader("LDL 2.1")})
	if err != nil {
		t.Fatal(err)
	}
	// The clinician's node vouches for its own claim and serves Pat.
	if ok, why, err := mayServe(ctx, doc.repo, patNode, rec); err != nil || !ok {
		t.Fatalf("the author's node refuses the subject: %s %v", why, err)
	}
	send(t, doc, pat)
	a, err := pat.repo.AccessFor(ctx, rec, pat.keys.ID)
	if err != nil || a.Proof != ProofPending {
		t.Fatalf("before her ack the claim is %q: %v", a.Proof, err)
	}
	env, _, err := readAll(t, pat, rec)
	if err != nil || env.Title != "Lipids" {
		t.Fatalf("Pat cannot check the record written for her: %v", err)
	}
	if n, err := pat.repo.Acknowledge(ctx, pat.keys); err != nil || n != 1 {
		t.Fatalf("acknowledged %d: %v", n, err)
	}
	if a, _ := pat.repo.AccessFor(ctx, rec, pat.keys.ID); a.Proof != ProofAcknowledged {
		t.Fatalf("after her ack the claim is %q", a.Proof)
	}
	if _, err := pat.repo.Grant(ctx, pat.keys, []cid.Cid{rec}, gp.keys.ID, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if ok, why, err := mayServe(ctx, pat.repo, gpNode, rec); err != nil || !ok {
		t.Fatalf("Pat's node refuses her grantee the acknowledged record: %s %v", why, err)
	}
	// Doc's chain is served to Pat's device: she must verify his record.
	head := doc.repo.mustHead(t, doc.keys.ID)
	if ok, why, err := mayServe(ctx, pat.repo, patNode, head); err != nil || !ok {
		t.Fatalf("the author's chain refused to the subject: %s %v", why, err)
	}
}

// Pat's dedicated replica (a node with no account of its own) keeps
// serving her live grantee when a stranger's forged, pending claim names
// her as subject — such a claim counts for nobody, so it is no rival — and
// serves the forger nothing.
func TestReplicaServesThroughAForgedPendingClaim(t *testing.T) {
	ctx := context.Background()
	v := newVictims(t)
	replicaNode := newPeerID(t)
	if _, err := v.pat.repo.SetReplica(ctx, v.pat.keys, replicaNode, "backup", false); err != nil {
		t.Fatal(err)
	}
	rr, err := Open(ctx, t.TempDir(), Options{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	defer rr.Close()
	rr.SetNodeID(replicaNode)
	replica := &party{repo: rr}
	send(t, v.gus, replica)
	send(t, v.pat, replica) // the whole export: chain and ciphertext
	mal := newEarlyParty(t, "Mallory", protocol.RolePatient)
	malNode := newPeerID(t)
	if _, err := mal.repo.SetDevice(ctx, mal.keys, malNode, "", false); err != nil {
		t.Fatal(err)
	}
	forge(t, mal, v.pat.keys.ID, nil, v.rec, v.meta, replica)
	for _, c := range v.blocks {
		if ok, why, err := mayServe(ctx, rr, v.node[v.gus], c); err != nil || !ok {
			t.Fatalf("the replica refuses the live grantee block %s: %s %v", c, why, err)
		}
		if ok, why, _ := mayServe(ctx, rr, malNode, c); ok {
			t.Fatalf("the replica serves the forger block %s: %s", c, why)
		}
	}
}
