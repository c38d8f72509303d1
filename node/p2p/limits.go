package p2p

import (
	"time"

	"github.com/libp2p/go-libp2p"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
)

// Resource budget of a small node: a patient's laptop or phone-class
// machine, or a modest clinic server. These numbers are fixed, not scaled
// to the machine's memory, so a node behaves the same everywhere and a
// test can pin them. A clinic that needs more edits them here (later: in
// the config).
const (
	// LimitMemory is what the whole libp2p stack may reserve: stream
	// windows, protocol buffers. A 256 MiB record moves as 1 MiB blocks,
	// so this bounds buffering, not record size.
	LimitMemory = 256 << 20
	// LimitFD is how many file descriptors connections may hold.
	LimitFD = 512

	// LimitConns and friends bound connections for the whole node.
	LimitConns         = 128
	LimitConnsInbound  = 64
	LimitConnsOutbound = 128
	// LimitStreams and friends bound streams for the whole node.
	LimitStreams         = 2048
	LimitStreamsInbound  = 1024
	LimitStreamsOutbound = 2048

	// Per peer: enough for several protocols at once and parallel
	// transfers, not enough for one peer to starve the others.
	LimitPeerConns           = 8
	LimitPeerStreams         = 256
	LimitPeerStreamsInbound  = 128
	LimitPeerStreamsOutbound = 256
	LimitPeerMemory          = 64 << 20
	LimitPeerFD              = 8

	// Transient: connections and streams not yet tied to a peer or a
	// protocol (handshakes, multistream negotiation).
	LimitTransientConns   = 32
	LimitTransientStreams = 128
	LimitTransientMemory  = 32 << 20
	LimitTransientFD      = 64

	// Connection manager watermarks: above ConnsHigh connections it trims
	// back to ConnsLow, sparing connections younger than ConnsGrace and
	// protected ones (a node will protect its account's devices and
	// replicas).
	ConnsLow   = 32
	ConnsHigh  = 96
	ConnsGrace = time.Minute
)

// Limits returns the resource manager's limits: libp2p's default scaling
// config with its per-service limits for identify, ping, AutoNAT, hole
// punching and relay, scaled once for LimitMemory and LimitFD (not for the
// machine, as rcmgr's AutoScale does), then the system, transient and
// per-peer scopes set to the constants above. Protocols this project adds
// get their own limits next to their handlers.
func Limits() rcmgr.ConcreteLimitConfig {
	scaling := rcmgr.DefaultLimits // a copy; its maps are filled below
	libp2p.SetDefaultServiceLimits(&scaling)
	base := scaling.Scale(LimitMemory, LimitFD)
	explicit := rcmgr.PartialLimitConfig{
		System: rcmgr.ResourceLimits{
			Conns:           LimitConns,
			ConnsInbound:    LimitConnsInbound,
			ConnsOutbound:   LimitConnsOutbound,
			Streams:         LimitStreams,
			StreamsInbound:  LimitStreamsInbound,
			StreamsOutbound: LimitStreamsOutbound,
			Memory:          LimitMemory,
			FD:              LimitFD,
		},
		Transient: rcmgr.ResourceLimits{
			Conns:           LimitTransientConns,
			ConnsInbound:    LimitTransientConns / 2,
			ConnsOutbound:   LimitTransientConns,
			Streams:         LimitTransientStreams,
			StreamsInbound:  LimitTransientStreams / 2,
			StreamsOutbound: LimitTransientStreams,
			Memory:          LimitTransientMemory,
			FD:              LimitTransientFD,
		},
		PeerDefault: rcmgr.ResourceLimits{
			Conns:           LimitPeerConns,
			ConnsInbound:    LimitPeerConns,
			ConnsOutbound:   LimitPeerConns,
			Streams:         LimitPeerStreams,
			StreamsInbound:  LimitPeerStreamsInbound,
			StreamsOutbound: LimitPeerStreamsOutbound,
			Memory:          LimitPeerMemory,
			FD:              LimitPeerFD,
		},
	}
	return explicit.Build(base)
}
