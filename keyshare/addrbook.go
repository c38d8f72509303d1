package keyshare

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/ipfs/go-datastore"
	"github.com/ipfs/go-datastore/query"

	"github.com/blockmrs/blockmrs/protocol"
)

// The node's address book: where the nodes acting for accounts this repo
// knows (its own devices, contacts, guardians and wards, custodians,
// requesters) were last reached, kept in the repo so that a restarted
// node, whose peerstore is in memory, can dial them by itself. Which
// peers are kept is decided by the access policy (keepPeerAddrs): only a
// node a chain declares is kept, and a kept address gives it nothing but
// a place to be dialled.
//
//	/keyshare/addrbook/<peer ID> → JSON KeptAddrs (without Accounts)

// Bounds of the address book.
const (
	MaxPeerAddrs   = 8    // addresses kept per peer (the rest are dropped)
	MaxPeerAddrLen = 256  // bytes per address (longer ones are skipped)
	MaxKeptPeers   = 1024 // peers kept; past it the least recently seen is dropped
	// MaxKeptPeersPerAccount bounds the kept peers one account's chain
	// brings in: a new peer whose every declaring account has as many is
	// not kept (addrs/crowded).
	MaxKeptPeersPerAccount = 16
	// seenRefresh is how stale a kept peer's Seen may grow while it is
	// seen at the same addresses before it is written again (so that a
	// peer reached every day is not the least recently seen, and an
	// identify exchange does not write each time).
	seenRefresh = time.Hour
)

// maxKeptPeers is MaxKeptPeers; a test lowers it to see the eviction.
var maxKeptPeers = MaxKeptPeers

const addrBookPrefix = "/keyshare/addrbook/"

func keyPeerAddrs(peer string) datastore.Key {
	return datastore.NewKey(addrBookPrefix + peer)
}

// KeptAddrs is one peer in the address book.
type KeptAddrs struct {
	// Peer is the node's peer ID (text form).
	Peer string `json:"peer"`
	// Addrs are its multiaddrs (text form) when last reached.
	Addrs []string `json:"addrs"`
	// Seen is when they were kept or last seen (refreshed hourly).
	Seen time.Time `json:"seen"`
	// Accounts are the accounts the chains say the peer acts for (or
	// replicates), as the book is listed (KeptPeers); not stored.
	Accounts []protocol.AccountID `json:"accounts,omitempty"`
}

// KeepPeerAddrs keeps addrs (multiaddrs as text) as where peer was last
// reached, replacing what was kept, when the access policy keeps that
// peer's addresses (keepPeerAddrs: a node the chains this repo knows
// declare, and for a new peer one of its declaring accounts has fewer
// than MaxKeptPeersPerAccount kept). It returns the decision and whether the book changed: at
// most MaxPeerAddrs addresses, each at most MaxPeerAddrLen bytes, are
// kept (sorted), and a new peer past MaxKeptPeers drops the least
// recently seen one.
func (r *Repo) KeepPeerAddrs(ctx context.Context, peer string, addrs []string) (Decision, bool, error) {
	if _, err := protocol.ParsePeerID(peer); err != nil {
		return Decision{}, false, fmt.Errorf("keep peer addresses: %w", err)
	}
	roles, err := r.declaredBy(ctx, peer)
	if err != nil {
		return Decision{}, false, fmt.Errorf("keep peer addresses: %w", err)
	}
	r.addrMu.Lock()
	defer r.addrMu.Unlock()
	var old KeptAddrs
	found, err := getJSON(ctx, r.ds, keyPeerAddrs(peer), &old)
	if err != nil {
		return Decision{}, false, err
	}
	crowded := false
	if !found && roles.known() {
		if crowded, err = r.crowdedAccounts(ctx, roles); err != nil {
			return Decision{}, false, fmt.Errorf("keep peer addresses: %w", err)
		}
	}
	d := keepPeerAddrs(roles, crowded)
	if !d.Allow {
		return d, false, nil
	}
	var keep []string
	for _, a := range addrs {
		if len(a) <= MaxPeerAddrLen && len(keep) < MaxPeerAddrs && !slices.Contains(keep, a) {
			keep = append(keep, a)
		}
	}
	if len(keep) == 0 {
		return d, false, nil
	}
	slices.Sort(keep)
	now := r.clock().UTC()
	if found && slices.Equal(old.Addrs, keep) && now.Sub(old.Seen) < seenRefresh {
		return d, false, nil
	}
	if !found {
		if err := r.makeRoomForPeer(ctx); err != nil {
			return d, false, err
		}
	}
	entry := KeptAddrs{Peer: peer, Addrs: keep, Seen: now}
	if err := putJSON(ctx, r.ds, keyPeerAddrs(peer), entry); err != nil {
		return d, false, fmt.Errorf("keep peer addresses: %w", err)
	}
	return d, true, nil
}

// crowdedAccounts tells whether every account in roles declares
// MaxKeptPeersPerAccount or more of the peers the book keeps. The caller
// holds addrMu.
func (r *Repo) crowdedAccounts(ctx context.Context, roles peerRoles) (bool, error) {
	all, err := r.keptPeers(ctx)
	if err != nil {
		return false, err
	}
	counts := map[protocol.AccountID]int{}
	for _, k := range all {
		kr, err := r.declaredBy(ctx, k.Peer)
		if err != nil {
			return false, err
		}
		for _, id := range slices.Concat(kr.acting, kr.replicating) {
			counts[id]++
		}
	}
	for _, id := range slices.Concat(roles.acting, roles.replicating) {
		if counts[id] < MaxKeptPeersPerAccount {
			return false, nil
		}
	}
	return true, nil
}

// makeRoomForPeer drops the least recently seen peers while the book
// holds MaxKeptPeers or more. The caller holds addrMu.
func (r *Repo) makeRoomForPeer(ctx context.Context) error {
	all, err := r.keptPeers(ctx)
	if err != nil {
		return err
	}
	if len(all) < maxKeptPeers {
		return nil
	}
	slices.SortFunc(all, func(a, b KeptAddrs) int { return a.Seen.Compare(b.Seen) })
	for _, k := range all[:len(all)-maxKeptPeers+1] {
		if err := r.ds.Delete(ctx, keyPeerAddrs(k.Peer)); err != nil {
			return fmt.Errorf("drop the oldest kept peer: %w", err)
		}
	}
	return nil
}

// PeerAddrs returns the addresses the book keeps for peer (none: nil).
func (r *Repo) PeerAddrs(ctx context.Context, peer string) ([]string, error) {
	var k KeptAddrs
	_, err := getJSON(ctx, r.ds, keyPeerAddrs(peer), &k)
	return k.Addrs, err
}

// KeptPeers lists the address book, by peer ID, each peer with the
// accounts the chains now say it acts for.
func (r *Repo) KeptPeers(ctx context.Context) ([]KeptAddrs, error) {
	all, err := r.keptPeers(ctx)
	if err != nil {
		return nil, err
	}
	for i := range all {
		roles, err := r.declaredBy(ctx, all[i].Peer)
		if err != nil {
			return nil, err
		}
		all[i].Accounts = slices.Concat(roles.acting, roles.replicating)
	}
	return all, nil
}

func (r *Repo) keptPeers(ctx context.Context) ([]KeptAddrs, error) {
	res, err := r.ds.Query(ctx, query.Query{Prefix: addrBookPrefix})
	if err != nil {
		return nil, fmt.Errorf("address book: %w", err)
	}
	entries, err := res.Rest()
	if err != nil {
		return nil, fmt.Errorf("address book: %w", err)
	}
	out := make([]KeptAddrs, 0, len(entries))
	for _, e := range entries {
		var k KeptAddrs
		if err := json.Unmarshal(e.Value, &k); err != nil {
			return nil, fmt.Errorf("address book: decode %s: %w", e.Key, err)
		}
		k.Peer = strings.TrimPrefix(e.Key, addrBookPrefix)
		out = append(out, k)
	}
	slices.SortFunc(out, func(a, b KeptAddrs) int { return strings.Compare(a.Peer, b.Peer) })
	return out, nil
}

// ForgetPeer drops peer from the address book and reports whether it was
// there.
func (r *Repo) ForgetPeer(ctx context.Context, peer string) (bool, error) {
	if _, err := protocol.ParsePeerID(peer); err != nil {
		return false, fmt.Errorf("forget peer: %w", err)
	}
	r.addrMu.Lock()
	defer r.addrMu.Unlock()
	had, err := r.ds.Has(ctx, keyPeerAddrs(peer))
	if err != nil || !had {
		return false, err
	}
	if err := r.ds.Delete(ctx, keyPeerAddrs(peer)); err != nil {
		return false, fmt.Errorf("forget peer: %w", err)
	}
	return true, nil
}

// legacyEmergencyAddrs is where the emergency service kept custodians'
// node addresses before the address book (a repo made before 2026-12-02
// may hold some).
const legacyEmergencyAddrs = "/keyshare/emergency/addrs/"

// moveLegacyAddrs moves addresses the emergency service kept into the
// address book (under the book's rules: a peer the policy does not keep
// is dropped) and deletes the old entries. Open calls it; a failure is
// logged, never fatal: the book re-learns addresses as peers connect.
func (r *Repo) moveLegacyAddrs(ctx context.Context) {
	entries, err := queryAll(ctx, r.ds, legacyEmergencyAddrs, false)
	if err != nil || len(entries) == 0 {
		return
	}
	moved := 0
	for _, e := range entries {
		peer := strings.TrimPrefix(e.Key, legacyEmergencyAddrs)
		var addrs []string
		if json.Unmarshal(e.Value, &addrs) == nil {
			if d, _, err := r.KeepPeerAddrs(ctx, peer, addrs); err == nil && d.Allow {
				moved++
			}
		}
		if err := r.ds.Delete(ctx, datastore.NewKey(e.Key)); err != nil {
			slog.Warn("keyshare: removing an old emergency address entry failed", "peer", peer, "err", err)
			return
		}
	}
	slog.Info("keyshare: moved the emergency service's kept addresses into the address book", "entries", len(entries), "kept", moved)
}
