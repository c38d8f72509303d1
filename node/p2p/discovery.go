package p2p

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/discovery/mdns"
)

// DialTimeout bounds one dial to a bootstrap or discovered peer.
const DialTimeout = 15 * time.Second

// MDNSService is the mDNS service name BlockMRS nodes announce. It is not
// IPFS's "_p2p._udp", so stock IPFS nodes on the LAN do not dial in.
const MDNSService = "_blockmrs._udp"

// Bootstrap dials peers concurrently, each with DialTimeout, and returns
// how many connected. Failures are logged at debug level, once per peer
// (a bootstrap peer being offline is normal).
func Bootstrap(ctx context.Context, h host.Host, peers []peer.AddrInfo, log *slog.Logger) int {
	var (
		wg sync.WaitGroup
		mu sync.Mutex
		ok int
	)
	for _, ai := range peers {
		if ai.ID == h.ID() {
			continue
		}
		wg.Go(func() {
			dctx, cancel := context.WithTimeout(ctx, DialTimeout)
			defer cancel()
			if err := h.Connect(dctx, ai); err != nil {
				log.Debug("bootstrap peer unreachable", "peer", ai.ID, "err", err)
				return
			}
			mu.Lock()
			ok++
			mu.Unlock()
		})
	}
	wg.Wait()
	return ok
}

// StartMDNS announces the host on the local network and dials the
// BlockMRS nodes it hears of. Close the returned service to stop. The
// announcement carries the peer ID and addresses, nothing about accounts.
func StartMDNS(h host.Host, log *slog.Logger) (interface{ Close() error }, error) {
	ctx, cancel := context.WithCancel(context.Background())
	n := &mdnsNotifee{ctx: ctx, h: h, log: log}
	svc := mdns.NewMdnsService(h, MDNSService, n)
	if err := svc.Start(); err != nil {
		cancel()
		return nil, err
	}
	return closerFunc(func() error {
		err := svc.Close()
		cancel()
		n.wg.Wait()
		return err
	}), nil
}

type closerFunc func() error

// Close calls f.
func (f closerFunc) Close() error { return f() }

type mdnsNotifee struct {
	ctx context.Context
	h   host.Host
	log *slog.Logger
	wg  sync.WaitGroup
}

// HandlePeerFound dials a peer found by mDNS, in the background.
func (n *mdnsNotifee) HandlePeerFound(ai peer.AddrInfo) {
	if ai.ID == n.h.ID() || n.ctx.Err() != nil {
		return
	}
	n.wg.Go(func() {
		ctx, cancel := context.WithTimeout(n.ctx, DialTimeout)
		defer cancel()
		if err := n.h.Connect(ctx, ai); err != nil {
			n.log.Debug("mdns peer unreachable", "peer", ai.ID, "err", err)
		}
	})
}
