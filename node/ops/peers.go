package ops

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/protocol"
)

// Peer is one connected peer.
type Peer struct {
	// ID is the peer's libp2p peer ID.
	ID string `json:"id"`
	// Addrs lists the remote addresses of the connections to it.
	Addrs []string `json:"addrs"`
}

// KeptPeer is one peer in the node's address book (keyshare.KeptAddrs).
type KeptPeer struct {
	// ID is the peer's libp2p peer ID.
	ID string `json:"id"`
	// Addrs are its last known multiaddrs, sorted.
	Addrs []string `json:"addrs"`
	// Seen is when they were kept.
	Seen time.Time `json:"seen"`
	// Accounts are the accounts whose chains declare the peer their node.
	Accounts []protocol.AccountID `json:"accounts"`
}

// Peers is the result of ListPeers.
type Peers struct {
	// Peers lists the connected peers, sorted by ID.
	Peers []Peer `json:"peers"`
	// Kept is the address book: where the nodes of known accounts were
	// last reached, sorted by ID (given to the peerstore at start).
	Kept []KeptPeer `json:"kept"`
}

// ListPeers reports the peers node h is connected to now and the
// address book of its repo (none without a repo). It needs the running
// node: without one it is ErrNoNode.
func ListPeers(ctx context.Context, h host.Host, repo *keyshare.Repo) (Peers, error) {
	if h == nil {
		return Peers{}, ErrNoNode
	}
	var kept []keyshare.KeptAddrs
	if repo != nil {
		var err error
		if kept, err = repo.KeptPeers(ctx); err != nil {
			return Peers{}, err
		}
	}
	out := Peers{Peers: []Peer{}, Kept: make([]KeptPeer, 0, len(kept))}
	for _, k := range kept {
		out.Kept = append(out.Kept, KeptPeer{ID: k.Peer, Addrs: k.Addrs, Seen: k.Seen, Accounts: append([]protocol.AccountID{}, k.Accounts...)})
	}
	n := h.Network()
	for _, p := range n.Peers() {
		var addrs []ma.Multiaddr
		for _, c := range n.ConnsToPeer(p) {
			addrs = append(addrs, c.RemoteMultiaddr())
		}
		if len(addrs) == 0 {
			continue // disconnected meanwhile
		}
		out.Peers = append(out.Peers, Peer{ID: p.String(), Addrs: addrStrings(addrs, "")})
	}
	slices.SortFunc(out.Peers, func(a, b Peer) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

// PeerForgotten is the result of ForgetPeer.
type PeerForgotten struct {
	// ID is the peer dropped from the address book.
	ID string `json:"id"`
}

// ForgetPeer drops peer id from the address book: with forget (the
// running node's addrbook.Book.Forget, which also clears the peerstore)
// when given, else from repo. A peer not in the book is ErrNotFound.
func ForgetPeer(ctx context.Context, repo *keyshare.Repo, forget func(context.Context, peer.ID) (bool, error), id string) (PeerForgotten, error) {
	p, err := peer.Decode(id)
	if err != nil {
		return PeerForgotten{}, invalidf("peer: %q is not a peer ID (see 'blockmrs peers')", id)
	}
	if forget == nil {
		forget = func(ctx context.Context, p peer.ID) (bool, error) { return repo.ForgetPeer(ctx, p.String()) }
	}
	had, err := forget(ctx, p)
	if err != nil {
		return PeerForgotten{}, fmt.Errorf("forget %s: %w", p, err)
	}
	if !had {
		return PeerForgotten{}, fmt.Errorf("peer %s is not in the address book (see 'blockmrs peers'): %w", p, ErrNotFound)
	}
	return PeerForgotten{ID: p.String()}, nil
}
