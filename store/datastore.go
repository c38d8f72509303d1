package store

import (
	"context"
	"fmt"
	"strings"

	ds "github.com/ipfs/go-datastore"
	dsq "github.com/ipfs/go-datastore/query"
)

// guardedDatastore is the datastore handed to other packages: it keeps
// them out of the reserved /store/ namespace, fails with ErrClosed after
// Store.Close instead of reaching a closed pebble, and does not let them
// close the store's pebble instance.
type guardedDatastore struct {
	s *Store
	d ds.Batching
}

var _ ds.Batching = (*guardedDatastore)(nil)

func checkKey(k ds.Key) error {
	s := k.String()
	if s == reservedPrefix || strings.HasPrefix(s, reservedPrefix+"/") {
		return fmt.Errorf("store: datastore key %s is in the reserved %s/ namespace", s, reservedPrefix)
	}
	return nil
}

// Get implements ds.Read.
func (g *guardedDatastore) Get(ctx context.Context, k ds.Key) ([]byte, error) {
	leave, err := g.s.enter()
	if err != nil {
		return nil, err
	}
	defer leave()
	return g.d.Get(ctx, k)
}

// Has implements ds.Read.
func (g *guardedDatastore) Has(ctx context.Context, k ds.Key) (bool, error) {
	leave, err := g.s.enter()
	if err != nil {
		return false, err
	}
	defer leave()
	return g.d.Has(ctx, k)
}

// GetSize implements ds.Read.
func (g *guardedDatastore) GetSize(ctx context.Context, k ds.Key) (int, error) {
	leave, err := g.s.enter()
	if err != nil {
		return -1, err
	}
	defer leave()
	return g.d.GetSize(ctx, k)
}

// Query implements ds.Read. Close the results before closing the Store.
func (g *guardedDatastore) Query(ctx context.Context, q dsq.Query) (dsq.Results, error) {
	leave, err := g.s.enter()
	if err != nil {
		return nil, err
	}
	defer leave()
	return g.d.Query(ctx, q)
}

// Put implements ds.Write; it refuses reserved keys. It is durable when it
// returns.
func (g *guardedDatastore) Put(ctx context.Context, k ds.Key, v []byte) error {
	if err := checkKey(k); err != nil {
		return err
	}
	leave, err := g.s.enter()
	if err != nil {
		return err
	}
	defer leave()
	return g.d.Put(ctx, k, v)
}

// Delete implements ds.Write; it refuses reserved keys.
func (g *guardedDatastore) Delete(ctx context.Context, k ds.Key) error {
	if err := checkKey(k); err != nil {
		return err
	}
	leave, err := g.s.enter()
	if err != nil {
		return err
	}
	defer leave()
	return g.d.Delete(ctx, k)
}

// Sync implements ds.Datastore (writes are already synchronous).
func (g *guardedDatastore) Sync(ctx context.Context, prefix ds.Key) error {
	leave, err := g.s.enter()
	if err != nil {
		return err
	}
	defer leave()
	return g.d.Sync(ctx, prefix)
}

// Batch implements ds.Batching; the batch refuses reserved keys and is
// durable when Commit returns.
func (g *guardedDatastore) Batch(ctx context.Context) (ds.Batch, error) {
	leave, err := g.s.enter()
	if err != nil {
		return nil, err
	}
	defer leave()
	b, err := g.d.Batch(ctx)
	if err != nil {
		return nil, err
	}
	return &guardedBatch{s: g.s, b: b}, nil
}

// Close does nothing: the Store owns the datastore.
func (g *guardedDatastore) Close() error { return nil }

type guardedBatch struct {
	s *Store
	b ds.Batch
}

func (b *guardedBatch) Put(ctx context.Context, k ds.Key, v []byte) error {
	if err := checkKey(k); err != nil {
		return err
	}
	return b.b.Put(ctx, k, v)
}

func (b *guardedBatch) Delete(ctx context.Context, k ds.Key) error {
	if err := checkKey(k); err != nil {
		return err
	}
	return b.b.Delete(ctx, k)
}

func (b *guardedBatch) Commit(ctx context.Context) error {
	leave, err := b.s.enter()
	if err != nil {
		return err
	}
	defer leave()
	return b.b.Commit(ctx)
}
