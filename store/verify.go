package store

import (
	"context"
	"errors"
	"fmt"

	cid "github.com/ipfs/go-cid"
	ds "github.com/ipfs/go-datastore"
)

// VerifyProgress is how far VerifyBlocks got: blocks and bytes read and
// hashed so far.
type VerifyProgress struct {
	Blocks int   `json:"blocks"`
	Bytes  int64 `json:"bytes"`
}

// VerifyBlocks reads every stored block and checks that its bytes hash
// to its multihash, as `ipfs repo verify` does, calling progress (when
// not nil) after each block. It returns the blocks that do not (a flipped
// byte, a truncated file, an unknown hash function), in the order found,
// as CIDv1 with the raw codec: flatfs keeps multihashes, not codecs, so
// callers that know a block's codec rebuild its CID. A block deleted while
// the walk runs (GC) is skipped; any other read error ends the walk.
func (s *Store) VerifyBlocks(ctx context.Context, progress func(VerifyProgress)) (bad []cid.Cid, done VerifyProgress, err error) {
	leave, err := s.enter()
	if err != nil {
		return nil, done, fmt.Errorf("store: verify blocks: %w", err)
	}
	defer leave()
	ctx, cancel := context.WithCancel(ctx) // ends the listing on an early return
	defer cancel()
	keys, keysErr, err := s.bs.AllKeysChanWithErr(ctx)
	if err != nil {
		return nil, done, fmt.Errorf("store: verify blocks: list blocks: %w", err)
	}
	for c := range keys {
		data, err := s.flat.Get(ctx, blockKey(c))
		if errors.Is(err, ds.ErrNotFound) {
			continue
		}
		if err != nil {
			return bad, done, fmt.Errorf("store: verify blocks: read %s: %w", c, err)
		}
		if verify(c, data) != nil {
			bad = append(bad, c)
		}
		done.Blocks++
		done.Bytes += int64(len(data))
		if progress != nil {
			progress(done)
		}
	}
	if err := keysErr(); err != nil {
		return bad, done, fmt.Errorf("store: verify blocks: list blocks: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return bad, done, fmt.Errorf("store: verify blocks: %w", err)
	}
	return bad, done, nil
}
