package deliver

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/blockmrs/blockmrs/node/internal/peerlimit"
	"github.com/blockmrs/blockmrs/node/internal/stream"
	"github.com/blockmrs/blockmrs/node/internal/streamtest"
)

func newHost(t *testing.T) host.Host { return streamtest.Host(t) }

func quiet() Options { return Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))} }

// rounds starts a loop on h that reports each round on the channel it
// returns.
func rounds(t *testing.T, h host.Host, opts Options) (*Loop, chan struct{}) {
	t.Helper()
	ran := make(chan struct{}, 16)
	l := New(h, time.Hour, func(context.Context) { ran <- struct{}{} }, opts)
	l.Begin()
	t.Cleanup(l.Close)
	return l, ran
}

// TestNoRoundBeforeBegin: a service keeps its Loop before the first
// round reads it (the race CI saw when the first round ran inside
// Start); a loop closed before it began closes at once and never runs.
func TestNoRoundBeforeBegin(t *testing.T) {
	h := newHost(t)
	ran := make(chan struct{}, 16)
	l := New(h, time.Millisecond, func(context.Context) { ran <- struct{}{} }, quiet())
	l.Kick()
	select {
	case <-ran:
		t.Fatal("a round ran before Begin")
	case <-time.After(50 * time.Millisecond):
	}
	closed := make(chan struct{})
	go func() { l.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Close of a loop never begun did not return")
	}
	l.Begin()
	select {
	case <-ran:
		t.Fatal("a round ran after Close")
	case <-time.After(50 * time.Millisecond):
	}
}

func TestRoundAtStartOnKickAndOnConnect(t *testing.T) {
	h, other := newHost(t), newHost(t)
	connected := make(chan peer.ID, 1)
	opts := quiet()
	opts.Connected = func(p peer.ID) { connected <- p }
	l, ran := rounds(t, h, opts)
	<-ran // at once
	l.Kick()
	<-ran
	// A peer that fails backs off until it connects.
	l.Failed(other.ID().String())
	if l.Due(other.ID().String()) {
		t.Fatal("a failed peer is due at once")
	}
	if err := other.Connect(t.Context(), peer.AddrInfo{ID: h.ID(), Addrs: h.Addrs()}); err != nil {
		t.Fatal(err)
	}
	if p := <-connected; p != other.ID() {
		t.Fatalf("connected hook got %s", p)
	}
	<-ran
	if !l.Due(other.ID().String()) {
		t.Fatal("a peer that connected still backs off")
	}
}

func TestBackoffDoublesToTheCap(t *testing.T) {
	l, _ := rounds(t, newHost(t), quiet())
	want := MinBackoff
	for i := range 12 {
		l.Failed("k")
		if got := l.backoff["k"].wait; got != want {
			t.Fatalf("failure %d: wait %v, want %v", i+1, got, want)
		}
		want = min(2*want, MaxBackoff)
	}
	l.Succeeded("k")
	if !l.Due("k") {
		t.Fatal("a key that succeeded still backs off")
	}
	for i := range peerlimit.MaxTracked + 1 {
		l.Failed(string(rune(i)) + "x")
	}
	if n := len(l.backoff); n > peerlimit.MaxTracked {
		t.Fatalf("%d keys remembered, at most %d", n, peerlimit.MaxTracked)
	}
}

func TestTryBacksOffAFailingPeer(t *testing.T) {
	l, _ := rounds(t, newHost(t), quiet())
	p := newHost(t).ID()
	calls := 0
	fail := func() error { calls++; return stream.ErrNoAddrs }
	if err := l.Try(p, fail); !errors.Is(err, stream.ErrNoAddrs) {
		t.Fatalf("first try: %v", err)
	}
	if err := l.Try(p, fail); !errors.Is(err, ErrBackingOff) || calls != 1 {
		t.Fatalf("second try: %v after %d calls", err, calls)
	}
	l.Succeeded(p.String())
	if err := l.Try(p, func() error { return nil }); err != nil {
		t.Fatal(err)
	}
	if !l.Due(p.String()) {
		t.Fatal("a peer reached still backs off")
	}
}

func TestCloseCancelsTheRound(t *testing.T) {
	h := newHost(t)
	started, ended := make(chan struct{}), make(chan error, 1)
	l := New(h, time.Hour, func(ctx context.Context) {
		select {
		case <-started:
		default:
			close(started)
		}
		<-ctx.Done()
		ended <- ctx.Err()
	}, quiet())
	l.Begin()
	<-started
	l.Close()
	select {
	case err := <-ended:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("round ended with %v", err)
		}
	default:
		t.Fatal("Close returned while the round ran")
	}
	l.Close() // twice is fine
	l.Kick()  // and kicking a closed loop does nothing
}
