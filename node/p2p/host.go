// Package p2p builds the node's libp2p host: its identity, transports,
// security, resource limits and NAT traversal. The project's own stream
// protocols (block exchange, chain sync, access requests) live in sibling
// packages and register on the host this package returns.
package p2p

import (
	"context"
	"fmt"
	"sync/atomic"

	"github.com/libp2p/go-libp2p"
	dht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/routing"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	"github.com/libp2p/go-libp2p/p2p/net/connmgr"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	tls "github.com/libp2p/go-libp2p/p2p/security/tls"
	quic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"

	"github.com/blockmrs/blockmrs/node/config"
)

// UserAgent is what the node tells peers in identify.
const UserAgent = "blockmrs"

// NewHost builds and starts the node's libp2p host from cfg, with key as
// its identity (see LoadOrCreateKey). The host:
//
//   - listens on cfg.Listen, over TCP and QUIC v1 only (no WebSocket,
//     WebTransport or WebRTC: nothing here talks to browsers over libp2p);
//   - secures connections with TLS 1.3 or Noise, multiplexes TCP with yamux;
//   - runs identify and ping (libp2p's defaults);
//   - enforces the fixed resource limits of Limits, and trims connections
//     above ConnsHigh;
//   - maps a port on the router (UPnP, NAT-PMP) only with cfg.NATPortMap;
//   - runs AutoNAT v2 to learn which of its addresses are reachable (in
//     go-libp2p v0.51 this also answers other peers' dial-back requests,
//     rate limited);
//   - is a circuit-relay v2 client: it accepts relayed connections, and
//     when AutoNAT finds it unreachable, AutoRelay reserves a slot on a
//     relay chosen among the bootstrap peers and connected peers that
//     offer the relay service;
//   - upgrades relayed connections to direct ones by hole punching (DCUtR);
//   - runs the relay service for others only with cfg.RelayService;
//   - with cfg.PrivateDHT, runs the private DHT (see dhtOptions) as its
//     peer routing: Connect and NewStream to a peer ID whose addresses
//     the peerstore lacks look them up on the DHT. PrivateDHT returns it.
//
// Bootstrap peers are not dialled here; see Bootstrap. Close the host to
// stop it.
func NewHost(ctx context.Context, cfg *config.Config, key crypto.PrivKey) (host.Host, error) {
	if key == nil {
		return nil, errNoKey
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("p2p: %w", err)
	}
	listen, err := cfg.ListenAddrs()
	if err != nil {
		return nil, fmt.Errorf("p2p: %w", err)
	}
	bootstrap, err := cfg.BootstrapPeers()
	if err != nil {
		return nil, fmt.Errorf("p2p: %w", err)
	}
	rm, err := rcmgr.NewResourceManager(rcmgr.NewFixedLimiter(Limits()))
	if err != nil {
		return nil, fmt.Errorf("p2p: resource manager: %w", err)
	}
	cm, err := connmgr.NewConnManager(ConnsLow, ConnsHigh, connmgr.WithGracePeriod(ConnsGrace))
	if err != nil {
		rm.Close()
		return nil, fmt.Errorf("p2p: connection manager: %w", err)
	}

	// AutoRelay asks this source for relay candidates; it filters out
	// peers that do not offer the relay service. The host does not exist
	// yet when the option is built, hence the pointer.
	var self atomic.Pointer[host.Host]
	relaySource := func(ctx context.Context, num int) <-chan peer.AddrInfo {
		var hp host.Host
		if p := self.Load(); p != nil {
			hp = *p
		}
		return relayCandidates(ctx, hp, bootstrap, num)
	}

	opts := []libp2p.Option{
		libp2p.Identity(key),
		libp2p.ListenAddrs(listen...),
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.Transport(quic.NewTransport),
		libp2p.Security(tls.ID, tls.New),
		libp2p.Security(noise.ID, noise.New),
		libp2p.DefaultMuxers,
		libp2p.ResourceManager(rm),
		libp2p.ConnectionManager(cm),
		libp2p.Ping(true),
		libp2p.UserAgent(UserAgent),
		libp2p.EnableAutoNATv2(),
		libp2p.EnableRelay(),
		libp2p.EnableAutoRelayWithPeerSource(relaySource),
		libp2p.EnableHolePunching(),
		// Metrics would register on Prometheus' global registry, which
		// collides when a process (a test) runs several hosts; the node
		// exposes its own status through the API instead.
		libp2p.DisableMetrics(),
	}
	if cfg.NATPortMap {
		opts = append(opts, libp2p.NATPortMap())
	}
	if cfg.RelayService {
		opts = append(opts, libp2p.EnableRelayService())
	}
	var kad **dht.IpfsDHT
	if cfg.PrivateDHT {
		var router func(host.Host) (routing.PeerRouting, error)
		router, kad = routingOption(bootstrap)
		opts = append(opts, libp2p.Routing(router))
	}
	h, err := libp2p.New(opts...)
	if err != nil {
		// libp2p.New closes these on some failures but not all; closing
		// twice is safe for both.
		cm.Close()
		rm.Close()
		if kad != nil && *kad != nil {
			(*kad).Close()
		}
		return nil, fmt.Errorf("p2p: start host: %w", err)
	}
	if kad != nil {
		h = &dhtHost{Host: h, dht: *kad}
	}
	self.Store(&h)
	if err := ctx.Err(); err != nil {
		h.Close()
		return nil, fmt.Errorf("p2p: %w", err)
	}
	return h, nil
}

// relayCandidates feeds AutoRelay: the bootstrap peers first, then peers
// the host is connected to, at most num in all.
func relayCandidates(ctx context.Context, h host.Host, bootstrap []peer.AddrInfo, num int) <-chan peer.AddrInfo {
	out := make(chan peer.AddrInfo, num)
	defer close(out)
	seen := make(map[peer.ID]bool)
	add := func(ai peer.AddrInfo) bool {
		if len(out) >= num || ctx.Err() != nil {
			return false
		}
		if !seen[ai.ID] && (h == nil || ai.ID != h.ID()) {
			seen[ai.ID] = true
			out <- ai
		}
		return true
	}
	for _, ai := range bootstrap {
		if !add(ai) {
			return out
		}
	}
	if h != nil {
		for _, p := range h.Network().Peers() {
			if !add(h.Peerstore().PeerInfo(p)) {
				return out
			}
		}
	}
	return out
}
