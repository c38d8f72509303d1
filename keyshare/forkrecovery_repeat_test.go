package keyshare

import (
	"context"
	"testing"

	"github.com/ipfs/go-cid"

	"github.com/blockmrs/blockmrs/protocol"
)

// Once a recovery has settled the fork at a seq, the thief can still sign
// any number of other blocks at that seq with the replaced key. Each used
// to overwrite the fork's evidence (one record per seq), so the branch
// the recovery first beat, whose grants the clinic followed, lost its GC
// root and was collected: the thief could erase the evidence of her first
// branch. Each also cost a replay of the chain from genesis and stored
// the new branch.

// thiefVariant signs, with pat's old key, a block at seq on top of the
// clinic's block before seq that hides rec (another block than any the
// thief wrote there).
func thiefVariant(t *testing.T, w *theftWorld, seq uint64, rec cid.Cid) (cid.Cid, []byte) {
	t.Helper()
	ctx := context.Background()
	id := w.pat.keys.ID
	pc, ok, err := w.clinic.repo.blockAt(ctx, id, seq-1)
	if err != nil || !ok {
		t.Fatalf("block %d: %v", seq-1, err)
	}
	prev, err := w.clinic.repo.readBlock(ctx, pc)
	if err != nil {
		t.Fatal(err)
	}
	link := protocol.NewLink(pc)
	hide := &protocol.Hide{Records: []protocol.Link{protocol.NewLink(rec)}}
	b := &protocol.Block{Seq: seq, Prev: &link, Time: prev.Time, Entries: []protocol.Entry{protocol.NewEntry(hide)}}
	raw, c, err := b.SignAs(keyOf(id), w.pat.keys.Sign)
	if err != nil {
		t.Fatal(err)
	}
	return c, raw
}

// The clinic follows the thief, then the recovery; the thief then offers
// other blocks at the recovery's seq. The clinic keeps the recovery, and
// the evidence of the first branch stays, through GC; the later variants
// are refused without being stored.
func TestRepeatedThiefBranchesKeepFirstEvidence(t *testing.T) {
	ctx := context.Background()
	w := newTheftWorld(t)
	id := w.pat.keys.ID
	w.thiefWrites(t)
	send(t, w.pat, w.clinic)
	thiefHead := w.clinic.repo.mustHead(t, id)
	st, err := w.clinic.repo.state(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	rec := w.recoverOwner(t)
	send(t, rec, w.clinic)
	head := w.clinic.repo.mustHead(t, id)
	var variants []cid.Cid
	for i := 0; i < 3; i++ {
		c, raw := thiefVariant(t, w, st.Seq, w.before)
		if i > 0 {
			// a different block each time: hide another record
			c, raw = thiefVariant(t, w, st.Seq, variants[i-1])
		}
		res, err := w.clinic.repo.ApplyChains(ctx, []cid.Cid{c}, map[cid.Cid][]byte{c: raw})
		if err != nil {
			t.Fatalf("variant %d: %v", i, err)
		}
		if len(res.Superseded) != 1 || res.Superseded[0].Switched || res.Superseded[0].Rule != RuleForkRecoveryHeld {
			t.Fatalf("variant %d: %+v", i, res.Superseded)
		}
		variants = append(variants, c)
	}
	if w.clinic.repo.mustHead(t, id) != head {
		t.Fatal("a variant moved the chain")
	}
	rep := settledOnly(t, w.clinic, 1)
	if rep.Superseded[0].Superseded != thiefHead.String() {
		t.Fatalf("evidence names %s, not the first branch %s", rep.Superseded[0].Superseded, thiefHead)
	}
	for i, c := range variants {
		if ok, err := w.clinic.repo.st.Blockstore().Has(ctx, c); err != nil || ok {
			t.Fatalf("variant %d stored: %v", i, err)
		}
	}
	if _, err := w.clinic.repo.GC(ctx); err != nil {
		t.Fatal(err)
	}
	if ok, err := w.clinic.repo.st.Blockstore().Has(ctx, thiefHead); err != nil || !ok {
		t.Fatalf("GC dropped the first branch the recovery beat: %v", err)
	}
}
