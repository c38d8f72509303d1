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
			func(t *testing.T) Decision { return keepPeerAddrs(acting) },
			func(t *testing.T) Decision { return keepPeerAddrs(peerRoles{}) }},
		{RuleAddrsUnknown, false,
			func(t *testing.T) Decision { return keepPeerAddrs(peerRoles{}) },
			func(t *testing.T) Decision { return keepPeerAddrs(replica) }},
	}
}
