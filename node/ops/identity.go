package ops

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/libp2p/go-libp2p/core/host"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"

	"github.com/blockmrs/blockmrs/protocol"
)

// Identity is the result of ID: the node and the
// accounts its repo knows.
type Identity struct {
	// PeerID is the node's libp2p peer ID (its node key, not an account);
	// "" when the node is not running.
	PeerID string `json:"peer_id"`
	// Listen lists the multiaddrs the host is bound to, sorted.
	Listen []string `json:"listen"`
	// Addrs lists the addresses the node tells peers to dial, each ending
	// in /p2p/PEER_ID, sorted; bare relay addresses ("/p2p-circuit",
	// which need the relay's own part) are left out.
	Addrs []string `json:"addrs"`
	// Account is the account asked for, else the default local account;
	// absent when the repo has no account of its own.
	Account *Account `json:"account,omitempty"`
	// ShareCode is what a contact passes to contact add to add Account
	// over the network, "ADDRESS ACCOUNT_ID" (see ParseShareCode); absent
	// without an account or an address.
	ShareCode string `json:"share_code,omitempty"`
	// Accounts lists every account the repo knows, its own (local: true)
	// first, then by name.
	Accounts []Account `json:"accounts"`
}

// IDArgs is the argument of ID.
type IDArgs struct {
	// Account is a local account's ID; "" means the default one.
	Account protocol.AccountID `json:"account,omitempty"`
}

// ID describes the node (h, nil when it is not running) and the
// accounts repo knows.
func ID(ctx context.Context, repo AccountLister, h host.Host, args IDArgs) (Identity, error) {
	if args.Account != "" {
		if _, err := protocol.ParseAccountID(string(args.Account)); err != nil {
			return Identity{}, invalidf("account: %v", err)
		}
	}
	all, err := repo.Accounts(ctx)
	if err != nil {
		return Identity{}, fmt.Errorf("list accounts: %w", err)
	}
	out := Identity{Listen: []string{}, Addrs: []string{}, Accounts: make([]Account, 0, len(all))}
	for _, a := range all {
		acct := AccountOf(a)
		out.Accounts = append(out.Accounts, acct)
		if a.Local && out.Account == nil && (a.ID == args.Account || args.Account == "" && a.Default) {
			out.Account = &acct
		}
	}
	if args.Account != "" && out.Account == nil {
		return Identity{}, fmt.Errorf("%s is not a local account: %w", args.Account, ErrNotFound)
	}
	if h != nil {
		out.PeerID = h.ID().String()
		out.Listen = addrStrings(h.Network().ListenAddresses(), "")
		out.Addrs = addrStrings(h.Addrs(), "/p2p/"+out.PeerID)
	}
	if out.Account != nil && len(out.Addrs) > 0 {
		out.ShareCode = shareAddr(h.Addrs(), out.PeerID) + " " + string(out.Account.ID)
	}
	return out, nil
}

// addrStrings renders addresses with suffix, sorted and without
// duplicates, leaving bare relay addresses out when suffix is set.
func addrStrings(addrs []ma.Multiaddr, suffix string) []string {
	out := make([]string, 0, len(addrs))
	for _, a := range addrs {
		s := a.String()
		if suffix != "" && strings.HasSuffix(s, "/p2p-circuit") {
			continue
		}
		out = append(out, s+suffix)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// shareAddr picks the address to share: the first public one, else the
// first private one, else the first.
func shareAddr(addrs []ma.Multiaddr, peerID string) string {
	all := addrStrings(addrs, "/p2p/"+peerID)
	best, rank := all[0], 3
	for _, a := range addrs {
		s := a.String() + "/p2p/" + peerID
		if !slices.Contains(all, s) {
			continue
		}
		r := 2
		switch {
		case manet.IsPublicAddr(a):
			r = 0
		case manet.IsPrivateAddr(a):
			r = 1
		}
		if r < rank || r == rank && s < best {
			best, rank = s, r
		}
	}
	return best
}
