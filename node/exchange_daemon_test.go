package node

import (
	"slices"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// TestDaemonRunsBitswap checks that a running daemon speaks bitswap under
// its standard protocol IDs, so stock IPFS nodes can exchange blocks with
// it (subject to its access checks).
func TestDaemonRunsBitswap(t *testing.T) {
	r := startDaemon(t, t.TempDir())
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableMetrics())
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if err := h.Connect(t.Context(), peer.AddrInfo{ID: r.info.PeerID, Addrs: r.info.Listen}); err != nil {
		t.Fatal(err)
	}
	const bitswap = protocol.ID("/ipfs/bitswap/1.2.0")
	deadline := time.Now().Add(10 * time.Second)
	for {
		protos, err := h.Peerstore().GetProtocols(r.info.PeerID)
		if err != nil {
			t.Fatal(err)
		}
		if slices.Contains(protos, bitswap) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("daemon does not offer %s; it offers %v", bitswap, protos)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
