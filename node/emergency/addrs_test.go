package emergency

import (
	"context"
	"log/slog"
	"slices"
	"testing"
	"time"

	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"

	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/protocol"
)

// A patient's node keeps the addresses it knows for a custodian's node
// in the repo; after a restart (a new host, its peerstore empty) the
// round gives them back to the peerstore, so the node dials the
// custodian by itself.
func TestCustodianAddressesSurviveRestart(t *testing.T) {
	ctx := context.Background()
	mn, err := mocknet.FullMeshLinked(2)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mn.Close() })
	patient, custodian := mn.Hosts()[0], mn.Hosts()[1]
	repo, err := keyshare.Open(ctx, t.TempDir(), keyshare.Options{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { repo.Close() })
	noKeys := func(protocol.AccountID) (*keyshare.Keys, error) { return nil, keyshare.ErrUnknownAccount }
	quiet := Options{Logger: slog.New(slog.DiscardHandler)}

	// As after a contact add: the peerstore holds the custodian's
	// addresses.
	patient.Peerstore().AddAddrs(custodian.ID(), custodian.Addrs(), time.Hour)
	known := patient.Peerstore().Addrs(custodian.ID())
	if len(known) == 0 {
		t.Fatal("mocknet gave no addresses")
	}
	s := New(patient, repo, noKeys, quiet)
	s.addresses(ctx, custodian.ID())
	s.Close()
	kept, err := repo.NodeAddrs(ctx, custodian.ID().String())
	if err != nil || len(kept) != len(known) {
		t.Fatalf("kept %v, %v; want %v", kept, err, known)
	}

	// The restarted node: a new host that knows nothing of the custodian.
	again, err := mn.GenPeer()
	if err != nil {
		t.Fatal(err)
	}
	if len(again.Peerstore().Addrs(custodian.ID())) != 0 {
		t.Fatal("the new host already knows the custodian")
	}
	s2 := New(again, repo, noKeys, quiet)
	t.Cleanup(func() { s2.Close() })
	s2.addresses(ctx, custodian.ID())
	got := again.Peerstore().Addrs(custodian.ID())
	if len(got) != len(known) || !slices.ContainsFunc(got, known[0].Equal) {
		t.Fatalf("restored %v, want %v", got, known)
	}

	// Hostile input to the repo: a bad peer ID is refused, addresses past
	// the caps are not kept.
	if _, err := repo.NoteNodeAddrs(ctx, "not-a-peer", []string{"/ip4/127.0.0.1/tcp/1"}); err == nil {
		t.Fatal("a bad peer ID was taken")
	}
	var many []string
	for range keyshare.MaxNodeAddrs + 4 {
		many = append(many, "/ip4/127.0.0.1/tcp/4001")
	}
	many = append([]string{string(make([]byte, keyshare.MaxNodeAddrLen+1))}, many...)
	if _, err := repo.NoteNodeAddrs(ctx, custodian.ID().String(), many); err != nil {
		t.Fatal(err)
	}
	if kept, _ := repo.NodeAddrs(ctx, custodian.ID().String()); len(kept) != keyshare.MaxNodeAddrs || len(kept[0]) > keyshare.MaxNodeAddrLen {
		t.Fatalf("kept %d addresses", len(kept))
	}
}
