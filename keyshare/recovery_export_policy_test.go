package keyshare

import (
	"testing"

	"github.com/blockmrs/blockmrs/protocol"
)

// recoveryExportPolicyCases are the table rows of recovery exports
// (exportRecovery) and the address hints they carry (keepHintedAddrs).
func recoveryExportPolicyCases() []policyCase {
	me, other := keyOf(pat), []byte("someone else's key")
	setup := &recoveryFacts{Threshold: 1, Contacts: [][]byte{other, me}}
	acting := peerRoles{acting: []protocol.AccountID{pat}}
	return []policyCase{
		{RuleRecoveryExport, true,
			func(t *testing.T) Decision { return exportRecovery(setup, [][]byte{me}) },
			func(t *testing.T) Decision {
				return exportRecovery(setup, [][]byte{[]byte("a local key no setup names")})
			}},
		{RuleRecoveryExportRefuse, false,
			func(t *testing.T) Decision { return exportRecovery(nil, [][]byte{me}) },
			func(t *testing.T) Decision { return exportRecovery(setup, [][]byte{me}) }},
		{RuleAddrsHinted, true,
			func(t *testing.T) Decision { return keepHintedAddrs(acting, false) },
			func(t *testing.T) Decision { return keepHintedAddrs(acting, true) }},
		{RuleAddrsHintRefused, false,
			func(t *testing.T) Decision { return keepHintedAddrs(peerRoles{}, false) },
			func(t *testing.T) Decision { return keepHintedAddrs(acting, false) }},
	}
}
