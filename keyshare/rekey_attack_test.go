package keyshare

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/ipfs/go-cid"

	"github.com/blockmrs/blockmrs/protocol"
)

// Attacks on re-keying. A rekey entry stops a record being served to
// anyone, so a false one is a denial of service on someone's record, and
// a rekey entry naming a record as a "new version" is a false provenance.
// Only the subject's rekey entry naming her own claim may do either.

// rekeyEntry is a rekey entry naming claim (author, block) on old, with
// new as its new version.
func rekeyEntry(old cid.Cid, author protocol.AccountID, block string, new cid.Cid) protocol.Entry {
	b, err := cid.Decode(block)
	if err != nil {
		panic(err)
	}
	return protocol.NewEntry(&protocol.Rekey{Record: protocol.NewLink(old), Author: keyOf(author), Block: protocol.NewLink(b), New: protocol.NewLink(new)})
}

// stillServed checks that Pat's record is served to Gus, her live grantee,
// from her node and his, is kept on his, and is not marked re-keyed.
func stillServed(t *testing.T, v *victims, what string) {
	t.Helper()
	ctx := context.Background()
	if ok, why, err := mayServe(ctx, v.pat.repo, v.node[v.gus], v.rec); err != nil || !ok {
		t.Fatalf("%s: Pat's node refuses Gus: %s %v", what, why, err)
	}
	a, err := v.pat.repo.Access(ctx, v.rec)
	if err != nil || a.Rekeyed != nil {
		t.Fatalf("%s: Pat's record is marked re-keyed: %+v %v", what, a.Rekeyed, err)
	}
	dropped, err := v.gus.repo.DropRevoked(ctx, v.node[v.gus], v.rec)
	if err != nil || len(dropped) != 0 {
		t.Fatalf("%s: Gus's node dropped %v: %v", what, dropped, err)
	}
	w, err := v.gus.repo.WantedRecords(ctx, v.node[v.gus], v.rec)
	if err != nil {
		t.Fatal(err)
	}
	_ = w // held already: nothing to want, and no refusal to see here
}

func TestRekeyEntryByAnotherAccountDoesNothing(t *testing.T) {
	ctx := context.Background()
	v := newVictims(t)
	if err := v.gus.repo.st.Pin(ctx, v.rec); err != nil { // as a fetch leaves it
		t.Fatal(err)
	}
	pa, err := v.pat.repo.Access(ctx, v.rec)
	if err != nil {
		t.Fatal(err)
	}
	// Rev (revoked, still holding the old key) names Pat's exact claim
	// as re-keyed, with a record of his own as the new version.
	decoy, err := v.rev.repo.AddRecord(ctx, v.rev.keys, NewRecord{Title: "decoy", Kind: protocol.KindNote, MediaType: "text/plain", Body: strings.NewReader("x")})
	if err != nil {
		t.Fatal(err)
	}
	appendTo(t, v.rev, rekeyEntry(v.rec, v.pat.keys.ID, pa.Entry.Block, decoy))
	deliverChain(t, v.rev, v.pat.repo, v.gus.repo)
	stillServed(t, v, "a rekey entry on the revoked grantee's chain")
	a, _ := v.pat.repo.Access(ctx, v.rec)
	if !slices.ContainsFunc(a.Problems, func(p string) bool { return strings.Contains(p, "only the record's subject") }) {
		t.Fatalf("the false rekey entry is not reported: %v", a.Problems)
	}
}

func TestRekeyOfAForgedClaimDoesNothing(t *testing.T) {
	ctx := context.Background()
	v := newVictims(t)
	if err := v.gus.repo.st.Pin(ctx, v.rec); err != nil {
		t.Fatal(err)
	}
	// Rev claims Pat's CID as his own record (he holds the key) and
	// re-keys that claim: his rekey entry marks his claim alone, which
	// counts on neither Pat's node nor Gus's.
	key := revokedKey(t, v, v.rev)
	claim := appendTo(t, v.rev, keyHolderClaim(t, v.rev, v.rev.keys.ID, v.rec, key, "mine"))
	decoy, err := v.rev.repo.AddRecord(ctx, v.rev.keys, NewRecord{Title: "decoy", Kind: protocol.KindNote, MediaType: "text/plain", Body: strings.NewReader("x")})
	if err != nil {
		t.Fatal(err)
	}
	appendTo(t, v.rev, rekeyEntry(v.rec, v.rev.keys.ID, claim.String(), decoy))
	deliverChain(t, v.rev, v.pat.repo, v.gus.repo)
	stillServed(t, v, "a re-key of the revoked grantee's own claim on the CID")
	for _, a := range claimsOn(t, v.pat.repo, v.rec, v.rev.keys.ID) {
		if a.Rekeyed == nil {
			t.Fatal("Rev's rekey of his own claim was not applied to it (the test would prove nothing)")
		}
	}
	refusedEveryBlock(t, v.pat.repo, v.node[v.rev], v.blocks, "Rev after re-keying his claim")
}

// A rekey entry naming Pat's record as the new version of another
// record does not make it one: provenance is the re-keying subject's own
// block alone.
func TestRekeyEntryCannotClaimProvenance(t *testing.T) {
	ctx := context.Background()
	v := newVictims(t)
	decoy, err := v.rev.repo.AddRecord(ctx, v.rev.keys, NewRecord{Title: "decoy", Kind: protocol.KindNote, MediaType: "text/plain", Body: strings.NewReader("x")})
	if err != nil {
		t.Fatal(err)
	}
	da, err := v.rev.repo.Access(ctx, decoy)
	if err != nil {
		t.Fatal(err)
	}
	appendTo(t, v.rev, rekeyEntry(decoy, v.rev.keys.ID, da.Entry.Block, v.rec))
	deliverChain(t, v.rev, v.pat.repo)
	a, err := v.pat.repo.Access(ctx, v.rec)
	if err != nil || a.RekeyOf != nil {
		t.Fatalf("Pat's record became a new version of Rev's: %+v %v", a.RekeyOf, err)
	}
	if !slices.ContainsFunc(a.Problems, func(p string) bool { return strings.Contains(p, "not in the block of that record's own entry") }) {
		t.Fatalf("the false provenance is not reported: %v", a.Problems)
	}
	// And Rev's own record is re-keyed, by himself: his business.
	if ra, _ := v.pat.repo.Access(ctx, decoy); ra.Rekeyed == nil {
		t.Fatal("Rev's rekey of his own record was not applied")
	}
	stillServed(t, v, "a false provenance")
}

// After Pat re-keys, the revoked grantee's forged claim on the old CID
// (his own record, proven on his chain) gets him nothing from Pat's node:
// her claim counts there and is re-keyed.
func TestForgedClaimAfterRekeyGetsNothing(t *testing.T) {
	ctx := context.Background()
	v := newVictims(t)
	key := revokedKey(t, v, v.rev)
	if _, err := v.pat.repo.Rekey(ctx, v.pat.keys, v.rec, ""); err != nil {
		t.Fatal(err)
	}
	appendTo(t, v.rev, keyHolderClaim(t, v.rev, v.rev.keys.ID, v.rec, key, "mine"))
	deliverChain(t, v.rev, v.pat.repo)
	for _, b := range v.blocks {
		d := decision(t, v.pat.repo, v.node[v.rev], b)
		if d.Allow {
			t.Fatalf("block %s served to Rev: %+v", b, d)
		}
	}
	if d := decision(t, v.pat.repo, v.node[v.gus], v.rec); d.Allow || d.Rule != RuleServeRekeyed {
		t.Fatalf("the old CID to Gus: %+v", d)
	}
}
