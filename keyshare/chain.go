package keyshare

import (
	"context"
	"errors"
	"fmt"
	"slices"

	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	"github.com/ipfs/go-datastore"

	"github.com/blockmrs/blockmrs/protocol"
)

// ErrUnknownAccount is returned for an account the repo has no chain for.
var ErrUnknownAccount = errors.New("unknown account (add it as a contact first)")

// ForkError reports two different signed blocks by one author with one
// sequence number. The evidence is kept in the repo.
type ForkError struct {
	Account protocol.AccountID
	Seq     uint64
	A, B    cid.Cid
}

func (e *ForkError) Error() string {
	return fmt.Sprintf("fork: account %s signed two different blocks at seq %d (%s and %s)", e.Account, e.Seq, e.A, e.B)
}

// state returns the chain state of id, or ErrUnknownAccount.
func (r *Repo) state(ctx context.Context, id protocol.AccountID) (*accountState, error) {
	var st accountState
	found, err := getJSON(ctx, r.ds, keyAccount(id), &st)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, fmt.Errorf("%s: %w", id, ErrUnknownAccount)
	}
	return &st, nil
}

// blockAt returns the CID of id's block at seq, if the repo has it.
func (r *Repo) blockAt(ctx context.Context, id protocol.AccountID, seq uint64) (cid.Cid, bool, error) {
	b, err := r.ds.Get(ctx, keySeq(id, seq))
	if errors.Is(err, datastore.ErrNotFound) {
		return cid.Undef, false, nil
	}
	if err != nil {
		return cid.Undef, false, fmt.Errorf("read chain index: %w", err)
	}
	c, err := cid.Cast(b)
	if err != nil {
		return cid.Undef, false, fmt.Errorf("read chain index: %w", err)
	}
	return c, true, nil
}

// readBlock loads and statically verifies a chain block from the store.
func (r *Repo) readBlock(ctx context.Context, c cid.Cid) (*protocol.Block, error) {
	blk, err := r.st.Blockstore().Get(ctx, c)
	if err != nil {
		return nil, fmt.Errorf("chain block %s: %w", c, err)
	}
	b, err := protocol.DecodeBlock(blk.RawData())
	if err != nil {
		return nil, fmt.Errorf("chain block %s: %w", c, err)
	}
	return b, nil
}

// verifiedBlock is a block that passed static and link checks, ready to
// be applied. raw is nil for a block already in the store.
type verifiedBlock struct {
	cid   cid.Cid
	block *protocol.Block
	raw   []byte
}

// appendBlock signs a new block with entries on k's chain and applies it.
// The caller holds r.mu.
func (r *Repo) appendBlock(ctx context.Context, k *Keys, entries []protocol.Entry) (cid.Cid, error) {
	return r.appendBlocks(ctx, k, [][]protocol.Entry{entries})
}

// appendBlocks signs one new block per element of blocks on k's chain,
// each linking to the one before, and applies them all in one commit. It
// returns the CID of the last, and sets the elements of blocks to nil as
// it signs them. The caller holds r.mu.
func (r *Repo) appendBlocks(ctx context.Context, k *Keys, blocks [][]protocol.Entry) (cid.Cid, error) {
	st, err := r.state(ctx, k.ID)
	if err != nil {
		return cid.Undef, err
	}
	if st.StoppedAt != 0 {
		return cid.Undef, fmt.Errorf("chain of %s holds an entry this version does not understand (%s): upgrade before writing", k.ID, st.StoppedWhy)
	}
	if err := st.checkSigner(k); err != nil {
		return cid.Undef, err
	}
	prev, seq := st.head(), st.Seq
	t := r.now().UnixMilli()
	if t < st.Time {
		t = st.Time
	}
	vbs := make([]verifiedBlock, 0, len(blocks))
	for i, entries := range blocks {
		// The signed block holds the entries: the caller's slice lets
		// them go once signed (a batch add's can be many).
		blocks[i] = nil
		link := protocol.NewLink(prev)
		seq++
		b := &protocol.Block{Seq: seq, Prev: &link, Time: t, Entries: entries}
		raw, c, err := b.SignAs(k.Public(), k.Sign)
		if err == nil && len(blocks) > 1 {
			// Many blocks (a batch add): each is stored as it is signed
			// and only its decoded form kept, so the encoded copies of
			// all of them are never held at once. Nothing refers to it
			// until the commit: a failure below deletes it, a kill leaves
			// it to GC (sweepInterrupted).
			err = r.putBlock(ctx, c, raw)
			raw = nil
			// Sign refilled each entry's encoded body; applying a known
			// entry reads only its decoded body, so the copies go now.
			for j := range b.Entries {
				if b.Entries[j].Body != nil {
					b.Entries[j].RawBody = nil
				}
			}
		}
		if err != nil {
			r.deleteUnreferenced(ctx, vbs)
			return cid.Undef, fmt.Errorf("sign block: %w", err)
		}
		vbs = append(vbs, verifiedBlock{cid: c, block: b, raw: raw})
		prev = c
	}
	if err := r.commit(ctx, vbs); err != nil {
		return cid.Undef, err
	}
	return prev, nil
}

// putBlock stores one signed chain block.
func (r *Repo) putBlock(ctx context.Context, c cid.Cid, raw []byte) error {
	blk, err := blocks.NewBlockWithCid(raw, c)
	if err != nil {
		return err
	}
	if err := r.st.Blockstore().PutMany(ctx, []blocks.Block{blk}); err != nil {
		return fmt.Errorf("store chain block: %w", err)
	}
	return nil
}

// deleteUnreferenced deletes the new chain blocks appendBlocks stored
// (those without raw bytes) before their commit failed; what it cannot
// delete is left to GC.
func (r *Repo) deleteUnreferenced(ctx context.Context, vbs []verifiedBlock) {
	for _, vb := range vbs {
		if vb.raw == nil {
			_ = r.st.Blockstore().DeleteBlock(context.WithoutCancel(ctx), vb.cid)
		}
	}
}

// commit stores verified blocks (all new, in chain order per author) and
// applies them: blocks are written and synced first, then the index and
// chain heads in one batch, then that batch is synced. A crash in between
// leaves blocks nothing points to yet, which a retry or gc handles.
func (r *Repo) commit(ctx context.Context, vbs []verifiedBlock) error {
	if len(vbs) == 0 {
		return nil
	}
	blks := make([]blocks.Block, 0, len(vbs))
	for _, vb := range vbs {
		if vb.raw == nil {
			continue // stored already (appendBlocks)
		}
		blk, err := blocks.NewBlockWithCid(vb.raw, vb.cid)
		if err != nil {
			return err
		}
		blks = append(blks, blk)
	}
	if err := r.st.Blockstore().PutMany(ctx, blks); err != nil {
		return fmt.Errorf("store chain blocks: %w", err)
	}
	batch, err := r.ds.Batch(ctx)
	if err != nil {
		return err
	}
	iw := newIndexWriter(ctx, r.ds)
	states := map[protocol.AccountID]*accountState{}
	devicesBefore := map[protocol.AccountID][]DeviceInfo{}
	scopesBefore := map[protocol.AccountID]int{}
	for _, vb := range vbs {
		id := vb.block.AuthorID()
		st, ok := states[id]
		if !ok {
			st = &accountState{}
			if _, err := getJSON(ctx, r.ds, keyAccount(id), st); err != nil {
				return err
			}
			states[id] = st
			devicesBefore[id] = slices.Clone(st.Devices)
			scopesBefore[id] = len(st.Scopes)
		}
		if err := applyToState(st, vb, iw); err != nil {
			return err
		}
		if err := batch.Put(ctx, keySeq(id, vb.block.Seq), vb.cid.Bytes()); err != nil {
			return err
		}
		if err := indexChainBlock(ctx, batch, vb.cid, id); err != nil {
			return err
		}
	}
	for id, st := range states {
		if err := putJSON(ctx, batch, keyAccount(id), st); err != nil {
			return err
		}
		if err := indexDevices(ctx, batch, id, devicesBefore[id], st.Devices); err != nil {
			return err
		}
		if err := indexScopes(ctx, batch, id, scopesBefore[id], st.Scopes); err != nil {
			return err
		}
		if err := indexAttests(ctx, batch, id, st.attests); err != nil {
			return err
		}
		if err := indexGuardians(ctx, batch, id, st.addedGuardians()); err != nil {
			return err
		}
		if err := indexRecovery(ctx, batch, id, st.newRecovery()); err != nil {
			return err
		}
	}
	if err := iw.write(batch); err != nil {
		return err
	}
	// The blocks appendBlocks stored already (a batch add's) and their
	// facts are in the datastore batch now: they go before it commits,
	// which is when the batch's memory peaks.
	streamed := false
	for i := range vbs {
		if vbs[i].raw == nil {
			vbs[i].block.Entries, streamed = nil, true
		}
	}
	if streamed {
		for c := range iw.facts {
			iw.facts[c] = nil
		}
	}
	done := r.cache.writing()
	err = batch.Commit(ctx)
	done()
	if err != nil {
		return fmt.Errorf("commit chain state: %w", err)
	}
	if err := r.ds.Sync(ctx, datastore.NewKey("/keyshare")); err != nil {
		return fmt.Errorf("sync chain state: %w", err)
	}
	changed := map[cid.Cid]bool{}
	for c := range iw.facts {
		changed[c] = true
	}
	for id, st := range states {
		// A change of declared nodes, or of standing grants (which change
		// who reads every record of the account), touches all its records.
		if slices.Equal(devicesBefore[id], st.Devices) && scopesBefore[id] == len(st.Scopes) {
			continue
		}
		recs, err := r.recordsIn(ctx, id)
		if err != nil {
			// The commit is done; listeners look at every record instead.
			changed = nil
			break
		}
		for c := range recs {
			changed[c] = true
		}
	}
	var records []cid.Cid
	for c := range changed {
		records = append(records, c)
	}
	r.chainsChanged(vbs, records, changed == nil)
	return nil
}

// applyToState advances an account's state by one verified block and adds
// its facts to the index, unless an earlier critical unknown entry stopped
// the chain.
func applyToState(st *accountState, vb verifiedBlock, iw *indexWriter) error {
	b := vb.block
	if st.StoppedAt == 0 {
		if err := st.admitSigner(b, vb.cid); err != nil {
			return err
		}
	}
	st.Head, st.Seq, st.Time = vb.cid.String(), b.Seq, b.Time
	if st.StoppedAt != 0 {
		return nil
	}
	if i := b.FirstCriticalUnknown(); i >= 0 {
		st.StoppedAt = b.Seq
		if b.Seq == 0 {
			st.StoppedAt = 1<<64 - 1 // cannot be zero; see accountState
		}
		st.StoppedWhy = fmt.Sprintf("critical entry of unknown type %q in block %d", b.Entries[i].Type, b.Seq)
		return nil
	}
	for i, e := range b.Entries {
		switch body := e.Body.(type) {
		case *protocol.Profile:
			st.Name, st.Role, st.Recipient = body.Name, body.Role, body.Recipient
		case *protocol.Device:
			st.setDevice(body)
		case *protocol.ScopeGrant, *protocol.ScopeEnd:
			st.addScopeEvent(body, EntryRef{Account: b.AuthorID(), Block: vb.cid.String(), Seq: b.Seq, Index: i, Time: b.Time})
		case *protocol.Attestation, *protocol.AttestEnd:
			st.addAttestEvent(body, EntryRef{Account: b.AuthorID(), Block: vb.cid.String(), Seq: b.Seq, Index: i, Time: b.Time})
		case *protocol.GuardianAppoint, *protocol.GuardianEnd:
			st.addGuardianEvent(body, EntryRef{Account: b.AuthorID(), Block: vb.cid.String(), Seq: b.Seq, Index: i, Time: b.Time})
		case *protocol.Succession:
			st.succeed(b, body)
		case *protocol.RecoverySetup:
			st.setRecovery(body, EntryRef{Account: b.AuthorID(), Block: vb.cid.String(), Seq: b.Seq, Index: i, Time: b.Time})
		case nil:
			st.UnknownSeen++
		}
	}
	return iw.apply(b, vb.cid)
}

// chainFrom verifies the chain ending at head, reading blocks with get
// (falling back to the repo's store), down to genesis or to the first
// block the repo already holds at that position. It returns the new
// blocks in chain order. A block that conflicts with one the repo holds
// is returned as a *ForkError.
func (r *Repo) chainFrom(ctx context.Context, head cid.Cid, get func(cid.Cid) ([]byte, error), known func(protocol.AccountID, uint64) (cid.Cid, bool, error)) ([]verifiedBlock, error) {
	if known == nil {
		known = func(id protocol.AccountID, seq uint64) (cid.Cid, bool, error) { return r.blockAt(ctx, id, seq) }
	}
	var newer []verifiedBlock // head first
	c := head
	for {
		raw, err := get(c)
		if err != nil {
			return nil, fmt.Errorf("chain block %s: %w", c, err)
		}
		b, err := protocol.DecodeBlock(raw)
		if err != nil {
			return nil, fmt.Errorf("block %s: %w", c, err)
		}
		if protocol.BlockCID(raw) != c {
			return nil, fmt.Errorf("block %s: bytes do not match CID", c)
		}
		if len(newer) > 0 {
			child := newer[len(newer)-1]
			if err := protocol.CheckSuccessor(b, c, child.block); err != nil {
				return nil, fmt.Errorf("block %s: %w", child.cid, err)
			}
		}
		have, ok, err := known(b.AuthorID(), b.Seq)
		if err != nil {
			return nil, err
		}
		if ok {
			if have.Equals(c) {
				break // joined the chain we hold
			}
			return nil, &ForkError{Account: b.AuthorID(), Seq: b.Seq, A: have, B: c}
		}
		newer = append(newer, verifiedBlock{cid: c, block: b, raw: raw})
		if b.Prev == nil {
			break
		}
		if len(newer) > maxChainWalk {
			return nil, fmt.Errorf("chain of %s: more than %d new blocks in one import", b.AuthorID(), maxChainWalk)
		}
		c = b.Prev.Cid
	}
	// Reverse into chain order.
	for i, j := 0, len(newer)-1; i < j; i, j = i+1, j-1 {
		newer[i], newer[j] = newer[j], newer[i]
	}
	return newer, nil
}

// maxChainWalk bounds how many new blocks one import may bring per chain.
const maxChainWalk = 1 << 20

// recordFork stores fork evidence (both blocks are already, or are made,
// durable in the store and pinned) so that verify and log can show it.
func (r *Repo) recordFork(ctx context.Context, fe *ForkError, rawB []byte) error {
	if rawB != nil {
		blk, err := blocks.NewBlockWithCid(rawB, fe.B)
		if err != nil {
			return err
		}
		if err := r.st.Blockstore().PutMany(ctx, []blocks.Block{blk}); err != nil {
			return err
		}
	}
	ev := forkEvidence{Account: fe.Account, Seq: fe.Seq, A: fe.A.String(), B: fe.B.String(), Found: r.now().UnixMilli()}
	if err := putJSON(ctx, r.ds, keyFork(fe.Account, fe.Seq), ev); err != nil {
		return err
	}
	return r.ds.Sync(ctx, datastore.NewKey("/keyshare/forks"))
}

// Fork is kept evidence of an account signing two histories.
type Fork struct {
	Account protocol.AccountID `json:"account"`
	Seq     uint64             `json:"seq"`
	Blocks  [2]string          `json:"blocks"`
	Found   int64              `json:"found"`
}

// Forks lists the fork evidence the repo holds.
func (r *Repo) Forks(ctx context.Context) ([]Fork, error) {
	keys, err := listKeys(ctx, r.ds, "/keyshare/forks/")
	if err != nil {
		return nil, err
	}
	var out []Fork
	for _, k := range keys {
		var ev forkEvidence
		if _, err := getJSON(ctx, r.ds, k, &ev); err != nil {
			return nil, err
		}
		out = append(out, Fork{Account: ev.Account, Seq: ev.Seq, Blocks: [2]string{ev.A, ev.B}, Found: ev.Found})
	}
	return out, nil
}
