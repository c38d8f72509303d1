package keyshare

import (
	"crypto/ed25519"
	"testing"
	"time"

	"github.com/blockmrs/blockmrs/protocol"
)

// The succession and recovery rules' rows of the policy table
// (TestPolicyTable). pat recovers; doc, gp and a third contact are her
// recovery contacts (threshold 2); mal is a stranger.

func testPriv(n byte) ed25519.PrivateKey {
	seed := make([]byte, ed25519.SeedSize)
	seed[0] = n
	return ed25519.NewKeyFromSeed(seed)
}

var (
	newKey    = testPriv(20).Public().(ed25519.PublicKey) // pat's successor key
	otherKey  = testPriv(21).Public().(ed25519.PublicKey) // another successor
	setupCID  = protocol.BlockCID([]byte("setup block"))
	oldSetup  = protocol.BlockCID([]byte("older setup block"))
	requestID = protocol.RecoveryRequestID([]byte("request"))
)

// recoverySetupFacts is pat's live setup: doc, gp and testAccount(5),
// threshold k.
func recoverySetupFacts(k uint64) *recoveryFacts {
	return &recoveryFacts{Via: EntryRef{Account: pat, Block: setupCID.String(), Seq: 3}, Threshold: k,
		Contacts: [][]byte{keyOf(doc), keyOf(gp), keyOf(testAccount(5))}}
}

// approval is contact n's approval of pat's recovery to key for req under
// the setup in block setup.
func approval(t *testing.T, n byte, key, req []byte, setup protocol.Link) protocol.RecoveryApproval {
	t.Helper()
	a, err := protocol.SignRecoveryApproval(testPriv(n), keyOf(pat), key, req, setup)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// recoveryBlock is pat's block signed by signer holding a succession to
// key with approvals by the contacts numbered by (testAccount numbers).
func recoveryBlock(t *testing.T, signer, key []byte, by ...byte) *protocol.Block {
	t.Helper()
	s := &protocol.Succession{Key: key}
	for _, n := range by {
		s.Request = requestID
		s.Approvals = append(s.Approvals, approval(t, n, key, requestID, protocol.NewLink(setupCID)))
	}
	return signedBy(signer, s)
}

// signedBy is pat's block 4 signed by signer, holding s if not nil.
func signedBy(signer []byte, s *protocol.Succession) *protocol.Block {
	b := &protocol.Block{Version: protocol.BlockVersion, Author: keyOf(pat), Seq: 4,
		Entries: []protocol.Entry{protocol.NewEntry(&protocol.Hide{})}}
	if s != nil {
		b.Entries = []protocol.Entry{protocol.NewSuccessionEntry(s)}
	}
	if string(signer) != string(keyOf(pat)) {
		b.Version, b.Signer = protocol.BlockVersionSuccessor, signer
	}
	return b
}

func patFacts(rec *recoveryFacts) signerFacts {
	return signerFacts{Account: keyOf(pat), Current: keyOf(pat), Recovery: rec}
}

// succeededFacts is pat's chain after a succession to newKey.
func succeededFacts() signerFacts {
	return signerFacts{Account: keyOf(pat), Current: newKey, Retired: [][]byte{keyOf(pat)}}
}

func recoveryPolicyCases() []policyCase {
	return []policyCase{
		{RuleSignerCurrent, true,
			func(t *testing.T) Decision { return blockSigner(patFacts(nil), signedBy(keyOf(pat), nil)) },
			func(t *testing.T) Decision { return blockSigner(patFacts(nil), signedBy(newKey, nil)) }},
		{RuleSignerRetired, false,
			// the old key after the succession
			func(t *testing.T) Decision { return blockSigner(succeededFacts(), signedBy(keyOf(pat), nil)) },
			func(t *testing.T) Decision { return blockSigner(succeededFacts(), signedBy(newKey, nil)) }},
		{RuleSuccessionSigned, true,
			func(t *testing.T) Decision {
				return blockSigner(patFacts(nil), signedBy(keyOf(pat), &protocol.Succession{Key: newKey}))
			},
			func(t *testing.T) Decision {
				// the successor signs its own succession, without approvals
				return blockSigner(patFacts(nil), signedBy(newKey, &protocol.Succession{Key: newKey}))
			}},
		{RuleSuccessionReused, false,
			// back to the retired account key
			func(t *testing.T) Decision {
				return blockSigner(succeededFacts(), signedBy(newKey, &protocol.Succession{Key: keyOf(pat)}))
			},
			func(t *testing.T) Decision {
				return blockSigner(succeededFacts(), signedBy(newKey, &protocol.Succession{Key: otherKey}))
			}},
		{RuleRecoveryApproved, true,
			func(t *testing.T) Decision {
				return blockSigner(patFacts(recoverySetupFacts(2)), recoveryBlock(t, newKey, newKey, 2, 4))
			},
			func(t *testing.T) Decision {
				return blockSigner(patFacts(recoverySetupFacts(2)), recoveryBlock(t, newKey, newKey, 2))
			}},
		{RuleRecoveryNoSetup, false,
			func(t *testing.T) Decision { return blockSigner(patFacts(nil), recoveryBlock(t, newKey, newKey, 2, 4)) },
			func(t *testing.T) Decision {
				return blockSigner(patFacts(recoverySetupFacts(2)), recoveryBlock(t, newKey, newKey, 2, 4))
			}},
		{RuleRecoveryTooFew, false,
			// k−1 contacts
			func(t *testing.T) Decision {
				return blockSigner(patFacts(recoverySetupFacts(3)), recoveryBlock(t, newKey, newKey, 2, 4))
			},
			func(t *testing.T) Decision {
				return blockSigner(patFacts(recoverySetupFacts(3)), recoveryBlock(t, newKey, newKey, 2, 4, 5))
			}},
		{RuleApprovalContact, true,
			func(t *testing.T) Decision { return mayApproveRecovery(recoverySetupFacts(2), keyOf(doc)) },
			func(t *testing.T) Decision { return mayApproveRecovery(nil, keyOf(doc)) }},
		{RuleChainRecovery, true,
			func(t *testing.T) Decision {
				return serveChainToContacts(refuse(RuleChainNotShared, "no record shared"), actingFor(gp), pat, recoverySetupFacts(2))
			},
			func(t *testing.T) Decision {
				// mal is no contact of pat's
				return serveChainToContacts(refuse(RuleChainNotShared, "no record shared"), actingFor(mal), pat, recoverySetupFacts(2))
			}},
		{RuleApprovalStranger, false,
			func(t *testing.T) Decision { return mayApproveRecovery(recoverySetupFacts(2), keyOf(mal)) },
			func(t *testing.T) Decision { return mayApproveRecovery(recoverySetupFacts(2), keyOf(gp)) }},
		// Found by the attack walk: a setup naming pat herself (no honest
		// node writes one) must not let her own key, lost or a thief's,
		// approve her recovery.
		{RuleApprovalStranger, false,
			func(t *testing.T) Decision { return mayApproveRecovery(selfNamingSetup(), keyOf(pat)) },
			func(t *testing.T) Decision { return mayApproveRecovery(selfNamingSetup(), keyOf(gp)) }},
		{RuleRecoveryTooFew, false,
			func(t *testing.T) Decision {
				return blockSigner(patFacts(selfNamingSetup()), recoveryBlock(t, newKey, newKey, 1, 4))
			},
			func(t *testing.T) Decision {
				return blockSigner(patFacts(selfNamingSetup()), recoveryBlock(t, newKey, newKey, 2, 4))
			}},
		// Recovery requests over the network: what a contact's node (doc's)
		// keeps in its inbox.
		{RuleRecoveryInboxKeep, true,
			func(t *testing.T) Decision { return mayKeepRecoveryRequest(inboxFacts(nil)) },
			func(t *testing.T) Decision {
				// a node whose only account is mal
				return mayKeepRecoveryRequest(inboxFacts(func(f *recoveryInboxFacts) { f.Local = [][]byte{keyOf(mal)} }))
			}},
		{RuleRecoveryInboxStranger, false,
			// a stranger's request: pat's chain names no setup here
			func(t *testing.T) Decision {
				return mayKeepRecoveryRequest(inboxFacts(func(f *recoveryInboxFacts) { f.Recovery = nil }))
			},
			func(t *testing.T) Decision { return mayKeepRecoveryRequest(inboxFacts(nil)) }},
		// the account's own node (pat local, named by a forged setup) is no contact
		{RuleRecoveryInboxStranger, false,
			func(t *testing.T) Decision {
				return mayKeepRecoveryRequest(inboxFacts(func(f *recoveryInboxFacts) {
					f.Recovery, f.Local = selfNamingSetup(), [][]byte{keyOf(pat)}
				}))
			},
			func(t *testing.T) Decision {
				return mayKeepRecoveryRequest(inboxFacts(func(f *recoveryInboxFacts) { f.Recovery = selfNamingSetup() }))
			}},
		{RuleRecoveryInboxFull, false,
			// a flood for one account
			func(t *testing.T) Decision {
				return mayKeepRecoveryRequest(inboxFacts(func(f *recoveryInboxFacts) { f.HeldForAccount = MaxRecoveryInboxPerAccount }))
			},
			func(t *testing.T) Decision {
				// the same request again is a redelivery, not one more
				return mayKeepRecoveryRequest(inboxFacts(func(f *recoveryInboxFacts) {
					f.HeldForAccount, f.Known = MaxRecoveryInboxPerAccount, true
				}))
			}},
		{RuleRecoveryInboxFull, false,
			// a flood over many accounts
			func(t *testing.T) Decision {
				return mayKeepRecoveryRequest(inboxFacts(func(f *recoveryInboxFacts) { f.Held = MaxRecoveryInbox }))
			},
			func(t *testing.T) Decision {
				return mayKeepRecoveryRequest(inboxFacts(func(f *recoveryInboxFacts) { f.Held = MaxRecoveryInbox - 1 }))
			}},
		{RuleRecoveryInboxReplay, false,
			// a replay of a request denied here
			func(t *testing.T) Decision {
				return mayKeepRecoveryRequest(inboxFacts(func(f *recoveryInboxFacts) { f.Denied = true }))
			},
			func(t *testing.T) Decision { return mayKeepRecoveryRequest(inboxFacts(nil)) }},
		{RuleRecoveryInboxReplay, false,
			// a denied request re-signed with another time (a new ID, the
			// same new key)
			func(t *testing.T) Decision {
				return mayKeepRecoveryRequest(inboxFacts(func(f *recoveryInboxFacts) { f.DeniedKey = true }))
			},
			func(t *testing.T) Decision { return mayKeepRecoveryRequest(inboxFacts(nil)) }},
		{RuleRecoveryInboxReplay, false,
			// a replay of an old request
			func(t *testing.T) Decision {
				return mayKeepRecoveryRequest(inboxFacts(func(f *recoveryInboxFacts) { f.Age = MaxRecoveryRequestAge + time.Minute }))
			},
			func(t *testing.T) Decision {
				return mayKeepRecoveryRequest(inboxFacts(func(f *recoveryInboxFacts) { f.Age = MaxRecoveryRequestAge - time.Minute }))
			}},
		{RuleRecoveryInboxReplay, false,
			// dated in the future
			func(t *testing.T) Decision {
				return mayKeepRecoveryRequest(inboxFacts(func(f *recoveryInboxFacts) { f.Age = -time.Hour }))
			},
			func(t *testing.T) Decision {
				return mayKeepRecoveryRequest(inboxFacts(func(f *recoveryInboxFacts) { f.Age = -time.Minute }))
			}},
		// Which responses the recovering node adds.
		{RuleRecoveryResponse, true,
			func(t *testing.T) Decision { return responseCounts(t, 2, requestID, protocol.NewLink(setupCID), nil) },
			func(t *testing.T) Decision {
				// mal's response
				return responseCounts(t, 3, requestID, protocol.NewLink(setupCID), nil)
			}},
		{RuleRecoveryResponseOther, false,
			// a response for another request
			func(t *testing.T) Decision {
				other := protocol.RecoveryRequestID([]byte("other"))
				return responseCounts(t, 2, other, protocol.NewLink(setupCID), func(r *protocol.RecoveryResponse) { r.Request = other })
			},
			func(t *testing.T) Decision { return responseCounts(t, 2, requestID, protocol.NewLink(setupCID), nil) }},
		{RuleRecoveryResponseOther, false,
			// a response under an old setup
			func(t *testing.T) Decision { return responseCounts(t, 2, requestID, protocol.NewLink(oldSetup), nil) },
			func(t *testing.T) Decision { return responseCounts(t, 4, requestID, protocol.NewLink(setupCID), nil) }},
		{RuleRecoveryResponseOther, false,
			// a response naming this request whose approval signs another
			func(t *testing.T) Decision {
				return responseCounts(t, 2, protocol.RecoveryRequestID([]byte("other")), protocol.NewLink(setupCID), func(r *protocol.RecoveryResponse) { r.Request = requestID })
			},
			func(t *testing.T) Decision { return responseCounts(t, 2, requestID, protocol.NewLink(setupCID), nil) }},
		// and a succession to the key that signs now, which would leave
		// that key both current and retired
		{RuleSuccessionReused, false,
			func(t *testing.T) Decision {
				return blockSigner(succeededFacts(), signedBy(newKey, &protocol.Succession{Key: newKey}))
			},
			func(t *testing.T) Decision {
				return blockSigner(succeededFacts(), signedBy(newKey, &protocol.Succession{Key: otherKey}))
			}},
	}
}

// inboxFacts are doc's node's as pat's recovery request arrives (a
// fresh request, an empty inbox), changed by edit when not nil.
func inboxFacts(edit func(*recoveryInboxFacts)) recoveryInboxFacts {
	f := recoveryInboxFacts{Recovery: recoverySetupFacts(2), Local: [][]byte{keyOf(mal), keyOf(doc)}, Age: time.Minute}
	if edit != nil {
		edit(&f)
	}
	return f
}

// responseCounts decides contact n's response approving newKey for
// request approved under setup, as the recovery of pat by requestID,
// changed by edit when not nil.
func responseCounts(t *testing.T, n byte, approved []byte, setup protocol.Link, edit func(*protocol.RecoveryResponse)) Decision {
	r := &protocol.RecoveryResponse{Request: approved, Approval: approval(t, n, newKey, approved, setup), Share: []byte("share")}
	if edit != nil {
		edit(r)
	}
	return recoveryResponseCounts(keyOf(pat), recoverySetupFacts(2), requestID, newKey, r, contactSigning{})
}

// selfNamingSetup is pat's setup naming pat herself, doc and gp,
// threshold 2 (a forged or buggy setup: the repo refuses to write one).
func selfNamingSetup() *recoveryFacts {
	return &recoveryFacts{Via: EntryRef{Account: pat, Block: setupCID.String(), Seq: 3}, Threshold: 2,
		Contacts: [][]byte{keyOf(pat), keyOf(doc), keyOf(gp)}}
}

// Attacks on the recovery rule with hand-made approvals: each leaves the
// count below the threshold (2 of doc, gp, #5).
func TestRecoveryApprovalAttacks(t *testing.T) {
	rec := recoverySetupFacts(2)
	good := approval(t, 2, newKey, requestID, protocol.NewLink(setupCID))
	for name, extra := range map[string]protocol.RecoveryApproval{
		"a stranger's approval":          approval(t, 3, newKey, requestID, protocol.NewLink(setupCID)),
		"the same contact twice":         approval(t, 2, newKey, requestID, protocol.NewLink(setupCID)),
		"an approval of another new key": approval(t, 4, otherKey, requestID, protocol.NewLink(setupCID)),
		"an approval of another request": approval(t, 4, newKey, protocol.RecoveryRequestID([]byte("other")), protocol.NewLink(setupCID)),
		"an approval under an old setup": approval(t, 4, newKey, requestID, protocol.NewLink(oldSetup)),
		"a signature by another key": func() protocol.RecoveryApproval {
			a := approval(t, 3, newKey, requestID, protocol.NewLink(setupCID))
			a.Contact = keyOf(gp)
			return a
		}(),
		"an approval for another account": func() protocol.RecoveryApproval {
			a, _ := protocol.SignRecoveryApproval(testPriv(4), keyOf(doc), newKey, requestID, protocol.NewLink(setupCID))
			return a
		}(),
	} {
		t.Run(name, func(t *testing.T) {
			s := &protocol.Succession{Key: newKey, Request: requestID, Approvals: []protocol.RecoveryApproval{good, extra}}
			d := blockSigner(patFacts(rec), signedBy(newKey, s))
			if d.Allow || d.Rule != RuleRecoveryTooFew {
				t.Fatalf("got %+v", d)
			}
		})
	}
	// A contact removed from the setup: the same approvals that counted
	// under a setup naming it count for nothing once it is gone.
	removed := &recoveryFacts{Via: rec.Via, Threshold: 2, Contacts: [][]byte{keyOf(doc), keyOf(testAccount(5))}}
	if d := blockSigner(patFacts(removed), recoveryBlock(t, newKey, newKey, 2, 4)); d.Allow {
		t.Fatalf("approval of a removed contact counted: %+v", d)
	}
	// The block signed by another key than the one the succession names.
	if d := blockSigner(patFacts(rec), recoveryBlock(t, otherKey, newKey, 2, 4)); d.Allow || d.Rule != RuleSignerRetired {
		t.Fatalf("succession signed by another key: %+v", d)
	}
}
