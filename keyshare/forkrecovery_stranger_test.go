package keyshare

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"testing"

	"github.com/ipfs/go-cid"

	"github.com/blockmrs/blockmrs/protocol"
)

// A stranger, holding no key of pat's, signs a block at one of pat's
// seqs with a fresh key, naming that key as successor with made-up
// approvals: it claims a recovery and is not one. It used to be kept as
// fork evidence ("pat signed two different blocks"), failing verify on
// every node it reached: anybody could brand any account a forker. It
// is an invalid block (RuleForkUnsigned): refused, no evidence. So is a
// block of pat's retired key after the succession that retired it.
func TestStrangerClaimedRecoveryIsNoFork(t *testing.T) {
	ctx := context.Background()
	w := newTheftWorld(t)
	id := w.pat.keys.ID
	st, err := w.clinic.repo.state(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	contact, _, _ := ed25519.GenerateKey(rand.Reader)
	pc, _, _ := w.clinic.repo.blockAt(ctx, id, st.Seq-1)
	link := protocol.NewLink(pc)
	junk := protocol.RecoveryApproval{Contact: contact, Setup: link, Sig: make([]byte, ed25519.SignatureSize)}
	s := &protocol.Succession{Key: pub, Request: make([]byte, 32), Approvals: []protocol.RecoveryApproval{junk}}
	b := &protocol.Block{Seq: st.Seq, Prev: &link, Time: st.Time, Entries: []protocol.Entry{protocol.NewSuccessionEntry(s)}}
	raw, c, err := b.SignAs(keyOf(id), priv)
	if err != nil {
		t.Fatal(err)
	}
	head := w.clinic.repo.mustHead(t, id)
	_, err = w.clinic.repo.ApplyChains(ctx, []cid.Cid{c}, map[cid.Cid][]byte{c: raw})
	var se *SignerError
	if !errors.As(err, &se) || se.Decision.Rule != RuleForkUnsigned {
		t.Fatalf("a stranger's block at a held seq: %v", err)
	}
	if w.clinic.repo.mustHead(t, id) != head {
		t.Fatal("a stranger's block moved the chain")
	}
	rep, err := w.clinic.repo.Verify(ctx, VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK || len(rep.Forks) != 0 {
		t.Fatalf("a stranger's claimed recovery made a fork: ok=%v forks=%+v", rep.OK, rep.Forks)
	}
}

// After a planned succession, the retired key signs a block at a seq
// above it (a thief of the old laptop): PROTOCOL.md §8 calls that
// invalid, not a fork; it was kept as fork evidence.
func TestRetiredKeyAboveSuccessionIsNoFork(t *testing.T) {
	ctx := context.Background()
	alice := newParty(t, "Alice", protocol.RolePatient)
	bob := newParty(t, "Bob", protocol.RoleClinician)
	old := alice.keys
	nk, err := alice.repo.Succeed(ctx, old, nil, SuccessionOptions{})
	if err != nil {
		t.Fatal(err)
	}
	noteAs(t, alice, nk, "after")
	send(t, alice, bob)
	st, err := bob.repo.state(ctx, old.ID)
	if err != nil {
		t.Fatal(err)
	}
	pc, _, _ := bob.repo.blockAt(ctx, old.ID, st.Seq-1)
	link := protocol.NewLink(pc)
	hide := &protocol.Hide{Records: []protocol.Link{protocol.NewLink(pc)}}
	b := &protocol.Block{Seq: st.Seq, Prev: &link, Time: st.Time, Entries: []protocol.Entry{protocol.NewEntry(hide)}}
	raw, c, err := b.SignAs(keyOf(old.ID), old.Sign)
	if err != nil {
		t.Fatal(err)
	}
	var fe *ForkError
	if _, err := bob.repo.ApplyChains(ctx, []cid.Cid{c}, map[cid.Cid][]byte{c: raw}); err == nil || errors.As(err, &fe) {
		t.Fatalf("the retired key's block above its succession: %v", err)
	}
	mustVerify(t, bob)
}

// A stranger's claimed recovery with well-signed approvals by keys of his
// own (no contacts of pat's) at a seq above pat's live setup: refused
// without replaying pat's chain. Each one used to cost a replay from
// genesis (a verify of the chain) on every node it reached.
func TestStrangerClaimedRecoveryCostsNoReplay(t *testing.T) {
	ctx := context.Background()
	w := newTheftWorld(t)
	id := w.pat.keys.ID
	noteAs(t, w.pat, w.pat.keys, "after the setup")
	send(t, w.pat, w.clinic)
	st, err := w.clinic.repo.state(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if st.Recovery == nil || st.Recovery.Via.Seq >= st.Seq {
		t.Fatalf("precondition: pat's live setup below block %d: %+v", st.Seq, st.Recovery)
	}
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	pc, _, _ := w.clinic.repo.blockAt(ctx, id, st.Seq-1)
	link := protocol.NewLink(pc)
	request := make([]byte, 32)
	var approvals []protocol.RecoveryApproval
	for range 3 {
		_, cpriv, _ := ed25519.GenerateKey(rand.Reader)
		a, err := protocol.SignRecoveryApproval(cpriv, keyOf(id), pub, request, protocol.NewLink(cid.MustParse(st.Recovery.Via.Block)))
		if err != nil {
			t.Fatal(err)
		}
		approvals = append(approvals, a)
	}
	s := &protocol.Succession{Key: pub, Request: request, Approvals: approvals}
	b := &protocol.Block{Seq: st.Seq, Prev: &link, Time: st.Time, Entries: []protocol.Entry{protocol.NewSuccessionEntry(s)}}
	raw, c, err := b.SignAs(keyOf(id), priv)
	if err != nil {
		t.Fatal(err)
	}
	var fe *ForkError
	if _, err := w.clinic.repo.ApplyChains(ctx, []cid.Cid{c}, map[cid.Cid][]byte{c: raw}); err == nil || errors.As(err, &fe) {
		t.Fatalf("a stranger's claimed recovery: %v", err)
	}
	if n := w.clinic.repo.forkReplays.Load(); n != 0 {
		t.Fatalf("a stranger's claimed recovery replayed pat's chain %d times", n)
	}
	mustVerify(t, w.clinic)
}
