package keyshare

// Attacks on the access policy of policy.go (claims, acks, vouching,
// views), written by the attack branch. Each test is one attempt; a test
// that passes shows the defence holds.

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/ipfs/go-cid"

	"github.com/blockmrs/blockmrs/protocol"
)

// appendTo signs entries as p's next chain block and commits it to p's
// repo, bypassing every check the Repo methods make.
func appendTo(t *testing.T, p *party, entries ...protocol.Entry) cid.Cid {
	t.Helper()
	p.repo.mu.Lock()
	defer p.repo.mu.Unlock()
	c, err := p.repo.appendBlock(context.Background(), p.keys, entries)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// deliverChain sends from's chain alone (no record blocks) to each repo.
func deliverChain(t *testing.T, from *party, to ...*Repo) {
	t.Helper()
	ctx := context.Background()
	for _, r := range to {
		var car bytes.Buffer
		if err := exportChainOnly(ctx, from.repo, &car, from.repo.mustHead(t, from.keys.ID)); err != nil {
			t.Fatal(err)
		}
		if _, err := r.ImportCAR(ctx, &car); err != nil {
			t.Fatal(err)
		}
	}
}

// keyHolderClaim is a record entry by author about subject on target,
// made by someone who holds target's real record key: the key is wrapped
// for author, subject and readers, and the envelope, naming author,
// subject and title, is sealed with it, so it opens and agrees.
func keyHolderClaim(t *testing.T, author *party, subject protocol.AccountID, target cid.Cid, key *age.X25519Identity, title string, readers ...AccountInfo) protocol.Entry {
	t.Helper()
	ctx := context.Background()
	env := &protocol.Envelope{Title: title, Kind: protocol.KindNote, MediaType: "text/plain", Author: author.keys.Public(), Subject: keyOf(subject), Created: 1}
	hdr, err := env.Header()
	if err != nil {
		t.Fatal(err)
	}
	meta, err := seal(hdr, key.Recipient())
	if err != nil {
		t.Fatal(err)
	}
	rec := &protocol.Record{Record: protocol.NewLink(target), Subject: keyOf(subject), Meta: meta}
	self, err := author.repo.Account(ctx, author.keys.ID)
	if err != nil {
		t.Fatal(err)
	}
	all := []AccountInfo{self}
	if subject != author.keys.ID {
		subj, err := author.repo.Account(ctx, subject)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, subj)
	}
	for _, acct := range append(all, readers...) {
		w, err := wrapKey(key, acct)
		if err != nil {
			t.Fatal(err)
		}
		rec.Keys = append(rec.Keys, protocol.WrappedKey{To: keyOf(acct.ID), Key: w})
	}
	return protocol.NewEntry(rec)
}

// claimsOn returns the evaluated claims on c in r, by author.
func claimsOn(t *testing.T, r *Repo, c cid.Cid, author protocol.AccountID) []*Access {
	t.Helper()
	as, err := r.accessAll(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	var out []*Access
	for _, a := range as {
		if a.Author == author {
			out = append(out, a)
		}
	}
	return out
}

// revokedKey is the record key a revoked grantee still holds: the one
// the subject's grant wrapped for it (its grant stays on her chain).
func revokedKey(t *testing.T, v *victims, who *party) *age.X25519Identity {
	t.Helper()
	f, err := v.pat.repo.facts(context.Background(), v.rec)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range f.Keys {
		if k.Grant && k.To == who.keys.ID {
			key, err := unwrapKey(k.Key, who.keys.Age)
			if err != nil {
				t.Fatal(err)
			}
			return key
		}
	}
	t.Fatal("no grant to unwrap")
	return nil
}

func refusedEveryBlock(t *testing.T, r *Repo, peerID string, blocks []cid.Cid, what string) {
	t.Helper()
	for _, c := range blocks {
		if ok, why, err := mayServe(context.Background(), r, peerID, c); err != nil || ok {
			t.Fatalf("%s: block %s served: %s %v", what, c, why, err)
		}
	}
}

// A contact (here the revoked grantee, who still holds the record key
// from his old grant) declares the patient's own node, or her replica, as
// HIS replica: peer IDs are public. Does the node then vouch for him and
// count his forged claim on her record, serving him the ciphertext his
// old key opens?
func TestReplicaDeclaredByAttackerGivesNoVouch(t *testing.T) {
	ctx := context.Background()
	t.Run("patient's device node", func(t *testing.T) {
		v := newVictims(t)
		v.pat.repo.SetNodeID(v.node[v.pat])
		refusedEveryBlock(t, v.pat.repo, v.node[v.rev], v.blocks, "before the attack")
		if _, err := v.rev.repo.SetReplica(ctx, v.rev.keys, v.node[v.pat], "", false); err != nil {
			t.Fatal(err)
		}
		v.rev.repo.clock = func() time.Time { return time.UnixMilli(1) }
		forge(t, v.rev, v.rev.keys.ID, nil, v.rec, v.meta, v.pat)
		refusedEveryBlock(t, v.pat.repo, v.node[v.rev], v.blocks, "revoked grantee after declaring the patient's node his replica")
		// Nor a forged claim about Pat.
		forge(t, v.rev, v.pat.keys.ID, nil, v.rec, v.meta, v.pat)
		refusedEveryBlock(t, v.pat.repo, v.node[v.rev], v.blocks, "revoked grantee, claim about Pat")
		// And Pat's node does not start fetching Rev's claims as a replica.
		w, err := v.pat.repo.WantedRecords(ctx, v.node[v.pat])
		if err != nil {
			t.Fatal(err)
		}
		for _, x := range w {
			if x.Record == v.rec {
				t.Fatalf("Pat's node wants her own held record for %v", x)
			}
		}
		checkVictims(t, v, v.rev)
	})
	t.Run("patient's replica", func(t *testing.T) {
		v := newVictims(t)
		rNode := newPeerID(t)
		if _, err := v.pat.repo.SetReplica(ctx, v.pat.keys, rNode, "backup", false); err != nil {
			t.Fatal(err)
		}
		replica, err := Open(ctx, t.TempDir(), Options{Create: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { replica.Close() })
		replica.SetNodeID(rNode)
		var car bytes.Buffer
		if _, err := v.pat.repo.ExportCAR(ctx, &car, v.pat.keys.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := replica.ImportCAR(ctx, &car); err != nil {
			t.Fatal(err)
		}
		deliverChain(t, v.rev, replica)
		deliverChain(t, v.gus, replica)
		if ok, why, err := mayServe(ctx, replica, v.node[v.gus], v.rec); err != nil || !ok {
			t.Fatalf("the replica refuses the live grantee: %s %v", why, err)
		}
		refusedEveryBlock(t, replica, v.node[v.rev], v.blocks, "before the attack")
		if _, err := v.rev.repo.SetReplica(ctx, v.rev.keys, rNode, "", false); err != nil {
			t.Fatal(err)
		}
		v.rev.repo.clock = func() time.Time { return time.UnixMilli(1) }
		forge(t, v.rev, v.rev.keys.ID, nil, v.rec, v.meta)
		deliverChain(t, v.rev, replica)
		refusedEveryBlock(t, replica, v.node[v.rev], v.blocks, "revoked grantee after declaring the patient's replica his")
		// The cost: the replica cannot tell Pat's claim from Rev's, both
		// accounts declaring it, and serves neither (Pat's own node still
		// serves Gus).
		if ok, why, _ := mayServe(ctx, replica, v.node[v.gus], v.rec); ok {
			t.Logf("the replica still serves the live grantee: %s", why)
		}
		if ok, why, err := mayServe(ctx, v.pat.repo, v.node[v.gus], v.rec); err != nil || !ok {
			t.Fatalf("Pat's node refuses the live grantee: %s %v", why, err)
		}
	})
	t.Run("honest grantee's node keeps a revoked record", func(t *testing.T) {
		v := newVictims(t)
		mal := newEarlyParty(t, "Mallory", protocol.RolePatient)
		malNode := newPeerID(t)
		if _, err := mal.repo.SetDevice(ctx, mal.keys, malNode, "", false); err != nil {
			t.Fatal(err)
		}
		if _, err := mal.repo.SetReplica(ctx, mal.keys, v.node[v.gus], "", false); err != nil {
			t.Fatal(err)
		}
		// Gus's node holds the record pinned, as a fetch for him leaves it.
		if err := v.gus.repo.st.Pin(ctx, v.rec); err != nil {
			t.Fatal(err)
		}
		forge(t, mal, mal.keys.ID, []protocol.AccountID{v.gus.keys.ID}, v.rec, v.meta, v.gus)
		refusedEveryBlock(t, v.gus.repo, malNode, v.blocks, "Gus's node to Mallory")
		if _, err := v.pat.repo.Revoke(ctx, v.pat.keys, []cid.Cid{v.rec}, v.gus.keys.ID); err != nil {
			t.Fatal(err)
		}
		deliverChain(t, v.pat, v.gus.repo)
		dropped, err := v.gus.repo.DropRevoked(ctx, v.node[v.gus])
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(dropped, v.rec) {
			t.Fatalf("Gus's node kept the record revoked from him (dropped %v)", dropped)
		}
	})
}

// A revoked grantee still holds the record key (Pat's grant wraps it for
// him on her chain). He writes a claim about Pat on her record whose key
// opens it and whose envelope, sealed with that key, names him as author:
// everything ackFor checks holds. Pat's node must not acknowledge it (on
// import, on Acknowledge, or when she grants the record), or his claim
// becomes proven, counts on her node and gets him served.
func TestAckRefusedForKeyHolderClaimOnAProvenRecord(t *testing.T) {
	ctx := context.Background()
	v := newVictims(t)
	key := revokedKey(t, v, v.rev)
	appendTo(t, v.rev, keyHolderClaim(t, v.rev, v.pat.keys.ID, v.rec, key, "Forged title"))
	deliverChain(t, v.rev, v.pat.repo)
	if n, err := v.pat.repo.Acknowledge(ctx, v.pat.keys); err != nil || n != 0 {
		t.Fatalf("Pat acknowledged %d claims: %v", n, err)
	}
	if _, err := v.pat.repo.Grant(ctx, v.pat.keys, []cid.Cid{v.rec}, v.stan.keys.ID, time.Time{}); err != nil {
		t.Fatal(err)
	}
	for _, a := range claimsOn(t, v.pat.repo, v.rec, v.rev.keys.ID) {
		if a.Proof != ProofPending {
			t.Fatalf("the revoked grantee's claim is %s", a.Proof)
		}
	}
	refusedEveryBlock(t, v.pat.repo, v.node[v.rev], v.blocks, "revoked grantee with a key-holder claim")
	env, _, err := readAll(t, v.pat, v.rec)
	if err != nil || env.Title != "HbA1c" || protocol.AccountIDFromKey(env.Author) != v.pat.keys.ID {
		t.Fatalf("Pat reads %v: %v", env, err)
	}
}

// A claim whose key opens its envelope but not the record (a fresh key,
// wrapped for Pat, sealing an envelope the attacker wrote) is never
// acknowledged.
func TestAckRefusedWhenKeyOpensEnvelopeOnly(t *testing.T) {
	ctx := context.Background()
	v := newVictims(t)
	fresh, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	appendTo(t, v.stan, keyHolderClaim(t, v.stan, v.pat.keys.ID, v.rec, fresh, "Looks right"))
	deliverChain(t, v.stan, v.pat.repo)
	if n, err := v.pat.repo.Acknowledge(ctx, v.pat.keys); err != nil || n != 0 {
		t.Fatalf("Pat acknowledged %d claims: %v", n, err)
	}
	// Stan's envelope opens under his claim, but Pat's view stays hers.
	checkVictims(t, v, v.stan)
	// A record Pat does not hold: nothing to check the key on, no ack.
	other, err := v.gus.repo.AddRecord(ctx, v.gus.keys, NewRecord{Title: "x", Kind: protocol.KindNote, MediaType: "text/plain", Body: strings.NewReader("gus only")})
	if err != nil {
		t.Fatal(err)
	}
	appendTo(t, v.stan, keyHolderClaim(t, v.stan, v.pat.keys.ID, other, fresh, "Not held"))
	deliverChain(t, v.stan, v.pat.repo)
	if n, err := v.pat.repo.Acknowledge(ctx, v.pat.keys); err != nil || n != 0 {
		t.Fatalf("Pat acknowledged %d claims on a record she does not hold: %v", n, err)
	}
}

// An ack names an author and a chain block, not an entry. Doc writes, in
// one block, two record entries on the same CID about Pat: a true copy of
// his real claim and a second one wrapping the record key for Mallory
// and junk for Pat. Pat's node acknowledges the block (the first entry
// opens); the second must not become acknowledged with it, or it counts
// on her node and Mallory, a reader she never saw and cannot revoke
// under her view, is served her record.
func TestAckOfOneEntryDoesNotProveItsBlockNeighbour(t *testing.T) {
	ctx := context.Background()
	pat := newParty(t, "Pat", protocol.RolePatient)
	doc := newParty(t, "Doc", protocol.RoleClinician)
	mal := newParty(t, "Mallory", protocol.RoleClinician)
	patNode, malNode := newPeerID(t), newPeerID(t)
	if _, err := pat.repo.SetDevice(ctx, pat.keys, patNode, "", false); err != nil {
		t.Fatal(err)
	}
	if _, err := mal.repo.SetDevice(ctx, mal.keys, malNode, "", false); err != nil {
		t.Fatal(err)
	}
	send(t, pat, doc)
	send(t, mal, doc)
	send(t, mal, pat)
	rec, err := doc.repo.AddRecord(ctx, doc.keys, NewRecord{Title: "Lipids", Kind: protocol.KindNote, MediaType: "text/plain", Subject: pat.keys.ID, Body: strings.NewReader("LDL 2.1")})
	if err != nil {
		t.Fatal(err)
	}
	key, _, err := doc.repo.RecordKey(ctx, doc.keys, rec)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := doc.repo.Store().Blockstore().Get(ctx, doc.repo.mustHead(t, doc.keys.ID))
	if err != nil {
		t.Fatal(err)
	}
	b1, err := protocol.DecodeBlock(raw.RawData())
	if err != nil {
		t.Fatal(err)
	}
	real := b1.Entries[0]
	malInfo, err := doc.repo.Account(ctx, mal.keys.ID)
	if err != nil {
		t.Fatal(err)
	}
	wrapped, err := wrapKey(key, malInfo)
	if err != nil {
		t.Fatal(err)
	}
	body := real.Body.(*protocol.Record)
	second := &protocol.Record{Record: body.Record, Subject: body.Subject, Meta: body.Meta, Keys: []protocol.WrappedKey{
		{To: doc.keys.Public(), Key: []byte("junk")},
		{To: keyOf(pat.keys.ID), Key: []byte("junk")},
		{To: keyOf(mal.keys.ID), Key: wrapped},
	}}
	doc.repo.mu.Lock()
	_, err = doc.repo.appendBlock(ctx, doc.keys, []protocol.Entry{real, protocol.NewEntry(second)})
	doc.repo.mu.Unlock()
	if err != nil {
		t.Logf("a block with two claims on one CID is refused: %v", err)
		return
	}
	send(t, doc, pat)
	if _, err := pat.repo.Acknowledge(ctx, pat.keys); err != nil {
		t.Fatal(err)
	}
	for _, a := range claimsOn(t, pat.repo, rec, doc.keys.ID) {
		if _, ok := a.Reader(mal.keys.ID); ok && a.Proof != ProofPending {
			t.Errorf("the entry Pat never opened is %s by her ack of its neighbour", a.Proof)
		}
	}
	if ok, why, err := mayServe(ctx, pat.repo, malNode, rec); err != nil || ok {
		t.Fatalf("Pat's node serves Mallory under the unopened neighbour claim: %s %v", why, err)
	}
}

// Acks that do not name the claim exactly: by someone other than the
// subject (on the attacker's chain), by the subject naming another block
// of the author, naming another author, or a later claim of the same
// author on the same CID. None proves the claim.
func TestForgedAndMisdirectedAcksProveNothing(t *testing.T) {
	pending := func(t *testing.T, as []*Access, author protocol.AccountID, seq uint64) {
		t.Helper()
		for _, a := range as {
			if a.Author == author && a.Entry.Seq == seq {
				if a.Proof != ProofPending {
					t.Fatalf("claim %d by %s is %s", seq, author, a.Proof)
				}
				for _, id := range []protocol.AccountID{pat, mal} {
					if claimCounts(a, a.Contested, vouch(id)).Allow && id != a.Author {
						t.Fatalf("claim %d counts on %s's node", seq, id)
					}
				}
				return
			}
		}
		t.Fatalf("no claim %d by %s", seq, author)
	}
	// Mallory acks Doc's claim about Pat on his own chain.
	pending(t, newFacts().claim(doc, pat, 1).ack(mal, doc, 2, 1).eval(), doc, 1)
	// Pat's ack names another block of Doc's.
	pending(t, newFacts().claim(doc, pat, 1).ack(pat, doc, 2, 7).eval(), doc, 1)
	// Pat's ack names Mallory as author of Doc's block.
	pending(t, newFacts().claim(doc, pat, 1).ack(pat, mal, 2, 1).eval(), doc, 1)
	// Doc's later claim on the same CID (junk keys) is not covered by
	// Pat's ack of the first.
	as := newFacts().claim(doc, pat, 1).ack(pat, doc, 2, 1).claim(doc, pat, 3, mal).eval()
	pending(t, as, doc, 3)
	// And it does not count on Pat's node, nor give Mallory a block there.
	if d := serveRecordBlock(actingFor(mal), as, true, vouch(pat)); d.Allow {
		t.Fatalf("Mallory served under Doc's later claim: %s", d.Reason)
	}
	// Mallory's ack on his chain of Mallory's own claim about Pat.
	pending(t, newFacts().claim(pat, pat, 1).claim(mal, pat, 1).ack(mal, mal, 2, 1).eval(), mal, 1)
}

// The same attack at the level of facts: two claims of Doc in one block
// (entries 0 and 1), one ack of that block by Pat. Neither is
// acknowledged: the ack cannot say which entry it stands for.
func TestAckOfABlockWithTwoClaimsOnTheCIDProvesNeither(t *testing.T) {
	x := newFacts().claim(doc, pat, 1).ack(pat, doc, 2, 1)
	second := ref(doc, 1)
	second.Index = 1
	x.f.Claims = append(x.f.Claims, claimFact{Author: doc, Subject: pat, Entry: second})
	x.f.Keys = append(x.f.Keys, keyFact{To: mal, Key: []byte("k"), Via: second})
	as := x.eval()
	for _, a := range as {
		if a.Proof != ProofPending {
			t.Fatalf("claim %s is %s", a.Entry, a.Proof)
		}
	}
	if d := serveRecordBlock(actingFor(mal), as, true, vouch(pat)); d.Allow {
		t.Fatalf("Mallory served: %s", d.Reason)
	}
	// One claim in the block: the ack proves it.
	if a := newFacts().claim(doc, pat, 1).ack(pat, doc, 2, 1).eval()[0]; a.Proof != ProofAcknowledged {
		t.Fatalf("a lone claim is %s after its ack", a.Proof)
	}
}

// A replica declaration vouches for its account on uncontested blocks
// only (the author's replica still serves its pending claim to the
// subject); holding the account's keys vouches on contested ones too.
func TestReplicaVouchIsForUncontestedBlocksOnly(t *testing.T) {
	pendingDoc := newFacts().claim(doc, pat, 1).eval()[0]
	replica := vouchSet{doc: vouchReplica}
	if d := claimCounts(pendingDoc, false, replica); !d.Allow {
		t.Fatalf("the author's replica refuses its uncontested pending claim: %s", d.Reason)
	}
	if d := claimCounts(pendingDoc, true, replica); d.Allow {
		t.Fatalf("a replica declaration vouches on a contested block: %s", d.Reason)
	}
	if d := claimCounts(pendingDoc, true, vouch(doc)); !d.Allow {
		t.Fatalf("the author's own node refuses its contested claim: %s", d.Reason)
	}
	forged := newFacts().claim(pat, pat, 2).claim(mal, mal, 1).eval()
	if d := serveRecordBlock(actingFor(mal), forged, true, vouchSet{pat: vouchLocal, mal: vouchReplica}); d.Allow {
		t.Fatalf("Mallory's replica declaration gets him Pat's record: %s", d.Reason)
	}
	// A stranger's contest does not stop Pat's replica serving her
	// grantee; a contest by another account that declares the same
	// replica does (neither can be told from the other there).
	granted := newFacts().claim(pat, pat, 2).grant(pat, gp, 3, 0).claim(mal, mal, 1).eval()
	if d := serveRecordBlock(actingFor(gp), granted, true, vouchSet{pat: vouchReplica}); !d.Allow {
		t.Fatalf("a stranger's contest stops Pat's replica serving her grantee: %s", d.Reason)
	}
	if d := serveRecordBlock(actingFor(mal), granted, true, vouchSet{pat: vouchReplica, mal: vouchReplica}); d.Allow {
		t.Fatalf("a replica of both parties serves the forger: %s", d.Reason)
	}
}

// The decision cache holds facts, never decisions: a withdrawn device and
// an expired grant take effect on the next decision even when the same
// decision was just made (and cached facts were read for it).
func TestCacheDoesNotOutliveWithdrawalOrExpiry(t *testing.T) {
	ctx := context.Background()
	v := newVictims(t)
	if ok, why, err := mayServe(ctx, v.pat.repo, v.node[v.gus], v.rec); err != nil || !ok {
		t.Fatalf("live grantee refused: %s %v", why, err)
	}
	// Gus withdraws his device; Pat's node learns it from his chain.
	if _, err := v.gus.repo.SetDevice(ctx, v.gus.keys, v.node[v.gus], "", true); err != nil {
		t.Fatal(err)
	}
	deliverChain(t, v.gus, v.pat.repo)
	if ok, why, _ := mayServe(ctx, v.pat.repo, v.node[v.gus], v.rec); ok {
		t.Fatalf("a withdrawn device is still served: %s", why)
	}
	if ids, _ := v.pat.repo.ChainsServedTo(ctx, v.node[v.gus]); len(ids) != 0 {
		t.Fatalf("chains still announced to a withdrawn device: %v", ids)
	}
	// A grant to Stan expiring in an hour: served now, refused after.
	now := time.Now()
	v.pat.repo.clock = func() time.Time { return now }
	if _, err := v.pat.repo.Grant(ctx, v.pat.keys, []cid.Cid{v.rec}, v.stan.keys.ID, now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if ok, why, err := mayServe(ctx, v.pat.repo, v.node[v.stan], v.rec); err != nil || !ok {
		t.Fatalf("live grant refused: %s %v", why, err)
	}
	v.pat.repo.clock = func() time.Time { return now.Add(2 * time.Hour) }
	if ok, why, _ := mayServe(ctx, v.pat.repo, v.node[v.stan], v.rec); ok {
		t.Fatalf("an expired grant is still served (cached decision?): %s", why)
	}
}

// An export made for an account holds no record because a forged claim
// names that account as a reader.
func TestExportForAccountIgnoresForgedReaderClaim(t *testing.T) {
	ctx := context.Background()
	v := newVictims(t)
	mal := newEarlyParty(t, "Mallory", protocol.RolePatient)
	forge(t, mal, mal.keys.ID, []protocol.AccountID{v.stan.keys.ID}, v.rec, v.meta, v.pat)
	var car bytes.Buffer
	if _, err := v.pat.repo.ExportCAR(ctx, &car, v.pat.keys.ID, ExportOptions{For: v.stan.keys.ID}); err != nil {
		t.Fatal(err)
	}
	fresh, err := Open(ctx, t.TempDir(), Options{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fresh.Close() })
	if _, err := fresh.ImportCAR(ctx, &car); err != nil {
		t.Fatal(err)
	}
	for _, c := range v.blocks {
		if has, _ := fresh.Store().Blockstore().Has(ctx, c); has {
			t.Fatalf("the export for Stan holds block %s of Pat's record", c)
		}
	}
}
