package store

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"

	blocks "github.com/ipfs/go-block-format"
	cid "github.com/ipfs/go-cid"
	"github.com/multiformats/go-varint"
)

// ExportCAR writes a CARv1 (as `ipfs dag import` reads) with roots in its
// header and every block reachable from them: each distinct CID once, in
// a deterministic order, depth-first from each root in turn (a block
// before its children, children in link order). Every block is verified
// as it is read; a missing or corrupt block stops the export with a
// *BlockError naming it, after which w holds a partial CAR. GC waits
// while an export runs, so give w a deadline if it is a slow network
// peer.
func (s *Store) ExportCAR(ctx context.Context, w io.Writer, roots []cid.Cid, opts ...ExportOption) error {
	var cfg exportConfig
	for _, o := range opts {
		o(&cfg)
	}
	if len(roots) == 0 {
		return errors.New("store: export CAR: no roots")
	}
	leave, err := s.enterWrite(ctx) // no GC sweep under our feet
	if err != nil {
		return fmt.Errorf("store: export CAR: %w", err)
	}
	defer leave()

	hdr, err := encodeCARHeader(roots)
	if err != nil {
		return fmt.Errorf("store: export CAR: header: %w", err)
	}
	bw := bufio.NewWriterSize(w, 256<<10)
	if err := writeSection(bw, hdr); err != nil {
		return fmt.Errorf("store: export CAR: %w", err)
	}
	wk := newWalker(s, true)
	wk.skip = cfg.skip
	if cfg.missing != nil {
		wk.missingOK = true
		wk.onMissing = cfg.missing
	}
	for _, root := range roots {
		err := wk.walk(ctx, root, func(c cid.Cid, blk blocks.Block) error {
			return writeSection(bw, c.Bytes(), blk.RawData())
		})
		if err != nil {
			var be *BlockError
			if errors.As(err, &be) {
				return err
			}
			return fmt.Errorf("store: export CAR: root %s: %w", root, err)
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("store: export CAR: %w", err)
	}
	return nil
}

// ExportOption changes what ExportCAR writes.
type ExportOption func(*exportConfig)

type exportConfig struct {
	skip    func(cid.Cid) bool
	missing func(cid.Cid)
}

// ExportAllowMissing makes a block the store does not hold end its branch
// instead of the export; missing is called with each such CID. Corrupt
// blocks still stop the export.
func ExportAllowMissing(missing func(cid.Cid)) ExportOption {
	return func(c *exportConfig) { c.missing = missing }
}

// ExportSkip leaves out every block for which skip returns true, and
// everything reachable only through it. The CAR then holds a partial DAG:
// fine for a reader that verifies what it gets, but a stock `ipfs dag
// import` that pins the roots will refuse it.
func ExportSkip(skip func(cid.Cid) bool) ExportOption {
	return func(c *exportConfig) { c.skip = skip }
}

// writeSection writes varint(total length) followed by parts.
func writeSection(w io.Writer, parts ...[]byte) error {
	var n int
	for _, p := range parts {
		n += len(p)
	}
	var lb [varint.MaxLenUvarint63]byte
	if _, err := w.Write(lb[:varint.PutUvarint(lb[:], uint64(n))]); err != nil {
		return err
	}
	for _, p := range parts {
		if _, err := w.Write(p); err != nil {
			return err
		}
	}
	return nil
}
