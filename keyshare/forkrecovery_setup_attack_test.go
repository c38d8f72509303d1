package keyshare

import (
	"bytes"
	"context"
	"testing"

	"github.com/blockmrs/blockmrs/protocol"
)

// The thief, holding pat's stolen key, rewrites pat's recovery setup on
// her branch to name her own account (Mal, threshold 1), then "recovers"
// pat's account on her branch with Mal's approval. The fork is judged at
// the block where the branches part, on the chain as of the block before:
// there the setup is pat's own, so the thief's setup change is a block of
// the replaced key and the owner's recovery wins, whichever branch a node
// held first.
func TestThiefSetupOnHerBranchLoses(t *testing.T) {
	ctx := context.Background()
	w := newTheftWorld(t)
	id := w.pat.keys.ID
	if _, err := w.pat.repo.SetupRecovery(ctx, w.pat.keys, []protocol.AccountID{w.stranger.keys.ID}, 1); err != nil {
		t.Fatal(err)
	}
	send(t, w.pat, w.stranger)
	mine, err := Open(ctx, t.TempDir(), Options{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mine.Close() })
	send(t, &party{repo: w.stranger.repo, keys: w.pat.keys}, &party{repo: mine})
	s, err := mine.StartRecovery(ctx, id, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mine.AddRecoveryResponse(ctx, id, approve(t, w.stranger, mustHex(t, s.Token))); err != nil {
		t.Fatal(err)
	}
	tk, err := mine.FinishRecovery(ctx, id, nil)
	if err != nil {
		t.Fatalf("the thief's recovery on her own branch: %v", err)
	}
	thief := &party{repo: mine, keys: tk}
	// A clinic that follows the thief's branch first switches to the
	// owner's recovery; one that holds the owner's keeps it.
	send(t, thief, w.clinic)
	other := newParty(t, "Other Clinic", protocol.RoleClinician)
	send(t, &party{repo: w.c1.repo, keys: w.pat.keys}, other)
	rec := w.recoverOwner(t)
	res := send(t, rec, w.clinic)
	if len(res.Superseded) != 1 || !res.Superseded[0].Switched || res.Superseded[0].Rule != RuleForkRecovery {
		t.Fatalf("the owner's recovery against the thief's setup and recovery: %+v", res.Superseded)
	}
	send(t, rec, other)
	res = send(t, thief, other)
	if len(res.Superseded) != 1 || res.Superseded[0].Switched || res.Superseded[0].Rule != RuleForkRecoveryHeld {
		t.Fatalf("the thief's branch against the held recovery: %+v", res.Superseded)
	}
	for _, p := range []*party{w.clinic, other} {
		if p.repo.mustHead(t, id) != rec.repo.mustHead(t, id) {
			t.Fatal("a clinic does not follow the owner")
		}
		settledOnly(t, p, 1)
	}
	// The live setup is pat's own again: the thief's account is no
	// recovery contact, the owner's contacts are.
	for _, p := range []*party{w.clinic, other} {
		st, err := p.repo.state(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if st.Recovery == nil || st.Recovery.has(keyOf(w.stranger.keys.ID)) || !st.Recovery.has(keyOf(w.c1.keys.ID)) {
			t.Fatalf("live setup after the owner's recovery: %+v", st.Recovery)
		}
	}
}

// The thief's branch and the owner's recovery reach a clinic at once
// (a chain sync and a CAR import side by side), again and again: the
// clinic ends on the recovery's branch with one settled fork, however the
// two interleave.
func TestConcurrentBranchesSettleOnRecovery(t *testing.T) {
	ctx := context.Background()
	w := newTheftWorld(t)
	id := w.pat.keys.ID
	w.thiefWrites(t)
	w.thiefWrites(t)
	rec := w.recoverOwner(t)
	for round := 0; round < 3; round++ {
		clinic := newParty(t, "Clinic", protocol.RoleClinician)
		send(t, &party{repo: w.c1.repo, keys: w.pat.keys}, clinic)
		errs := make(chan error, 2)
		for _, from := range []*party{w.pat, rec} {
			var buf bytes.Buffer
			if _, err := from.repo.ExportCAR(ctx, &buf, id); err != nil {
				t.Fatal(err)
			}
			go func() {
				_, err := clinic.repo.ImportCAR(ctx, &buf)
				errs <- err
			}()
		}
		for range 2 {
			if err := <-errs; err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
		}
		if clinic.repo.mustHead(t, id) != rec.repo.mustHead(t, id) {
			t.Fatalf("round %d: the clinic does not follow the recovery", round)
		}
		settledOnly(t, clinic, 1)
	}
}
