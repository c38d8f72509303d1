package store

import (
	"context"
	"fmt"
	"io"

	"github.com/ipfs/boxo/blockservice"
	chunker "github.com/ipfs/boxo/chunker"
	mdag "github.com/ipfs/boxo/ipld/merkledag"
	"github.com/ipfs/boxo/ipld/unixfs/importer/balanced"
	"github.com/ipfs/boxo/ipld/unixfs/importer/helpers"
	uio "github.com/ipfs/boxo/ipld/unixfs/io"
	cid "github.com/ipfs/go-cid"
)

// profile is IPIP-499's unixfs-v1-2025: CIDv1, sha2-256, 1 MiB chunks,
// 1024 links per node, raw leaves, balanced layout, links-first dag-pb.
// Its values are passed to the DAG builder explicitly rather than through
// profile.ApplyGlobals, which would change process-wide defaults under
// other packages' feet.
var profile = uio.UnixFS_v1_2025

// importLayout is the part of the profile that shapes the DAG. Tests use
// a tiny chunk size to reach the 1024-link boundary without writing 1 GiB.
type importLayout struct {
	chunkSize int64
	maxLinks  int
}

func defaultLayout() importLayout {
	return importLayout{chunkSize: profile.ChunkSize, maxLinks: profile.FileDAGWidth}
}

// importFile builds a balanced UnixFS file DAG of src's leaves, written to
// bs, and returns its root and the number of bytes read. Memory use is
// bounded by a few chunks plus one pending link list per DAG level,
// whatever the input's size.
func (s *Store) importFile(src leafSource, bs *blockStore) (cid.Cid, int64, error) {
	// merkledag encodes with a process-wide field order; the profile pins
	// links-first. Refuse to mint non-profile CIDs if someone changed it.
	if mdag.DefaultPBNodeFieldOrder != profile.PBNodeFieldOrder {
		return cid.Undef, 0, fmt.Errorf("merkledag.DefaultPBNodeFieldOrder was changed to %v; refusing to build non-%s CIDs",
			mdag.DefaultPBNodeFieldOrder, "unixfs-v1-2025")
	}
	params := helpers.DagBuilderParams{
		Dagserv:    mdag.NewDAGService(blockservice.New(bs, nil)),
		Maxlinks:   s.layout.maxLinks,
		RawLeaves:  profile.RawLeaves,
		CidBuilder: profile.CidBuilder(),
	}
	db, err := params.New(src)
	if err != nil {
		return cid.Undef, 0, err
	}
	root, err := balanced.Layout(db)
	if err != nil {
		// The builder reports reader errors as they are; prefer ours.
		if serr := src.failure(); serr != nil {
			return cid.Undef, 0, serr
		}
		return cid.Undef, 0, err
	}
	return root.Cid(), src.consumed(), nil
}

// leafSource is the importer's input: leaves, the bytes they hold so far
// and the first error of their source.
type leafSource interface {
	chunker.Splitter
	consumed() int64
	failure() error
}

func (p *leafPipe) consumed() int64 { return p.n }
func (p *leafPipe) failure() error  { return p.err }

// readerLeaves cuts r into the layout's leaves with
// chunker.NewSizeSplitter.
func (s *Store) readerLeaves(ctx context.Context, r io.Reader) *readerLeaves {
	cr := &countingReader{ctx: ctx, r: r}
	return &readerLeaves{Splitter: chunker.NewSizeSplitter(cr, s.layout.chunkSize), cr: cr}
}

// readerLeaves is a reader cut by chunker.NewSizeSplitter.
type readerLeaves struct {
	chunker.Splitter
	cr *countingReader
}

func (r *readerLeaves) consumed() int64 { return r.cr.n }
func (r *readerLeaves) failure() error  { return r.cr.err }

// countingReader counts bytes, stops at ctx cancellation and remembers the
// first error its source returned.
type countingReader struct {
	ctx context.Context
	r   io.Reader
	n   int64
	err error
}

func (c *countingReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		c.err = err
		return 0, err
	}
	n, err := c.r.Read(p)
	c.n += int64(n)
	if err != nil && err != io.EOF && c.err == nil {
		c.err = err
	}
	return n, err
}
