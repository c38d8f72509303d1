package keyshare

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/blockmrs/blockmrs/protocol"
)

// Flooding the address book: Mal, an account whose chain Pat's node holds,
// declares many nodes of her own. A node Pat's node keeps seeing (at the
// same addresses) stays the more recently seen and is not the one evicted;
// Mal gets MaxKeptPeersPerAccount places and no more (addrs/crowded), so
// Pat's own new device is still kept after her flood.
func TestAddressBookFlood(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	r, err := Open(ctx, t.TempDir(), Options{Create: true, Clock: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	k, err := r.CreateAccount(ctx, "Pat", protocol.RolePatient, nil)
	if err != nil {
		t.Fatal(err)
	}
	laptop, phone, tablet := newPeerID(t), newPeerID(t), newPeerID(t)
	for _, p := range []string{laptop, phone, tablet} {
		if _, err := r.SetDevice(ctx, k, p, "", false); err != nil {
			t.Fatal(err)
		}
	}
	mal := newParty(t, "Mal", protocol.RolePatient)
	var malPeers []string
	for range MaxKeptPeersPerAccount + 8 {
		p := newPeerID(t)
		if _, err := mal.repo.SetDevice(ctx, mal.keys, p, "", false); err != nil {
			t.Fatal(err)
		}
		malPeers = append(malPeers, p)
	}
	send(t, mal, &party{repo: r})
	keep := func(p string, n int) (Decision, bool) {
		t.Helper()
		now = now.Add(time.Hour)
		d, changed, err := r.KeepPeerAddrs(ctx, p, []string{fmt.Sprintf("/ip4/192.0.2.%d/tcp/4001", n%250)})
		if err != nil {
			t.Fatal(err)
		}
		return d, changed
	}
	kept := func(p string) bool {
		t.Helper()
		a, err := r.PeerAddrs(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		return a != nil
	}

	// A book of 4: the laptop, kept first and seen again since, outlives
	// the phone, kept after it and not seen since.
	defer func(n int) { maxKeptPeers = n }(maxKeptPeers)
	maxKeptPeers = 4
	keep(laptop, 1)
	keep(phone, 2)
	if _, changed := keep(laptop, 1); !changed {
		t.Fatal("the laptop seen again an hour on: its Seen is not refreshed")
	}
	for i, p := range malPeers[:3] {
		if d, _ := keep(p, 10+i); !d.Allow {
			t.Fatalf("Mal's node %d: %+v", i, d)
		}
	}
	if !kept(laptop) || kept(phone) {
		t.Fatalf("after the flood: laptop kept %v, phone kept %v; the phone was the least recently seen", kept(laptop), kept(phone))
	}

	// The full book: Mal gets her share of places, and no more.
	maxKeptPeers = MaxKeptPeers
	taken := 0
	for i, p := range malPeers {
		d, _ := keep(p, 20+i)
		switch {
		case d.Allow:
			taken++
		case d.Rule != RuleAddrsCrowded:
			t.Fatalf("Mal's node %d refused by %s, want %s", i, d.Rule, RuleAddrsCrowded)
		}
	}
	if taken != MaxKeptPeersPerAccount {
		t.Fatalf("Mal's chain holds %d places in the book, at most %d", taken, MaxKeptPeersPerAccount)
	}
	// A node kept already is still updated when its account is crowded.
	if d, changed := keep(malPeers[0], 99); !d.Allow || !changed {
		t.Fatalf("Mal's kept node at a new address: %+v, %v", d, changed)
	}
	if d, changed := keep(tablet, 3); !d.Allow || !changed || !kept(tablet) {
		t.Fatalf("Pat's tablet after Mal's flood: %+v, %v", d, changed)
	}
}
