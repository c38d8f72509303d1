package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	mdag "github.com/ipfs/boxo/ipld/merkledag"
	blocks "github.com/ipfs/go-block-format"
	cid "github.com/ipfs/go-cid"
	"github.com/ipld/go-ipld-prime/codec/dagcbor"
	cidlink "github.com/ipld/go-ipld-prime/linking/cid"
	"github.com/ipld/go-ipld-prime/node/basicnode"
	"github.com/ipld/go-ipld-prime/traversal"
)

// Links returns the CIDs blk links to, in order. It understands raw (no
// links), dag-pb (UnixFS) and dag-cbor (links are tag-42 CIDs anywhere in
// the data, found generically with go-ipld-prime). Any other codec is an
// error, since its links cannot be known and walking past it would
// silently lose blocks.
func Links(blk blocks.Block) ([]cid.Cid, error) {
	c := blk.Cid()
	switch codec := c.Prefix().Codec; codec {
	case cid.Raw:
		return nil, nil
	case cid.DagProtobuf:
		pn, err := mdag.DecodeProtobuf(blk.RawData())
		if err != nil {
			return nil, fmt.Errorf("store: links of %s: decode dag-pb: %w", c, err)
		}
		links := pn.Links()
		out := make([]cid.Cid, 0, len(links))
		for _, l := range links {
			out = append(out, l.Cid)
		}
		return out, nil
	case cid.DagCBOR:
		nb := basicnode.Prototype.Any.NewBuilder()
		// Relaxed: only the links matter here, and a block written by a
		// slightly non-canonical encoder must not make GC or export fail.
		opts := dagcbor.DecodeOptions{AllowLinks: true, RelaxedDecode: true}
		if err := opts.Decode(nb, bytes.NewReader(blk.RawData())); err != nil {
			return nil, fmt.Errorf("store: links of %s: decode dag-cbor: %w", c, err)
		}
		lnks, err := traversal.SelectLinks(nb.Build())
		if err != nil {
			return nil, fmt.Errorf("store: links of %s: %w", c, err)
		}
		out := make([]cid.Cid, 0, len(lnks))
		for _, l := range lnks {
			cl, ok := l.(cidlink.Link)
			if !ok {
				return nil, fmt.Errorf("store: links of %s: unsupported link type %T", c, l)
			}
			out = append(out, cl.Cid)
		}
		return out, nil
	default:
		return nil, fmt.Errorf("store: links of %s: unsupported codec 0x%x", c, codec)
	}
}

// Walk calls fn for every block reachable from root, each distinct CID
// once, depth-first: a block before its children, children in link
// order. Every block is read and verified; a missing or corrupt one stops
// the walk with a *BlockError naming it. An error from fn stops the walk
// and is returned as is.
func (s *Store) Walk(ctx context.Context, root cid.Cid, fn func(blocks.Block) error) error {
	leave, err := s.enter()
	if err != nil {
		return err
	}
	defer leave()
	w := newWalker(s, true)
	return w.walk(ctx, root, func(_ cid.Cid, blk blocks.Block) error { return fn(blk) })
}

// walker walks DAGs with one shared visited set, so that walking several
// roots visits shared blocks once.
type walker struct {
	s    *Store
	seen map[string]struct{} // cid.KeyString
	// readLeaves: when false, raw-codec blocks (which have no links) are
	// only checked for presence and passed to fn as nil; pin and GC do
	// not need to read gigabytes of leaves.
	readLeaves bool
	// skip, when set, leaves out a block and everything below it.
	skip func(cid.Cid) bool
	// missingOK makes a missing block end its branch instead of the walk;
	// onMissing, if set, hears of each.
	missingOK bool
	onMissing func(cid.Cid)
}

func newWalker(s *Store, readLeaves bool) *walker {
	return &walker{s: s, seen: make(map[string]struct{}), readLeaves: readLeaves}
}

func (w *walker) missed(c cid.Cid) {
	if w.onMissing != nil {
		w.onMissing(c)
	}
}

func (w *walker) walk(ctx context.Context, root cid.Cid, fn func(cid.Cid, blocks.Block) error) error {
	stack := []cid.Cid{root}
	for len(stack) > 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		c := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		k := c.KeyString()
		if _, ok := w.seen[k]; ok {
			continue
		}
		w.seen[k] = struct{}{}
		if w.skip != nil && w.skip(c) {
			continue
		}

		if !w.readLeaves && c.Prefix().Codec == cid.Raw {
			has, err := w.s.bs.Has(ctx, c)
			if err != nil {
				return fmt.Errorf("store: block %s: %w", c, err)
			}
			if !has {
				if w.missingOK {
					w.missed(c)
					continue
				}
				return missingBlock(c)
			}
			if err := fn(c, nil); err != nil {
				return err
			}
			continue
		}
		blk, err := w.s.bs.Get(ctx, c)
		if w.missingOK && errors.Is(err, ErrMissing) {
			w.missed(c)
			continue
		}
		if err != nil {
			return err
		}
		links, err := Links(blk)
		if err != nil {
			return err
		}
		if err := fn(c, blk); err != nil {
			return err
		}
		// Reverse order so the first link is popped first.
		for i := len(links) - 1; i >= 0; i-- {
			if _, ok := w.seen[links[i].KeyString()]; !ok {
				stack = append(stack, links[i])
			}
		}
	}
	return nil
}
