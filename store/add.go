package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	"filippo.io/age"
	cid "github.com/ipfs/go-cid"
	ds "github.com/ipfs/go-datastore"
)

// Added describes a record stored by [Store.Add].
type Added struct {
	// CID is the root of the record's UnixFS file DAG (its ciphertext).
	CID cid.Cid
	// Key is the fresh age identity the record is encrypted to. It is the
	// only way to read the record; the store does not keep it.
	Key *age.X25519Identity
	// Size is the number of ciphertext bytes.
	Size int64
}

// Add encrypts plaintext with age to a fresh X25519 identity, stores the
// ciphertext as a UnixFS file (profile unixfs-v1-2025), pins its root and
// flushes it to stable storage once before returning. It streams: memory
// use does not depend on the size of plaintext.
func (s *Store) Add(ctx context.Context, plaintext io.Reader) (Added, error) {
	return s.addEncrypted(ctx, plaintext, func(src leafSource) (cid.Cid, int64, error) {
		return s.addPinned(ctx, src, true)
	})
}

// addEncrypted encrypts plaintext with age to a fresh X25519 identity and
// hands the ciphertext, cut into leaves, to write (which imports it and
// returns the root and the bytes it read). It streams.
func (s *Store) addEncrypted(ctx context.Context, plaintext io.Reader, write func(leafSource) (cid.Cid, int64, error)) (Added, error) {
	id, err := age.GenerateX25519Identity()
	if err != nil {
		return Added{}, fmt.Errorf("store: add: generate key: %w", err)
	}
	if n, ok := inputSize(plaintext); ok {
		// Refuse what cannot fit before writing anything; a stream of
		// unknown size is stopped by the space guard as it goes.
		if err := s.space.check(ciphertextEstimate(n)); err != nil {
			return Added{}, err
		}
	}
	// The encryptor may run up to 4 leaves (4 MiB) ahead of the importer.
	pipe := newLeafPipe(ctx, int(s.layout.chunkSize), 4)
	done := make(chan struct{})
	readErr := new(errBox) // plaintext's own error, reported as such
	go func() {
		defer close(done)
		enc, err := age.EncryptReader(&plaintextReader{ctx: ctx, r: plaintext, err: readErr}, id.Recipient())
		if err != nil {
			pipe.CloseWithError(fmt.Errorf("encrypt: %w", err))
			return
		}
		pipe.CloseWithError(pipe.fill(enc))
	}()

	root, n, err := write(pipe)
	// Unblock the encryptor if the import stopped early, then wait for it
	// so that plaintext is no longer read once Add returns (unless a Read
	// of it is stuck and ctx ends).
	pipe.CloseRead(errors.New("import stopped"))
	select {
	case <-done:
	case <-ctx.Done():
	}
	if err != nil {
		if rerr := readErr.get(); rerr != nil {
			return Added{}, fmt.Errorf("store: add: read plaintext: %w", rerr)
		}
		return Added{}, opErr("add", err)
	}
	return Added{CID: root, Key: id, Size: n}, nil
}

// AddRaw stores r's bytes, which are already ciphertext, with the same
// importer as [Store.Add]: the CID equals stock `ipfs add` with the
// unixfs-v1-2025 profile for the same bytes. The root is pinned and the
// blocks are durable when AddRaw returns. It returns the root and the
// number of bytes read.
func (s *Store) AddRaw(ctx context.Context, r io.Reader) (cid.Cid, int64, error) {
	root, n, err := s.addPinned(ctx, s.readerLeaves(ctx, r), false)
	if err != nil {
		return cid.Undef, 0, opErr("add raw", err)
	}
	return root, n, nil
}

// addPinned imports src, flushes once and pins the root, all while holding
// the GC gate shared so a concurrent GC cannot sweep the new blocks. A
// marker of the write in progress is recorded before the first block and
// removed with the pin, so an add killed half way is found later (see
// interrupted.go). With rollback, a failed import deletes the blocks it
// created; otherwise they are left to GC.
func (s *Store) addPinned(ctx context.Context, src leafSource, rollback bool) (cid.Cid, int64, error) {
	leave, err := s.enterWrite(ctx)
	if err != nil {
		return cid.Undef, 0, err
	}
	defer leave()
	marker, err := s.beginWrite(ctx)
	if err != nil {
		return cid.Undef, 0, err
	}
	log := &writeLog{}
	root, n, err := s.writeFile(src, log)
	if err == nil {
		err = s.pinEnding(ctx, root, marker)
	}
	if err != nil {
		var se *SpaceError
		if errors.As(err, &se) && se.Free >= 0 {
			// The guard knows only the block it refused; the add needed
			// at least what it wrote as well.
			log.mu.Lock()
			se.Need += log.bytes
			log.mu.Unlock()
			se.AtLeast = true
		}
		if rollback {
			s.rollback(ctx, marker, log)
		}
		return cid.Undef, 0, err
	}
	return root, n, nil
}

// writeFile imports src and makes its blocks durable.
func (s *Store) writeFile(src leafSource, log *writeLog) (cid.Cid, int64, error) {
	var root cid.Cid
	var n int64
	var err error
	if s.syncMode == syncEachBlock {
		// Benchmarks only: no rollback.
		root, n, err = s.importFile(src, &blockStore{s: s, durable: true})
	} else {
		root, n, err = s.importLogged(src, log)
	}
	if err != nil {
		return cid.Undef, 0, err
	}
	// Order matters for crash safety: blocks durable first, then the pin
	// that refers to them (a synchronous pebble write).
	if s.syncMode == syncOnce {
		if err := s.flushLog(log); err != nil {
			return cid.Undef, 0, err
		}
	}
	return root, n, nil
}

// importLogged imports src, writing its blocks on background writers and
// recording them in log, and returns once every block is written (not
// flushed).
func (s *Store) importLogged(src leafSource, log *writeLog) (cid.Cid, int64, error) {
	bs := &blockStore{s: s, log: log, async: newAsyncWriter(s, log, 2, 8)}
	if lp, ok := src.(*leafPipe); ok {
		// Written leaves go back to the pipe to be filled again.
		bs.async.recycle = lp.recycle
	}
	root, n, err := s.importFile(src, bs)
	if werr := bs.async.wait(); err == nil {
		err = werr
	}
	return root, n, err
}

// pinEnding records the pin on root and removes the write's marker in
// one synchronous pebble batch.
func (s *Store) pinEnding(ctx context.Context, root cid.Cid, marker ds.Key) error {
	b, err := s.meta.Batch(ctx)
	if err != nil {
		return err
	}
	if err := b.Put(ctx, pinKey(root), nil); err != nil {
		return err
	}
	if err := b.Delete(ctx, marker); err != nil {
		return err
	}
	if err := b.Commit(ctx); err != nil {
		return fmt.Errorf("record pin: %w", s.spaceErr(err, 0))
	}
	return nil
}

// inputSize returns the bytes left in r when r can tell (a regular file,
// a bytes or strings reader).
func inputSize(r io.Reader) (int64, bool) {
	switch v := r.(type) {
	case interface{ Len() int }:
		return int64(v.Len()), true
	case *os.File:
		st, err := v.Stat()
		if err != nil || !st.Mode().IsRegular() {
			return 0, false
		}
		off, err := v.Seek(0, io.SeekCurrent)
		if err != nil {
			return 0, false
		}
		return max(st.Size()-off, 0), true
	}
	return 0, false
}

// ciphertextEstimate is an upper bound of the bytes an add of n plaintext
// bytes writes: age adds 16 bytes per 64 KiB chunk and a header, the
// UnixFS DAG a few dozen bytes per 1 MiB leaf.
func ciphertextEstimate(n int64) int64 { return n + n/1024 + 64<<10 }

// plaintextReader stops at ctx cancellation and records the source's own
// errors so they are not mistaken for storage errors.
type plaintextReader struct {
	ctx context.Context
	r   io.Reader
	err *errBox
}

func (p *plaintextReader) Read(b []byte) (int, error) {
	if err := p.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := p.r.Read(b)
	if err != nil && err != io.EOF {
		p.err.set(err)
	}
	return n, err
}

// errBox holds the first error set, safely across goroutines.
type errBox struct {
	mu  sync.Mutex
	err error
}

func (b *errBox) set(err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.err == nil {
		b.err = err
	}
}

func (b *errBox) get() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.err
}
