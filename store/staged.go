package store

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"sync"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/objstorage"
	"github.com/cockroachdb/pebble/v2/objstorage/objstorageprovider"
	"github.com/cockroachdb/pebble/v2/sstable"
	"github.com/cockroachdb/pebble/v2/vfs"
	ds "github.com/ipfs/go-datastore"
)

// A StagedBatch is an atomic datastore batch whose size is not bounded by
// memory: a batch add of tens of thousands of records writes that many
// index documents, which as one pebble batch would all be held until it
// commits. Its writes go to disk as they come, under a staging prefix of
// the reserved namespace that no reader looks at; Commit turns them into
// one sorted table with the final keys and ingests it into pebble, which
// makes every write visible at once and durable (an ingest is atomic).
// Abort, or the next Open after a crash, deletes the staged writes.
//
// Get reads what the batch would make a key, so the writer can build on
// its own earlier writes. Put, Delete and Get may be called from one
// goroutine at a time.
type StagedBatch struct {
	s      *Store
	db     *pebble.DB
	prefix []byte // stagedPrefix + a random name + "/"
	end    []byte // the first key after every key under prefix

	mu      sync.Mutex
	pending *pebble.Batch // indexed: Get sees it
	n       int           // writes staged so far
	done    bool
}

// stagedPrefix is where staged batches keep their writes until they
// commit, one random name each.
const stagedPrefix = reservedPrefix + "/staged/"

// stagedFlush is how many bytes of writes a staged batch holds in memory
// before it writes them to its staging area.
const stagedFlush = 1 << 20

// The first byte of a staged value says what the write is.
const (
	stagedPut    = 'p'
	stagedDelete = 'd'
)

// errStagedDone is a staged batch used after Commit or Abort.
var errStagedDone = errors.New("store: staged batch already committed or aborted")

// NewStagedBatch starts a staged batch. Its keys are checked as Batch's
// are (nothing in the reserved namespace). Commit or Abort it.
func (s *Store) NewStagedBatch(ctx context.Context) (*StagedBatch, error) {
	leave, err := s.enter()
	if err != nil {
		return nil, err
	}
	defer leave()
	if s.readOnly {
		return nil, fmt.Errorf("store: staged batch: the store opened read-only (its disk was full): free space and open it again: %w", pebble.ErrReadOnly)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var name [8]byte
	if _, err := rand.Read(name[:]); err != nil {
		return nil, fmt.Errorf("store: staged batch: %w", err)
	}
	prefix := []byte(stagedPrefix + hex.EncodeToString(name[:]) + "/")
	end := append([]byte(nil), prefix...)
	end[len(end)-1]++ // "/" + 1 = "0": after every key under prefix
	return &StagedBatch{s: s, db: s.meta.DB, prefix: prefix, end: end, pending: s.meta.DB.NewIndexedBatch()}, nil
}

// Put stages a write of v to k.
func (b *StagedBatch) Put(ctx context.Context, k ds.Key, v []byte) error {
	if err := checkKey(k); err != nil {
		return err
	}
	val := make([]byte, 1+len(v))
	val[0] = stagedPut
	copy(val[1:], v)
	return b.stage(ctx, k, val)
}

// Delete stages the deletion of k.
func (b *StagedBatch) Delete(ctx context.Context, k ds.Key) error {
	if err := checkKey(k); err != nil {
		return err
	}
	return b.stage(ctx, k, []byte{stagedDelete})
}

func (b *StagedBatch) stage(ctx context.Context, k ds.Key, val []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.done {
		return errStagedDone
	}
	if err := b.pending.Set(b.staged(k), val, nil); err != nil {
		return fmt.Errorf("store: staged batch: %w", err)
	}
	b.n++
	if b.pending.Len() >= stagedFlush {
		return b.flush()
	}
	return nil
}

// staged returns k's key in the staging area.
func (b *StagedBatch) staged(k ds.Key) []byte {
	kb := k.Bytes()
	out := make([]byte, 0, len(b.prefix)+len(kb))
	return append(append(out, b.prefix...), kb...)
}

// flush writes the writes held in memory to the staging area (not synced:
// staged writes count only once Commit ingests them). The caller holds
// b.mu.
func (b *StagedBatch) flush() error {
	if b.pending.Empty() {
		return nil
	}
	leave, err := b.s.enter()
	if err != nil {
		return err
	}
	defer leave()
	if err := b.pending.Commit(pebble.NoSync); err != nil {
		return fmt.Errorf("store: staged batch: %w", err)
	}
	b.pending.Close()
	b.pending = b.db.NewIndexedBatch()
	return nil
}

// Get returns what the batch would make k's value: the value staged last
// for it, ds.ErrNotFound when its deletion was, else the datastore's.
func (b *StagedBatch) Get(ctx context.Context, k ds.Key) ([]byte, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.done {
		return nil, errStagedDone
	}
	leave, err := b.s.enter()
	if err != nil {
		return nil, err
	}
	defer leave()
	// The indexed batch reads through to pebble, so this sees writes
	// held in memory and those flushed to the staging area.
	v, closer, err := b.pending.Get(b.staged(k))
	switch {
	case err == nil:
		defer closer.Close()
		if v[0] == stagedDelete {
			return nil, ds.ErrNotFound
		}
		return append([]byte(nil), v[1:]...), nil
	case errors.Is(err, pebble.ErrNotFound):
		return b.s.meta.Get(ctx, k)
	default:
		return nil, fmt.Errorf("store: staged batch: %w", err)
	}
}

// Commit makes every staged write visible at once: it writes them, with
// their final keys, into one table in the store's temporary folder and
// ingests it (pebble syncs it before the ingest returns), then deletes
// the staging area. On an error nothing of the batch is visible.
func (b *StagedBatch) Commit(ctx context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.done {
		return errStagedDone
	}
	b.done = true
	leave, err := b.s.enter()
	if err != nil {
		return err
	}
	defer leave()
	defer b.clear()
	if b.n == 0 {
		return nil
	}
	if err := b.pending.Commit(pebble.NoSync); err != nil {
		return fmt.Errorf("store: staged batch: %w", err)
	}
	path, err := b.writeTable(ctx)
	if path != "" {
		defer os.Remove(path)
	}
	if err != nil {
		return err
	}
	if err := b.db.Ingest(ctx, []string{path}); err != nil {
		return fmt.Errorf("store: commit staged batch: %w", err)
	}
	return nil
}

// writeTable writes the staged writes, in key order and with their final
// keys, to a new table file, and returns its path.
func (b *StagedBatch) writeTable(ctx context.Context) (string, error) {
	f, err := os.CreateTemp(b.s.tmpDir, "staged-*.sst")
	if err != nil {
		return "", fmt.Errorf("store: commit staged batch: %w", err)
	}
	path := f.Name()
	f.Close()
	vf, err := vfs.Default.Create(path, vfs.WriteCategoryUnspecified)
	if err != nil {
		return path, fmt.Errorf("store: commit staged batch: %w", err)
	}
	w := newTableWriter(b.s, objstorageprovider.NewFileWritable(vf))
	it, err := b.db.NewIterWithContext(ctx, &pebble.IterOptions{LowerBound: b.prefix, UpperBound: b.end})
	if err != nil {
		w.Close()
		return path, fmt.Errorf("store: commit staged batch: %w", err)
	}
	n := 0
	for ok := it.First(); ok && err == nil; ok = it.Next() {
		if n++; n%4096 == 0 {
			if err = ctx.Err(); err != nil {
				break
			}
		}
		key := bytes.TrimPrefix(it.Key(), b.prefix)
		v := it.Value()
		switch {
		case len(v) > 0 && v[0] == stagedPut:
			err = w.Set(key, v[1:])
		case len(v) == 1 && v[0] == stagedDelete:
			err = w.Delete(key)
		default:
			err = fmt.Errorf("staged write of %q is corrupt", key)
		}
	}
	if ierr := it.Close(); err == nil {
		err = ierr
	}
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return path, fmt.Errorf("store: commit staged batch: %w", err)
	}
	return path, nil
}

// Abort drops every staged write. After Commit it does nothing.
func (b *StagedBatch) Abort(ctx context.Context) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.done {
		return
	}
	b.done = true
	leave, err := b.s.enter()
	if err != nil {
		return // closed: the next Open sweeps the staging area
	}
	defer leave()
	b.clear()
}

// clear lets the writes held in memory go and deletes the staging area;
// what it cannot delete, the next Open does (sweepStaged). The caller
// holds b.mu and is inside the store's gate.
func (b *StagedBatch) clear() {
	b.pending.Close()
	_ = b.db.DeleteRange(b.prefix, b.end, pebble.NoSync)
}

// sweepStaged deletes what staged batches left when the process stopped
// before they ended.
func sweepStaged(db *pebble.DB) error {
	start := []byte(stagedPrefix)
	end := append([]byte(nil), start...)
	end[len(end)-1]++
	if err := db.DeleteRange(start, end, pebble.Sync); err != nil {
		return fmt.Errorf("sweep staged batches: %w", err)
	}
	return nil
}

// newTableWriter returns a writer of a table that pebble can ingest: the
// format and options of the store's own tables.
func newTableWriter(s *Store, w objstorage.Writable) *sstable.Writer {
	return sstable.NewWriter(w, s.popts.MakeWriterOptions(0, s.meta.DB.TableFormat()))
}
