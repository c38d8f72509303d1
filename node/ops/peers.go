package ops

import (
	"slices"
	"strings"

	"github.com/libp2p/go-libp2p/core/host"
	ma "github.com/multiformats/go-multiaddr"
)

// Peer is one connected peer.
type Peer struct {
	// ID is the peer's libp2p peer ID.
	ID string `json:"id"`
	// Addrs lists the remote addresses of the connections to it.
	Addrs []string `json:"addrs"`
}

// Peers is the result of ConnectedPeers.
type Peers struct {
	// Peers lists the connected peers, sorted by ID.
	Peers []Peer `json:"peers"`
}

// ConnectedPeers reports the peers node h is connected to now. It needs
// the running node: without one it is ErrNoNode.
func ConnectedPeers(h host.Host) (Peers, error) {
	if h == nil {
		return Peers{}, ErrNoNode
	}
	n := h.Network()
	out := Peers{Peers: []Peer{}}
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
