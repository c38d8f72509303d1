package addrbook

import (
	"context"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
	"github.com/multiformats/go-multiaddr"

	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/protocol"
)

var quiet = slog.New(slog.DiscardHandler)

// waitFor polls cond until it holds or the test's time runs out.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A node keeps the addresses of a known account's node it learns (a
// chain change declaring a node the peerstore knows, an identify with a
// connected peer); after a restart (a new host, its peerstore empty) the
// book gives them back to the peerstore at Start. A peer no chain
// declares that connects is not kept.
func TestBookSurvivesRestart(t *testing.T) {
	ctx := context.Background()
	mn, err := mocknet.FullMeshLinked(3)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mn.Close() })
	me, friend, stranger := mn.Hosts()[0], mn.Hosts()[1], mn.Hosts()[2]
	repo, err := keyshare.Open(ctx, t.TempDir(), keyshare.Options{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { repo.Close() })
	k, err := repo.CreateAccount(ctx, "Pat", protocol.RolePatient, nil)
	if err != nil {
		t.Fatal(err)
	}

	b, err := Start(ctx, me, repo, quiet)
	if err != nil {
		t.Fatal(err)
	}
	// As after a contact add by address: the peerstore holds the friend's
	// addresses, then a chain change declares its node.
	me.Peerstore().AddAddrs(friend.ID(), friend.Addrs(), time.Hour)
	known := me.Peerstore().Addrs(friend.ID())
	if len(known) == 0 {
		t.Fatal("mocknet gave no addresses")
	}
	if _, err := repo.SetDevice(ctx, k, friend.ID().String(), "friend's node", false); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the friend's node to be kept", func() bool {
		kept, _ := repo.PeerAddrs(ctx, friend.ID().String())
		return len(kept) == len(known)
	})
	// A stranger that connects and identifies is not kept.
	if _, err := stranger.Network().DialPeer(ctx, me.ID()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the stranger's addresses in the peerstore", func() bool { return len(me.Peerstore().Addrs(stranger.ID())) > 0 })
	b.Learn(ctx, stranger.ID())
	b.Close()
	if kept, _ := repo.PeerAddrs(ctx, stranger.ID().String()); kept != nil {
		t.Fatalf("a stranger's addresses were kept: %v", kept)
	}

	// The restarted node: a new host that knows nothing of the friend.
	again, err := mn.GenPeer()
	if err != nil {
		t.Fatal(err)
	}
	if len(again.Peerstore().Addrs(friend.ID())) != 0 {
		t.Fatal("the new host already knows the friend")
	}
	b2, err := Start(ctx, again, repo, quiet)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b2.Close)
	assertAddrs(t, again, friend.ID(), known)

	// Expired from the peerstore: Dialable gives them again.
	again.Peerstore().ClearAddrs(friend.ID())
	b2.Dialable(ctx, friend.ID())
	assertAddrs(t, again, friend.ID(), known)

	// Forget drops them from the book and the peerstore.
	if had, err := b2.Forget(ctx, friend.ID()); err != nil || !had {
		t.Fatalf("forget: %v, %v", had, err)
	}
	if got := again.Peerstore().Addrs(friend.ID()); len(got) != 0 {
		t.Fatalf("peerstore still has %v", got)
	}
	if kept, _ := repo.PeerAddrs(ctx, friend.ID().String()); kept != nil {
		t.Fatalf("book still has %v", kept)
	}
}

func assertAddrs(t *testing.T, h host.Host, p peer.ID, want []multiaddr.Multiaddr) {
	t.Helper()
	got := h.Peerstore().Addrs(p)
	if len(got) != len(want) || !slices.ContainsFunc(got, want[0].Equal) {
		t.Fatalf("peerstore has %v, want %v", got, want)
	}
}
