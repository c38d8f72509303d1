package peerlimit

import (
	"fmt"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

func TestRateIsPerPeer(t *testing.T) {
	r := NewRate(0.001, 3)
	a, b := peer.ID("a"), peer.ID("b")
	for i := range 3 {
		if !r.Allow(a) {
			t.Fatalf("event %d of the burst refused", i)
		}
	}
	if r.Allow(a) {
		t.Fatal("event past the burst allowed")
	}
	if !r.Allow(b) {
		t.Fatal("another peer paid for a's flood")
	}
}

func TestThrottleOncePerInterval(t *testing.T) {
	th := NewThrottle(time.Hour)
	a, b := peer.ID("a"), peer.ID("b")
	if !th.Allow(a) || th.Allow(a) || !th.Allow(b) {
		t.Fatal("not once per peer per interval")
	}
	th = NewThrottle(time.Nanosecond)
	th.Allow(a)
	time.Sleep(time.Millisecond)
	if !th.Allow(a) {
		t.Fatal("not allowed again after the interval")
	}
}

func TestMemoryIsBounded(t *testing.T) {
	r, th := NewRate(1, 1), NewThrottle(time.Hour)
	for i := range 3 * MaxTracked {
		p := peer.ID(fmt.Sprint(i))
		r.Allow(p)
		th.Allow(p)
	}
	if len(r.buckets) > MaxTracked || len(th.last) > MaxTracked {
		t.Fatalf("tracking %d and %d peers, limit %d", len(r.buckets), len(th.last), MaxTracked)
	}
}
