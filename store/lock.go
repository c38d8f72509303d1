package store

import (
	"context"
	"sync"
	"sync/atomic"

	bstore "github.com/ipfs/boxo/blockstore"
)

// rwGate is a reader-preferring shared/exclusive lock whose waits honour a
// context. Unlike sync.RWMutex, a waiting exclusive locker does not block
// new shared lockers, so shared locks may nest (Pin inside a PinLock held
// by a caller, blockstore reads inside a Walk, ...). The exclusive side
// (GC, Close) is rare and short-lived compared with the shared side, so
// starvation of the exclusive side is the accepted trade-off.
type rwGate struct {
	mu        sync.Mutex
	readers   int
	exclusive bool
	changed   chan struct{} // closed and replaced on every release
	requested atomic.Int32
}

func newGate() *rwGate { return &rwGate{changed: make(chan struct{})} }

// broadcast wakes all waiters; g.mu must be held.
func (g *rwGate) broadcast() {
	close(g.changed)
	g.changed = make(chan struct{})
}

// rlock takes the gate shared. The returned function releases it and may
// be called more than once.
func (g *rwGate) rlock(ctx context.Context) (func(), error) {
	for {
		g.mu.Lock()
		if !g.exclusive {
			g.readers++
			g.mu.Unlock()
			var once sync.Once
			return func() { once.Do(g.runlock) }, nil
		}
		ch := g.changed
		g.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

func (g *rwGate) runlock() {
	g.mu.Lock()
	g.readers--
	if g.readers == 0 {
		g.broadcast()
	}
	g.mu.Unlock()
}

// lock takes the gate exclusively, waiting for all shared holders to leave.
func (g *rwGate) lock(ctx context.Context) (func(), error) {
	g.requested.Add(1)
	defer g.requested.Add(-1)
	for {
		g.mu.Lock()
		if !g.exclusive && g.readers == 0 {
			g.exclusive = true
			g.mu.Unlock()
			var once sync.Once
			return func() { once.Do(g.unlock) }, nil
		}
		ch := g.changed
		g.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

func (g *rwGate) unlock() {
	g.mu.Lock()
	g.exclusive = false
	g.broadcast()
	g.mu.Unlock()
}

// unlocker adapts a release function to boxo's blockstore.Unlocker.
type unlocker func()

func (u unlocker) Unlock(context.Context) { u() }

var _ bstore.Unlocker = unlocker(nil)
