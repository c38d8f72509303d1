package keyshare

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"

	"github.com/ipfs/go-cid"
	"github.com/ipfs/go-datastore"

	"github.com/blockmrs/blockmrs/protocol"
	"github.com/blockmrs/blockmrs/store"
)

// ChainReport is the result of verifying one account's chain.
type ChainReport struct {
	Account  protocol.AccountID `json:"account"`
	Name     string             `json:"name"`
	Blocks   uint64             `json:"blocks"`
	Entries  int                `json:"entries"`
	Head     string             `json:"head"`
	Problems []string           `json:"problems,omitempty"`
}

// RecordReport is the chain of custody of one record.
type RecordReport struct {
	Access *Access `json:"access"`
	// Blocks is the number of the record's blocks read and hash-checked,
	// Size the ciphertext bytes.
	Blocks int   `json:"blocks"`
	Size   int64 `json:"size"`
	// Decrypted tells whether the record was also decrypted and
	// authenticated with the verifying account's key.
	Decrypted bool               `json:"decrypted"`
	Title     string             `json:"title,omitempty"`
	Problems  []string           `json:"problems,omitempty"`
	Author    protocol.AccountID `json:"author,omitempty"`
	// Rekey is set for a record its subject re-keyed, and for the new
	// version a re-key made: its provenance and what was checked of it.
	Rekey *RekeyReport `json:"rekey,omitempty"`
}

// VerifyReport is the result of Verify.
type VerifyReport struct {
	Chains []ChainReport `json:"chains"`
	// Records counts records in the rebuilt access index; IndexProblems
	// lists where the persisted index differed from the rebuilt one (it
	// is repaired).
	Records       int      `json:"records"`
	IndexProblems []string `json:"index_problems,omitempty"`
	Forks         []Fork   `json:"forks,omitempty"`
	// Superseded lists the forks a recovery settled (PROTOCOL.md §8):
	// the branch the replaced key signed is kept as evidence and counts
	// for nothing. They do not make OK false.
	Superseded []Fork        `json:"superseded,omitempty"`
	Record     *RecordReport `json:"record,omitempty"`
	// Problems lists access-rule violations found in the chains (a grant
	// by someone other than the subject, …).
	Problems []string `json:"problems,omitempty"`
	// BlocksChecked counts the stored blocks re-hashed (VerifyOptions.Blocks),
	// BlockBytes their bytes; BadBlocks lists those whose bytes do not
	// match their CID.
	BlocksChecked int        `json:"blocks_checked,omitempty"`
	BlockBytes    int64      `json:"block_bytes,omitempty"`
	BadBlocks     []BadBlock `json:"bad_blocks,omitempty"`
	OK            bool       `json:"ok"`
}

// BadBlock is a stored block whose bytes do not hash to its CID, and what
// it belongs to.
type BadBlock struct {
	// CID is the block's CID: a record's own CID when the block is a
	// record's root, a chain block's CID, else the multihash with the
	// raw codec (the blockstore keeps no codecs).
	CID cid.Cid `json:"cid"`
	// Records lists the records whose DAG holds the block.
	Records []cid.Cid `json:"records,omitempty"`
	// Chain is the account whose chain block it is.
	Chain protocol.AccountID `json:"chain,omitempty"`
}

// VerifyOptions select what Verify checks beyond every chain and the
// index.
type VerifyOptions struct {
	// Record, when defined, adds a chain-of-custody check of that record.
	Record cid.Cid
	// Keys, when set, lets Verify decrypt Record and check its envelope.
	Keys *Keys
	// Blocks adds a re-hash of every stored block (store.VerifyBlocks),
	// reporting each bad one with the records or chain it belongs to.
	// Progress, when set, is called as blocks are checked.
	Blocks   bool
	Progress func(VerifyProgress)
}

// VerifyProgress is how far the block re-hash got (blocks and bytes).
type VerifyProgress = store.VerifyProgress

// Verify re-checks every chain the repo holds from head to first block
// (signatures, links, sequence, profile first), rebuilds the access index
// from the chains and compares it with the persisted one (repairing any
// difference), lists fork evidence, and optionally checks one record and
// re-hashes every stored block. The block re-hash runs without holding
// the repo's lock, so a daemon keeps serving meanwhile.
func (r *Repo) Verify(ctx context.Context, opts VerifyOptions) (*VerifyReport, error) {
	rep, err := r.verifyLocked(ctx, opts)
	if err != nil {
		return nil, err
	}
	if opts.Blocks {
		if err := r.verifyBlocks(ctx, rep, opts.Progress); err != nil {
			return nil, err
		}
		rep.OK = rep.OK && len(rep.BadBlocks) == 0
	}
	return rep, nil
}

// MarshalJSON writes the CIDs as plain strings, like every other CID in
// the JSON this package produces.
func (b BadBlock) MarshalJSON() ([]byte, error) {
	recs := make([]string, len(b.Records))
	for i, c := range b.Records {
		recs[i] = c.String()
	}
	return json.Marshal(struct {
		CID     string             `json:"cid"`
		Records []string           `json:"records,omitempty"`
		Chain   protocol.AccountID `json:"chain,omitempty"`
	}{b.CID.String(), recs, b.Chain})
}

// PartOf says what a bad block is part of: its records, or the chain of
// an account, named by name (nil: the account ID).
func (b BadBlock) PartOf(name func(protocol.AccountID) string) string {
	var parts []string
	for _, r := range b.Records {
		parts = append(parts, "record "+r.String())
	}
	if b.Chain != "" {
		who := string(b.Chain)
		if name != nil {
			who = name(b.Chain)
		}
		parts = append(parts, "chain of "+who)
	}
	if len(parts) == 0 {
		return "part of no record or chain this repo knows"
	}
	return "part of " + strings.Join(parts, ", ")
}

// AllProblems lists every problem in the report, one line each, chains
// first: what made OK false.
func (rep *VerifyReport) AllProblems() []string {
	var out []string
	for _, c := range rep.Chains {
		for _, p := range c.Problems {
			out = append(out, fmt.Sprintf("chain of %s: %s", c.Account, p))
		}
	}
	out = append(out, rep.IndexProblems...)
	for _, fk := range rep.Forks {
		out = append(out, fmt.Sprintf("fork: %s signed two blocks at seq %d (%s, %s)", fk.Account, fk.Seq, fk.Blocks[0], fk.Blocks[1]))
	}
	out = append(out, rep.Problems...)
	for _, b := range rep.BadBlocks {
		out = append(out, fmt.Sprintf("block %s is corrupt (%s)", b.CID, b.PartOf(nil)))
	}
	if rep.Record != nil {
		for _, p := range rep.Record.Problems {
			if rep.Record.Access != nil && !strings.Contains(p, rep.Record.Access.Record.String()) {
				p = rep.Record.Access.Record.String() + ": " + p
			}
			out = append(out, p)
		}
	}
	return out
}

// SupersededNotes describes, one line each, the forks a recovery settled
// (not problems: the chain follows the recovery, and the other branch,
// signed by the key it replaced, counts for nothing), naming accounts by
// name (nil: the account ID).
func (rep *VerifyReport) SupersededNotes(name func(protocol.AccountID) string) []string {
	out := []string{}
	for _, f := range rep.Superseded {
		who := string(f.Account)
		if name != nil {
			who = name(f.Account)
		}
		out = append(out, fmt.Sprintf("chain of %s, block %d: branch %s superseded by recovery %s (kept as evidence; it counts for nothing)", who, f.Seq, f.Superseded, f.Recovery))
	}
	return out
}

// verifyBlocks re-hashes every stored block into rep.
func (r *Repo) verifyBlocks(ctx context.Context, rep *VerifyReport, progress func(VerifyProgress)) error {
	bad, done, err := r.st.VerifyBlocks(ctx, progress)
	if err != nil {
		return err
	}
	rep.BlocksChecked, rep.BlockBytes = done.Blocks, done.Bytes
	for _, c := range bad {
		o, err := r.Owner(ctx, c)
		if err != nil {
			return err
		}
		bb := BadBlock{CID: c, Records: o.Records, Chain: o.Chain}
		if o.Chain != "" {
			bb.CID = cid.NewCidV1(protocol.DagCBORCodec, c.Hash())
		}
		for _, root := range o.Records {
			if bytes.Equal(root.Hash(), c.Hash()) {
				bb.CID = root
			}
		}
		rep.BadBlocks = append(rep.BadBlocks, bb)
	}
	sort.Slice(rep.BadBlocks, func(i, j int) bool { return rep.BadBlocks[i].CID.String() < rep.BadBlocks[j].CID.String() })
	return nil
}

// rebuildIndexes replays every chain this repo holds into a fresh access
// index, reporting each chain in rep.Chains, and makes the stored access
// and peer indexes match it, reporting what differed in
// rep.IndexProblems; it returns the fresh index. Verify and a fork
// switch's reindex share it. The caller holds r.mu.
func (r *Repo) rebuildIndexes(ctx context.Context, rep *VerifyReport) (*indexWriter, error) {
	accts, err := listKeys(ctx, r.ds, "/keyshare/acct/")
	if err != nil {
		return nil, err
	}
	rebuilt := newIndexWriter(ctx, nil)
	for _, k := range accts {
		cr, err := r.verifyChain(ctx, protocol.AccountID(k.BaseNamespace()), rebuilt)
		if err != nil {
			return nil, err
		}
		rep.Chains = append(rep.Chains, cr)
	}
	if err := r.compareIndex(ctx, rebuilt, rep); err != nil {
		return nil, err
	}
	peerProblems, err := r.rebuildPeerIndex(ctx, false)
	if err != nil {
		return nil, fmt.Errorf("rebuild the peer index: %w", err)
	}
	rep.IndexProblems = append(rep.IndexProblems, peerProblems...)
	return rebuilt, nil
}

// verifyLocked is Verify without the block re-hash, under the repo's lock.
func (r *Repo) verifyLocked(ctx context.Context, opts VerifyOptions) (*VerifyReport, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rep := &VerifyReport{Chains: []ChainReport{}}
	rebuilt, err := r.rebuildIndexes(ctx, rep)
	if err != nil {
		return nil, err
	}
	forks, err := r.Forks(ctx)
	if err != nil {
		return nil, err
	}
	for _, f := range forks {
		if f.Settled() {
			rep.Superseded = append(rep.Superseded, f)
		} else {
			rep.Forks = append(rep.Forks, f)
		}
	}
	seen := map[string]bool{}
	for c, f := range rebuilt.facts {
		if err := r.withScopes(ctx, f); err != nil {
			return nil, err
		}
		for _, a := range evaluate(c, f, r.now()) {
			for _, p := range a.Problems {
				if line := c.String() + ": " + p; !seen[line] {
					seen[line] = true
					rep.Problems = append(rep.Problems, line)
				}
			}
		}
	}
	// A claim on a block that belongs to another record (an inner block,
	// or the same bytes under another codec) contests that record too.
	for c, f := range rebuilt.facts {
		if len(f.Claims) == 0 {
			continue
		}
		o, err := r.Owner(ctx, c)
		if err != nil {
			return nil, err
		}
		for _, root := range o.Records {
			if root.Equals(c) {
				continue
			}
			if line := fmt.Sprintf("%s: contested: claimed as a record, and its block belongs to record %s", c, root); !seen[line] {
				seen[line] = true
				rep.Problems = append(rep.Problems, line)
			}
		}
	}
	sort.Strings(rep.Problems)
	if opts.Record.Defined() {
		rep.Record = r.verifyRecord(ctx, opts.Record, opts.Keys)
	}
	rep.OK = len(rep.IndexProblems) == 0 && len(rep.Forks) == 0 && len(rep.Problems) == 0
	for _, c := range rep.Chains {
		rep.OK = rep.OK && len(c.Problems) == 0
	}
	if rep.Record != nil {
		rep.OK = rep.OK && len(rep.Record.Problems) == 0
	}
	return rep, nil
}

// verifyChain walks one chain from its head and feeds its facts to iw.
func (r *Repo) verifyChain(ctx context.Context, id protocol.AccountID, iw *indexWriter) (ChainReport, error) {
	st, err := r.state(ctx, id)
	if err != nil {
		return ChainReport{}, err
	}
	cr := ChainReport{Account: id, Name: st.Name, Head: st.Head}
	var chain []verifiedBlock
	c := st.head()
	var child *verifiedBlock
	for {
		b, err := r.readBlock(ctx, c)
		if err != nil {
			cr.Problems = append(cr.Problems, err.Error())
			return cr, nil
		}
		if b.AuthorID() != id {
			cr.Problems = append(cr.Problems, fmt.Sprintf("block %s is signed by %s, not by the account", c, b.AuthorID()))
			return cr, nil
		}
		if child != nil {
			if err := protocol.CheckSuccessor(b, c, child.block); err != nil {
				cr.Problems = append(cr.Problems, err.Error())
				return cr, nil
			}
		}
		if at, ok, err := r.blockAt(ctx, id, b.Seq); err != nil {
			return cr, err
		} else if !ok || !at.Equals(c) {
			cr.Problems = append(cr.Problems, fmt.Sprintf("sequence index of block %d does not point to %s", b.Seq, c))
		}
		chain = append(chain, verifiedBlock{cid: c, block: b})
		child = &chain[len(chain)-1]
		if b.Prev == nil {
			break
		}
		c = b.Prev.Cid
	}
	cr.Blocks = uint64(len(chain))
	if cr.Blocks != st.Seq+1 {
		cr.Problems = append(cr.Problems, fmt.Sprintf("chain has %d blocks but the head is at seq %d", cr.Blocks, st.Seq))
	}
	fresh := &accountState{}
	adm := admission{lookup: r.repoLookup(ctx), replay: true}
	for i := len(chain) - 1; i >= 0; i-- {
		cr.Entries += len(chain[i].block.Entries)
		if err := applyToState(fresh, chain[i], iw, adm); err != nil {
			var se *SignerError
			if errors.As(err, &se) {
				cr.Problems = append(cr.Problems, err.Error())
				return cr, nil
			}
			return cr, err
		}
	}
	if err := r.verifyAttests(ctx, id, fresh.attests, &cr); err != nil {
		return cr, err
	}
	if fresh.Name != st.Name || fresh.Recipient != st.Recipient || fresh.Role != st.Role || fresh.StoppedAt != st.StoppedAt ||
		!slices.Equal(fresh.Devices, st.Devices) {
		cr.Problems = append(cr.Problems, "stored profile state differs from the chain (repaired)")
		fresh.UnknownSeen = st.UnknownSeen
		if err := putJSON(ctx, r.ds, keyAccount(id), fresh); err != nil {
			return cr, err
		}
	}
	return cr, nil
}

// compareIndex compares the rebuilt index with the persisted one and
// repairs differences.
func (r *Repo) compareIndex(ctx context.Context, rebuilt *indexWriter, rep *VerifyReport) error {
	rep.Records = len(rebuilt.facts)
	batch, err := r.ds.Batch(ctx)
	if err != nil {
		return err
	}
	persisted, err := listKeys(ctx, r.ds, "/keyshare/idx/rec/")
	if err != nil {
		return err
	}
	want := map[string]*recordFacts{}
	for c, f := range rebuilt.facts {
		sortFacts(f)
		want[keyRecordFacts(c).String()] = f
	}
	for _, k := range persisted {
		if _, ok := want[k.String()]; !ok {
			rep.IndexProblems = append(rep.IndexProblems, "index holds facts no chain supports: "+k.BaseNamespace())
			if err := batch.Delete(ctx, k); err != nil {
				return err
			}
		}
	}
	for k, f := range want {
		wantJSON, _ := json.Marshal(f)
		have, err := r.ds.Get(ctx, datastore.NewKey(k))
		if err != nil || !bytes.Equal(have, wantJSON) {
			rep.IndexProblems = append(rep.IndexProblems, "index entry differs from the chains: "+datastore.NewKey(k).BaseNamespace())
			if err := batch.Put(ctx, datastore.NewKey(k), wantJSON); err != nil {
				return err
			}
		}
	}
	persistedAcct, err := listKeys(ctx, r.ds, "/keyshare/idx/acct/")
	if err != nil {
		return err
	}
	have := map[datastore.Key]bool{}
	for _, k := range persistedAcct {
		have[k] = true
		if !rebuilt.accts[k] {
			rep.IndexProblems = append(rep.IndexProblems, "account index holds an entry no chain supports: "+strings.TrimPrefix(k.String(), "/keyshare/idx/acct/"))
			if err := batch.Delete(ctx, k); err != nil {
				return err
			}
		}
	}
	for k := range rebuilt.accts {
		if !have[k] {
			rep.IndexProblems = append(rep.IndexProblems, "account index misses "+strings.TrimPrefix(k.String(), "/keyshare/idx/acct/"))
			if err := batch.Put(ctx, k, nil); err != nil {
				return err
			}
		}
	}
	persistedShared, err := listKeys(ctx, r.ds, sharedPrefix)
	if err != nil {
		return err
	}
	wantShared := rebuilt.shared()
	haveShared := map[datastore.Key]bool{}
	for _, k := range persistedShared {
		haveShared[k] = true
		if !wantShared[k] {
			rep.IndexProblems = append(rep.IndexProblems, "shared-record index holds an entry no chain supports: "+strings.TrimPrefix(k.String(), sharedPrefix))
			if err := batch.Delete(ctx, k); err != nil {
				return err
			}
		}
	}
	for k := range wantShared {
		if !haveShared[k] {
			rep.IndexProblems = append(rep.IndexProblems, "shared-record index misses "+strings.TrimPrefix(k.String(), sharedPrefix))
			if err := batch.Put(ctx, k, nil); err != nil {
				return err
			}
		}
	}
	sort.Strings(rep.IndexProblems)
	defer r.cache.invalidate()
	if err := batch.Commit(ctx); err != nil {
		return err
	}
	return r.ds.Sync(ctx, datastore.NewKey("/keyshare"))
}

// verifyRecord checks one record's chain of custody.
func (r *Repo) verifyRecord(ctx context.Context, c cid.Cid, k *Keys) *RecordReport {
	rr := &RecordReport{}
	var a *Access
	var err error
	if k != nil {
		a, err = r.AccessFor(ctx, c, k.ID)
	} else {
		a, err = r.Access(ctx, c)
	}
	if err != nil {
		rr.Problems = append(rr.Problems, err.Error())
		return rr
	}
	rr.Access, rr.Author = a, a.Author
	if !a.Known {
		rr.Problems = append(rr.Problems, "no verified chain holds a record entry for this CID")
		return rr
	}
	rr.Problems = append(rr.Problems, a.Problems...)
	rr.Rekey = r.rekeyReport(ctx, k, a, rr)
	n, size, err := r.checkRecord(ctx, c)
	rr.Blocks, rr.Size = n, size
	if err != nil && a.Rekeyed != nil && errors.Is(err, store.ErrMissing) {
		return rr // a re-keyed record's ciphertext is dropped by design
	}
	if err != nil {
		rr.Problems = append(rr.Problems, err.Error())
		return rr
	}
	if k == nil {
		return rr
	}
	if _, ok := a.Reader(k.ID); !ok {
		return rr
	}
	env, body, err := r.OpenRecord(ctx, k, c)
	if err != nil {
		rr.Problems = append(rr.Problems, err.Error())
		return rr
	}
	defer body.Close()
	if _, err := io.Copy(io.Discard, body); err != nil {
		rr.Problems = append(rr.Problems, fmt.Sprintf("decrypt: %v", err))
		return rr
	}
	rr.Decrypted, rr.Title = true, env.Title
	return rr
}

// verifyAttests compares the attestation index of attester id (the
// latest event per attested account, and the index by attested account)
// with what its chain says, evs in chain order, and repairs differences.
func (r *Repo) verifyAttests(ctx context.Context, id protocol.AccountID, evs []attestEvent, cr *ChainReport) error {
	want := map[protocol.AccountID]attestEvent{}
	for _, ev := range evs {
		want[ev.To] = ev
	}
	held, err := r.accountsUnder(ctx, attestPrefix+string(id)+"/")
	if err != nil {
		return err
	}
	batch, err := r.ds.Batch(ctx)
	if err != nil {
		return err
	}
	changed := false
	for _, to := range held {
		if _, ok := want[to]; ok {
			continue
		}
		cr.Problems = append(cr.Problems, fmt.Sprintf("attestation index holds an attestation of %s that the chain does not make (repaired)", to))
		if err := batch.Delete(ctx, keyAttest(id, to)); err != nil {
			return err
		}
		if err := batch.Delete(ctx, keyAttestBy(to, id)); err != nil {
			return err
		}
		changed = true
	}
	for to, ev := range want {
		wantJSON, err := json.Marshal(ev)
		if err != nil {
			return err
		}
		have, err := r.ds.Get(ctx, keyAttest(id, to))
		if err != nil && !errors.Is(err, datastore.ErrNotFound) {
			return err
		}
		by, err := r.ds.Has(ctx, keyAttestBy(to, id))
		if err != nil {
			return err
		}
		if bytes.Equal(have, wantJSON) && by {
			continue
		}
		cr.Problems = append(cr.Problems, fmt.Sprintf("attestation index differs from the chain for %s (repaired)", to))
		if err := batch.Put(ctx, keyAttest(id, to), wantJSON); err != nil {
			return err
		}
		if err := batch.Put(ctx, keyAttestBy(to, id), nil); err != nil {
			return err
		}
		changed = true
	}
	if !changed {
		return nil
	}
	done := r.cache.writing()
	err = batch.Commit(ctx)
	done()
	if err != nil {
		return fmt.Errorf("repair attestation index: %w", err)
	}
	return nil
}
