package keyshare

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"

	"github.com/blockmrs/blockmrs/protocol"
)

// A record a clinician writes for a patient reaches her node by chain sync
// before its blocks; RuleWantPending makes her node fetch it, so that her
// key can check it and acknowledge it. These tests deliver chains the way
// chain sync does (ApplyChains: nobody becomes a contact by it) and
// blocks the way a fetch does (fetchInto).

// syncChain applies from's whole chain to to, as chain sync does.
func syncChain(t *testing.T, from *party, to *Repo) {
	t.Helper()
	ctx := context.Background()
	head := from.repo.mustHead(t, from.keys.ID)
	offered := map[cid.Cid][]byte{}
	for c := head; ; {
		blk, err := from.repo.Store().Blockstore().Get(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		offered[c] = blk.RawData()
		b, err := protocol.DecodeBlock(blk.RawData())
		if err != nil {
			t.Fatal(err)
		}
		if b.Prev == nil {
			break
		}
		c = b.Prev.Cid
	}
	if _, err := to.ApplyChains(ctx, []cid.Cid{head}, offered); err != nil {
		t.Fatal(err)
	}
}

// fetchInto copies the DAG of root from one repo's store to another's and
// pins and indexes it, as exchange.Fetch leaves a fetched record.
func fetchInto(t *testing.T, from, to *Repo, root cid.Cid) {
	t.Helper()
	ctx := context.Background()
	var blks []blocks.Block
	if err := from.Store().Walk(ctx, root, func(b blocks.Block) error {
		blks = append(blks, b)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := to.Store().Blockstore().PutMany(ctx, blks); err != nil {
		t.Fatal(err)
	}
	if err := to.Store().Pin(ctx, root); err != nil {
		t.Fatal(err)
	}
	if err := to.IndexRecordBlocks(ctx, root); err != nil {
		t.Fatal(err)
	}
	to.RecordArrived(root)
}

// wantedFor returns what pat's node (peer ID self) wants, by record.
func wantedFor(t *testing.T, r *Repo, self string) map[cid.Cid]Wanted {
	t.Helper()
	w, err := r.WantedRecords(context.Background(), self)
	if err != nil {
		t.Fatal(err)
	}
	out := map[cid.Cid]Wanted{}
	for _, x := range w {
		out[x.Record] = x
	}
	return out
}

func note(t *testing.T, p *party, subject protocol.AccountID, title string, cc ...protocol.AccountID) cid.Cid {
	t.Helper()
	c, err := p.repo.AddRecord(context.Background(), p.keys, NewRecord{Title: title, Kind: protocol.KindNote, MediaType: "text/plain",
		Subject: subject, CC: cc, Body: strings.NewReader(title + " body")})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// pendingScene is Pat (her node patNode, one record of her own of
// several blocks), Doc a contact she added (his profile imported), Mal an
// account her repo knows only because chain sync brought his chain, and
// Gus another patient of Doc's.
type pendingScene struct {
	pat, doc, mal, gus *party
	patNode, docNode   string
	own                cid.Cid
	ownBlocks          []cid.Cid
}

func newPendingScene(t *testing.T) *pendingScene {
	t.Helper()
	ctx := context.Background()
	s := &pendingScene{
		pat: newParty(t, "Pat", protocol.RolePatient), doc: newParty(t, "Doc", protocol.RoleClinician),
		mal: newParty(t, "Mal", protocol.RoleClinician), gus: newParty(t, "Gus", protocol.RolePatient),
		patNode: newPeerID(t), docNode: newPeerID(t),
	}
	if _, err := s.pat.repo.SetDevice(ctx, s.pat.keys, s.patNode, "", false); err != nil {
		t.Fatal(err)
	}
	if _, err := s.doc.repo.SetDevice(ctx, s.doc.keys, s.docNode, "", false); err != nil {
		t.Fatal(err)
	}
	if _, err := s.mal.repo.SetDevice(ctx, s.mal.keys, newPeerID(t), "", false); err != nil {
		t.Fatal(err)
	}
	own, err := s.pat.repo.AddRecord(ctx, s.pat.keys, NewRecord{Title: "HbA1c", Kind: protocol.KindNote, MediaType: "text/plain",
		Body: strings.NewReader(strings.Repeat(forgedBody, 250_000))})
	if err != nil {
		t.Fatal(err)
	}
	s.own = own
	s.ownBlocks = recordBlocks(t, s.pat, s.own)
	for _, p := range []*party{s.doc, s.mal} {
		send(t, s.pat, p)
	}
	send(t, s.gus, s.doc)
	send(t, s.doc, s.pat) // Pat imports Doc's profile: a contact
	syncChain(t, s.mal, s.pat.repo)
	for p, want := range map[*party]bool{s.doc: true, s.mal: false} {
		if got, err := s.pat.repo.IsContact(ctx, p.keys.ID); err != nil || got != want {
			t.Fatalf("%s is a contact of Pat's repo: %v (%v), want %v", p.keys.ID, got, err, want)
		}
	}
	return s
}

// proofOf returns the proof of author's claim on c in r.
func proofOf(t *testing.T, r *Repo, c cid.Cid, author protocol.AccountID) Proof {
	t.Helper()
	as := claimsOn(t, r, c, author)
	if len(as) != 1 {
		t.Fatalf("%d claims of %s on %s", len(as), author, c)
	}
	return as[0].Proof
}

func TestContactRecordForPatientIsFetchedThenAcknowledged(t *testing.T) {
	ctx := context.Background()
	s := newPendingScene(t)
	lab := note(t, s.doc, s.pat.keys.ID, "Lipid panel")
	syncChain(t, s.doc, s.pat.repo)

	w, ok := wantedFor(t, s.pat.repo, s.patNode)[lab]
	if !ok || !w.Pending || w.For != s.pat.keys.ID || w.Replica || !slices.Equal(w.Providers, []string{s.docNode}) {
		t.Fatalf("Pat's node wants Doc's record as %+v (%v); want pending, for Pat, from Doc's node", w, ok)
	}
	// Wanted is not trusted: the claim counts for nothing on her node,
	// it cannot be acknowledged without its blocks, and her node serves
	// nobody on the strength of it (Doc's node included).
	if p := proofOf(t, s.pat.repo, lab, s.doc.keys.ID); p != ProofPending {
		t.Fatalf("Doc's claim is %s before any ack", p)
	}
	if n, err := s.pat.repo.Acknowledge(ctx, s.pat.keys); err != nil || n != 0 {
		t.Fatalf("Pat acknowledged %d records she does not hold: %v", n, err)
	}
	fetchInto(t, s.doc.repo, s.pat.repo, lab)
	if ok, why, err := mayServe(ctx, s.pat.repo, s.docNode, lab); err != nil || ok {
		t.Fatalf("Pat's node serves the pending record to Doc's node: %s %v", why, err)
	}
	if _, ok := wantedFor(t, s.pat.repo, s.patNode)[lab]; ok {
		t.Fatal("a record held whole is still wanted")
	}
	// Her key checks it: acknowledged, it counts, and she reads it.
	if n, err := s.pat.repo.Acknowledge(ctx, s.pat.keys); err != nil || n != 1 {
		t.Fatalf("Pat acknowledged %d records: %v", n, err)
	}
	if p := proofOf(t, s.pat.repo, lab, s.doc.keys.ID); p != ProofAcknowledged {
		t.Fatalf("Doc's claim is %s after the ack", p)
	}
	env, body, err := readAll(t, s.pat, lab)
	if err != nil || env.Title != "Lipid panel" || string(body) != "Lipid panel body" {
		t.Fatalf("Pat reads %v %q: %v", env, body, err)
	}
	// Her keepRecord keeps it.
	if dropped, err := s.pat.repo.DropRevoked(ctx, s.patNode); err != nil || len(dropped) != 0 {
		t.Fatalf("dropped %v: %v", dropped, err)
	}
}

// What an account that is not a contact, or a contact's claim that is
// not about her, makes her node fetch: nothing.
func TestPendingFetchNeedsAContactAndASubject(t *testing.T) {
	s := newPendingScene(t)
	// Mal's chain is on her node (chain sync brought it), he is no
	// contact: his record about her is not fetched.
	fromMal := note(t, s.mal, s.pat.keys.ID, "Buy now")
	syncChain(t, s.mal, s.pat.repo)
	// Doc's record about Gus, with a key wrapped for Pat as a reader
	// from the start: not about her, not fetched before it counts.
	forGus := note(t, s.doc, s.gus.keys.ID, "Gus's lipids", s.pat.keys.ID)
	syncChain(t, s.doc, s.pat.repo)
	w := wantedFor(t, s.pat.repo, s.patNode)
	for name, c := range map[string]cid.Cid{"Mal's record about Pat": fromMal, "Doc's record about Gus naming Pat": forGus} {
		if x, ok := w[c]; ok {
			t.Errorf("%s is wanted: %+v", name, x)
		}
	}
	// Adding Mal as a contact changes that (the nearest case).
	send(t, s.mal, s.pat)
	if x, ok := wantedFor(t, s.pat.repo, s.patNode)[fromMal]; !ok || !x.Pending {
		t.Fatalf("Mal's record is not wanted once he is a contact: %+v", x)
	}
}

// A contact forging claims about Pat: on her own record (the same CID, an
// inner block of it, the same bytes under another codec) nothing is
// fetched (she holds it, or the block is contested); on a CID she does not
// hold, with junk for her key, the record is fetched (at most
// MaxPendingFetch of them) and then never acknowledged, listed or counted.
func TestContactForgedPendingClaims(t *testing.T) {
	ctx := context.Background()
	s := newPendingScene(t)
	meta := claimsOn(t, s.pat.repo, s.own, s.pat.keys.ID)[0].meta
	targets := map[string]cid.Cid{
		"her record":             s.own,
		"an inner block":         s.ownBlocks[1],
		"the bytes as a raw CID": cid.NewCidV1(cid.Raw, s.own.Hash()),
	}
	for _, c := range targets {
		forge(t, s.doc, s.pat.keys.ID, nil, c, meta)
	}
	// Bytes on Doc's node that no other claim names.
	junkData := []byte("any bytes Doc's node holds")
	junk, err := blocks.NewBlockWithCid(junkData, testCID(string(junkData)))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.doc.repo.Store().Blockstore().Put(ctx, junk); err != nil {
		t.Fatal(err)
	}
	junkRec := junk.Cid()
	forge(t, s.doc, s.pat.keys.ID, nil, junkRec, meta)
	syncChain(t, s.doc, s.pat.repo)

	w := wantedFor(t, s.pat.repo, s.patNode)
	for name, c := range targets {
		if x, ok := w[c]; ok {
			t.Errorf("a forged claim on %s is wanted: %+v", name, x)
		}
	}
	if x, ok := w[junkRec]; !ok || !x.Pending {
		t.Fatalf("the contact's claim on a record Pat does not hold is not wanted: %+v", x)
	}
	// Doc's real record about Gus, claimed again about Pat: contested,
	// not wanted.
	forGus := note(t, s.doc, s.gus.keys.ID, "Gus only")
	forge(t, s.doc, s.pat.keys.ID, nil, forGus, meta)
	syncChain(t, s.doc, s.pat.repo)
	if x, ok := wantedFor(t, s.pat.repo, s.patNode)[forGus]; ok {
		t.Fatalf("a contested claim about Pat is wanted: %+v", x)
	}
	fetchInto(t, s.doc.repo, s.pat.repo, junkRec)
	if n, err := s.pat.repo.Acknowledge(ctx, s.pat.keys); err != nil || n != 0 {
		t.Fatalf("Pat acknowledged %d forged claims: %v", n, err)
	}
	for name, c := range map[string]cid.Cid{"her record": s.own, "the junk record": junkRec} {
		for _, a := range claimsOn(t, s.pat.repo, c, s.doc.keys.ID) {
			if a.Proof != ProofPending {
				t.Fatalf("Doc's forged claim on %s is %s", name, a.Proof)
			}
		}
		if ok, why, err := mayServe(ctx, s.pat.repo, s.docNode, c); err != nil || ok {
			t.Fatalf("Pat's node serves %s to the forger: %s %v", name, why, err)
		}
	}
	listed, err := s.pat.repo.List(ctx, s.pat.keys, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(listed) != 1 || listed[0].Record != s.own || listed[0].Author != s.pat.keys.ID || listed[0].Title != "HbA1c" {
		t.Fatalf("Pat's listing: %+v", listed)
	}
	env, _, err := readAll(t, s.pat, s.own)
	if err != nil || protocol.AccountIDFromKey(env.Author) != s.pat.keys.ID {
		t.Fatalf("Pat reads her record as %v: %v", env, err)
	}
}

// A contact can make her node fetch at most MaxPendingFetch records she
// has not acknowledged: the first ones on his chain. Acknowledging some
// makes room for the next.
func TestPendingFetchIsCappedPerAuthor(t *testing.T) {
	ctx := context.Background()
	s := newPendingScene(t)
	var recs []cid.Cid
	for i := range MaxPendingFetch + 3 {
		recs = append(recs, note(t, s.doc, s.pat.keys.ID, fmt.Sprintf("result %d", i)))
	}
	syncChain(t, s.doc, s.pat.repo)
	pending := func() []cid.Cid {
		var out []cid.Cid
		for _, c := range recs {
			if x, ok := wantedFor(t, s.pat.repo, s.patNode)[c]; ok && x.Pending {
				out = append(out, c)
			}
		}
		return out
	}
	if got := pending(); !slices.Equal(got, recs[:MaxPendingFetch]) {
		t.Fatalf("wanted %d records (%v), want the first %d", len(got), got, MaxPendingFetch)
	}
	// Held but not acknowledged (she is locked), they still take their
	// places.
	for _, c := range recs[:3] {
		fetchInto(t, s.doc.repo, s.pat.repo, c)
	}
	if got := pending(); !slices.Equal(got, recs[3:MaxPendingFetch]) {
		t.Fatalf("with 3 held and not acknowledged, wanted %d records, want %d", len(got), MaxPendingFetch-3)
	}
	// She unlocks and acknowledges them: the next ones are wanted.
	if n, err := s.pat.repo.Acknowledge(ctx, s.pat.keys); err != nil || n != 3 {
		t.Fatalf("acknowledged %d: %v", n, err)
	}
	if got := pending(); !slices.Equal(got, recs[3:]) {
		t.Fatalf("after 3 acks, wanted %d records, want %d", len(got), MaxPendingFetch)
	}
}

// pendingCandidate: the cases around the rule, on hand-made facts.
func TestPendingCandidate(t *testing.T) {
	contacts := set(doc, mal)
	noKey := func() []*Access {
		// a record entry by doc about pat without a key for pat (§5.3
		// makes such a block invalid; the policy does not rely on it)
		x := newFacts().claim(doc, pat, 1)
		x.f.Keys = slices.DeleteFunc(x.f.Keys, func(k keyFact) bool { return k.To == pat })
		return x.eval()
	}
	cases := []struct {
		name string
		as   []*Access
		want bool
	}{
		{"contact's pending claim about pat", newFacts().claim(doc, pat, 1).eval(), true},
		{"acknowledged: counts, not pending", newFacts().claim(doc, pat, 1).ack(pat, doc, 2, 1).eval(), false},
		{"no key for pat", noKey(), false},
		{"about someone else, pat a reader", newFacts().claim(doc, gp, 1, pat).eval(), false},
		{"pat's own", newFacts().claim(pat, pat, 1).eval(), false},
		{"by an account that is no contact", newFacts().claim(gp, pat, 1).eval(), false},
	}
	for _, tc := range cases {
		if got := pendingCandidate(tc.as, pat, vouch(pat), contacts) != nil; got != tc.want {
			t.Errorf("%s: candidate %v, want %v", tc.name, got, tc.want)
		}
	}
	// A contested block is not fetched, whoever the claims are by.
	as := newFacts().claim(doc, pat, 1).claim(mal, pat, 1).eval()
	if d := wantRecord(as, pat, true, false, vouch(pat), pendingFacts{contacts: contacts, contested: true}); d.Allow {
		t.Fatalf("a contested pending record is wanted: %+v", d)
	}
	// Nor for a replica (it holds no keys to check it with).
	if d := wantRecord(newFacts().claim(doc, pat, 1).eval(), pat, false, true, vouchSet{pat: vouchReplica}, pendingFacts{contacts: contacts}); d.Allow {
		t.Fatalf("a replica wants a pending record: %+v", d)
	}
}

// A record whose sealed envelope came with the chain but whose blocks
// are still being fetched lists as "arriving" (its title known), then as
// "readable" once it is whole.
func TestListShowsArrivingRecords(t *testing.T) {
	ctx := context.Background()
	s := newPendingScene(t)
	lab := note(t, s.doc, s.pat.keys.ID, "Lipid panel")
	syncChain(t, s.doc, s.pat.repo)
	status := func() (string, string) {
		t.Helper()
		list, err := s.pat.repo.List(ctx, s.pat.keys, false)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range list {
			if l.Record == lab {
				return l.Status, l.Title
			}
		}
		return "", ""
	}
	if st, title := status(); st != "arriving" || title != "Lipid panel" {
		t.Fatalf("before its blocks came: status %q, title %q", st, title)
	}
	// Her own record, whole, is readable.
	own, err := s.pat.repo.ListRecord(ctx, s.pat.keys, s.own)
	if err != nil || own.Status != "readable" {
		t.Fatalf("her own record: %q, %v", own.Status, err)
	}
	fetchInto(t, s.doc.repo, s.pat.repo, lab)
	if st, _ := status(); st != "readable" {
		t.Fatalf("after its blocks came: status %q", st)
	}
}
