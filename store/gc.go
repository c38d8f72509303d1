package store

import (
	"context"
	"fmt"
	"log/slog"

	blocks "github.com/ipfs/go-block-format"
	cid "github.com/ipfs/go-cid"
)

// GCStats summarises one [Store.GC] run.
type GCStats struct {
	// Removed is the number of blocks deleted.
	Removed int
	// RemovedBytes is their total size.
	RemovedBytes int64
	// Kept is the number of blocks reachable from a pin.
	Kept int
	// Interrupted is the number of interrupted writes (adds killed or
	// failed half way) whose leftovers this run removed.
	Interrupted int
}

// GC deletes every stored block that is not reachable from a pin. It waits
// for adds, imports, pins and exports in progress and holds them off while
// it runs. If any pinned DAG cannot be walked completely (a block is
// missing, corrupt, or of an unknown codec) GC deletes nothing and
// returns the error, since it cannot tell what that block linked to.
//
// roots are further roots to keep, for callers that track roots of their
// own (chain heads) instead of pinning them. Unlike pins, they may be
// partial DAGs: a missing block under one of them ends that branch (a
// chain may link records this store was never given).
func (s *Store) GC(ctx context.Context, roots ...cid.Cid) (GCStats, error) {
	leave, err := s.enter()
	if err != nil {
		return GCStats{}, fmt.Errorf("store: gc: %w", err)
	}
	defer leave()
	unlock, err := s.gc.lock(ctx)
	if err != nil {
		return GCStats{}, fmt.Errorf("store: gc: %w", err)
	}
	defer unlock()

	// Every write that left a marker has ended (writes hold the gate
	// shared): its leftovers are swept below like any garbage.
	markers, err := s.writeMarkers(ctx)
	if err != nil {
		return GCStats{}, fmt.Errorf("store: gc: list interrupted writes: %w", err)
	}

	// Mark. flatfs stores blocks by multihash, so that is what is kept.
	pins, err := s.pins(ctx)
	if err != nil {
		return GCStats{}, fmt.Errorf("store: gc: list pins: %w", err)
	}
	live := make(map[string]struct{})
	w := newWalker(s, false)
	for _, p := range pins {
		err := w.walk(ctx, p, func(c cid.Cid, _ blocks.Block) error {
			live[string(c.Hash())] = struct{}{}
			return nil
		})
		if err != nil {
			return GCStats{}, fmt.Errorf("store: gc: walk pin %s: %w", p, err)
		}
	}
	partial := newWalker(s, false)
	partial.missingOK = true
	for _, r := range roots {
		err := partial.walk(ctx, r, func(c cid.Cid, _ blocks.Block) error {
			live[string(c.Hash())] = struct{}{}
			return nil
		})
		if err != nil {
			return GCStats{}, fmt.Errorf("store: gc: walk root %s: %w", r, err)
		}
	}

	// Collect garbage first, delete after: no deleting under a running
	// directory walk.
	keys, keysErr, err := s.bs.AllKeysChanWithErr(ctx)
	if err != nil {
		return GCStats{}, fmt.Errorf("store: gc: list blocks: %w", err)
	}
	var st GCStats
	var garbage []cid.Cid
	for k := range keys {
		if _, ok := live[string(k.Hash())]; ok {
			st.Kept++
			continue
		}
		garbage = append(garbage, k)
	}
	if err := keysErr(); err != nil {
		return GCStats{}, fmt.Errorf("store: gc: list blocks: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return GCStats{}, fmt.Errorf("store: gc: %w", err)
	}

	// Sweep. Deletions need no flush: a block that reappears after a
	// crash is merely garbage again.
	for _, k := range garbage {
		if err := ctx.Err(); err != nil {
			return st, fmt.Errorf("store: gc: %w", err)
		}
		size, err := s.flat.GetSize(ctx, blockKey(k))
		if err != nil {
			size = 0
		}
		if err := s.flat.Delete(ctx, blockKey(k)); err != nil {
			return st, fmt.Errorf("store: gc: delete %s: %w", k, err)
		}
		st.Removed++
		st.RemovedBytes += int64(size)
	}
	if !s.readOnly && len(markers) > 0 {
		b, err := s.meta.Batch(ctx)
		if err == nil {
			for _, k := range markers {
				_ = b.Delete(ctx, k)
			}
			err = b.Commit(ctx)
		}
		if err != nil {
			return st, fmt.Errorf("store: gc: clear interrupted writes: %w", err)
		}
		st.Interrupted = len(markers)
	}
	slog.Debug("store: gc done", "removed", st.Removed, "bytes", st.RemovedBytes, "kept", st.Kept)
	return st, nil
}
