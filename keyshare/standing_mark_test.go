package keyshare

import (
	"context"
	"testing"

	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"

	"github.com/blockmrs/blockmrs/protocol"
)

// storeContent stores data as a one-block record here and indexes it.
func storeContent(tb testing.TB, r *Repo, data string) cid.Cid {
	tb.Helper()
	ctx := context.Background()
	h, _ := mh.Sum([]byte(data), mh.SHA2_256, -1)
	c := cid.NewCidV1(cid.Raw, h)
	blk, _ := blocks.NewBlockWithCid([]byte(data), c)
	if err := r.st.Blockstore().Put(ctx, blk); err != nil {
		tb.Fatal(err)
	}
	if err := r.indexRecords(ctx, []cid.Cid{c}); err != nil {
		tb.Fatal(err)
	}
	return c
}

// reads tells whether account id reads record c under the subject's
// view, and under which standing grant.
func readsUnder(tb testing.TB, sr *standingRepo, c cid.Cid, id protocol.AccountID) (bool, string) {
	tb.Helper()
	a, err := sr.repo.AccessFor(context.Background(), c, sr.subject.ID)
	if err != nil {
		tb.Fatal(err)
	}
	rd, ok := a.Reader(id)
	return ok, rd.Scope
}

// A whole pass that gave nothing leaves the mark, and the mark does not
// hide what comes after it: a record that arrives on the subject's chain
// with no key for her standing grantees (written by another of her
// nodes) is covered by the next pass, and so is every older record in the
// scope of a standing grant made after the mark.
func TestCoverStandingMarkSkipsNothing(t *testing.T) {
	ctx := context.Background()
	sr := buildStanding(t, 40)
	r, obsGrantee, allGrantee := sr.repo, sr.grantees[0], sr.grantees[1]
	if n, err := r.CoverStanding(ctx, sr.subject); err != nil || n != 0 {
		t.Fatalf("first pass: %d keys, %v; want 0", n, err)
	}
	digest, err := r.coverDigest(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if marked, err := r.coverMarked(ctx, sr.subject.ID, digest); err != nil || !marked {
		t.Fatalf("an empty whole pass left no mark (%v)", err)
	}

	// A record arrives after the mark.
	late := storeContent(t, r, "late observation")
	sr.appendRaw(t, sr.entry(late, "Observation"))
	if ok, _ := readsUnder(t, sr, late, obsGrantee.ID); ok {
		t.Fatal("the late record is read by the grantee before any pass")
	}
	n, err := r.CoverStanding(ctx, sr.subject)
	if err != nil || n != 2 {
		t.Fatalf("the pass after a late record gave %d keys, %v; want 2 (patient/Observation.rs and patient/*.rs)", n, err)
	}
	for _, g := range []*Keys{obsGrantee, allGrantee} {
		if ok, _ := readsUnder(t, sr, late, g.ID); !ok {
			t.Errorf("%s does not read the late record after the pass", g.ID)
		}
	}
	if n, err := r.CoverStanding(ctx, sr.subject); err != nil || n != 0 {
		t.Fatalf("the pass after covering gave %d keys, %v; want 0", n, err)
	}

	// A standing grant made after the mark, on a block from another node
	// (no pass ran with it), covers the older records in its scope.
	newcomer, err := GenerateKeys()
	if err != nil {
		t.Fatal(err)
	}
	r.mu.Lock()
	err = r.commit(ctx, []verifiedBlock{signed(t, newcomer, 0, nil, 1, profileEntries(t, newcomer, "Newcomer", protocol.RoleClinician))})
	r.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	sr.appendRaw(t, protocol.NewEntry(&protocol.ScopeGrant{To: newcomer.Public(), Scope: "patient/Condition.rs"}))
	conditions := 0
	for i := range sr.recs {
		if i%3 == 2 {
			conditions++
		}
	}
	if n, err := r.CoverStanding(ctx, sr.subject); err != nil || n != conditions {
		t.Fatalf("the pass after a new standing grant gave %d keys, %v; want %d (every older Condition)", n, err, conditions)
	}
	if ok, scope := readsUnder(t, sr, sr.recs[2], newcomer.ID); !ok || scope != "patient/Condition.rs" {
		t.Errorf("the newcomer reads an older Condition: %v under %q", ok, scope)
	}
	if ok, _ := readsUnder(t, sr, sr.recs[0], newcomer.ID); ok {
		t.Error("the newcomer reads an Observation, outside its scope")
	}
}

// The mark is the subject's own (another account's first pass is whole),
// and any chain arriving ends it.
func TestCoverStandingMarkPerAccount(t *testing.T) {
	ctx := context.Background()
	sr := buildStanding(t, 10)
	r := sr.repo
	if _, err := r.CoverStanding(ctx, sr.subject); err != nil {
		t.Fatal(err)
	}
	other, err := r.CreateAccount(ctx, "Other", protocol.RolePatient, nil)
	if err != nil {
		t.Fatal(err)
	}
	digest, err := r.coverDigest(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if marked, _ := r.coverMarked(ctx, other.ID, digest); marked {
		t.Fatal("a new account has a mark before its first pass")
	}
	if marked, _ := r.coverMarked(ctx, sr.subject.ID, digest); marked {
		t.Fatal("the subject's mark still holds after a new account's chain arrived")
	}
}
