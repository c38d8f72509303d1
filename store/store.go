package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"
	"github.com/ipfs/boxo/blockservice"
	bstore "github.com/ipfs/boxo/blockstore"
	mdag "github.com/ipfs/boxo/ipld/merkledag"
	ds "github.com/ipfs/go-datastore"
	flatfs "github.com/ipfs/go-ds-flatfs"
	pebbleds "github.com/ipfs/go-ds-pebble"
	ipld "github.com/ipfs/go-ipld-format"
)

// Directory names inside a store directory.
const (
	blocksDirName    = "blocks"
	datastoreDirName = "datastore"
	tmpDirName       = "tmp"
)

// Store is an open BlockMRS block store. Its methods are safe for
// concurrent use. Close it when done.
type Store struct {
	dir       string
	blocksDir string
	tmpDir    string

	flat    *flatfs.Datastore
	shardFn flatfs.ShardFunc
	meta    *pebbleds.Datastore
	popts   *pebble.Options // meta's options, for the tables StagedBatch writes
	metaPub *guardedDatastore

	// raw is boxo's blockstore over flatfs without verification; only
	// the sweep phase of GC and the CAR importer's existence checks use
	// it directly.
	raw bstore.Blockstore
	// bs verifies every read and makes every write durable before
	// returning; it is what Blockstore returns.
	bs *blockStore
	// dag reads through bs.
	dag ipld.DAGService

	// blocksFD is kept open for syncfs(2) and so that writeback errors
	// since Open are reported by it.
	blocksFD *os.File

	// gc orders GC (exclusive) against adds, imports, pins and exports
	// (shared). op orders Close (exclusive) against every other call.
	gc     *rwGate
	op     *rwGate
	layout importLayout
	// syncMode is syncOnce outside benchmarks that compare durability
	// strategies.
	syncMode syncMode
	// space hands out disk space to block writes (see space.go).
	space *spaceGuard
	// readOnly: the disk was full at Open, so pebble was opened
	// read-only; reads, listing and GC's deletions still work.
	readOnly bool

	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error
}

// Open opens the store in dir, creating dir and its layout if needed.
// Only one Store (in any process) may have dir open at a time; pebble's
// lock file enforces this.
//
// On a nearly full disk Open first deletes the store's reserve file; when
// the disk is still too full for pebble to write, an existing store is
// opened read-only (reads, listing and GC work, writes fail) and a new
// one is refused with a *SpaceError.
func Open(ctx context.Context, dir string, opts ...Option) (*Store, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("store: open %s: %w", dir, err)
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("store: open: %w", err)
	}
	_, statErr := os.Stat(filepath.Join(dir, blocksDirName))
	created := errors.Is(statErr, os.ErrNotExist)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("store: open %s: %w", dir, err)
	}

	s := &Store{
		dir:       dir,
		blocksDir: filepath.Join(dir, blocksDirName),
		tmpDir:    filepath.Join(dir, tmpDirName),
		gc:        newGate(),
		op:        newGate(),
		layout:    defaultLayout(),
	}
	cfg := newConfig(opts)
	s.space = &spaceGuard{dir: dir, free: cfg.freeSpace, reserve: cfg.reserve}
	if free := releaseReserve(dir, cfg); free >= 0 && free < cfg.reserve/8 {
		if created {
			return nil, fmt.Errorf("store: open %s: %w", dir, &SpaceError{Dir: dir, Need: cfg.reserve, Free: free, Reserve: cfg.reserve})
		}
		slog.Warn("store: disk full, opening read-only", "dir", dir, "free", free)
		s.readOnly = true
	}
	var cleanup []func()
	fail := func(err error) (*Store, error) {
		for i := len(cleanup) - 1; i >= 0; i-- {
			cleanup[i]()
		}
		return nil, fmt.Errorf("store: open %s: %w", dir, err)
	}

	// Pebble first: its LOCK file keeps a second process out before we
	// touch flatfs (which has no lock of its own).
	popts := &pebble.Options{Logger: pebbleLogger{dir: dir, fatal: cfg.fatal}, ReadOnly: s.readOnly}
	meta, err := pebbleds.NewDatastore(filepath.Join(dir, datastoreDirName),
		pebbleds.WithPebbleOpts(popts), pebbleds.WithPebbleWriteOptions(pebble.Sync))
	if err != nil {
		return fail(fmt.Errorf("datastore: %w", err))
	}
	cleanup = append(cleanup, func() { _ = meta.Close() })
	s.meta, s.popts = meta, popts
	if !s.readOnly {
		if err := sweepStaged(meta.DB); err != nil {
			return fail(err)
		}
	}
	s.metaPub = &guardedDatastore{s: s, d: meta}

	shard := flatfs.NextToLast(2)
	flat, err := flatfs.CreateOrOpen(s.blocksDir, shard, false)
	if err != nil {
		return fail(fmt.Errorf("blocks: %w", err))
	}
	cleanup = append(cleanup, func() { _ = flat.Close() })
	s.flat = flat
	s.shardFn = shard.Func()

	fd, err := os.Open(s.blocksDir)
	if err != nil {
		return fail(err)
	}
	cleanup = append(cleanup, func() { _ = fd.Close() })
	s.blocksFD = fd

	// Leftovers of an interrupted CAR import are garbage.
	if err := os.RemoveAll(s.tmpDir); err != nil {
		return fail(err)
	}
	if err := os.Mkdir(s.tmpDir, 0o700); err != nil && !s.readOnly {
		return fail(err)
	}

	if created {
		// Make the fresh layout itself durable (flatfs writes its
		// SHARDING file without fsync).
		if err := s.syncEverything(); err != nil {
			return fail(err)
		}
	}

	if !s.readOnly {
		s.keepReserve(cfg)
	}
	s.raw = bstore.NewBlockstore(flat, bstore.NoPrefix())
	s.bs = &blockStore{s: s, durable: true}
	s.dag = mdag.NewDAGService(blockservice.New(s.bs, nil))
	return s, nil
}

// Close closes the store. Operations in progress may fail. Close is
// idempotent.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		// Wait for calls in progress to finish so that nothing is cut in
		// half; calls that start later see closed and fail.
		unlock, _ := s.op.lock(context.Background())
		defer unlock()
		s.closed.Store(true)
		var errs []error
		if err := s.flat.Close(); err != nil {
			errs = append(errs, fmt.Errorf("blocks: %w", err))
		}
		if err := s.meta.Close(); err != nil {
			errs = append(errs, fmt.Errorf("datastore: %w", err))
		}
		if err := s.blocksFD.Close(); err != nil {
			errs = append(errs, err)
		}
		if err := errors.Join(errs...); err != nil {
			s.closeErr = fmt.Errorf("store: close %s: %w", s.dir, err)
		}
	})
	return s.closeErr
}

// Dir returns the directory the store was opened on.
func (s *Store) Dir() string { return s.dir }

// Blockstore returns the store's blockstore. Every Get verifies the block's
// bytes against its CID (a mismatch is a *BlockError matching
// [ErrCorrupt]); every Put and PutMany is durable when it returns.
// Identity CIDs are served from the CID itself.
//
// Blocks written here are not pinned: pin them with [Store.Pin], and hold
// the blockstore's PinLock across the writes and the Pin if a concurrent
// [Store.GC] could otherwise remove them in between; do not call GC while
// holding it. GCLock exists for boxo's interfaces: Store.GC takes it itself.
func (s *Store) Blockstore() bstore.GCBlockstore { return s.bs }

// Datastore returns the store's pebble datastore for other packages'
// metadata. Writes are synchronous (durable when they return). Keys under
// /store/ are reserved for this package: Put, Delete and batches reject
// them. Closing the returned datastore does nothing; close the Store.
func (s *Store) Datastore() ds.Batching { return s.metaPub }

// enter marks the start of a call that must not overlap Close. The
// returned function marks its end.
func (s *Store) enter() (func(), error) {
	release, _ := s.op.rlock(context.Background())
	if s.closed.Load() {
		release()
		return nil, ErrClosed
	}
	return release, nil
}

// enterWrite is enter plus the shared side of the GC gate: the caller's
// blocks cannot be swept while it runs.
func (s *Store) enterWrite(ctx context.Context) (func(), error) {
	leave, err := s.enter()
	if err != nil {
		return nil, err
	}
	unlock, err := s.gc.rlock(ctx)
	if err != nil {
		leave()
		return nil, err
	}
	return func() { unlock(); leave() }, nil
}
