package keyshare

import (
	"crypto/ed25519"
	"testing"

	"github.com/blockmrs/blockmrs/protocol"
)

// The fork-choice and approval-signer rules' rows of the policy table
// (TestPolicyTable). doc is a recovery contact of pat's; doc's chain names
// newKey as its signing key after a succession, retiring doc's account key.

// docSucceeded is a verifier's copy of doc's chain after doc's succession
// to newKey.
func docSucceeded() contactSigning {
	return contactSigning{Held: true, Current: newKey, Retired: [][]byte{keyOf(doc)}}
}

// docApproval is doc's approval of pat's recovery to otherKey, signed by
// priv (doc's account key, or the successor newKey's).
func docApproval(t *testing.T, priv ed25519.PrivateKey) protocol.RecoveryApproval {
	t.Helper()
	a, err := protocol.SignRecoveryApprovalAs(keyOf(doc), priv, keyOf(pat), otherKey, requestID, protocol.NewLink(setupCID))
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func forkRecoveryPolicyCases() []policyCase {
	return []policyCase{
		{RuleApprovalSigner, true,
			// doc's successor key, named by doc's chain
			func(t *testing.T) Decision { return approvalSigner(keyOf(doc), docSucceeded(), newKey, false) },
			// the account key that succession retired (a stolen laptop's)
			func(t *testing.T) Decision { return approvalSigner(keyOf(doc), docSucceeded(), keyOf(doc), false) }},
		{RuleApprovalSignerRetired, false,
			// a successor key of a contact whose chain is not held here
			func(t *testing.T) Decision { return approvalSigner(keyOf(doc), contactSigning{}, newKey, false) },
			func(t *testing.T) Decision { return approvalSigner(keyOf(doc), contactSigning{}, keyOf(doc), false) }},
		{RuleForkRecovery, true,
			func(t *testing.T) Decision { return forkChoice(forkFacts{Account: pat, Seq: 4, OfferedRecovery: true}) },
			// a recovery on each side
			func(t *testing.T) Decision {
				return forkChoice(forkFacts{Account: pat, Seq: 4, OfferedRecovery: true, HeldRecovery: true})
			}},
		{RuleForkRecoveryHeld, true,
			func(t *testing.T) Decision { return forkChoice(forkFacts{Account: pat, Seq: 4, HeldRecovery: true}) },
			func(t *testing.T) Decision { return forkChoice(forkFacts{Account: pat, Seq: 4}) }},
		{RuleForkRefused, false,
			// neither block is a recovery
			func(t *testing.T) Decision { return forkChoice(forkFacts{Account: pat, Seq: 4}) },
			func(t *testing.T) Decision { return forkChoice(forkFacts{Account: pat, Seq: 4, OfferedRecovery: true}) }},
	}
}

// An approval counts only by a key that speaks for its contact: recovery
// blocks built on the rules above.
func TestApprovalSignerAttacks(t *testing.T) {
	rec := recoverySetupFacts(1)
	f := patFacts(rec)
	block := func(a protocol.RecoveryApproval) *protocol.Block {
		return signedBy(otherKey, &protocol.Succession{Key: otherKey, Request: requestID, Approvals: []protocol.RecoveryApproval{a}})
	}
	bySuccessor := docApproval(t, testPriv(20)) // newKey's private key
	byAccount := approval(t, 2, otherKey, requestID, protocol.NewLink(setupCID))
	cases := []struct {
		name     string
		a        protocol.RecoveryApproval
		contacts map[string]contactSigning
		replay   bool
		allow    bool
	}{
		{"successor key, doc's chain held", bySuccessor, map[string]contactSigning{string(keyOf(doc)): docSucceeded()}, false, true},
		{"successor key, doc's chain not held", bySuccessor, nil, false, false},
		{"retired account key at admission", byAccount, map[string]contactSigning{string(keyOf(doc)): docSucceeded()}, false, false},
		{"retired account key in a replay", byAccount, map[string]contactSigning{string(keyOf(doc)): docSucceeded()}, true, true},
		{"account key, no succession", byAccount, map[string]contactSigning{string(keyOf(doc)): {Held: true, Current: keyOf(doc)}}, false, true},
		{"a key doc's chain never named", docApproval(t, testPriv(21)), map[string]contactSigning{string(keyOf(doc)): docSucceeded()}, true, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := f
			g.Contacts, g.Replay = tc.contacts, tc.replay
			d := blockSigner(g, block(tc.a))
			if d.Allow != tc.allow {
				t.Fatalf("got %+v, want allow=%v", d, tc.allow)
			}
		})
	}
	// A signer field naming one key while another signed is a bad signature.
	forged := bySuccessor
	forged.Signer = otherKey
	if err := forged.VerifyFor(keyOf(pat), otherKey, requestID); err == nil {
		t.Fatal("an approval verified under a signer that did not sign it")
	}
	// The signer field may not repeat the contact key.
	same := byAccount
	same.Signer = keyOf(doc)
	if err := same.VerifyFor(keyOf(pat), otherKey, requestID); err == nil {
		t.Fatal("an approval with signer == contact validated")
	}
}
