package store

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/ipfs/boxo/verifcid"
	cid "github.com/ipfs/go-cid"
	flatfs "github.com/ipfs/go-ds-flatfs"
	"github.com/multiformats/go-varint"
)

// CheckFunc inspects a staged CAR before [Store.ImportCAR] writes anything:
// roots are the CAR's header roots and get returns a block's bytes (already
// verified against the CID) from the CAR or, failing that, from the store,
// or an error matching [ErrMissing]. get is valid only during the call.
// A non-nil error rejects the whole CAR.
type CheckFunc = func(roots []cid.Cid, get func(cid.Cid) ([]byte, error)) error

// ImportCAR reads a CARv1 from r, treating it as hostile: the header is
// limited to 64 KiB and sections to 2 MiB plus room for the CID, every
// block must hash to its CID (with a hash function boxo's verifcid
// allows), and truncated or malformed input is rejected with a one-line
// error saying what is wrong. Blocks are staged in a temporary file under
// the store directory, with an in-memory index, and nothing touches the
// blockstore until check (which may be nil) has accepted them. Then all
// new blocks are written in one flatfs batch and flushed once, and the
// header roots are returned. A rejected or broken CAR leaves the store
// exactly as it was.
//
// Imported blocks are not pinned: pin what you keep (holding the
// Blockstore's PinLock from before ImportCAR if a concurrent GC could run
// in between). Bound r (e.g. io.LimitReader) to bound the staging file.
func (s *Store) ImportCAR(ctx context.Context, r io.Reader, check CheckFunc) ([]cid.Cid, error) {
	// Staging touches only the staging file, so a slow sender does not
	// hold up Close or GC; the commit re-checks.
	leave, err := s.enter()
	if err != nil {
		return nil, fmt.Errorf("store: import CAR: %w", err)
	}
	leave()

	st, err := newStaging(s.tmpDir)
	if err != nil {
		return nil, fmt.Errorf("store: import CAR: staging: %w", err)
	}
	defer st.discard()

	roots, err := readCAR(ctx, r, st)
	if err != nil {
		return nil, fmt.Errorf("store: import CAR: %w", err)
	}
	if err := st.seal(); err != nil {
		return nil, fmt.Errorf("store: import CAR: staging: %w", err)
	}
	if check != nil {
		get := func(c cid.Cid) ([]byte, error) {
			data, ok, err := st.get(c)
			if err != nil || ok {
				return data, err
			}
			blk, err := s.bs.Get(ctx, c)
			if err != nil {
				return nil, err
			}
			return blk.RawData(), nil
		}
		if err := check(roots, get); err != nil {
			return nil, fmt.Errorf("store: import CAR: rejected: %w", err)
		}
	}
	if err := s.commitStaged(ctx, st); err != nil {
		return nil, fmt.Errorf("store: import CAR: %w", err)
	}
	return roots, nil
}

// readCAR parses a CARv1 strictly into st and returns its roots.
func readCAR(ctx context.Context, r io.Reader, st *staging) ([]cid.Cid, error) {
	br := bufio.NewReaderSize(r, 64<<10)

	hlen, err := varint.ReadUvarint(br)
	switch {
	case err == io.EOF:
		return nil, errors.New("empty input")
	case err == io.ErrUnexpectedEOF:
		return nil, errors.New("truncated header")
	case err != nil:
		return nil, fmt.Errorf("invalid header length: %w", err)
	case hlen == 0:
		return nil, errors.New("invalid header: zero length")
	case hlen > maxCARHeaderSize:
		return nil, fmt.Errorf("header is %d bytes, limit is %d", hlen, maxCARHeaderSize)
	}
	hdr := make([]byte, hlen)
	if _, err := io.ReadFull(br, hdr); err != nil {
		return nil, readErr(err, "truncated header")
	}
	roots, err := decodeCARHeader(hdr)
	if err != nil {
		return nil, err
	}

	buf := make([]byte, maxCARSectionSize)
	for n := 0; ; n++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		slen, err := varint.ReadUvarint(br)
		switch {
		case err == io.EOF:
			return roots, nil // clean end between sections
		case err == io.ErrUnexpectedEOF:
			return nil, fmt.Errorf("truncated section after %d blocks", n)
		case err != nil:
			return nil, fmt.Errorf("invalid section length after %d blocks: %w", n, err)
		case slen == 0:
			return nil, fmt.Errorf("empty section after %d blocks", n)
		case slen > maxCARSectionSize:
			return nil, fmt.Errorf("section %d is %d bytes, limit is %d", n+1, slen, maxCARSectionSize)
		}
		if n >= maxCARBlocks {
			return nil, fmt.Errorf("more than %d blocks", maxCARBlocks)
		}
		sec := buf[:slen]
		if _, err := io.ReadFull(br, sec); err != nil {
			return nil, readErr(err, fmt.Sprintf("truncated section after %d blocks", n))
		}
		cl, c, err := cid.CidFromBytes(sec)
		if err != nil {
			return nil, fmt.Errorf("section %d: invalid CID: %w", n+1, err)
		}
		if err := verifcid.ValidateCid(verifcid.DefaultAllowlist, c); err != nil {
			return nil, fmt.Errorf("section %d: block %s: %w", n+1, c, err)
		}
		data := sec[cl:]
		if len(data) > maxCARBlockSize {
			return nil, fmt.Errorf("section %d: block %s is %d bytes, limit is %d", n+1, c, len(data), maxCARBlockSize)
		}
		if err := verify(c, data); err != nil {
			return nil, fmt.Errorf("section %d: block %s does not match its CID", n+1, c)
		}
		if err := st.add(c, data); err != nil {
			return nil, fmt.Errorf("staging: %w", err)
		}
	}
}

// readErr maps a short read to msg and passes other read errors through.
func readErr(err error, msg string) error {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return errors.New(msg)
	}
	return fmt.Errorf("%s: %w", msg, err)
}

// commitStaged writes the staged blocks the store lacks in one flatfs
// batch and flushes them once.
func (s *Store) commitStaged(ctx context.Context, st *staging) error {
	leave, err := s.enterWrite(ctx)
	if err != nil {
		return err
	}
	defer leave()
	batch, err := s.flat.Batch(ctx)
	if err != nil {
		return err
	}
	committed := false
	defer func() {
		if !committed {
			if d, ok := batch.(flatfs.DiscardableBatch); ok {
				_ = d.Discard(ctx)
			}
		}
	}()
	log := &writeLog{}
	for _, e := range st.order {
		if isIdentity(e.c) {
			continue
		}
		k := blockKey(e.c)
		// An existing block is still flushed: a concurrent import may
		// have written it and not flushed yet.
		log.add(k)
		has, err := s.flat.Has(ctx, k)
		if err != nil {
			return err
		}
		if has {
			continue
		}
		// flatfs batches write asynchronously and keep the slice: a fresh
		// one per block.
		data := make([]byte, e.n)
		if _, err := st.f.ReadAt(data, e.off); err != nil {
			return fmt.Errorf("staging: %w", err)
		}
		if err := batch.Put(ctx, k, data); err != nil {
			return fmt.Errorf("write %s: %w", e.c, err)
		}
	}
	if err := batch.Commit(ctx); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	committed = true
	return s.flushLog(log)
}

// staging holds a CAR's verified blocks in a temporary file, indexed in
// memory by multihash (how flatfs keys them).
type staging struct {
	f     *os.File
	w     *bufio.Writer
	size  int64
	index map[string]*stagedBlock
	order []*stagedBlock
}

type stagedBlock struct {
	c   cid.Cid
	off int64
	n   int
}

func newStaging(dir string) (*staging, error) {
	f, err := os.CreateTemp(dir, "car-import-*")
	if err != nil {
		return nil, err
	}
	return &staging{f: f, w: bufio.NewWriterSize(f, 256<<10), index: make(map[string]*stagedBlock)}, nil
}

func (st *staging) add(c cid.Cid, data []byte) error {
	k := string(c.Hash())
	if _, ok := st.index[k]; ok {
		return nil
	}
	if _, err := st.w.Write(data); err != nil {
		return err
	}
	b := &stagedBlock{c: c, off: st.size, n: len(data)}
	st.size += int64(len(data))
	st.index[k] = b
	st.order = append(st.order, b)
	return nil
}

// seal flushes buffered writes so get and commit can read them back.
func (st *staging) seal() error { return st.w.Flush() }

func (st *staging) get(c cid.Cid) ([]byte, bool, error) {
	b, ok := st.index[string(c.Hash())]
	if !ok {
		return nil, false, nil
	}
	data := make([]byte, b.n)
	if _, err := st.f.ReadAt(data, b.off); err != nil {
		return nil, true, fmt.Errorf("staging: read %s: %w", c, err)
	}
	return data, true, nil
}

func (st *staging) discard() {
	_ = st.f.Close()
	_ = os.Remove(st.f.Name())
}
