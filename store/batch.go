package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"filippo.io/age"
	blocks "github.com/ipfs/go-block-format"
	cid "github.com/ipfs/go-cid"
	ds "github.com/ipfs/go-datastore"

	"github.com/blockmrs/blockmrs/internal/fastx25519"
)

// ErrBatchDone is returned by an [AddBatch] used after Commit or Abort.
var ErrBatchDone = errors.New("store: add batch already committed or aborted")

// AddBatch stores many records and makes them durable together: each Add
// encrypts and writes one record as [Store.Add] does, but nothing is
// flushed or pinned until Commit, which flushes every block once and pins
// every root in one synchronous datastore batch. A thousand small records
// cost one flush, not a thousand.
//
// One write marker (see interrupted.go) spans the batch, so a process
// killed before Commit leaves blocks that the next [Store.GC] removes;
// Abort, or a failed Commit, deletes every block the batch created at once.
// The batch holds the GC gate shared from NewAddBatch to Commit or Abort,
// so a GC waits for it. Add is safe for concurrent use; Commit and Abort
// end the batch (Abort after Commit does nothing, so it can be deferred).
type AddBatch struct {
	s      *Store
	leave  func()
	marker ds.Key
	log    *writeLog

	mu      sync.Mutex
	roots   []cid.Cid
	discard map[cid.Cid]bool
	done    bool
}

// NewAddBatch starts a batch of adds.
func (s *Store) NewAddBatch(ctx context.Context) (*AddBatch, error) {
	leave, err := s.enterWrite(ctx)
	if err != nil {
		return nil, opErr("add batch", err)
	}
	marker, err := s.beginWrite(ctx)
	if err != nil {
		leave()
		return nil, opErr("add batch", err)
	}
	return &AddBatch{s: s, leave: leave, marker: marker, log: &writeLog{}}, nil
}

// smallRecord is the plaintext size up to which Add encrypts into memory
// and imports the ciphertext as one leaf (no pipe, no goroutine): well
// under a chunk, with room for age's overhead.
const smallRecord = 256 << 10

// Add encrypts plaintext to a fresh identity and writes its blocks. The
// record is neither durable nor pinned until Commit. A failed Add leaves
// its blocks to Abort, which the caller must then call.
func (b *AddBatch) Add(ctx context.Context, plaintext io.Reader) (Added, error) {
	b.mu.Lock()
	done := b.done
	b.mu.Unlock()
	if done {
		return Added{}, ErrBatchDone
	}
	s := b.s
	bs := &blockStore{s: s, log: b.log}
	var added Added
	var err error
	if n, ok := inputSize(plaintext); ok && n <= smallRecord {
		added, err = b.addSmall(ctx, plaintext, int(n), bs)
	} else {
		added, err = s.addEncrypted(ctx, plaintext, func(src leafSource) (cid.Cid, int64, error) {
			return s.importLogged(src, b.log)
		})
	}
	if err != nil {
		return Added{}, err
	}
	b.mu.Lock()
	b.roots = append(b.roots, added.CID)
	b.mu.Unlock()
	return added, nil
}

// addSmall encrypts a small plaintext into memory and imports the
// ciphertext through the same importer as every add (so the CID is the
// profile's: one raw leaf).
func (b *AddBatch) addSmall(ctx context.Context, plaintext io.Reader, n int, bs *blockStore) (Added, error) {
	id, err := age.GenerateX25519Identity()
	if err != nil {
		return Added{}, fmt.Errorf("store: add: generate key: %w", err)
	}
	var ct bytes.Buffer
	ct.Grow(n + 512) // age's header and one tag per 64 KiB
	// The writer holds the key, so both of the stanza's multiplications
	// are fixed-base (see internal/fastx25519).
	rcpt, err := fastx25519.ForIdentity(id)
	if err != nil {
		return Added{}, fmt.Errorf("store: add: %w", err)
	}
	w, err := age.Encrypt(&ct, rcpt)
	if err != nil {
		return Added{}, fmt.Errorf("store: add: encrypt: %w", err)
	}
	readErr := new(errBox)
	// A buffer of the plaintext's size, not io.Copy's 32 KiB: a batch
	// adds thousands of small records.
	if _, err := io.CopyBuffer(w, &plaintextReader{ctx: ctx, r: plaintext, err: readErr}, make([]byte, max(n, 512))); err != nil {
		if rerr := readErr.get(); rerr != nil {
			return Added{}, fmt.Errorf("store: add: read plaintext: %w", rerr)
		}
		return Added{}, opErr("add", err)
	}
	if err := w.Close(); err != nil {
		return Added{}, opErr("add", err)
	}
	size := int64(ct.Len())
	root, _, err := b.s.importFile(b.s.readerLeaves(ctx, &ct), bs)
	if err != nil {
		return Added{}, opErr("add", err)
	}
	return Added{CID: root, Key: id, Size: size}, nil
}

// Roots returns the roots added so far, in the order their adds ended.
func (b *AddBatch) Roots() []cid.Cid {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]cid.Cid(nil), b.roots...)
}

// Discard leaves out the record root (one this batch added): Commit
// deletes its blocks instead of pinning it.
func (b *AddBatch) Discard(root cid.Cid) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.discard == nil {
		b.discard = map[cid.Cid]bool{}
	}
	b.discard[root] = true
}

// Commit makes every block of the batch durable (one flush), then pins
// every root not discarded and removes the batch's marker in one
// synchronous datastore batch, then deletes the discarded records'
// blocks. On failure the batch's blocks are deleted, as by Abort.
func (b *AddBatch) Commit(ctx context.Context) error {
	b.mu.Lock()
	if b.done {
		b.mu.Unlock()
		return ErrBatchDone
	}
	b.done = true
	var keep, discard []cid.Cid
	for _, r := range b.roots {
		if b.discard[r] {
			discard = append(discard, r)
		} else {
			keep = append(keep, r)
		}
	}
	b.mu.Unlock()
	defer b.leave()
	if len(keep) == 0 {
		b.s.rollback(ctx, b.marker, b.log)
		return nil
	}
	err := b.commit(ctx, keep)
	if err != nil {
		b.s.rollback(ctx, b.marker, b.log)
		return opErr("add batch", err)
	}
	b.deleteDiscarded(ctx, discard)
	return nil
}

// deleteDiscarded deletes the blocks of discarded records, which the
// batch created (their keys were made for them alone). A block it cannot
// delete is left to GC (it is not pinned).
func (b *AddBatch) deleteDiscarded(ctx context.Context, roots []cid.Cid) {
	if len(roots) == 0 {
		return
	}
	ctx = context.WithoutCancel(ctx)
	b.log.mu.Lock()
	fresh := make(map[ds.Key]bool, len(b.log.fresh))
	for _, k := range b.log.fresh {
		fresh[k] = true
	}
	b.log.mu.Unlock()
	for _, root := range roots {
		var doomed []ds.Key
		w := newWalker(b.s, false)
		err := w.walk(ctx, root, func(c cid.Cid, _ blocks.Block) error {
			if k := blockKey(c); fresh[k] {
				doomed = append(doomed, k)
			}
			return nil
		})
		if err != nil {
			continue
		}
		for _, k := range doomed {
			if err := b.s.flat.Delete(ctx, k); err != nil && err != ds.ErrNotFound {
				break
			}
		}
	}
}

func (b *AddBatch) commit(ctx context.Context, roots []cid.Cid) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := b.s.flushLog(b.log); err != nil {
		return err
	}
	batch, err := b.s.meta.Batch(ctx)
	if err != nil {
		return err
	}
	for _, r := range roots {
		if err := batch.Put(ctx, pinKey(r), nil); err != nil {
			return err
		}
	}
	if err := batch.Delete(ctx, b.marker); err != nil {
		return err
	}
	if err := batch.Commit(ctx); err != nil {
		return fmt.Errorf("record pins: %w", b.s.spaceErr(err, 0))
	}
	return nil
}

// Abort deletes every block the batch created and its marker. After
// Commit it does nothing.
func (b *AddBatch) Abort(ctx context.Context) {
	b.mu.Lock()
	if b.done {
		b.mu.Unlock()
		return
	}
	b.done = true
	b.mu.Unlock()
	defer b.leave()
	b.s.rollback(ctx, b.marker, b.log)
}
