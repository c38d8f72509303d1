package keyshare

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/blockmrs/blockmrs/protocol"
)

// The address book keeps where declared nodes of known accounts listen,
// within its bounds, across a reopen, until forgotten; a peer no chain
// declares is not kept whatever it says.
func TestAddressBook(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	r, err := Open(ctx, dir, Options{Create: true, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	k, err := r.CreateAccount(ctx, "Pat", protocol.RolePatient, nil)
	if err != nil {
		t.Fatal(err)
	}
	laptop, phone, stranger := newPeerID(t), newPeerID(t), newPeerID(t)
	for _, p := range []string{laptop, phone} {
		if _, err := r.SetDevice(ctx, k, p, "", false); err != nil {
			t.Fatal(err)
		}
	}

	// A stranger (no chain declares it) is refused by the policy.
	d, changed, err := r.KeepPeerAddrs(ctx, stranger, []string{"/ip4/192.0.2.1/tcp/4001"})
	if err != nil || changed || d.Allow || d.Rule != RuleAddrsUnknown {
		t.Fatalf("stranger: %+v changed=%v err=%v", d, changed, err)
	}
	if got, _ := r.PeerAddrs(ctx, stranger); got != nil {
		t.Fatalf("stranger's addresses kept: %v", got)
	}
	// A bad peer ID is an error.
	if _, _, err := r.KeepPeerAddrs(ctx, "not-a-peer", []string{"/ip4/127.0.0.1/tcp/1"}); err == nil {
		t.Fatal("a bad peer ID was taken")
	}

	// Hostile input: too many, too long and repeated addresses are capped.
	var many []string
	for i := range MaxPeerAddrs + 4 {
		many = append(many, "/ip4/192.0.2."+strings.Repeat("1", 1+i%3)+"/tcp/"+string(rune('0'+i%10))+"001")
	}
	many = append([]string{strings.Repeat("x", MaxPeerAddrLen+1), many[0]}, many...)
	d, changed, err = r.KeepPeerAddrs(ctx, laptop, many)
	if err != nil || !changed || d.Rule != RuleAddrsKept {
		t.Fatalf("laptop: %+v changed=%v err=%v", d, changed, err)
	}
	kept, err := r.PeerAddrs(ctx, laptop)
	if err != nil || len(kept) == 0 || len(kept) > MaxPeerAddrs {
		t.Fatalf("kept %d addresses (%v), want 1 to %d", len(kept), err, MaxPeerAddrs)
	}
	for i, a := range kept {
		if len(a) > MaxPeerAddrLen || (i > 0 && kept[i-1] >= a) {
			t.Fatalf("kept %q: too long, repeated or unsorted", kept)
		}
	}
	// The same set again (in another order) changes nothing.
	rev := slices.Clone(kept)
	slices.Reverse(rev)
	if _, changed, _ := r.KeepPeerAddrs(ctx, laptop, rev); changed {
		t.Fatal("the same addresses rewrote the book")
	}

	now = now.Add(time.Hour)
	if _, _, err := r.KeepPeerAddrs(ctx, phone, []string{"/ip4/192.0.2.9/udp/4001/quic-v1"}); err != nil {
		t.Fatal(err)
	}

	// Kept across a reopen, with the accounts the chains name.
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	r, err = Open(ctx, dir, Options{Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	all, err := r.KeptPeers(ctx)
	if err != nil || len(all) != 2 {
		t.Fatalf("book after reopen: %+v, %v", all, err)
	}
	for _, e := range all {
		if !slices.Equal(e.Accounts, []protocol.AccountID{k.ID}) || len(e.Addrs) == 0 || e.Seen.IsZero() {
			t.Fatalf("entry %+v", e)
		}
	}

	// Forget drops one, once.
	if had, err := r.ForgetPeer(ctx, phone); err != nil || !had {
		t.Fatalf("forget phone: %v, %v", had, err)
	}
	if had, err := r.ForgetPeer(ctx, phone); err != nil || had {
		t.Fatalf("forget phone again: %v, %v", had, err)
	}
	if got, _ := r.PeerAddrs(ctx, phone); got != nil {
		t.Fatalf("phone still kept: %v", got)
	}
	if _, err := r.ForgetPeer(ctx, "nope"); err == nil {
		t.Fatal("forget took a bad peer ID")
	}

	// Bounded in count: past the cap the least recently seen goes.
	defer func(n int) { maxKeptPeers = n }(maxKeptPeers)
	maxKeptPeers = 2
	tablet, watch := newPeerID(t), newPeerID(t)
	for _, p := range []string{phone, tablet, watch} {
		if _, err := r.SetDevice(ctx, k, p, "", false); err != nil && p != phone {
			t.Fatal(err)
		}
	}
	for i, p := range []string{phone, tablet, watch} {
		now = now.Add(time.Hour)
		if _, changed, err := r.KeepPeerAddrs(ctx, p, []string{"/ip4/192.0.2.5/tcp/" + string(rune('1'+i)) + "000"}); err != nil || !changed {
			t.Fatalf("keep %d: %v %v", i, changed, err)
		}
	}
	all, _ = r.KeptPeers(ctx)
	var peers []string
	for _, e := range all {
		peers = append(peers, e.Peer)
	}
	want := []string{tablet, watch}
	slices.Sort(want)
	if !slices.Equal(peers, want) {
		t.Fatalf("book of 2 holds %v, want the two most recent %v", peers, want)
	}
}
