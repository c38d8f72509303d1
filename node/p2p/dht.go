package p2p

import (
	"context"
	"errors"
	"fmt"

	dht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/core/routing"
)

// DHTProtocolPrefix prefixes the private DHT's protocol IDs: the DHT
// speaks /blockmrs/kad/1.0.0 and nothing else, so it never answers or
// queries the public IPFS DHT (/ipfs/kad/1.0.0), and public DHT nodes
// never add a BlockMRS node to their routing tables.
const DHTProtocolPrefix protocol.ID = "/blockmrs"

// DHTProtocol is the one protocol the private DHT registers.
const DHTProtocol = DHTProtocolPrefix + "/kad/1.0.0"

// dhtOptions configures the private DHT: a Kademlia DHT in server mode
// under DHTProtocolPrefix, for peer routing only.
//
// Provider records and the value store are disabled: the DHT's handlers
// for ADD_PROVIDER, GET_PROVIDERS, PUT_VALUE and GET_VALUE are not
// registered, and Provide, FindProviders, PutValue and GetValue return
// routing.ErrNotSupported. So no record or chain CID, and no account, is
// ever announced, stored or asked for on it; the only keys it looks up are
// peer IDs (FIND_NODE). Nothing is stored on disk: the DHT's datastore is
// kad-dht's in-memory default, left empty with both stores off.
//
// bootstrap is used when the routing table runs empty (kad-dht then
// dials these peers and refreshes the table).
func dhtOptions(bootstrap []peer.AddrInfo) []dht.Option {
	return []dht.Option{
		dht.Mode(dht.ModeServer),
		dht.ProtocolPrefix(DHTProtocolPrefix),
		dht.DisableProviders(),
		dht.DisableValues(),
		dht.BootstrapPeers(bootstrap...),
	}
}

// dhtHost is a host whose peer routing is the private DHT (a routed host:
// Connect and NewStream to a peer with no known address look it up). It
// closes the DHT before the host, which libp2p's routed host does not.
type dhtHost struct {
	host.Host
	dht *dht.IpfsDHT
}

// Close stops the DHT, then the host.
func (h *dhtHost) Close() error {
	return errors.Join(h.dht.Close(), h.Host.Close())
}

// routingOption returns what NewHost passes to libp2p.Routing when the
// private DHT is on, and a pointer that holds the DHT once libp2p.New has
// built it.
func routingOption(bootstrap []peer.AddrInfo) (func(host.Host) (routing.PeerRouting, error), **dht.IpfsDHT) {
	var d *dht.IpfsDHT
	return func(h host.Host) (routing.PeerRouting, error) {
		kad, err := dht.New(h, dhtOptions(bootstrap)...)
		if err != nil {
			return nil, fmt.Errorf("private dht: %w", err)
		}
		d = kad
		return kad, nil
	}, &d
}

// PrivateDHT returns the private DHT of a host NewHost built with
// config.PrivateDHT, or nil for any other host.
func PrivateDHT(h host.Host) *dht.IpfsDHT {
	if dh, ok := h.(*dhtHost); ok {
		return dh.dht
	}
	return nil
}

// RefreshDHT refreshes the routing table of h's private DHT (a lookup of
// the node's own peer ID and of random keys, through the peers it is
// connected to), which makes the node known to its neighbours. Call it
// after dialling the bootstrap peers. It is a no-op without the DHT and
// returns once the refresh is done or ctx ends.
func RefreshDHT(ctx context.Context, h host.Host) error {
	d := PrivateDHT(h)
	if d == nil {
		return nil
	}
	select {
	case err := <-d.RefreshRoutingTable():
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}
