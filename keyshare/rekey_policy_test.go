package keyshare

import (
	"testing"

	"github.com/ipfs/go-cid"

	"github.com/blockmrs/blockmrs/protocol"
)

// The re-key rules' rows of the policy table (TestPolicyTable): recA is
// the record re-keyed, recB its new version.

var recB = testCID("record B")

// rekey adds a rekey entry by account by (in its block seq) naming the
// claim author wrote in block claimSeq on recA, with recB as new version.
func (x *facts) rekey(by protocol.AccountID, seq uint64, author protocol.AccountID, claimSeq uint64) *facts {
	x.f.Rekeys = append(x.f.Rekeys, rekeyFact{Via: ref(by, seq), Record: recA.String(), Author: author, Block: ref(author, claimSeq).Block, New: recB.String()})
	return x
}

func rekeyPolicyCases() []policyCase {
	// Pat's own record, granted to gp, and (or not) re-keyed by Pat.
	shared := func(rekeyed bool) []*Access {
		x := newFacts().claim(pat, pat, 1).grant(pat, gp, 2, 0)
		if rekeyed {
			x.rekey(pat, 3, pat, 1)
		}
		return x.eval()
	}
	ownClaim := claimFact{Author: pat, Subject: pat, Entry: ref(pat, 1)}
	docClaim := claimFact{Author: doc, Subject: pat, Entry: ref(doc, 1)}
	rk := func(by protocol.AccountID, seq uint64, author protocol.AccountID, claimSeq uint64) *rekeyFact {
		return &rekeyFact{Via: ref(by, seq), Record: recA.String(), Author: author, Block: ref(author, claimSeq).Block, New: recB.String()}
	}
	// The new version's claim: Pat's own record in her block 3.
	newClaim := claimFact{Author: pat, Subject: pat, Entry: ref(pat, 3)}
	keep := func(as []*Access, held bool) Decision {
		d, ok := keepRekeyed(as, vouch(gp), func(cid.Cid) bool { return held })
		if !ok {
			return keepRecord(as, set(gp), set(), vouch(gp))
		}
		return d
	}
	return []policyCase{
		{RuleRekeyBySubject, true,
			func(t *testing.T) Decision { return rekeyMarks(&docClaim, rk(pat, 5, doc, 1)) },
			func(t *testing.T) Decision {
				// the record's author cannot stop the subject's record being served
				return rekeyMarks(&docClaim, rk(doc, 5, doc, 1))
			}},
		{RuleRekeyNotSubject, false,
			func(t *testing.T) Decision {
				// Pat's rekey of another claim on the CID (doc's block 2)
				return rekeyMarks(&docClaim, rk(pat, 5, doc, 2))
			},
			func(t *testing.T) Decision { return rekeyMarks(&ownClaim, rk(pat, 5, pat, 1)) }},
		{RuleRekeyOrigin, true,
			func(t *testing.T) Decision { return rekeyOrigin(&newClaim, rk(pat, 3, pat, 1)) },
			func(t *testing.T) Decision {
				// a rekey entry in another block of Pat's makes nothing her new version
				return rekeyOrigin(&newClaim, rk(pat, 4, pat, 1))
			}},
		{RuleRekeyNoOrigin, false,
			func(t *testing.T) Decision {
				// mal names Pat's record as the new version of his
				return rekeyOrigin(&newClaim, rk(mal, 3, mal, 1))
			},
			func(t *testing.T) Decision { return rekeyOrigin(&newClaim, rk(pat, 3, doc, 1)) }},
		{RuleServeRekeyed, false,
			func(t *testing.T) Decision {
				// not even to Pat's own device
				return serveRecordBlock(actingFor(pat), shared(true), true, vouch(pat))
			},
			func(t *testing.T) Decision { return serveRecordBlock(actingFor(pat), shared(false), true, vouch(pat)) }},
		{RuleWantRekeyed, false,
			func(t *testing.T) Decision {
				return wantRecord(shared(true), gp, true, false, vouch(gp), pendingFacts{})
			},
			func(t *testing.T) Decision {
				return wantRecord(shared(false), gp, true, false, vouch(gp), pendingFacts{})
			}},
		{RuleDropRekeyed, false,
			func(t *testing.T) Decision { return keep(shared(true), true) },
			func(t *testing.T) Decision { return keep(shared(true), false) }},
		{RuleKeepRekeyAwait, true,
			func(t *testing.T) Decision { return keep(shared(true), false) },
			func(t *testing.T) Decision { return keep(shared(true), true) }},
		{RuleExportRekeyed, false,
			func(t *testing.T) Decision { return exportRecord(shared(true), pat, vouch(pat)) },
			func(t *testing.T) Decision { return exportRecord(shared(false), pat, vouch(pat)) }},
	}
}
