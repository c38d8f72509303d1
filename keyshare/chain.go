package keyshare

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	"github.com/ipfs/go-datastore"

	"github.com/blockmrs/blockmrs/protocol"
	"github.com/blockmrs/blockmrs/store"
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
	i := 0
	return r.appendFrom(ctx, k, len(blocks) >= stagedBlocks, func() ([]protocol.Entry, bool, error) {
		if i == len(blocks) {
			return nil, false, nil
		}
		es := blocks[i]
		blocks[i] = nil
		i++
		return es, true, nil
	})
}

// stagedBlocks is how many blocks make an append big enough to stage, and
// stagedBytes how many bytes of blocks make a commit of blocks received
// (a chain sync or import) big enough (see chainCommit): below them, one
// datastore batch in memory is cheaper than a table written and ingested
// (which flushes pebble's memtable when it overlaps it).
const (
	stagedBlocks = 8
	stagedBytes  = 2 << 20
)

// appendFrom signs one new block on k's chain per call of next (which
// gives a block's entries, or false when there are no more), each linking to
// the one before, and applies them all in one commit; it returns the CID
// of the last. With staged, each block is stored and applied as it is
// signed and its facts go to a staged datastore batch, so that memory
// holds one block at a time however many there are (a batch add of tens
// of thousands of records); nothing refers to the stored blocks until the
// commit, and a failure deletes them (a kill leaves them to the sweep at
// the next Open, which collects what no chain head reaches). The caller
// holds r.mu.
func (r *Repo) appendFrom(ctx context.Context, k *Keys, staged bool, next func() ([]protocol.Entry, bool, error)) (cid.Cid, error) {
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
	var cc *chainCommit
	if staged {
		if cc, err = r.newChainCommit(ctx, true); err != nil {
			return cid.Undef, err
		}
		defer cc.abort()
	}
	var vbs []verifiedBlock // not staged: the blocks, stored and applied by commit
	var stored []cid.Cid    // staged: the blocks stored, deleted if the commit fails
	committed := false
	defer func() {
		// Once the datastore write is in, the blocks are the chain's even
		// if a later step failed.
		if !committed && (cc == nil || !cc.wrote) {
			for _, c := range stored {
				_ = r.st.Blockstore().DeleteBlock(context.WithoutCancel(ctx), c)
			}
		}
	}()
	for {
		entries, more, err := next()
		if err != nil {
			return cid.Undef, err
		}
		if !more {
			break
		}
		link := protocol.NewLink(prev)
		seq++
		b := &protocol.Block{Seq: seq, Prev: &link, Time: t, Entries: entries}
		raw, c, err := b.SignAs(k.Public(), k.Sign)
		if err != nil {
			return cid.Undef, fmt.Errorf("sign block: %w", err)
		}
		prev = c
		if !staged {
			vbs = append(vbs, verifiedBlock{cid: c, block: b, raw: raw})
			continue
		}
		if err := r.putBlock(ctx, c, raw); err != nil {
			return cid.Undef, err
		}
		stored = append(stored, c)
		if err := cc.add(verifiedBlock{cid: c, block: b}); err != nil {
			return cid.Undef, err
		}
	}
	if staged {
		err = cc.finish()
	} else {
		err = r.commit(ctx, vbs)
	}
	if err != nil {
		return cid.Undef, err
	}
	committed = true
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

// commit stores verified blocks (all new, in chain order per author) and
// applies them: blocks are written and synced first, then the index and
// chain heads in one atomic datastore write (staged when the blocks are
// big), then that write is synced. A crash in between leaves blocks
// nothing points to yet, which a retry or gc handles.
func (r *Repo) commit(ctx context.Context, vbs []verifiedBlock) error {
	return r.commitWith(ctx, vbs, nil)
}

// commitWith is commit with prepare run on the chain commit before the
// blocks are added (prepareSwitches).
func (r *Repo) commitWith(ctx context.Context, vbs []verifiedBlock, prepare func(*chainCommit) error) error {
	if len(vbs) == 0 {
		return nil
	}
	blks := make([]blocks.Block, 0, len(vbs))
	for _, vb := range vbs {
		if vb.raw == nil {
			continue // in the store already
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
	size := 0
	for _, vb := range vbs {
		size += len(vb.raw)
	}
	cc, err := r.newChainCommit(ctx, size >= stagedBytes)
	if err != nil {
		return err
	}
	defer cc.abort()
	if prepare != nil {
		if err := prepare(cc); err != nil {
			return err
		}
	}
	for _, vb := range vbs {
		if err := cc.add(vb); err != nil {
			return err
		}
	}
	return cc.finish()
}

// A chainCommit applies verified blocks to the chain states and the access
// index and writes the result in one atomic datastore write: a batch in
// memory, or for a big commit a store.StagedBatch, to which each block's
// record facts go as the block is added, so that they are never all in
// memory. Either way nothing is visible until finish.
type chainCommit struct {
	r      *Repo
	ctx    context.Context
	batch  datastore.Batch
	staged *store.StagedBatch // batch, when staged
	read   getter             // what the batch would read: the staged writes over the datastore
	iw     *indexWriter

	states         map[protocol.AccountID]*accountState
	accounts       []protocol.AccountID // the blocks' authors, in order of their first block
	devicesBefore  map[protocol.AccountID][]DeviceInfo
	scopesBefore   map[protocol.AccountID]int
	consentsBefore map[protocol.AccountID]int
	changed        map[cid.Cid]bool // staged: the records whose facts were written
	done           bool             // finish committed, or abort ran
	wrote          bool             // the datastore write is in
	all            bool             // tell listeners to consider every record (a fork switched branches)
}

func (r *Repo) newChainCommit(ctx context.Context, staged bool) (*chainCommit, error) {
	cc := &chainCommit{r: r, ctx: ctx, read: r.ds, states: map[protocol.AccountID]*accountState{},
		devicesBefore: map[protocol.AccountID][]DeviceInfo{}, scopesBefore: map[protocol.AccountID]int{},
		consentsBefore: map[protocol.AccountID]int{}}
	if staged {
		sb, err := r.st.NewStagedBatch(ctx)
		if err != nil {
			return nil, err
		}
		cc.batch, cc.staged, cc.read, cc.changed = sb, sb, sb, map[cid.Cid]bool{}
	} else {
		b, err := r.ds.Batch(ctx)
		if err != nil {
			return nil, err
		}
		cc.batch = b
	}
	cc.iw = newIndexWriter(ctx, cc.read)
	return cc, nil
}

// lookup reads an account's chain state as the commit has it so far.
func (cc *chainCommit) lookup(id protocol.AccountID) (*accountState, error) {
	if st, ok := cc.states[id]; ok {
		return st, nil
	}
	st := &accountState{}
	found, err := getJSON(cc.ctx, cc.read, keyAccount(id), st)
	if err != nil || !found {
		return nil, err
	}
	return st, nil
}

// add applies one block, the next of its author's chain.
func (cc *chainCommit) add(vb verifiedBlock) error {
	ctx := cc.ctx
	id := vb.block.AuthorID()
	st, ok := cc.states[id]
	if !ok {
		st = &accountState{}
		if _, err := getJSON(ctx, cc.read, keyAccount(id), st); err != nil {
			return err
		}
		cc.states[id] = st
		cc.accounts = append(cc.accounts, id)
		cc.devicesBefore[id] = slices.Clone(st.Devices)
		cc.scopesBefore[id] = len(st.Scopes)
		cc.consentsBefore[id] = len(st.Consents)
	}
	if err := applyToState(st, vb, cc.iw, admission{lookup: cc.lookup}); err != nil {
		return err
	}
	if err := cc.batch.Put(ctx, keySeq(id, vb.block.Seq), vb.cid.Bytes()); err != nil {
		return err
	}
	if err := indexChainBlock(ctx, cc.batch, vb.cid, id); err != nil {
		return err
	}
	if cc.staged == nil {
		return nil
	}
	// Staged: the block's facts go to disk now, and the block's entries
	// and facts out of memory (a later block reads them back through the
	// staged batch).
	if err := cc.iw.write(cc.batch); err != nil {
		return err
	}
	for c := range cc.iw.facts {
		cc.changed[c] = true
	}
	cc.iw = newIndexWriter(ctx, cc.read)
	vb.block.Entries = nil
	return nil
}

// finish writes the chain states and what the index has left, commits the
// write and syncs it, then tells the chain listeners what changed.
func (cc *chainCommit) finish() error {
	ctx, r := cc.ctx, cc.r
	for _, id := range cc.accounts {
		st := cc.states[id]
		if err := putJSON(ctx, cc.batch, keyAccount(id), st); err != nil {
			return err
		}
		if err := indexDevices(ctx, cc.batch, id, cc.devicesBefore[id], st.Devices); err != nil {
			return err
		}
		if err := indexScopes(ctx, cc.batch, id, cc.scopesBefore[id], st.Scopes); err != nil {
			return err
		}
		if err := indexAttests(ctx, cc.batch, id, st.attests); err != nil {
			return err
		}
		if err := indexGuardians(ctx, cc.batch, id, st.addedGuardians()); err != nil {
			return err
		}
		if err := indexRecovery(ctx, cc.batch, id, st.newRecovery()); err != nil {
			return err
		}
	}
	if err := cc.iw.write(cc.batch); err != nil {
		return err
	}
	cc.done = true // a failed staged commit drops its own writes
	done := r.cache.writing()
	err := cc.batch.Commit(ctx)
	done()
	if err != nil {
		return fmt.Errorf("commit chain state: %w", err)
	}
	cc.wrote = true
	if err := r.ds.Sync(ctx, datastore.NewKey("/keyshare")); err != nil {
		return fmt.Errorf("sync chain state: %w", err)
	}
	changed := cc.changed
	if changed == nil {
		changed = map[cid.Cid]bool{}
	}
	for c := range cc.iw.facts {
		changed[c] = true
	}
	touched, err := cc.touchedAccounts()
	for id := range touched {
		recs, e := r.recordsIn(ctx, id)
		if e != nil {
			err = e
			break
		}
		maps.Copy(changed, recs)
	}
	if err != nil {
		changed = nil // the commit is done; listeners look at every record instead
	}
	var records []cid.Cid
	for c := range changed {
		records = append(records, c)
	}
	r.chainsChanged(cc.accounts, records, changed == nil || cc.all)
	return nil
}

// touchedAccounts returns the accounts all of whose records the commit
// touched, each once: those whose declared nodes or standing grants
// changed (who reads every record of the account), and the wards of a
// guardian's new answers to appointments those wards hold here (whether
// its node fetches their records, RuleWantUnaccepted, and what it may do
// for them). An answer naming an appointment this repo does not hold —
// a stranger's, or one replayed onto another ward — counts for nothing
// (guardianConsent) and touches nothing, so a chain full of them costs
// no scan of the wards they name.
func (cc *chainCommit) touchedAccounts() (map[protocol.AccountID]bool, error) {
	touched := map[protocol.AccountID]bool{}
	spans := map[protocol.AccountID][]guardianSpan{}
	for _, id := range cc.accounts {
		st := cc.states[id]
		if !slices.Equal(cc.devicesBefore[id], st.Devices) || cc.scopesBefore[id] != len(st.Scopes) {
			touched[id] = true
		}
		for _, c := range st.Consents[min(cc.consentsBefore[id], len(st.Consents)):] {
			if touched[c.Ward] {
				continue
			}
			s, ok := spans[c.Ward]
			if !ok {
				evs, err := cc.r.guardiansOf(cc.ctx, c.Ward)
				if err != nil {
					return nil, err
				}
				s = guardianSpans(evs)
				spans[c.Ward] = s
			}
			if slices.ContainsFunc(s, func(g guardianSpan) bool { return g.Guardian == id && g.Appointed.Block == c.Appointment }) {
				touched[c.Ward] = true
			}
		}
	}
	return touched, nil
}

// abort drops a staged batch that did not finish.
func (cc *chainCommit) abort() {
	if cc.staged != nil && !cc.done {
		cc.staged.Abort(cc.ctx)
	}
	cc.done = true
}

// applyToState advances an account's state by one verified block and adds
// its facts to the index, unless an earlier critical unknown entry stopped
// the chain.
func applyToState(st *accountState, vb verifiedBlock, iw *indexWriter, adm admission) error {
	b := vb.block
	if st.StoppedAt == 0 {
		if err := st.admitSigner(b, vb.cid, adm); err != nil {
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
		case *protocol.WardAccept, *protocol.WardDecline:
			st.addConsent(body, EntryRef{Account: b.AuthorID(), Block: vb.cid.String(), Seq: b.Seq, Index: i, Time: b.Time})
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
// is returned as a *ForkError. knows tells which block is at a seq (the
// repo's, or one the import brings).
func (r *Repo) chainFrom(ctx context.Context, head cid.Cid, get func(cid.Cid) ([]byte, error), knows func(context.Context, protocol.AccountID, uint64) (cid.Cid, bool, error)) ([]verifiedBlock, error) {
	return walkDown(ctx, head, get, knows, func(b *protocol.Block, c, have cid.Cid) error {
		return &ForkError{Account: b.AuthorID(), Seq: b.Seq, A: have, B: c}
	})
}

// walkDown reads a chain from head down with get, each block checked to
// be the predecessor of the one above, until the first block that knows
// holds at its seq, or genesis, and returns the blocks above that one in
// chain order. For a block where knows holds another block, other (when
// not nil) may end the walk with an error; else the walk goes on below.
func walkDown(ctx context.Context, head cid.Cid, get func(cid.Cid) ([]byte, error), knows func(context.Context, protocol.AccountID, uint64) (cid.Cid, bool, error), other func(b *protocol.Block, c, have cid.Cid) error) ([]verifiedBlock, error) {
	var newer []verifiedBlock // head first
	for c := head; ; {
		b, raw, err := getChainBlock(get, c)
		if err != nil {
			return nil, err
		}
		if n := len(newer); n > 0 {
			if err := protocol.CheckSuccessor(b, c, newer[n-1].block); err != nil {
				return nil, fmt.Errorf("block %s: %w", newer[n-1].cid, err)
			}
		}
		have, ok, err := knows(ctx, b.AuthorID(), b.Seq)
		if err != nil {
			return nil, err
		}
		if ok && have.Equals(c) {
			break // joined the chain held
		}
		if ok && other != nil {
			if err := other(b, c, have); err != nil {
				return nil, err
			}
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
	slices.Reverse(newer)
	return newer, nil
}

// getChainBlock reads the chain block c with get, decodes it strictly and
// checks its bytes against c.
func getChainBlock(get func(cid.Cid) ([]byte, error), c cid.Cid) (*protocol.Block, []byte, error) {
	raw, err := get(c)
	if err != nil {
		return nil, nil, fmt.Errorf("chain block %s: %w", c, err)
	}
	b, err := protocol.DecodeBlock(raw)
	if err != nil {
		return nil, nil, fmt.Errorf("block %s: %w", c, err)
	}
	if protocol.BlockCID(raw) != c {
		return nil, nil, fmt.Errorf("block %s: bytes do not match CID", c)
	}
	return b, raw, nil
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
	// Recovery is set for a fork a recovery settled (PROTOCOL.md §8): the
	// recovery succession the chain follows. Superseded is the head of
	// the other branch, signed by the key the recovery replaced, kept as
	// evidence and counting for nothing.
	Recovery   string `json:"recovery,omitempty"`
	Superseded string `json:"superseded,omitempty"`
}

// Settled tells whether a recovery settled the fork.
func (f Fork) Settled() bool { return f.Recovery != "" }

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
		out = append(out, Fork{Account: ev.Account, Seq: ev.Seq, Blocks: [2]string{ev.A, ev.B}, Found: ev.Found, Recovery: ev.Recovery, Superseded: ev.Superseded})
	}
	return out, nil
}
