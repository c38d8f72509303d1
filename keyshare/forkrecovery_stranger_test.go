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

// strangersRecovery is a stranger's claimed recovery of pat's account at
// a seq above pat's live setup (after one more note of pat's reached the
// clinic): a succession to a key of the stranger's, signed by it, whose
// approvals approve makes for the setup's block. It returns the block
// and its bytes.
func strangersRecovery(t *testing.T, w *theftWorld, approve func(id, newKey ed25519.PublicKey, request []byte, setup protocol.Link) []protocol.RecoveryApproval) (cid.Cid, []byte) {
	t.Helper()
	ctx := context.Background()
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
	approvals := approve(keyOf(id), pub, request, protocol.NewLink(cid.MustParse(st.Recovery.Via.Block)))
	s := &protocol.Succession{Key: pub, Request: request, Approvals: approvals}
	b := &protocol.Block{Seq: st.Seq, Prev: &link, Time: st.Time, Entries: []protocol.Entry{protocol.NewSuccessionEntry(s)}}
	raw, c, err := b.SignAs(keyOf(id), priv)
	if err != nil {
		t.Fatal(err)
	}
	return c, raw
}

// A stranger's claimed recovery with well-signed approvals by keys of his
// own (no contacts of pat's) at a seq above pat's live setup: refused
// without replaying pat's chain. Each one used to cost a replay from
// genesis (a verify of the chain) on every node it reached.
func TestStrangerClaimedRecoveryCostsNoReplay(t *testing.T) {
	ctx := context.Background()
	w := newTheftWorld(t)
	c, raw := strangersRecovery(t, w, func(id, newKey ed25519.PublicKey, request []byte, setup protocol.Link) []protocol.RecoveryApproval {
		var approvals []protocol.RecoveryApproval
		for range 3 {
			_, cpriv, _ := ed25519.GenerateKey(rand.Reader)
			a, err := protocol.SignRecoveryApproval(cpriv, id, newKey, request, setup)
			if err != nil {
				t.Fatal(err)
			}
			approvals = append(approvals, a)
		}
		return approvals
	})
	var fe *ForkError
	if _, err := w.clinic.repo.ApplyChains(ctx, []cid.Cid{c}, map[cid.Cid][]byte{c: raw}); err == nil || errors.As(err, &fe) {
		t.Fatalf("a stranger's claimed recovery: %v", err)
	}
	if n := w.clinic.repo.forkReplays.Load(); n != 0 {
		t.Fatalf("a stranger's claimed recovery replayed pat's chain %d times", n)
	}
	mustVerify(t, w.clinic)
}

// The same stranger's block, offered in one import together with pat's
// real next block (which the clinic does not hold yet) on the same prev:
// the fork is then between two blocks of the import, which fork choice
// does not settle, and the stranger's block used to be kept as evidence
// that pat signed two histories. Its signer is checked first: refused,
// nothing stored, pat's chain stays unbranded.
func TestStrangerBlockBesidePatsNextIsNoFork(t *testing.T) {
	ctx := context.Background()
	w := newTheftWorld(t)
	id := w.pat.keys.ID
	head := w.clinic.repo.mustHead(t, id)
	st, err := w.clinic.repo.state(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	noteAs(t, w.pat, w.pat.keys, "pat's next block")
	next := w.pat.repo.mustHead(t, id)
	blk, err := w.pat.repo.st.Blockstore().Get(ctx, next)
	if err != nil {
		t.Fatal(err)
	}
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	link := protocol.NewLink(head)
	hide := &protocol.Hide{Records: []protocol.Link{link}}
	b := &protocol.Block{Seq: st.Seq + 1, Prev: &link, Time: st.Time, Entries: []protocol.Entry{protocol.NewEntry(hide)}}
	raw, c, err := b.SignAs(keyOf(id), priv)
	if err != nil {
		t.Fatal(err)
	}
	offered := map[cid.Cid][]byte{next: blk.RawData(), c: raw}
	_, err = w.clinic.repo.ApplyChains(ctx, []cid.Cid{next, c}, offered)
	var se *SignerError
	if !errors.As(err, &se) || se.Decision.Rule != RuleForkUnsigned {
		t.Fatalf("a stranger's block beside pat's next one: %v", err)
	}
	if has, _ := w.clinic.repo.st.Blockstore().Has(ctx, c); has {
		t.Fatal("the stranger's block was stored")
	}
	rep, err := w.clinic.repo.Verify(ctx, VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK || len(rep.Forks) != 0 {
		t.Fatalf("a stranger's block made pat a forker: ok=%v forks=%+v", rep.OK, rep.Forks)
	}
	// Pat's own block still arrives on its own.
	if _, err := w.clinic.repo.ApplyChains(ctx, []cid.Cid{next}, map[cid.Cid][]byte{next: blk.RawData()}); err != nil {
		t.Fatalf("pat's next block after the refused import: %v", err)
	}
	if w.clinic.repo.mustHead(t, id) != next {
		t.Fatal("pat's next block did not land")
	}
}

// A stranger's claimed recovery whose approvals name pat's real
// contacts but are signed by keys of the stranger's (the Signer field):
// no contact's chain names those keys, so it cannot be a recovery and
// costs no replay of pat's chain.
func TestStrangerSignedApprovalsOfRealContactsCostNoReplay(t *testing.T) {
	ctx := context.Background()
	w := newTheftWorld(t)
	contacts := []*party{w.c1, w.c2, w.c3}
	for _, c := range contacts {
		send(t, c, w.clinic) // the clinic holds the contacts' chains
	}
	c, raw := strangersRecovery(t, w, func(id, newKey ed25519.PublicKey, request []byte, setup protocol.Link) []protocol.RecoveryApproval {
		var approvals []protocol.RecoveryApproval
		for _, contact := range contacts {
			_, spriv, _ := ed25519.GenerateKey(rand.Reader)
			a, err := protocol.SignRecoveryApprovalAs(keyOf(contact.keys.ID), spriv, id, newKey, request, setup)
			if err != nil {
				t.Fatal(err)
			}
			approvals = append(approvals, a)
		}
		return approvals
	})
	var se *SignerError
	if _, err := w.clinic.repo.ApplyChains(ctx, []cid.Cid{c}, map[cid.Cid][]byte{c: raw}); !errors.As(err, &se) {
		t.Fatalf("a claimed recovery with the stranger's approval keys: %v", err)
	}
	if n := w.clinic.repo.forkReplays.Load(); n != 0 {
		t.Fatalf("approvals signed by the stranger's keys replayed pat's chain %d times", n)
	}
	mustVerify(t, w.clinic)
}
