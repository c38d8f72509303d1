package exchange

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
)

// Stale wants.
//
// The boxo bitswap client (v0.43.0) can keep a want that no request
// holds: its session want sender runs beside the session and may act on
// a DONT_HAVE (often one it simulated because the block was slow) after
// the session already had the block and cancelled the want. It then
// sends a new want-block; the peer answers with the block, which nobody
// wants any more, so nothing cancels it. The client keeps the CID listed
// as sent to that peer, and every later request for the CID (after the
// local copy was deleted, as garbage collection does) is taken for a
// duplicate and never sent: the fetch waits until its context ends.
// docs/DESIGN-NOTES.md (2026-12-02) has the trace.
//
// So before a fetch asks bitswap for CIDs, it cancels every want for them
// that the client still lists but no fetch of this exchange awaits.

// staleCancelWait bounds how long a fetch waits for bitswap to drop the
// stale wants it cancelled; after it the fetch asks anyway.
const staleCancelWait = 5 * time.Second

// awaited counts, per CID, the fetches of one exchange that are asking
// bitswap for it. Its lock also orders the checks for stale wants, so a
// want another fetch has just made is never taken for a stale one.
type awaited struct {
	mu sync.Mutex
	n  map[cid.Cid]int
}

// await cancels the stale wants among cs, then counts cs as awaited by
// one more fetch until the returned function is called.
func (e *Exchange) await(ctx context.Context, cs []cid.Cid) (done func(), err error) {
	e.awaited.mu.Lock()
	defer e.awaited.mu.Unlock()
	if stale := e.staleWants(cs); len(stale) > 0 {
		if err := e.cancelWants(ctx, stale); err != nil {
			return nil, err
		}
	}
	if e.awaited.n == nil {
		e.awaited.n = map[cid.Cid]int{}
	}
	for _, c := range cs {
		e.awaited.n[c]++
	}
	return func() {
		e.awaited.mu.Lock()
		defer e.awaited.mu.Unlock()
		for _, c := range cs {
			if e.awaited.n[c]--; e.awaited.n[c] <= 0 {
				delete(e.awaited.n, c)
			}
		}
	}, nil
}

// staleWants returns those of cs that the bitswap client lists as wanted
// although no fetch awaits them. The caller holds e.awaited.mu.
func (e *Exchange) staleWants(cs []cid.Cid) []cid.Cid {
	listed := e.listedWants()
	var stale []cid.Cid
	for _, c := range cs {
		if listed.Has(c) && e.awaited.n[c] == 0 {
			stale = append(stale, c)
		}
	}
	return stale
}

// listedWants is the set of CIDs the bitswap client has asked some peer
// for (or broadcast) and not cancelled.
func (e *Exchange) listedWants() *cid.Set {
	s := cid.NewSet()
	for _, c := range e.bs.GetWantlist() {
		s.Add(c)
	}
	return s
}

// cancelWants makes the bitswap client cancel its wants for cs, which no
// request holds: a session asks for them and withdraws at once, and a
// withdrawn want that no other session holds is cancelled at every peer.
// It returns once the client no longer lists any of cs, or after
// staleCancelWait.
func (e *Exchange) cancelWants(ctx context.Context, cs []cid.Cid) error {
	e.staleCancelled.Add(int64(len(cs)))
	e.log.Debug("exchange: cancelling wants bitswap kept after their blocks arrived", "cids", len(cs))
	sctx, closeSession := context.WithCancel(ctx)
	defer closeSession()
	sess := e.bs.NewSession(sctx)
	// The withdrawal must follow the request through the session: cancel
	// the request, not the session, whose end could overtake it.
	rctx, withdraw := context.WithCancel(sctx)
	ch, err := sess.GetBlocks(rctx, cs)
	withdraw()
	if err != nil {
		return fmt.Errorf("exchange: cancel stale wants: %w", err)
	}
	for range ch { // closed once the request is withdrawn
	}
	wait := time.NewTimer(staleCancelWait)
	defer wait.Stop()
	poll := time.NewTicker(10 * time.Millisecond) // each poll copies the wantlist
	defer poll.Stop()
	for {
		listed := e.listedWants()
		left := 0
		for _, c := range cs {
			if listed.Has(c) {
				left++
			}
		}
		if left == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("exchange: cancel stale wants: %w", ctx.Err())
		case <-wait.C:
			e.log.Warn("exchange: bitswap still lists wants it was told to cancel; asking anyway", "cids", left)
			return nil
		case <-poll.C:
		}
	}
}
