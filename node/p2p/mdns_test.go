package p2p

import (
	"log/slog"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
)

// Two hosts with mDNS find and dial each other. Multicast is not available
// everywhere (some containers, CI sandboxes): the test then checks only
// that the service starts and stops cleanly.
func TestMDNS(t *testing.T) {
	a, b := newTestHost(t), newTestHost(t)
	log := slog.New(slog.DiscardHandler)
	sa, err := StartMDNS(a, log)
	if err != nil {
		t.Fatalf("mDNS cannot start: %v", err)
	}
	sb, err := StartMDNS(b, log)
	if err != nil {
		sa.Close()
		t.Fatalf("mDNS cannot start: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	found := false
	for time.Now().Before(deadline) {
		if a.Network().Connectedness(b.ID()) == network.Connected {
			found = true
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := sa.Close(); err != nil {
		t.Error(err)
	}
	if err := sb.Close(); err != nil {
		t.Error(err)
	}
	if !found {
		t.Fatal("no mDNS discovery within 10 s")
	}
}
