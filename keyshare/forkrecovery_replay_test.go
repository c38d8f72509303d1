package keyshare

import (
	"context"
	"errors"
	"testing"

	"github.com/ipfs/go-cid"

	"github.com/blockmrs/blockmrs/protocol"
)

// A recovery's approvals name the account, the new key, the request and
// the setup, not the block the recovery sits in. Whoever later holds the
// recovered key (a thief of the new laptop) can copy the recovery's
// entries into a block lower on the chain, under the same setup, where
// the key is not named yet: valid there, and on its own the fork choice
// would let it win against the owner's blocks, dropping the recovery it
// copies and everything the owner wrote after (a later recovery too).

// replayedRecovery copies the recovery block at seq top of p's chain of
// id into a block at seq at, on top of the block before at, signed by k
// (the recovered key), and returns it.
func replayedRecovery(t *testing.T, p *party, k *Keys, id protocol.AccountID, top, at uint64) (cid.Cid, []byte) {
	t.Helper()
	ctx := context.Background()
	rc, ok, err := p.repo.blockAt(ctx, id, top)
	if err != nil || !ok {
		t.Fatalf("recovery block %d: %v", top, err)
	}
	orig, err := p.repo.readBlock(ctx, rc)
	if err != nil {
		t.Fatal(err)
	}
	if !claimsRecovery(orig) {
		t.Fatalf("block %d holds no recovery", top)
	}
	pc, ok, err := p.repo.blockAt(ctx, id, at-1)
	if err != nil || !ok {
		t.Fatalf("block %d: %v", at-1, err)
	}
	link := protocol.NewLink(pc)
	b := &protocol.Block{Seq: at, Prev: &link, Time: orig.Time, Entries: orig.Entries}
	raw, c, err := b.SignAs(keyOf(id), k.Sign)
	if err != nil {
		t.Fatal(err)
	}
	return c, raw
}

// replayWorld is TestReplayedRecoveryDoesNotWinFork's world: pat wrote
// a note after her setup, recovered on a fresh repo (rec) at recSeq,
// then retired the recovered key (stolen, the thief's now) by a planned
// succession; the clinic follows rec.
type replayWorld struct {
	*theftWorld
	rec    *party
	stolen *Keys
	recSeq uint64
}

func newReplayWorld(t *testing.T) *replayWorld {
	t.Helper()
	ctx := context.Background()
	w := &replayWorld{theftWorld: newTheftWorld(t)}
	id := w.pat.keys.ID
	noteAs(t, w.pat, w.pat.keys, "written after the setup")
	send(t, w.pat, w.clinic)
	send(t, w.pat, w.c1)
	send(t, &party{repo: w.c1.repo, keys: w.pat.keys}, w.fresh)
	w.rec = w.recoverOwner(t)
	st, err := w.rec.repo.state(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	w.recSeq, w.stolen = st.Seq, w.rec.keys
	if w.rec.keys, err = w.rec.repo.Succeed(ctx, w.stolen, nil, SuccessionOptions{}); err != nil {
		t.Fatal(err)
	}
	send(t, w.rec, w.clinic)
	return w
}

// The owner writes, then recovers; the new laptop is stolen too, and the
// owner retires its key by a planned succession. The thief of the
// recovered (now retired) key copies the recovery one block lower. Every
// node that follows the owner keeps the owner's branch (the copy is the
// held branch's own recovery replayed, RuleForkRecoveryReplayed): no
// switch, the owner's succession stands, evidence kept.
func TestReplayedRecoveryDoesNotWinFork(t *testing.T) {
	ctx := context.Background()
	w := newReplayWorld(t)
	id := w.pat.keys.ID
	head := w.clinic.repo.mustHead(t, id)
	c, raw := replayedRecovery(t, w.rec, w.stolen, id, w.recSeq, w.recSeq-1)
	_, err := w.clinic.repo.ApplyChains(ctx, []cid.Cid{c}, map[cid.Cid][]byte{c: raw})
	var fe *ForkError
	if !errors.As(err, &fe) {
		t.Fatalf("a replayed recovery one block lower: %v", err)
	}
	if got := w.clinic.repo.mustHead(t, id); got != head {
		t.Fatalf("the replayed recovery moved the chain to %s (held head %s)", got, head)
	}
	rep, err := w.clinic.repo.Verify(ctx, VerifyOptions{})
	if err != nil || rep.OK || len(rep.Forks) != 1 || len(rep.Superseded) != 0 {
		t.Fatalf("verify after a replayed recovery: %+v %v", rep, err)
	}
	// The thief writes on her branch with the stolen key: still a fork.
	link := protocol.NewLink(c)
	hide := &protocol.Hide{Records: []protocol.Link{protocol.NewLink(w.before)}}
	next := &protocol.Block{Seq: w.recSeq, Prev: &link, Time: rep.Forks[0].Found, Entries: []protocol.Entry{protocol.NewEntry(hide)}}
	raw2, c2, err := next.SignAs(keyOf(id), w.stolen.Sign)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.clinic.repo.ApplyChains(ctx, []cid.Cid{c2}, map[cid.Cid][]byte{c: raw, c2: raw2}); !errors.As(err, &fe) {
		t.Fatalf("the thief's branch grown: %v", err)
	}
	if w.clinic.repo.mustHead(t, id) != head {
		t.Fatal("the thief's grown branch moved the chain")
	}
}

// A node that never held pat's chain gets the thief's branch (the copied
// recovery lower down) first, then the owner's: the copy does not settle
// the fork for the thief (before the rule it kept the thief's branch and
// called the owner's superseded); it is a fork, refused, for its
// operator to see.
func TestReplayedRecoveryFirstIsAFork(t *testing.T) {
	ctx := context.Background()
	w := newReplayWorld(t)
	id := w.pat.keys.ID
	c, raw := replayedRecovery(t, w.rec, w.stolen, id, w.recSeq, w.recSeq-1)
	below, ok, err := w.clinic.repo.blockAt(ctx, id, w.recSeq-2)
	if err != nil || !ok {
		t.Fatalf("block %d: %v", w.recSeq-2, err)
	}
	raws, err := w.clinic.repo.ChainBack(ctx, below, NoneHeld, 1000, 1<<24)
	if err != nil {
		t.Fatal(err)
	}
	offered := map[cid.Cid][]byte{c: raw}
	for _, r := range raws {
		offered[protocol.BlockCID(r)] = r
	}
	late := newParty(t, "Late Clinic", protocol.RoleClinician)
	if _, err := late.repo.ApplyChains(ctx, []cid.Cid{c}, offered); err != nil {
		t.Fatalf("the thief's branch on a fresh node: %v", err)
	}
	var fe *ForkError
	res, err := importFrom(t, w.rec, late)
	if !errors.As(err, &fe) {
		t.Fatalf("the owner's branch after the thief's copy: %+v %v", res, err)
	}
	if late.repo.mustHead(t, id) != c {
		t.Fatal("the refused fork moved the chain")
	}
	rep, err := late.repo.Verify(ctx, VerifyOptions{})
	if err != nil || rep.OK || len(rep.Forks) != 1 || len(rep.Superseded) != 0 {
		t.Fatalf("verify: %+v %v", rep, err)
	}
}

// forkReplayPolicyCases are RuleForkReplayed's and RuleForkUnsigned's rows of the policy table
// (TestPolicyTable).
func forkReplayPolicyCases() []policyCase {
	return []policyCase{
		{RuleForkReplayed, false,
			// the arriving recovery is the held branch's, copied lower
			func(t *testing.T) Decision {
				return forkChoice(forkFacts{Account: pat, Seq: 4, OfferedRecovery: true, OfferedReplayed: true})
			},
			func(t *testing.T) Decision { return forkChoice(forkFacts{Account: pat, Seq: 4, OfferedRecovery: true}) }},
		{RuleForkReplayed, false,
			// the held recovery is a copy of one on the arriving branch
			func(t *testing.T) Decision {
				return forkChoice(forkFacts{Account: pat, Seq: 4, HeldRecovery: true, HeldReplayed: true})
			},
			func(t *testing.T) Decision { return forkChoice(forkFacts{Account: pat, Seq: 4, HeldRecovery: true}) }},
		{RuleForkUnsigned, false,
			// a stranger's key, or a recovery short of approvals
			func(t *testing.T) Decision {
				return forkChoice(forkFacts{Account: pat, Seq: 4, OfferedUnsigned: true})
			},
			func(t *testing.T) Decision { return forkChoice(forkFacts{Account: pat, Seq: 4, OfferedRecovery: true}) }},
		{RuleForkRecovery, true,
			// a recovery of its own wins over a copied one
			func(t *testing.T) Decision {
				return forkChoice(forkFacts{Account: pat, Seq: 4, OfferedRecovery: true, HeldRecovery: true, HeldReplayed: true})
			},
			func(t *testing.T) Decision {
				return forkChoice(forkFacts{Account: pat, Seq: 4, OfferedRecovery: true, HeldRecovery: true})
			}},
	}
}
