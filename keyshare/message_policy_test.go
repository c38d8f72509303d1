package keyshare

import "testing"

// The rows of messageSigner (who signs access requests and answers for
// an account) in the policy table (TestPolicyTable): pat's chain, as the
// verifier holds it, names newKey as her successor key.
func messagePolicyCases() []policyCase {
	held := func(signer []byte) func(t *testing.T) Decision {
		return func(t *testing.T) Decision { return messageSigner(true, succeededFacts(), keyOf(pat), signer) }
	}
	notHeld := func(signer []byte) func(t *testing.T) Decision {
		return func(t *testing.T) Decision { return messageSigner(false, signerFacts{}, keyOf(pat), signer) }
	}
	return []policyCase{
		// the current successor signer; the retired account key is not
		{RuleMessageSigner, true, held(newKey), held(keyOf(pat))},
		// the account key with no succession on the chain held
		{RuleMessageSigner, true,
			func(t *testing.T) Decision { return messageSigner(true, patFacts(nil), keyOf(pat), keyOf(pat)) },
			func(t *testing.T) Decision { return messageSigner(true, patFacts(nil), keyOf(pat), newKey) }},
		// the retired account key after the succession
		{RuleMessageRetired, false, held(keyOf(pat)), held(newKey)},
		// a key the chain never named
		{RuleMessageRetired, false, held(otherKey), held(newKey)},
		// a successor key for a chain the verifier does not hold; the
		// account key itself still speaks there, as before successions
		{RuleMessageNoChain, false, notHeld(newKey), notHeld(keyOf(pat))},
	}
}
