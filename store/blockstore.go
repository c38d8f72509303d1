package store

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"sync"

	bstore "github.com/ipfs/boxo/blockstore"
	dshelp "github.com/ipfs/boxo/datastore/dshelp"
	blocks "github.com/ipfs/go-block-format"
	cid "github.com/ipfs/go-cid"
	ds "github.com/ipfs/go-datastore"
	mh "github.com/multiformats/go-multihash"
)

// blockStore is the store's blockstore.Blockstore over flatfs. Reads verify
// the block's hash. Writes are either durable on return (durable=true,
// what Store.Blockstore hands out) or recorded in log and made durable
// later with one flush (the importer's path).
type blockStore struct {
	s       *Store
	durable bool
	log     *writeLog
	// async, when set (with log), writes blocks in the background; the
	// owner calls async.wait before flushing.
	async *asyncWriter
}

var (
	_ bstore.GCBlockstore         = (*blockStore)(nil)
	_ bstore.AllKeysChanWithErrer = (*blockStore)(nil)
)

// blockKey is the flatfs key of a block: its multihash, base32.
func blockKey(c cid.Cid) ds.Key { return dshelp.MultihashToDsKey(c.Hash()) }

// blockPath returns the shard directory and file flatfs uses for key k.
// It mirrors flatfs's own (unexported) encoding.
func (s *Store) blockPath(k ds.Key) (dir, file string) {
	noslash := k.String()[1:]
	dir = filepath.Join(s.blocksDir, s.shardFn(noslash))
	return dir, filepath.Join(dir, noslash+".data")
}

func isIdentity(c cid.Cid) bool { return c.Prefix().MhType == mh.IDENTITY }

func identityData(c cid.Cid) ([]byte, error) {
	dmh, err := mh.Decode(c.Hash())
	if err != nil {
		return nil, fmt.Errorf("store: block %s: %w", c, err)
	}
	return dmh.Digest, nil
}

// verify checks data against c's multihash.
func verify(c cid.Cid, data []byte) error {
	sum, err := c.Prefix().Sum(data)
	if err != nil {
		return fmt.Errorf("store: block %s: %w", c, err)
	}
	if !bytes.Equal(sum.Hash(), c.Hash()) {
		return corruptBlock(c)
	}
	return nil
}

// Get returns the block for c after checking its bytes hash to c. A
// missing block is a *BlockError matching ErrMissing and
// ipld.ErrNotFound; a corrupt one a *BlockError matching ErrCorrupt.
func (b *blockStore) Get(ctx context.Context, c cid.Cid) (blocks.Block, error) {
	if !c.Defined() {
		return nil, missingBlock(c)
	}
	if isIdentity(c) {
		data, err := identityData(c)
		if err != nil {
			return nil, err
		}
		return blocks.NewBlockWithCid(data, c)
	}
	leave, err := b.s.enter()
	if err != nil {
		return nil, err
	}
	defer leave()
	data, err := b.s.flat.Get(ctx, blockKey(c))
	if err == ds.ErrNotFound {
		return nil, missingBlock(c)
	}
	if err != nil {
		return nil, fmt.Errorf("store: block %s: %w", c, err)
	}
	if err := verify(c, data); err != nil {
		return nil, err
	}
	return blocks.NewBlockWithCid(data, c)
}

// GetUnchecked returns the stored bytes of the block for c without
// hashing them. It exists for one use: handing blocks to a peer that
// checks every block itself (the DAG stream), where hashing here too would
// double the cost of serving. Everything that uses a block's bytes itself
// reads through Blockstore().Get.
func (s *Store) GetUnchecked(ctx context.Context, c cid.Cid) (blocks.Block, error) {
	if isIdentity(c) {
		return s.bs.Get(ctx, c)
	}
	leave, err := s.enter()
	if err != nil {
		return nil, err
	}
	defer leave()
	data, err := s.flat.Get(ctx, blockKey(c))
	if err == ds.ErrNotFound {
		return nil, missingBlock(c)
	}
	if err != nil {
		return nil, fmt.Errorf("store: block %s: %w", c, err)
	}
	return blocks.NewBlockWithCid(data, c)
}

// Has reports whether the block for c is stored (without reading it).
func (b *blockStore) Has(ctx context.Context, c cid.Cid) (bool, error) {
	if isIdentity(c) {
		return true, nil
	}
	leave, err := b.s.enter()
	if err != nil {
		return false, err
	}
	defer leave()
	return b.s.flat.Has(ctx, blockKey(c))
}

// GetSize returns the stored size of the block for c.
func (b *blockStore) GetSize(ctx context.Context, c cid.Cid) (int, error) {
	if isIdentity(c) {
		data, err := identityData(c)
		if err != nil {
			return -1, err
		}
		return len(data), nil
	}
	leave, err := b.s.enter()
	if err != nil {
		return -1, err
	}
	defer leave()
	n, err := b.s.flat.GetSize(ctx, blockKey(c))
	if err == ds.ErrNotFound {
		return -1, missingBlock(c)
	}
	return n, err
}

// Put stores blk. The caller vouches that blk's bytes match its CID (as
// boxo's blocks do by construction).
func (b *blockStore) Put(ctx context.Context, blk blocks.Block) error {
	return b.PutMany(ctx, []blocks.Block{blk})
}

// PutMany stores blks and, for the durable blockstore, flushes them to
// stable storage once before returning.
func (b *blockStore) PutMany(ctx context.Context, blks []blocks.Block) error {
	leave, err := b.s.enter()
	if err != nil {
		return err
	}
	defer leave()
	var keys []ds.Key
	for _, blk := range blks {
		c := blk.Cid()
		if isIdentity(c) {
			continue
		}
		k := blockKey(c)
		if b.async != nil {
			if err := b.async.put(ctx, blk); err != nil {
				return err
			}
			b.log.add(k)
			continue
		}
		// Rewriting an existing block is pointless: same key, same bytes.
		// It is still flushed below, since it may have been written by a
		// concurrent non-durable import that has not flushed yet.
		has, err := b.s.flat.Has(ctx, k)
		if err != nil {
			return fmt.Errorf("store: put %s: %w", c, err)
		}
		if !has {
			if err := b.s.putNew(ctx, k, blk.RawData(), b.log); err != nil {
				return wrapOp("put", c, err)
			}
		}
		if b.log != nil {
			b.log.add(k)
		} else {
			keys = append(keys, k)
		}
	}
	if b.durable && len(keys) > 0 {
		return b.s.flush(keys)
	}
	return nil
}

// DeleteBlock removes the block for c. It does not consult pins.
func (b *blockStore) DeleteBlock(ctx context.Context, c cid.Cid) error {
	if isIdentity(c) {
		return nil
	}
	leave, err := b.s.enter()
	if err != nil {
		return err
	}
	defer leave()
	return b.s.flat.Delete(ctx, blockKey(c))
}

// AllKeysChan lists every stored block as a CIDv1 with the raw codec
// (flatfs keeps multihashes, not codecs).
func (b *blockStore) AllKeysChan(ctx context.Context) (<-chan cid.Cid, error) {
	return b.s.raw.AllKeysChan(ctx)
}

// AllKeysChanWithErr is AllKeysChan with an error check for the end.
func (b *blockStore) AllKeysChanWithErr(ctx context.Context) (<-chan cid.Cid, func() error, error) {
	return b.s.raw.(bstore.AllKeysChanWithErrer).AllKeysChanWithErr(ctx)
}

// GCLock takes the store's GC gate exclusively. Store.GC does this itself;
// it exists to satisfy blockstore.GCLocker.
func (b *blockStore) GCLock(ctx context.Context) bstore.Unlocker {
	u, _ := b.s.gc.lock(context.WithoutCancel(ctx))
	return unlocker(u)
}

// PinLock takes the store's GC gate shared: no GC sweep runs until it is
// unlocked. Store methods may be called while holding it.
func (b *blockStore) PinLock(ctx context.Context) bstore.Unlocker {
	u, _ := b.s.gc.rlock(context.WithoutCancel(ctx))
	return unlocker(u)
}

// GCRequested reports whether a GC is waiting for the gate.
func (b *blockStore) GCRequested(context.Context) bool {
	return b.s.gc.requested.Load() > 0
}

// putNew writes a block the store lacks, after taking its size from the
// space guard; log, if set, records it as written by this operation.
func (s *Store) putNew(ctx context.Context, k ds.Key, data []byte, log *writeLog) error {
	if err := s.space.take(int64(len(data))); err != nil {
		return err
	}
	if err := s.flat.Put(ctx, k, data); err != nil {
		return s.spaceErr(err, int64(len(data)))
	}
	if log != nil {
		log.wrote(k, len(data))
	}
	return nil
}

// writeLog records what a non-durable writer wrote, for one flush at the
// end. With syncfs available only a count (plus the first few keys) is
// needed for that. It also lists the blocks the operation created, so a
// failed add can delete them (one key per block: 1 MiB chunks keep this
// small).
type writeLog struct {
	mu    sync.Mutex
	n     int
	keys  []ds.Key
	fresh []ds.Key
	bytes int64 // in fresh
}

func (l *writeLog) wrote(k ds.Key, n int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.fresh = append(l.fresh, k)
	l.bytes += int64(n)
}

func (l *writeLog) add(k ds.Key) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.n++
	if !syncfsSupported || len(l.keys) <= fsyncEachMax {
		l.keys = append(l.keys, k)
	}
}
