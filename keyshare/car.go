package keyshare

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"

	"github.com/ipfs/go-cid"

	"github.com/blockmrs/blockmrs/protocol"
)

// ExportCAR writes account id's chain and everything it links (records,
// chains of records' authors it acknowledged) as a CARv1 rooted at the
// chain's head: enough for another repo to verify the chain and read what
// it was granted.
func (r *Repo) ExportCAR(ctx context.Context, w io.Writer, id protocol.AccountID) error {
	st, err := r.state(ctx, id)
	if err != nil {
		return err
	}
	return r.st.ExportCAR(ctx, w, []cid.Cid{st.head()})
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
}

// ImportCAR imports a CAR whose roots are chain blocks (an account export
// or a profile export). Every chain reachable from the roots, and from ack
// entries in them, is verified before anything is written; a bad block, a
// broken link or a fork rejects the whole import and leaves the repo as it
// was, except that fork evidence is kept.
func (r *Repo) ImportCAR(ctx context.Context, rd io.Reader) (*ImportResult, error) {
	r.mu.Lock()
	defer r.mu.Unlock()

	var (
		pending  []verifiedBlock
		fork     *ForkError
		forkRaw  []byte
		offered  = map[protocol.AccountID]bool{}
		advanced = map[protocol.AccountID]bool{}
	)
	check := func(roots []cid.Cid, get func(cid.Cid) ([]byte, error)) error {
		if len(roots) == 0 {
			return errors.New("CAR has no roots")
		}
		getAny := func(c cid.Cid) ([]byte, error) {
			if b, err := get(c); err == nil {
				return b, nil
			}
			blk, err := r.st.Blockstore().Get(ctx, c)
			if err != nil {
				return nil, fmt.Errorf("not in the CAR and not in the repo")
			}
			return blk.RawData(), nil
		}
		bySeq := map[protocol.AccountID]map[uint64]cid.Cid{}
		known := func(id protocol.AccountID, seq uint64) (cid.Cid, bool, error) {
			if c, ok := bySeq[id][seq]; ok {
				return c, true, nil
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
				return fmt.Errorf("root %s is not a chain block", c)
			}
			vbs, err := r.chainFrom(ctx, c, getAny, known)
			var fe *ForkError
			if errors.As(err, &fe) {
				fork = fe
				forkRaw, _ = getAny(fe.B)
				return err
			}
			if err != nil {
				return err
			}
			if raw, err := getAny(c); err == nil {
				if b, err := protocol.DecodeBlock(raw); err == nil {
					offered[b.AuthorID()] = true
				}
			}
			for _, vb := range vbs {
				id := vb.block.AuthorID()
				if bySeq[id] == nil {
					bySeq[id] = map[uint64]cid.Cid{}
				}
				bySeq[id][vb.block.Seq] = vb.cid
				advanced[id] = true
				pending = append(pending, vb)
				for _, e := range vb.block.Entries {
					if ack, ok := e.Body.(*protocol.Ack); ok {
						queue = append(queue, ack.Block.Cid)
					}
				}
			}
		}
		return nil
	}
	roots, err := r.st.ImportCAR(ctx, rd, check)
	if err != nil {
		if fork != nil {
			if ferr := r.recordFork(ctx, fork, forkRaw); ferr != nil {
				return nil, fmt.Errorf("%w (and keeping the evidence failed: %v)", err, ferr)
			}
		}
		return nil, err
	}
	sort.SliceStable(pending, func(i, j int) bool {
		ai, aj := pending[i].block.AuthorID(), pending[j].block.AuthorID()
		if ai != aj {
			return ai < aj
		}
		return pending[i].block.Seq < pending[j].block.Seq
	})
	if err := r.commit(ctx, pending); err != nil {
		return nil, err
	}
	res := &ImportResult{Roots: roots, NewBlocks: len(pending), Accounts: []AccountInfo{}}
	for id := range advanced {
		info, err := r.Account(ctx, id)
		if err != nil {
			return nil, err
		}
		res.Accounts = append(res.Accounts, info)
	}
	for id := range offered {
		if !advanced[id] {
			res.Unchanged = append(res.Unchanged, id)
		}
	}
	sort.Slice(res.Accounts, func(i, j int) bool { return res.Accounts[i].ID < res.Accounts[j].ID })
	sort.Slice(res.Unchanged, func(i, j int) bool { return res.Unchanged[i] < res.Unchanged[j] })
	return res, nil
}
