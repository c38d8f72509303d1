package keyshare

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"

	"github.com/ipfs/go-cid"
	"github.com/ipfs/go-datastore"

	"github.com/blockmrs/blockmrs/store"
)

// Records being added. AddRecord stores and pins a record, then claims it
// with a record entry; a process killed in between leaves a pinned record
// nothing claims, which garbage collection would keep for ever. A marker
// under /keyshare/adding/ spans the two steps; Open, seeing one, unpins
// every pinned record without a claim and collects it (sweepInterrupted).
// A failure inside the process drops the record at once.

const addingPrefix = "/keyshare/adding/"

// markAdding writes (durably: the datastore syncs writes) a marker for an
// add in progress and returns its key.
func (r *Repo) markAdding(ctx context.Context) (datastore.Key, error) {
	var id [8]byte
	rand.Read(id[:])
	k := datastore.NewKey(addingPrefix + hex.EncodeToString(id[:]))
	if err := r.ds.Put(ctx, k, nil); err != nil {
		return k, fmt.Errorf("mark add: %w", err)
	}
	return k, nil
}

// clearAdding removes a marker. A marker left behind costs only one
// sweep at the next Open.
func (r *Repo) clearAdding(ctx context.Context, k datastore.Key) {
	if err := r.ds.Delete(context.WithoutCancel(ctx), k); err != nil {
		slog.Debug("keyshare: clear add marker", "err", err)
	}
}

// dropUnclaimed unpins and deletes a record whose add failed before its
// record entry was committed. Its blocks are encrypted under a key made
// for that add alone, so no other record shares them.
func (r *Repo) dropUnclaimed(ctx context.Context, c cid.Cid) {
	ctx = context.WithoutCancel(ctx)
	if err := r.st.Unpin(ctx, c); err != nil && !errors.Is(err, store.ErrNotPinned) {
		slog.Warn("keyshare: unpin a record whose add failed", "record", c, "err", err)
		return
	}
	if err := r.deleteRecords(ctx, []cid.Cid{c}); err != nil {
		slog.Warn("keyshare: delete a record whose add failed (the next gc will)", "record", c, "err", err)
	}
}

// unpinUnclaimed runs at Open when an add marker was left: it unpins
// every pinned record no record entry claims, clears the markers, and
// returns how many it unpinned. With no marker it does nothing.
func (r *Repo) unpinUnclaimed(ctx context.Context) (int, error) {
	markers, err := listKeys(ctx, r.ds, addingPrefix)
	if err != nil || len(markers) == 0 {
		return 0, err
	}
	pins, err := r.st.Pins(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, c := range pins {
		f, err := r.facts(ctx, c)
		if err != nil {
			return n, err
		}
		if len(f.Claims) > 0 {
			continue
		}
		if err := r.st.Unpin(ctx, c); err != nil {
			return n, err
		}
		n++
	}
	for _, k := range markers {
		if err := r.ds.Delete(ctx, k); err != nil {
			return n, err
		}
	}
	return n, nil
}
