// Package addrbook keeps the node's address book (keyshare.Repo
// KeepPeerAddrs) in step with its libp2p host: at start it gives the
// peerstore the addresses kept in the repo, so every service (requests,
// audit reports, chain sync, emergency access) can dial the nodes of the
// accounts this repo knows after a restart; while the node runs it keeps
// the addresses of those nodes as they are learned (an identify exchange
// with a connected peer, a chain change that declares a node the
// peerstore knows, such as a contact added by address). Which peers are
// kept is the access policy's decision; the book only says where to dial.
package addrbook

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/protocol"
)

// TTL is how long addresses the book gives the peerstore stay there
// (Dialable gives them again when they have expired).
const TTL = 24 * time.Hour

// maxPending bounds the accounts whose chain changes wait to be looked
// at (an import of many chains looks at the first ones).
const maxPending = 4096

// Book ties the repo's address book to a host.
type Book struct {
	host host.Host
	repo *keyshare.Repo
	log  *slog.Logger

	ctx     context.Context
	stop    context.CancelFunc
	wg      sync.WaitGroup
	changed chan struct{} // a chain changed: look at its declared nodes
	mu      sync.Mutex
	pending map[protocol.AccountID]bool // accounts whose chains changed, not looked at yet
	unhook  func()
}

// Start loads the kept addresses into h's peerstore and keeps the book
// up to date until Close.
func Start(ctx context.Context, h host.Host, repo *keyshare.Repo, log *slog.Logger) (*Book, error) {
	if log == nil {
		log = slog.Default()
	}
	b := &Book{host: h, repo: repo, log: log.With("service", "addrbook"), changed: make(chan struct{}, 1),
		pending: map[protocol.AccountID]bool{}}
	kept, err := repo.KeptPeers(ctx)
	if err != nil {
		return nil, err
	}
	n := 0
	for _, k := range kept {
		if b.restore(k.Peer, k.Addrs) {
			n++
		}
	}
	if n > 0 {
		b.log.Info("gave the peerstore the kept addresses of known accounts' nodes", "peers", n)
	}
	sub, err := h.EventBus().Subscribe(new(event.EvtPeerIdentificationCompleted))
	if err != nil {
		return nil, err
	}
	b.ctx, b.stop = context.WithCancel(context.Background())
	b.unhook = repo.OnChainChange(func(c keyshare.ChainChange) {
		b.mu.Lock()
		for _, id := range c.Accounts {
			if len(b.pending) < maxPending {
				b.pending[id] = true
			}
		}
		b.mu.Unlock()
		select {
		case b.changed <- struct{}{}:
		default:
		}
	})
	b.wg.Go(func() {
		defer sub.Close()
		for {
			select {
			case <-b.ctx.Done():
				return
			case ev, ok := <-sub.Out():
				if !ok {
					return
				}
				b.Learn(b.ctx, ev.(event.EvtPeerIdentificationCompleted).Peer)
			case <-b.changed:
				b.learnDeclared(b.ctx)
			}
		}
	})
	return b, nil
}

// Close stops keeping addresses and waits for the work in flight.
func (b *Book) Close() {
	b.unhook()
	b.stop()
	b.wg.Wait()
}

// Learn keeps the addresses the peerstore has for p in the repo, when the
// access policy keeps p's (a node the chains declare).
func (b *Book) Learn(ctx context.Context, p peer.ID) {
	if p == b.host.ID() {
		return
	}
	known := b.host.Peerstore().Addrs(p)
	if len(known) == 0 {
		return
	}
	text := make([]string, len(known))
	for i, a := range known {
		text[i] = a.String()
	}
	d, changed, err := b.repo.KeepPeerAddrs(ctx, p.String(), text)
	switch {
	case err != nil:
		b.log.Warn("keep a peer's addresses", "peer", p, "err", err)
	case changed:
		b.log.Info("kept a known account's node's addresses, to dial it after a restart", "peer", p, "addrs", len(text), "rule", d.Rule)
	}
}

// learnDeclared learns the addresses of the nodes declared by the
// accounts whose chains changed: a node just declared (a contact added by
// address, a device paired) is kept while the peerstore still has where it
// was dialled.
func (b *Book) learnDeclared(ctx context.Context) {
	b.mu.Lock()
	ids := b.pending
	b.pending = map[protocol.AccountID]bool{}
	b.mu.Unlock()
	for id := range ids {
		info, err := b.repo.Account(ctx, id)
		if err != nil {
			continue // a chain change of an account dropped since
		}
		for _, d := range info.Devices {
			if ctx.Err() != nil {
				return
			}
			if p, err := peer.Decode(d.PeerID); err == nil {
				b.Learn(ctx, p)
			}
		}
	}
}

// Dialable makes p dialable before a service dials it: it keeps the
// addresses the peerstore has for p, or, when it has none (they expired),
// gives it those the book keeps.
func (b *Book) Dialable(ctx context.Context, p peer.ID) {
	if len(b.host.Peerstore().Addrs(p)) > 0 {
		b.Learn(ctx, p)
		return
	}
	kept, err := b.repo.PeerAddrs(ctx, p.String())
	if err != nil {
		b.log.Warn("read a peer's kept addresses", "peer", p, "err", err)
		return
	}
	if b.restore(p.String(), kept) {
		b.log.Info("dialling a node at its kept addresses", "peer", p, "addrs", len(kept))
	}
}

// Forget drops p from the book and its addresses from the peerstore
// (a live connection stays up), and reports whether the book had it.
func (b *Book) Forget(ctx context.Context, p peer.ID) (bool, error) {
	had, err := b.repo.ForgetPeer(ctx, p.String())
	if err != nil {
		return false, err
	}
	b.host.Peerstore().ClearAddrs(p)
	return had, nil
}

// restore gives the peerstore peer's kept addresses (those that parse).
func (b *Book) restore(id string, kept []string) bool {
	p, err := peer.Decode(id)
	if err != nil || p == b.host.ID() {
		return false
	}
	var addrs []ma.Multiaddr
	for _, a := range kept {
		if m, err := ma.NewMultiaddr(a); err == nil {
			addrs = append(addrs, m)
		}
	}
	if len(addrs) == 0 {
		return false
	}
	b.host.Peerstore().AddAddrs(p, addrs, TTL)
	return true
}
