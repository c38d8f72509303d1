package api

import (
	"context"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/node/addrbook"
	"github.com/blockmrs/blockmrs/protocol"
)

// GET /api/v1/peers lists the address book: a connected node that a
// chain declares is kept with its accounts, a stranger is not; POST
// /api/v1/peers/forget drops one, and says what is wrong with a bad or
// unknown peer.
func TestPeersAddressBook(t *testing.T) {
	ctx := t.Context()
	repo, err := keyshare.Open(ctx, t.TempDir(), keyshare.Options{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { repo.Close() })
	k, err := repo.CreateAccount(ctx, "Pat", protocol.RolePatient, nil)
	if err != nil {
		t.Fatal(err)
	}
	h := newHost(t)
	book, err := addrbook.Start(ctx, h, repo, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(book.Close)
	e := startServer(t, Options{Host: h, Repo: repo, Accounts: repo, Book: book})

	laptop, stranger := newHost(t), newHost(t)
	if _, err := repo.SetDevice(ctx, k, laptop.ID().String(), "laptop", false); err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	for _, o := range []interface {
		Connect(context.Context, peer.AddrInfo) error
	}{laptop, stranger} {
		if err := o.Connect(cctx, peer.AddrInfo{ID: h.ID(), Addrs: h.Addrs()}); err != nil {
			t.Fatal(err)
		}
	}
	var ps Peers
	deadline := time.Now().Add(20 * time.Second)
	for {
		decode(t, e.do(t, req{path: "/api/v1/peers"}), http.StatusOK, &ps)
		if len(ps.Kept) > 0 && len(ps.Peers) == 2 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if len(ps.Kept) != 1 || ps.Kept[0].ID != laptop.ID().String() || !slices.Equal(ps.Kept[0].Accounts, []protocol.AccountID{k.ID}) ||
		len(ps.Kept[0].Addrs) == 0 || ps.Kept[0].Seen.IsZero() {
		t.Fatalf("address book %+v, want the laptop alone (not the stranger %s)", ps.Kept, stranger.ID())
	}

	wantError(t, e.postJSON(t, "/api/v1/peers/forget", `{"peer":"nope"}`), http.StatusBadRequest, "not a peer ID")
	wantError(t, e.postJSON(t, "/api/v1/peers/forget", `{"peer":"`+stranger.ID().String()+`"}`), http.StatusNotFound, "not in the address book")
	wantError(t, e.postJSON(t, "/api/v1/peers/forget", `{"peer":1}`), http.StatusBadRequest, "bad JSON body")
	var gone PeerForgotten
	decode(t, e.postJSON(t, "/api/v1/peers/forget", `{"peer":"`+laptop.ID().String()+`"}`), http.StatusOK, &gone)
	if gone.ID != laptop.ID().String() {
		t.Fatalf("forgot %+v", gone)
	}
	decode(t, e.do(t, req{path: "/api/v1/peers"}), http.StatusOK, &ps)
	if len(ps.Kept) != 0 || ps.Kept == nil {
		t.Fatalf("address book after forget: %+v", ps.Kept)
	}
	if got := h.Peerstore().Addrs(laptop.ID()); len(got) != 0 {
		t.Fatalf("peerstore still has the laptop at %v", got)
	}
}
