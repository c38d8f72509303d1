package keyshare

import (
	"context"
	"slices"
	"testing"

	"github.com/ipfs/go-datastore"

	"github.com/blockmrs/blockmrs/protocol"
)

// A repo made before the address book holds the emergency service's kept
// addresses under their old key: the next Open moves those of peers the
// book keeps (a declared node) into the book, drops the others, and
// leaves no old entry behind.
func TestOpenMovesLegacyEmergencyAddrs(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	r, err := Open(ctx, dir, Options{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	k, err := r.CreateAccount(ctx, "Pat", protocol.RolePatient, nil)
	if err != nil {
		t.Fatal(err)
	}
	custodian, stranger := newPeerID(t), newPeerID(t)
	if _, err := r.SetDevice(ctx, k, custodian, "", false); err != nil {
		t.Fatal(err)
	}
	old := []string{"/ip4/192.0.2.7/tcp/4001"}
	for _, p := range []string{custodian, stranger} {
		if err := putJSON(ctx, r.ds, datastore.NewKey(legacyEmergencyAddrs+p), old); err != nil {
			t.Fatal(err)
		}
	}
	// A damaged entry is dropped too.
	if err := r.ds.Put(ctx, datastore.NewKey(legacyEmergencyAddrs+newPeerID(t)), []byte("{not json")); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}

	r, err = Open(ctx, dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if got, err := r.PeerAddrs(ctx, custodian); err != nil || !slices.Equal(got, old) {
		t.Fatalf("the custodian's node in the book: %v, %v; want %v", got, err, old)
	}
	if got, _ := r.PeerAddrs(ctx, stranger); got != nil {
		t.Fatalf("a peer no chain declares was moved into the book: %v", got)
	}
	if left, err := queryAll(ctx, r.ds, legacyEmergencyAddrs, true); err != nil || len(left) != 0 {
		t.Fatalf("old entries left: %d, %v", len(left), err)
	}
}
