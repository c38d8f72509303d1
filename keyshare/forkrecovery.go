package keyshare

import (
	"bytes"
	"context"
	"fmt"
	"slices"

	"github.com/ipfs/go-cid"
	"github.com/ipfs/go-datastore"

	"github.com/blockmrs/blockmrs/protocol"
)

// Fork choice for a recovery (PROTOCOL.md §8). When a chain block arrives
// that competes with one the repo holds at the same seq, the fork is
// settled by forkChoice (policy.go) from the two blocks where the branches
// part: a valid recovery succession wins over the key it replaced, on every
// node and whichever branch arrived first. Settling it either keeps the
// held branch (the arriving one is stored as evidence, superseded) or
// switches to the arriving branch: the chain's state is rebuilt as of the
// block before the fork, the arriving branch is applied on it in one
// commit with the sequence index moved off the losing branch, and the
// access index is rebuilt from the chains, so that nothing the losing
// branch granted counts any longer. A marker written in that commit makes
// Open finish the rebuild if the process stops before it does.

// keyReindex marks a repo whose access index must be rebuilt from its
// chains (a fork switched branches and the rebuild had not finished).
var keyReindex = datastore.NewKey("/keyshare/reindex-pending")

// settledFork is a fork forkChoice settled by a recovery.
type settledFork struct {
	decision Decision
	account  protocol.AccountID
	seq      uint64  // where the branches part
	held     cid.Cid // the repo's block at seq
	offered  cid.Cid // the arriving block at seq
	// heldHead and offeredHead are the heads of the two branches.
	heldHead, offeredHead cid.Cid
	// branch is the arriving branch from seq up, in chain order.
	branch []verifiedBlock
	// before is the chain's state as of the block before seq; loser the
	// held blocks from seq up (a switch only).
	before *accountState
	loser  []cid.Cid
	// repeat is set for another branch at a seq a held recovery settled
	// before: neither stored nor put in the evidence.
	repeat bool
}

// switches tells whether the node follows the arriving branch.
func (sf *settledFork) switches() bool { return sf.decision.Rule == RuleForkRecovery }

// settleFork looks at the fork fe found on the way down from root (a head
// of fe.Account's chain, blocks read with get): it finds where the
// arriving branch parts from the held chain and asks forkChoice. It
// returns nil when the fork is not one it can settle: the branches part
// at genesis, neither block where they part holds a succession with
// approvals, or the held block is not committed here yet (another root
// of the same import brought it).
func (r *Repo) settleFork(ctx context.Context, fe *ForkError, root cid.Cid, get func(cid.Cid) ([]byte, error), pending map[uint64]cid.Cid) (*settledFork, error) {
	id := fe.Account
	if _, ok := pending[fe.Seq]; ok {
		return nil, nil
	}
	branch, err := arrivingBranch(ctx, root, get, r.blockAt)
	if err != nil || len(branch) == 0 || branch[0].block.Prev == nil {
		return nil, err // two genesis blocks: no recovery settles that
	}
	first := branch[0]
	seq := first.block.Seq
	held, ok, err := r.blockAt(ctx, id, seq)
	if err != nil || !ok {
		return nil, err
	}
	heldBlock, err := r.readBlock(ctx, held)
	if err != nil {
		return nil, err
	}
	// The arriving block's signer may sign there (checkForkSigner, run
	// first): the key the chain names after the block before, or that
	// of what may be a recovery (judged below).
	signing, err := r.keyAfter(ctx, id, seq-1)
	if err != nil {
		return nil, err
	}
	signed := bytes.Equal(first.block.SignerKey(), signing)
	st, err := r.state(ctx, id)
	if err != nil {
		return nil, err
	}
	if !claimsRecovery(heldBlock) && !claimsRecovery(first.block) {
		// Neither side can be a recovery: a plain fork, judged without
		// replaying the chain (a key holder forking again and again
		// costs the verifier no more than the blocks).
		return nil, nil
	}
	sf := &settledFork{account: id, seq: seq, held: held, offered: first.cid, heldHead: st.head(), offeredHead: root, branch: branch}
	settled, kept, err := r.supersededAlready(ctx, id, seq, held, first.cid)
	if err != nil {
		return nil, err
	}
	if kept || (settled && !claimsRecovery(first.block)) {
		// The held recovery beat this branch before (a thief's node
		// announcing it again, or growing it), or beat another branch
		// at this seq and this one claims no recovery (the replaced key
		// signing yet another block there): no replay. Such a repeat is
		// not stored, and the evidence of the branch the recovery beat
		// first stays (it is what the node once followed).
		sf.decision = forkChoice(forkFacts{Account: id, Seq: seq, HeldRecovery: true})
		sf.repeat = !kept
		return sf, nil
	}
	before, err := r.stateBefore(ctx, id, seq)
	if err != nil {
		return nil, err
	}
	heldRec, err := r.isRecovery(ctx, before, heldBlock, true)
	if err != nil {
		return nil, err
	}
	offeredRec, err := r.isRecovery(ctx, before, first.block, false)
	if err != nil {
		return nil, err
	}
	facts := forkFacts{Account: id, Seq: seq, HeldRecovery: heldRec, OfferedRecovery: offeredRec, OfferedUnsigned: !signed && !offeredRec}
	if heldRec || offeredRec {
		if facts.HeldReplayed, facts.OfferedReplayed, err = r.recoveriesReplayed(ctx, id, seq, st.Seq, heldBlock, branch); err != nil {
			return nil, err
		}
	}
	sf.decision = forkChoice(facts)
	if !sf.switches() {
		return sf, nil
	}
	sf.before = before
	for s := seq; s <= st.Seq; s++ {
		c, ok, err := r.blockAt(ctx, id, s)
		if err != nil {
			return nil, err
		}
		if ok {
			sf.loser = append(sf.loser, c)
		}
	}
	return sf, nil
}

// arrivingBranch walks a chain down from root (blocks read with get) to
// the last block it shares with the chain at knows (a seq's block here,
// or in the import) and returns the blocks above it in chain order: a
// branch starting at genesis if the two share no block.
func arrivingBranch(ctx context.Context, root cid.Cid, get func(cid.Cid) ([]byte, error), knows func(context.Context, protocol.AccountID, uint64) (cid.Cid, bool, error)) ([]verifiedBlock, error) {
	return walkDown(ctx, root, get, knows, nil)
}

// checkForkSigner refuses, with a SignerError, a fork fe (found on the
// way down from root, blocks read with get, seqs' blocks known here or in
// the import by knows) whose arriving branch starts with a block its
// signer may not sign: neither the key the chain names after the shared
// block below, nor a key a recovery names that may be valid. Such a block
// is invalid, not a fork: a stranger's key says nothing about the account,
// so nothing of it may be kept as evidence, however the fork would be
// settled.
func (r *Repo) checkForkSigner(ctx context.Context, fe *ForkError, root cid.Cid, get func(cid.Cid) ([]byte, error), knows func(context.Context, protocol.AccountID, uint64) (cid.Cid, bool, error)) error {
	branch, err := arrivingBranch(ctx, root, get, knows)
	if err != nil || len(branch) == 0 || branch[0].block.Prev == nil {
		return err // genesis blocks are signed by the account key (DecodeBlock)
	}
	first := branch[0].block
	below, _, err := getChainBlock(get, first.Prev.Cid)
	if err != nil {
		return err
	}
	if bytes.Equal(first.SignerKey(), signerAfter(below)) {
		return nil
	}
	st, err := r.state(ctx, fe.Account)
	if err != nil {
		return err
	}
	if ok, err := r.mayBeRecovery(ctx, st, first.Seq, first); ok || err != nil {
		return err
	}
	return &SignerError{Account: fe.Account, Seq: first.Seq,
		Decision: forkChoice(forkFacts{Account: fe.Account, Seq: first.Seq, OfferedUnsigned: true})}
}

// recoveriesReplayed tells, for the blocks where two branches of id's
// chain part at seq (held, the repo's, whose branch runs up to top; and
// the first of the arriving branch), whether each is a recovery that a
// recovery on the other branch answers too: the same request, so the same
// approvals, copied to another seq by whoever holds the recovered key
// (approvals name the account, key, request and setup, not the block).
func (r *Repo) recoveriesReplayed(ctx context.Context, id protocol.AccountID, seq, top uint64, held *protocol.Block, branch []verifiedBlock) (heldReplayed, offeredReplayed bool, err error) {
	offered := branch[0].block
	if claimsRecovery(held) {
		for _, vb := range branch {
			if sameRecovery(held, vb.block) {
				heldReplayed = true
				break
			}
		}
	}
	if !claimsRecovery(offered) {
		return heldReplayed, false, nil
	}
	for s := seq; s <= top; s++ {
		c, ok, err := r.blockAt(ctx, id, s)
		if err != nil || !ok {
			return false, false, err
		}
		b, err := r.readBlock(ctx, c)
		if err != nil {
			return false, false, err
		}
		if sameRecovery(offered, b) {
			return heldReplayed, true, nil
		}
	}
	return heldReplayed, false, nil
}

// sameRecovery tells whether a and b are both recoveries (successions
// with approvals, each signed by the key it names) answering the same
// request. A succession the current key signs with approvals attached (a
// thief naming an overheard request's key) is no recovery.
func sameRecovery(a, b *protocol.Block) bool {
	sa, sb := a.Succession(), b.Succession()
	return claimsRecovery(a) && claimsRecovery(b) &&
		bytes.Equal(a.SignerKey(), sa.Key) && bytes.Equal(b.SignerKey(), sb.Key) &&
		bytes.Equal(sa.Request, sb.Request)
}

// mayBeRecovery tells, without replaying the chain, whether b (at seq of
// the chain whose state now is st) can be a valid recovery: a succession
// with approvals signed by the key it names and, where the live setup now
// was live at seq already (written below it), approvals by at least the
// threshold of its contacts under it, each signed by a key the contact's
// chain held here names (recoveryApproved). What passes is judged in full
// on the chain replayed (isRecovery).
func (r *Repo) mayBeRecovery(ctx context.Context, st *accountState, seq uint64, b *protocol.Block) (bool, error) {
	s := b.Succession()
	if !claimsRecovery(b) || !bytes.Equal(b.SignerKey(), s.Key) {
		return false, nil
	}
	rec := st.Recovery
	if rec == nil || rec.Via.Seq >= seq {
		return true, nil // another setup may have been live there
	}
	contacts, err := approvalContacts(s, r.repoLookup(ctx))
	if err != nil {
		return false, err
	}
	return recoveryApproved(b.Author, rec, s, contacts, false).Allow, nil
}

// keyAfter returns the key that signs id's chain after its block at seq
// (held here): the successor that block names, else its own signer.
func (r *Repo) keyAfter(ctx context.Context, id protocol.AccountID, seq uint64) ([]byte, error) {
	c, ok, err := r.blockAt(ctx, id, seq)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("chain of %s: no block %d held", id, seq)
	}
	b, err := r.readBlock(ctx, c)
	if err != nil {
		return nil, err
	}
	return signerAfter(b), nil
}

// signerAfter returns the key that signs the chain after b: the
// successor b names, else b's own signer.
func signerAfter(b *protocol.Block) []byte {
	if s := b.Succession(); s != nil {
		return s.Key
	}
	return b.SignerKey()
}

// supersededAlready tells whether the repo's evidence says the block
// held at seq of id is a recovery that already settled a fork there
// (settled), and whether the branch it beat starts with offered (kept).
func (r *Repo) supersededAlready(ctx context.Context, id protocol.AccountID, seq uint64, held, offered cid.Cid) (settled, kept bool, err error) {
	var ev forkEvidence
	found, err := getJSON(ctx, r.ds, keyFork(id, seq), &ev)
	if err != nil || !found || ev.Recovery != held.String() {
		return false, false, err
	}
	return true, ev.A == offered.String() || ev.B == offered.String(), nil
}

// claimsRecovery tells whether b holds a succession with approvals: a
// recovery, if the approvals hold.
func claimsRecovery(b *protocol.Block) bool {
	s := b.Succession()
	return s != nil && len(s.Approvals) > 0
}

// isRecovery tells whether b is a recovery succession valid on the chain
// whose state as of the block before is before (blockSigner allows it by
// RuleRecoveryApproved). replay is set for the held block, admitted
// before (approvalSigner).
func (r *Repo) isRecovery(ctx context.Context, before *accountState, b *protocol.Block, replay bool) (bool, error) {
	if !claimsRecovery(b) || before.StoppedAt != 0 {
		return false, nil
	}
	s := b.Succession()
	f := before.signerFacts(b.Author)
	contacts, err := approvalContacts(s, r.repoLookup(ctx))
	if err != nil {
		return false, err
	}
	f.Contacts, f.Replay = contacts, replay
	return blockSigner(f, b).Rule == RuleRecoveryApproved, nil
}

// stateBefore replays id's held chain from genesis up to the block before
// seq into a fresh state (the index facts it makes are dropped).
func (r *Repo) stateBefore(ctx context.Context, id protocol.AccountID, seq uint64) (*accountState, error) {
	c, ok, err := r.blockAt(ctx, id, seq-1)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("chain of %s: no block %d held", id, seq-1)
	}
	var chain []verifiedBlock // top first
	for {
		b, err := r.readBlock(ctx, c)
		if err != nil {
			return nil, err
		}
		chain = append(chain, verifiedBlock{cid: c, block: b})
		if b.Prev == nil {
			break
		}
		c = b.Prev.Cid
	}
	r.forkReplays.Add(1)
	st := &accountState{}
	iw := newIndexWriter(ctx, nil)
	adm := admission{lookup: r.repoLookup(ctx), replay: true}
	for i := len(chain) - 1; i >= 0; i-- {
		if err := applyToState(st, chain[i], iw, adm); err != nil {
			return nil, err
		}
	}
	return st, nil
}

// prepareSwitches readies a commit for the forks it switches: each chain
// starts from its state as of the block before the fork (the arriving
// branch is then added on it), the sequence index and the chain-block
// index let go of the losing blocks, the evidence and the rebuild marker
// go in the same write. The caller holds r.mu.
func (r *Repo) prepareSwitches(ctx context.Context, cc *chainCommit, switches []*settledFork) error {
	for _, sf := range switches {
		id := sf.account
		old, err := r.state(ctx, id)
		if err != nil {
			return err
		}
		before := *sf.before
		cc.states[id] = &before
		cc.accounts = append(cc.accounts, id)
		cc.devicesBefore[id] = slices.Clone(old.Devices)
		cc.scopesBefore[id] = 0 // the standing-grant index is written whole
		cc.all = true
		for s := sf.seq + uint64(len(sf.branch)); s <= old.Seq; s++ {
			if err := cc.batch.Delete(ctx, keySeq(id, s)); err != nil {
				return err
			}
		}
		for _, c := range sf.loser {
			if err := cc.batch.Delete(ctx, keyChainBlock(c)); err != nil {
				return err
			}
		}
		if err := r.putSuperseded(ctx, cc.batch, sf); err != nil {
			return err
		}
	}
	if len(switches) > 0 {
		return cc.batch.Put(ctx, keyReindex, nil)
	}
	return nil
}

// putSuperseded writes to w the evidence of a fork a recovery settled,
// and drops the plain fork evidence of the same account that the two
// branches account for (kept before the rule settled it).
func (r *Repo) putSuperseded(ctx context.Context, w datastore.Write, sf *settledFork) error {
	blocksOf := map[string]bool{sf.held.String(): true, sf.offered.String(): true}
	for _, vb := range sf.branch {
		blocksOf[vb.cid.String()] = true
	}
	for _, c := range sf.loser {
		blocksOf[c.String()] = true
	}
	forks, err := r.Forks(ctx)
	if err != nil {
		return err
	}
	for _, f := range forks {
		if f.Account == sf.account && f.Seq != sf.seq && f.Recovery == "" && (blocksOf[f.Blocks[0]] || blocksOf[f.Blocks[1]]) {
			if err := w.Delete(ctx, keyFork(f.Account, f.Seq)); err != nil {
				return err
			}
		}
	}
	ev := forkEvidence{Account: sf.account, Seq: sf.seq, A: sf.held.String(), B: sf.offered.String(), Found: r.now().UnixMilli(),
		Recovery: sf.offered.String(), Superseded: sf.heldHead.String(), Rule: sf.decision.Rule}
	if !sf.switches() {
		ev.Recovery, ev.Superseded = sf.held.String(), sf.offeredHead.String()
	}
	return putJSON(ctx, w, keyFork(sf.account, sf.seq), ev)
}

// keepSuperseded stores an arriving branch a held recovery superseded,
// and its evidence; a repeat leaves both as they are. The caller holds
// r.mu.
func (r *Repo) keepSuperseded(ctx context.Context, sf *settledFork) error {
	if sf.repeat {
		return nil
	}
	for _, vb := range sf.branch {
		if err := r.putBlock(ctx, vb.cid, vb.raw); err != nil {
			return err
		}
	}
	batch, err := r.ds.Batch(ctx)
	if err != nil {
		return err
	}
	if err := r.putSuperseded(ctx, batch, sf); err != nil {
		return err
	}
	if err := batch.Commit(ctx); err != nil {
		return fmt.Errorf("keep superseded branch: %w", err)
	}
	return r.ds.Sync(ctx, datastore.NewKey("/keyshare/forks"))
}

// reindex rebuilds the access index and the indexes beside it from the
// chains, as verify does, after a fork switched branches; then it drops
// the marker. The caller holds r.mu.
func (r *Repo) reindex(ctx context.Context) error {
	if _, err := r.rebuildIndexes(ctx, &VerifyReport{}); err != nil {
		return fmt.Errorf("rebuild the indexes: %w", err)
	}
	r.cache.invalidate()
	if err := r.ds.Delete(ctx, keyReindex); err != nil {
		return err
	}
	return r.ds.Sync(ctx, keyReindex)
}

// finishReindex runs a rebuild an earlier switch left unfinished (Open).
func (r *Repo) finishReindex(ctx context.Context) error {
	pending, err := r.ds.Has(ctx, keyReindex)
	if err != nil || !pending {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.reindex(ctx)
}
