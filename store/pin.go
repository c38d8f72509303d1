package store

import (
	"context"
	"fmt"
	"strings"

	blocks "github.com/ipfs/go-block-format"
	cid "github.com/ipfs/go-cid"
	ds "github.com/ipfs/go-datastore"
	dsq "github.com/ipfs/go-datastore/query"
)

// reservedPrefix is the datastore namespace owned by this package.
const reservedPrefix = "/store"

// pinPrefix holds one key per recursive pin: /store/pins/<cid>.
var pinPrefix = ds.NewKey(reservedPrefix + "/pins")

func pinKey(c cid.Cid) ds.Key { return pinPrefix.ChildString(c.String()) }

// Pin pins c recursively: GC keeps c and every block reachable from it.
// Every such block must be present (and dag-pb/dag-cbor blocks readable
// and intact), otherwise Pin fails naming the first missing or corrupt
// block and pins nothing. Pinning a pinned CID is a no-op.
func (s *Store) Pin(ctx context.Context, c cid.Cid) error {
	leave, err := s.enterWrite(ctx)
	if err != nil {
		return wrapOp("pin", c, err)
	}
	defer leave()
	w := newWalker(s, false)
	if err := w.walk(ctx, c, func(cid.Cid, blocks.Block) error { return nil }); err != nil {
		return wrapOp("pin", c, err)
	}
	return wrapOp("pin", c, s.putPin(ctx, c))
}

// putPin records the pin durably (the datastore writes synchronously).
func (s *Store) putPin(ctx context.Context, c cid.Cid) error {
	if err := s.meta.Put(ctx, pinKey(c), nil); err != nil {
		return fmt.Errorf("record pin: %w", err)
	}
	return nil
}

// Unpin removes the pin on c; its blocks become eligible for GC unless
// another pin reaches them. Unpinning a CID that is not pinned returns an
// error matching [ErrNotPinned].
func (s *Store) Unpin(ctx context.Context, c cid.Cid) error {
	leave, err := s.enterWrite(ctx)
	if err != nil {
		return wrapOp("unpin", c, err)
	}
	defer leave()
	has, err := s.meta.Has(ctx, pinKey(c))
	if err != nil {
		return wrapOp("unpin", c, err)
	}
	if !has {
		return wrapOp("unpin", c, ErrNotPinned)
	}
	return wrapOp("unpin", c, s.meta.Delete(ctx, pinKey(c)))
}

// IsPinned reports whether c itself is pinned (not whether it is reachable
// from some other pin).
func (s *Store) IsPinned(ctx context.Context, c cid.Cid) (bool, error) {
	leave, err := s.enter()
	if err != nil {
		return false, wrapOp("is pinned", c, err)
	}
	defer leave()
	has, err := s.meta.Has(ctx, pinKey(c))
	return has, wrapOp("is pinned", c, err)
}

// Pins returns every pinned CID, in datastore key order.
func (s *Store) Pins(ctx context.Context) ([]cid.Cid, error) {
	leave, err := s.enter()
	if err != nil {
		return nil, fmt.Errorf("store: pins: %w", err)
	}
	defer leave()
	pins, err := s.pins(ctx)
	if err != nil {
		return nil, fmt.Errorf("store: pins: %w", err)
	}
	return pins, nil
}

func (s *Store) pins(ctx context.Context) ([]cid.Cid, error) {
	res, err := s.meta.Query(ctx, dsq.Query{Prefix: pinPrefix.String(), KeysOnly: true})
	if err != nil {
		return nil, err
	}
	defer res.Close()
	var out []cid.Cid
	for r := range res.Next() {
		if r.Error != nil {
			return nil, r.Error
		}
		name := strings.TrimPrefix(r.Key, pinPrefix.String()+"/")
		c, err := cid.Decode(name)
		if err != nil {
			return nil, fmt.Errorf("bad pin key %q: %w", r.Key, err)
		}
		out = append(out, c)
	}
	return out, ctx.Err()
}
