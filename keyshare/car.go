package keyshare

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"

	"github.com/ipfs/go-cid"

	"github.com/blockmrs/blockmrs/protocol"
	"github.com/blockmrs/blockmrs/store"
)

// ExportOptions narrow an export.
type ExportOptions struct {
	// For, when set, leaves out every record that account may not read
	// now. The chains stay whole (they are needed to verify anything), so
	// the CAR still shows who wrote records for whom, but no one else's
	// ciphertext travels. Such a CAR is a partial DAG: our import takes
	// it; a stock `ipfs dag import` that pins its root does not.
	For protocol.AccountID
}

// ExportCAR writes account id's chain and everything it links (records,
// chains of records' authors it acknowledged) as a CARv1 rooted at the
// chain's head: enough for another repo to verify the chain and read what
// it was granted. With opts.For set, only records that account may read
// are included.
//
// Blocks the repo never received (another patient's records, linked from
// a clinician's chain that came with a --for export) are left out; it
// returns how many, and the CAR is then a partial DAG. Records the
// account itself wrote or is the subject of must be present.
func (r *Repo) ExportCAR(ctx context.Context, w io.Writer, id protocol.AccountID, opts ...ExportOptions) (missing int, err error) {
	st, err := r.state(ctx, id)
	if err != nil {
		return 0, err
	}
	var own []cid.Cid
	storeOpts := []store.ExportOption{store.ExportAllowMissing(func(c cid.Cid) {
		missing++
		if a, err := r.AccessFor(ctx, c, id); err == nil && a.proven() && (a.Subject == id || a.Author == id) && a.Rekeyed == nil {
			own = append(own, c)
		}
	})}
	for _, o := range opts {
		if o.For == "" {
			continue
		}
		if _, err := r.Account(ctx, o.For); err != nil {
			return 0, fmt.Errorf("export for: %w", err)
		}
		storeOpts = append(storeOpts, store.ExportSkip(r.notReadableBy(ctx, o.For)))
	}
	if err := r.st.ExportCAR(ctx, w, []cid.Cid{st.head()}, storeOpts...); err != nil {
		return missing, err
	}
	if len(own) > 0 {
		return missing, fmt.Errorf("export: record %s of this account is missing from the repo", own[0])
	}
	return missing, nil
}

// notReadableBy returns a filter that is true for the root of any record
// an export for account id leaves out, by the access policy
// (exportRecord). Chain blocks and blocks inside records are never
// filtered.
func (r *Repo) notReadableBy(ctx context.Context, id protocol.AccountID) func(cid.Cid) bool {
	v, verr := r.vouchSet(ctx)
	return func(c cid.Cid) bool {
		if c.Prefix().Codec == protocol.DagCBORCodec {
			return false
		}
		if ok, err := r.ds.Has(ctx, keyRecordFacts(c)); err != nil || !ok {
			return false // not a record root
		}
		as, err := r.accessAll(ctx, c)
		if err != nil || verr != nil {
			return true
		}
		return !exportRecord(as, id, v).Allow
	}
}

// ExportProfile writes account id's first chain block (its profile) as a
// CARv1: how an account's keys become known to another repo offline.
func (r *Repo) ExportProfile(ctx context.Context, w io.Writer, id protocol.AccountID) error {
	genesis, ok, err := r.blockAt(ctx, id, 0)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("%s: %w", id, ErrUnknownAccount)
	}
	return r.st.ExportCAR(ctx, w, []cid.Cid{genesis})
}

// ImportResult says what an import brought.
type ImportResult struct {
	Roots []cid.Cid `json:"roots"`
	// Accounts lists the chains that were new or advanced, as they are now.
	Accounts []AccountInfo `json:"accounts"`
	// NewBlocks counts new chain blocks.
	NewBlocks int `json:"new_chain_blocks"`
	// Unchanged lists offered chains the repo already had up to or past
	// the offered head (an older head is ignored: no rollback).
	Unchanged []protocol.AccountID `json:"unchanged,omitempty"`
	// Skipped counts the CAR's blocks not reachable from its roots, which
	// were not stored; SkippedBytes is their size.
	Skipped      int   `json:"skipped_blocks"`
	SkippedBytes int64 `json:"skipped_bytes"`
	// Superseded lists the forks a recovery settled (PROTOCOL.md §8).
	Superseded []Superseded `json:"superseded,omitempty"`
}

// Superseded is a fork a recovery settled in an import: the chain
// switched to the arriving recovery's branch (Switched), or kept its
// recovery and stored the arriving branch as evidence.
type Superseded struct {
	Account  protocol.AccountID `json:"account"`
	Seq      uint64             `json:"seq"`
	Switched bool               `json:"switched"`
	Reason   string             `json:"reason"`
	Rule     Rule               `json:"rule"`
}

// ImportCAR imports a CAR whose roots are chain blocks (an account export
// or a profile export), and at most one raw block of address hints (a
// recovery export: keepHintedAddrs decides which are kept). Every chain
// reachable from the roots, and from ack entries in them, is verified
// before anything is written; a bad block, a
// broken link or a fork rejects the whole import and leaves the repo as it
// was, except that fork evidence is kept. A fork a recovery settles does
// not (forkrecovery.go; ImportResult.Superseded says what it did).
func (r *Repo) ImportCAR(ctx context.Context, rd io.Reader) (*ImportResult, error) {
	return r.ImportCARLimit(ctx, rd, 0)
}

// ImportCARLimit is ImportCAR refusing a CAR of more than maxSize block
// bytes (0: store.DefaultImportLimit). Blocks not reachable from the
// roots are counted in the result, not stored. The accounts whose chains
// the CAR's roots are become contacts (MarkContact); chains that acks in
// them pull in do not.
func (r *Repo) ImportCARLimit(ctx context.Context, rd io.Reader, maxSize int64) (*ImportResult, error) {
	r.mu.Lock()
	defer r.mu.Unlock()

	var ci *chainImport
	var hints []KeptAddrs
	check := func(roots []cid.Cid, get func(cid.Cid) ([]byte, error)) error {
		chain, h, err := splitHintRoots(roots, get)
		if err != nil {
			return err
		}
		if len(chain) == 0 {
			return errors.New("CAR has no chain roots")
		}
		hints = h
		ci, err = r.verifyChains(ctx, chain, get)
		return err
	}
	car, err := r.st.ImportCARWith(ctx, rd, store.ImportOptions{Check: check, MaxSize: maxSize})
	if err != nil {
		return nil, r.keepForkEvidence(ctx, ci, err)
	}
	res, err := r.applyImport(ctx, car.Roots, ci)
	if err != nil {
		return res, err
	}
	res.Skipped, res.SkippedBytes = car.Skipped, car.SkippedBytes
	// Importing a file is the user's choice: the accounts whose chains
	// its roots are become contacts (not those its acks pulled in).
	for id := range ci.offered {
		if err := r.MarkContact(ctx, id); err != nil {
			return res, err
		}
	}
	// Address hints (a recovery export's) after the chains that declare
	// their nodes.
	return res, r.keepHints(ctx, hints)
}

// chainImport is what verifyChains found: the new blocks in commit order,
// the accounts offered and advanced, and a fork if one stopped it.
type chainImport struct {
	pending  []verifiedBlock
	fork     *ForkError
	forkRaw  []byte
	offered  map[protocol.AccountID]bool
	advanced map[protocol.AccountID]bool
	// switches are forks a recovery in the import settled (the import
	// switches those chains to the recovery's branch), superseded those a
	// held recovery settled (the arriving branch is kept as evidence).
	switches   []*settledFork
	superseded []*settledFork
}

// verifyChains verifies every chain reachable from roots (chain block
// CIDs), and from ack entries in them, reading blocks with get and falling
// back to the repo's store. Nothing is written. On a fork the returned
// chainImport (never nil) carries the evidence with the error.
func (r *Repo) verifyChains(ctx context.Context, roots []cid.Cid, get func(cid.Cid) ([]byte, error)) (*chainImport, error) {
	ci := &chainImport{offered: map[protocol.AccountID]bool{}, advanced: map[protocol.AccountID]bool{}}
	getAny := func(c cid.Cid) ([]byte, error) {
		if b, err := get(c); err == nil {
			return b, nil
		}
		blk, err := r.st.Blockstore().Get(ctx, c)
		if err != nil {
			return nil, fmt.Errorf("not offered and not in the repo")
		}
		return blk.RawData(), nil
	}
	bySeq := map[protocol.AccountID]map[uint64]cid.Cid{}
	switched := map[protocol.AccountID]uint64{} // from which seq the held blocks lost to a recovery
	knows := func(_ context.Context, id protocol.AccountID, seq uint64) (cid.Cid, bool, error) {
		if c, ok := bySeq[id][seq]; ok {
			return c, true, nil
		}
		if from, ok := switched[id]; ok && seq >= from {
			return cid.Undef, false, nil
		}
		return r.blockAt(ctx, id, seq)
	}
	seen := map[cid.Cid]bool{}
	queue := append([]cid.Cid(nil), roots...)
	for len(queue) > 0 {
		c := queue[0]
		queue = queue[1:]
		if seen[c] {
			continue
		}
		seen[c] = true
		if c.Prefix().Codec != protocol.DagCBORCodec {
			return ci, fmt.Errorf("root %s is not a chain block", c)
		}
		vbs, err := r.chainFrom(ctx, c, getAny, knows)
		var fe *ForkError
		if errors.As(err, &fe) {
			// The fork-choice rule: a recovery on one side settles it.
			if err := r.checkForkSigner(ctx, fe, c, getAny, knows); err != nil {
				return ci, err
			}
			var sf *settledFork
			if _, done := switched[fe.Account]; !done {
				if sf, err = r.settleFork(ctx, fe, c, getAny, bySeq[fe.Account]); err != nil {
					return ci, err
				}
			}
			switch {
			case sf != nil && sf.decision.Rule == RuleForkUnsigned:
				// What may have been a recovery is none, replayed.
				return ci, &SignerError{Account: fe.Account, Seq: sf.seq, Decision: sf.decision}
			case sf == nil || !sf.decision.Allow:
				ci.fork = fe
				ci.forkRaw, _ = getAny(fe.B)
				return ci, fe
			case !sf.switches():
				ci.superseded = append(ci.superseded, sf)
				continue
			}
			ci.switches = append(ci.switches, sf)
			switched[fe.Account] = sf.seq
			vbs, err = r.chainFrom(ctx, c, getAny, knows)
		}
		if err != nil {
			return ci, err
		}
		if raw, err := getAny(c); err == nil {
			if b, err := protocol.DecodeBlock(raw); err == nil {
				ci.offered[b.AuthorID()] = true
			}
		}
		for _, vb := range vbs {
			id := vb.block.AuthorID()
			if bySeq[id] == nil {
				bySeq[id] = map[uint64]cid.Cid{}
			}
			bySeq[id][vb.block.Seq] = vb.cid
			ci.advanced[id] = true
			ci.pending = append(ci.pending, vb)
			for _, e := range vb.block.Entries {
				if ack, ok := e.Body.(*protocol.Ack); ok {
					queue = append(queue, ack.Block.Cid)
				}
			}
		}
	}
	// Chains holding a recovery go after the others, so that the
	// contacts' chains whose keys its approvals name are applied first
	// (approvalSigner reads them from the commit).
	recovers := map[protocol.AccountID]bool{}
	for _, vb := range ci.pending {
		if claimsRecovery(vb.block) {
			recovers[vb.block.AuthorID()] = true
		}
	}
	sort.SliceStable(ci.pending, func(i, j int) bool {
		ai, aj := ci.pending[i].block.AuthorID(), ci.pending[j].block.AuthorID()
		if recovers[ai] != recovers[aj] {
			return recovers[aj]
		}
		if ai != aj {
			return ai < aj
		}
		return ci.pending[i].block.Seq < ci.pending[j].block.Seq
	})
	return ci, nil
}

// keepForkEvidence records the fork that made an import fail, if any,
// and returns err (joined with a failure to keep the evidence).
func (r *Repo) keepForkEvidence(ctx context.Context, ci *chainImport, err error) error {
	if ci == nil || ci.fork == nil {
		return err
	}
	if ferr := r.recordFork(ctx, ci.fork, ci.forkRaw); ferr != nil {
		return fmt.Errorf("%w (and keeping the evidence failed: %v)", err, ferr)
	}
	return err
}

// applyImport indexes and commits verified chains and says what changed.
// The caller holds r.mu.
func (r *Repo) applyImport(ctx context.Context, roots []cid.Cid, ci *chainImport) (*ImportResult, error) {
	if err := r.indexImportedRecords(ctx, ci.pending); err != nil {
		return nil, err
	}
	prepare := func(cc *chainCommit) error { return r.prepareSwitches(ctx, cc, ci.switches) }
	if err := r.commitWith(ctx, ci.pending, prepare); err != nil {
		return nil, err
	}
	res := &ImportResult{Roots: roots, NewBlocks: len(ci.pending), Accounts: []AccountInfo{}}
	if len(ci.switches) > 0 {
		// What the losing branches granted stops counting: the index is
		// rebuilt from the chains (Open finishes it after a crash).
		if err := r.reindex(ctx); err != nil {
			return nil, err
		}
	}
	for _, sf := range ci.superseded {
		if err := r.keepSuperseded(ctx, sf); err != nil {
			return nil, err
		}
	}
	for _, sf := range slices.Concat(ci.switches, ci.superseded) {
		res.Superseded = append(res.Superseded, Superseded{Account: sf.account, Seq: sf.seq, Switched: sf.switches(), Reason: sf.decision.Reason, Rule: sf.decision.Rule})
	}
	for id := range ci.advanced {
		info, err := r.Account(ctx, id)
		if err != nil {
			return nil, err
		}
		res.Accounts = append(res.Accounts, info)
	}
	for id := range ci.offered {
		if !ci.advanced[id] {
			res.Unchanged = append(res.Unchanged, id)
		}
	}
	sort.Slice(res.Accounts, func(i, j int) bool { return res.Accounts[i].ID < res.Accounts[j].ID })
	sort.Slice(res.Unchanged, func(i, j int) bool { return res.Unchanged[i] < res.Unchanged[j] })
	return res, nil
}
