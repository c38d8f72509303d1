package store

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/ipfs/boxo/verifcid"
	blocks "github.com/ipfs/go-block-format"
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

// DefaultImportLimit is the most block bytes [Store.ImportCAR] stages
// from one CAR unless [ImportOptions.MaxSize] says otherwise.
const DefaultImportLimit = 1 << 30

// ErrImportLimit is matched (errors.Is) by the error of an import whose
// CAR holds more block bytes than its limit; the error is an
// *ImportLimitError.
var ErrImportLimit = errors.New("CAR over the import limit")

// ImportLimitError reports a CAR refused for its size.
type ImportLimitError struct {
	// Limit is the limit in bytes; Blocks the blocks read before it.
	Limit  int64
	Blocks int
}

// Error implements error.
func (e *ImportLimitError) Error() string {
	return fmt.Sprintf("CAR holds more than %s of blocks, the import limit (refused after %d blocks)", formatBytes(e.Limit), e.Blocks)
}

// Is makes an *ImportLimitError match ErrImportLimit.
func (e *ImportLimitError) Is(target error) bool { return target == ErrImportLimit }

// ImportOptions tune [Store.ImportCARWith].
type ImportOptions struct {
	// Check, if set, inspects the staged CAR before anything is stored.
	Check CheckFunc
	// MaxSize bounds the sum of the CAR's block sizes, which is what is
	// staged on disk; 0 means DefaultImportLimit.
	MaxSize int64
}

// CARImport says what [Store.ImportCARWith] did.
type CARImport struct {
	// Roots are the CAR's header roots.
	Roots []cid.Cid
	// Blocks counts the blocks reachable from the roots (stored, or
	// already in the store); Written those among them that were new.
	Blocks, Written int
	// Skipped counts the blocks not reachable from the roots, which were
	// not stored; SkippedBytes is their size.
	Skipped      int
	SkippedBytes int64
}

// ImportCAR is [Store.ImportCARWith] with check and the default limit.
func (s *Store) ImportCAR(ctx context.Context, r io.Reader, check CheckFunc) ([]cid.Cid, error) {
	res, err := s.ImportCARWith(ctx, r, ImportOptions{Check: check})
	return res.Roots, err
}

// ImportCARWith reads a CARv1 from r, treating it as hostile: the header
// is limited to 64 KiB, sections to 2 MiB plus room for the CID, the sum
// of block sizes to opts.MaxSize, every block must hash to its CID (with
// a hash function boxo's verifcid allows), and truncated or malformed
// input is rejected with a one-line error saying what is wrong. Blocks
// are staged in a temporary file under the store directory (removed on
// return, and at the next Open after a crash), with an in-memory index,
// and nothing touches the blockstore until opts.Check (which may be nil)
// has accepted them.
//
// Only blocks reachable from the roots are stored: the walk follows the
// links of staged blocks and of blocks already in the store (raw blocks
// have none, dag-pb and dag-cbor links are read with [Links]); a
// reachable block whose links cannot be read rejects the CAR. The rest
// are counted in the result and dropped. Then the new blocks are written
// in one flatfs batch and flushed once. A rejected or broken CAR leaves
// the store exactly as it was.
//
// Imported blocks are not pinned: pin what you keep (holding the
// Blockstore's PinLock from before the import if a concurrent GC could
// run in between).
func (s *Store) ImportCARWith(ctx context.Context, r io.Reader, opts ImportOptions) (CARImport, error) {
	// Staging touches only the staging file, so a slow sender does not
	// hold up Close or GC; the commit re-checks.
	leave, err := s.enter()
	if err != nil {
		return CARImport{}, fmt.Errorf("store: import CAR: %w", err)
	}
	leave()
	limit := opts.MaxSize
	if limit <= 0 {
		limit = DefaultImportLimit
	}

	st, err := newStaging(s.tmpDir)
	if err != nil {
		return CARImport{}, fmt.Errorf("store: import CAR: staging: %w", err)
	}
	defer st.discard()
	s.space.fresh()
	st.limit, st.space = limit, s.space

	roots, err := readCAR(ctx, r, st)
	if err != nil {
		return CARImport{}, importErr(s, err)
	}
	if err := st.seal(); err != nil {
		return CARImport{}, importErr(s, fmt.Errorf("staging: %w", err))
	}
	if opts.Check != nil {
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
		if err := opts.Check(roots, get); err != nil {
			return CARImport{}, fmt.Errorf("store: import CAR: rejected: %w", err)
		}
	}
	res := CARImport{Roots: roots}
	if err := s.markReachable(ctx, st, roots); err != nil {
		return CARImport{}, fmt.Errorf("store: import CAR: rejected: %w", err)
	}
	for _, b := range st.order {
		if !b.keep {
			res.Skipped++
			res.SkippedBytes += int64(b.n)
		}
	}
	if res.Skipped > 0 {
		slog.Info("store: import CAR: skipped blocks not reachable from the roots", "blocks", res.Skipped, "bytes", res.SkippedBytes)
	}
	if res.Blocks, res.Written, err = s.commitStaged(ctx, st); err != nil {
		return CARImport{}, importErr(s, err)
	}
	return res, nil
}

// importErr wraps an import's error; a *SpaceError stays as it is.
func importErr(s *Store, err error) error {
	var se *SpaceError
	if errors.As(err, &se) {
		return se
	}
	return fmt.Errorf("store: import CAR: %w", s.spaceErr(err, 0))
}

// markReachable sets keep on every staged block reachable from roots,
// walking through staged blocks and blocks already stored.
func (s *Store) markReachable(ctx context.Context, st *staging, roots []cid.Cid) error {
	seen := make(map[string]struct{})
	stack := append([]cid.Cid(nil), roots...)
	for len(stack) > 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		c := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		k := string(c.Hash())
		if _, ok := seen[k]; ok {
			continue
		}
		seen[k] = struct{}{}
		if c.Prefix().Codec == cid.Raw || isIdentity(c) {
			if b := st.index[k]; b != nil {
				b.keep = true
			}
			continue
		}
		var data []byte
		if b := st.index[k]; b != nil {
			b.keep = true
			d, _, err := st.get(c)
			if err != nil {
				return err
			}
			data = d
		} else {
			blk, err := s.bs.Get(ctx, c)
			if err != nil {
				continue // not offered and not stored (or unreadable): the branch ends
			}
			data = blk.RawData()
		}
		blk, err := blocks.NewBlockWithCid(data, c)
		if err != nil {
			return err
		}
		links, err := Links(blk)
		if err != nil {
			if st.index[k] != nil {
				return fmt.Errorf("block %s is reachable from the roots but its links cannot be read: %w", c, err)
			}
			continue
		}
		for i := len(links) - 1; i >= 0; i-- {
			stack = append(stack, links[i])
		}
	}
	return nil
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
			var le *ImportLimitError
			if errors.As(err, &le) {
				le.Blocks = n
				return nil, err
			}
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

// commitStaged writes the reachable staged blocks the store lacks in one
// flatfs batch and flushes them once. It returns the number of reachable
// blocks and of those written.
func (s *Store) commitStaged(ctx context.Context, st *staging) (kept, written int, err error) {
	leave, err := s.enterWrite(ctx)
	if err != nil {
		return 0, 0, err
	}
	defer leave()
	batch, err := s.flat.Batch(ctx)
	if err != nil {
		return 0, 0, err
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
		if !e.keep {
			continue
		}
		kept++
		if isIdentity(e.c) {
			continue
		}
		k := blockKey(e.c)
		// An existing block is still flushed: a concurrent import may
		// have written it and not flushed yet.
		log.add(k)
		has, err := s.flat.Has(ctx, k)
		if err != nil {
			return 0, 0, err
		}
		if has {
			continue
		}
		if err := s.space.take(int64(e.n)); err != nil {
			return 0, 0, err
		}
		// flatfs batches write asynchronously and keep the slice: a fresh
		// one per block.
		data := make([]byte, e.n)
		if _, err := st.f.ReadAt(data, e.off); err != nil {
			return 0, 0, fmt.Errorf("staging: %w", err)
		}
		if err := batch.Put(ctx, k, data); err != nil {
			return 0, 0, fmt.Errorf("write %s: %w", e.c, err)
		}
		written++
	}
	if err := batch.Commit(ctx); err != nil {
		return 0, 0, fmt.Errorf("commit: %w", err)
	}
	committed = true
	return kept, written, s.flushLog(log)
}

// staging holds a CAR's verified blocks in a temporary file, indexed in
// memory by multihash (how flatfs keys them).
type staging struct {
	f     *os.File
	w     *bufio.Writer
	size  int64
	limit int64       // most bytes staged
	space *spaceGuard // disk space for the staging file
	index map[string]*stagedBlock
	order []*stagedBlock
}

type stagedBlock struct {
	c    cid.Cid
	off  int64
	n    int
	keep bool // reachable from the roots
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
	if st.limit > 0 && st.size+int64(len(data)) > st.limit {
		return &ImportLimitError{Limit: st.limit}
	}
	if st.space != nil {
		if err := st.space.take(int64(len(data))); err != nil {
			return err
		}
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
