package keyshare

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"

	"github.com/ipfs/go-datastore"
	"github.com/ipfs/go-datastore/query"

	"github.com/blockmrs/blockmrs/protocol"
)

// The standing-grant pass mark. What CoverStanding gives depends on the
// chains this repo holds (the subject's records, claims, acks, hides,
// revokes and standing-grant events, and the grantees' accounts, whose
// keys it wraps to) and on which chains count (trust, distrust, forks);
// time only ends standing grants, it never makes a record coverable. So
// a whole pass that gave nothing leaves a mark, the digest of all of
// that, and the next whole pass returns at once while the digest is the
// same: an idle daemon's periodic pass (node/autoack.go) reads a few
// small account states instead of every record's access state. Any
// chain change anywhere (a record arriving, an ack, a new grant, a
// grantee's chain) changes the digest, and the pass after it looks at
// every record again, so that nothing the mark saw before is skipped.
//
//	/keyshare/covered/<account> → the digest as of its last empty pass

// coverInputs are the key prefixes whose values decide what a standing
// pass gives.
var coverInputs = []string{"/keyshare/acct/", "/keyshare/trust/", "/keyshare/distrust/", "/keyshare/forks/"}

func keyCoverMark(id protocol.AccountID) datastore.Key {
	return datastore.NewKey("/keyshare/covered/" + string(id))
}

// coverDigest returns the SHA-256 of every key and value under
// coverInputs, in key order.
func (r *Repo) coverDigest(ctx context.Context) ([]byte, error) {
	h := sha256.New()
	for _, prefix := range coverInputs {
		entries, err := queryAll(ctx, r.ds, prefix, false)
		if err != nil {
			return nil, err
		}
		slices.SortFunc(entries, func(a, b query.Entry) int { return bytes.Compare([]byte(a.Key), []byte(b.Key)) })
		for _, e := range entries {
			fmt.Fprintf(h, "%d:%s%d:", len(e.Key), e.Key, len(e.Value))
			h.Write(e.Value)
		}
	}
	return h.Sum(nil), nil
}

// coverMarked tells whether digest is account id's mark: its last whole
// pass gave nothing and nothing changed since.
func (r *Repo) coverMarked(ctx context.Context, id protocol.AccountID, digest []byte) (bool, error) {
	mark, err := r.ds.Get(ctx, keyCoverMark(id))
	switch {
	case errors.Is(err, datastore.ErrNotFound):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("read the standing pass mark of %s: %w", id, err)
	}
	return bytes.Equal(mark, digest), nil
}

// markCovered records digest as account id's mark.
func (r *Repo) markCovered(ctx context.Context, id protocol.AccountID, digest []byte) error {
	if err := r.ds.Put(ctx, keyCoverMark(id), digest); err != nil {
		return fmt.Errorf("write the standing pass mark of %s: %w", id, err)
	}
	return nil
}

// forgetCoverMark removes account id's mark: the next pass is whole.
func (r *Repo) forgetCoverMark(ctx context.Context, id protocol.AccountID) {
	_ = r.ds.Delete(ctx, keyCoverMark(id))
}
