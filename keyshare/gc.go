package keyshare

import (
	"context"
	"fmt"

	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"

	"github.com/blockmrs/blockmrs/store"
)

// Chain heads are not store pins: pinning a head recursively walks the
// whole chain, which would make every append cost O(chain length).
// Instead GC treats every chain head, both blocks of every fork and the
// head of every branch a recovery superseded, as roots, and record adds
// pin their records.

// gcRoots returns the chain heads and fork evidence blocks.
func (r *Repo) gcRoots(ctx context.Context) ([]cid.Cid, error) {
	accts, err := r.Accounts(ctx)
	if err != nil {
		return nil, err
	}
	var roots []cid.Cid
	for _, a := range accts {
		if a.Head.Defined() {
			roots = append(roots, a.Head)
		}
	}
	forks, err := r.Forks(ctx)
	if err != nil {
		return nil, err
	}
	for _, f := range forks {
		for _, s := range append(f.Blocks[:], f.Superseded) {
			if s == "" {
				continue
			}
			c, err := cid.Decode(s)
			if err != nil {
				return nil, fmt.Errorf("fork evidence: %w", err)
			}
			roots = append(roots, c)
		}
	}
	return roots, nil
}

// GC deletes every block that no chain head, fork evidence or pin
// reaches.
func (r *Repo) GC(ctx context.Context) (store.GCStats, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	roots, err := r.gcRoots(ctx)
	if err != nil {
		return store.GCStats{}, err
	}
	return r.st.GC(ctx, roots...)
}

// checkRecord reads every block of a record's DAG, verifying each hash,
// and returns the block count and total bytes.
func (r *Repo) checkRecord(ctx context.Context, c cid.Cid) (int, int64, error) {
	var n int
	var size int64
	err := r.st.Walk(ctx, c, func(b blocks.Block) error {
		n++
		size += int64(len(b.RawData()))
		return nil
	})
	return n, size, err
}
