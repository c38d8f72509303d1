package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"time"

	ds "github.com/ipfs/go-datastore"
	dsq "github.com/ipfs/go-datastore/query"
)

// Interrupted writes. An add writes its blocks before it pins its root;
// killed in between, it leaves blocks nothing refers to. So every add
// first records a marker, /store/writes/<random>, synchronously, and
// removes it in the same pebble batch as the pin. A marker found later
// belongs to an add that never finished: [Store.Interrupted] counts them
// (one prefix scan, cheap when there are none) and [Store.GC] removes
// them once it has swept. The store cannot sweep by itself because it
// does not know its callers' roots (keyshare's chain heads); keyshare
// runs GC at open when Interrupted is non-zero. An add that fails in the
// process (a full disk, a cancelled context) deletes the blocks it
// created at once and its marker with them.

// writePrefix holds one key per write in progress.
var writePrefix = ds.NewKey(reservedPrefix + "/writes")

// beginWrite records a write in progress and returns its marker key.
func (s *Store) beginWrite(ctx context.Context) (ds.Key, error) {
	s.space.fresh()
	var b [12]byte
	_, _ = rand.Read(b[:])
	k := writePrefix.ChildString(hex.EncodeToString(b[:]))
	if err := s.meta.Put(ctx, k, []byte(time.Now().UTC().Format(time.RFC3339))); err != nil {
		return ds.Key{}, fmt.Errorf("record write in progress: %w", s.spaceErr(err, 0))
	}
	return k, nil
}

// Interrupted returns the number of writes that began and never ended
// (the process was killed, or a failed write could not clean up): their
// blocks may be orphans until the next [Store.GC]. Writes in progress in
// this process count too.
func (s *Store) Interrupted(ctx context.Context) (int, error) {
	leave, err := s.enter()
	if err != nil {
		return 0, fmt.Errorf("store: interrupted writes: %w", err)
	}
	defer leave()
	keys, err := s.writeMarkers(ctx)
	if err != nil {
		return 0, fmt.Errorf("store: interrupted writes: %w", err)
	}
	return len(keys), nil
}

func (s *Store) writeMarkers(ctx context.Context) ([]ds.Key, error) {
	res, err := s.meta.Query(ctx, dsq.Query{Prefix: writePrefix.String(), KeysOnly: true})
	if err != nil {
		return nil, err
	}
	defer res.Close()
	var out []ds.Key
	for r := range res.Next() {
		if r.Error != nil {
			return nil, r.Error
		}
		out = append(out, ds.NewKey(r.Key))
	}
	return out, nil
}

// rollback deletes the blocks a failed add created and then its marker.
// Only [Store.Add] and [AddBatch] may call it: their blocks are
// ciphertext under keys made for each record alone, so no other DAG can
// hold them. A failure is left to GC (the marker stays).
func (s *Store) rollback(ctx context.Context, marker ds.Key, log *writeLog) {
	ctx = context.WithoutCancel(ctx)
	log.mu.Lock()
	fresh := log.fresh
	log.mu.Unlock()
	for _, k := range fresh {
		if err := s.flat.Delete(ctx, k); err != nil && err != ds.ErrNotFound {
			return
		}
	}
	_ = s.meta.Delete(ctx, marker)
}
