// Package peerlimit bounds what one peer can cost a node's protocols: a
// request rate per peer, and how often a peer's misbehaviour is logged.
// Both remember a bounded number of peers; past that they forget
// everyone and start again, so a flood of peer IDs costs no memory.
package peerlimit

import (
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"golang.org/x/time/rate"
)

// MaxTracked is how many peers a Rate or a Throttle remembers.
const MaxTracked = 4096

// LogEvery is how often every protocol of the node logs one peer's
// misbehaviour (malformed or oversized messages, refused wants, exceeded
// rates): the first time, then at most once per LogEvery, so a flood
// from one peer costs one log line a minute. Use NewThrottle(LogEvery).
const LogEvery = time.Minute

// Rate is a token bucket per peer. It is safe for concurrent use.
type Rate struct {
	perSecond rate.Limit
	burst     int

	mu      sync.Mutex
	buckets map[peer.ID]*rate.Limiter
}

// NewRate allows each peer perSecond events per second, burst at once.
func NewRate(perSecond float64, burst int) *Rate {
	return &Rate{perSecond: rate.Limit(perSecond), burst: burst, buckets: map[peer.ID]*rate.Limiter{}}
}

// Allow takes one event from p's bucket and reports whether there was one.
func (r *Rate) Allow(p peer.ID) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	b, ok := r.buckets[p]
	if !ok {
		if len(r.buckets) >= MaxTracked {
			clear(r.buckets)
		}
		b = rate.NewLimiter(r.perSecond, r.burst)
		r.buckets[p] = b
	}
	return b.Allow()
}

// Throttle lets something happen at most once per interval per peer (a
// log line about a peer that keeps misbehaving). It is safe for
// concurrent use.
type Throttle struct {
	every time.Duration

	mu   sync.Mutex
	last map[peer.ID]time.Time
}

// NewThrottle allows once per every per peer.
func NewThrottle(every time.Duration) *Throttle {
	return &Throttle{every: every, last: map[peer.ID]time.Time{}}
}

// Allow reports whether p's turn has come, and if so starts the next
// interval.
func (t *Throttle) Allow(p peer.ID) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := time.Now()
	if last, ok := t.last[p]; ok && now.Sub(last) < t.every {
		return false
	}
	if len(t.last) >= MaxTracked {
		clear(t.last)
	}
	t.last[p] = now
	return true
}
