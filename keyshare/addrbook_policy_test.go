package keyshare

import (
	"testing"

	"github.com/blockmrs/blockmrs/protocol"
)

// addrbookPolicyCases are the table rows of the address book's rule
// (keepPeerAddrs).
func addrbookPolicyCases() []policyCase {
	acting := peerRoles{acting: []protocol.AccountID{pat}}
	replica := peerRoles{replicating: []protocol.AccountID{pat}}
	return []policyCase{
		{RuleAddrsKept, true,
			func(t *testing.T) Decision { return keepPeerAddrs(acting, false) },
			func(t *testing.T) Decision { return keepPeerAddrs(peerRoles{}, false) }},
		{RuleAddrsUnknown, false,
			func(t *testing.T) Decision { return keepPeerAddrs(peerRoles{}, false) },
			func(t *testing.T) Decision { return keepPeerAddrs(replica, false) }},
		{RuleAddrsCrowded, false,
			// a new node of an account whose share of the book is full
			func(t *testing.T) Decision { return keepPeerAddrs(acting, true) },
			func(t *testing.T) Decision { return keepPeerAddrs(acting, false) }},
		{RuleAddrsUnknown, false,
			// a stranger is refused as unknown whether the book is crowded
			func(t *testing.T) Decision { return keepPeerAddrs(peerRoles{}, true) },
			func(t *testing.T) Decision { return keepPeerAddrs(replica, false) }},
	}
}
