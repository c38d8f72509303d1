package keyshare

import (
	"testing"

	"github.com/blockmrs/blockmrs/protocol"
)

// The rows of answerSigner (who may answer an access request) in the
// policy table (TestPolicyTable): doc asked pat; gp is pat's guardian,
// appointed at pat's block 2 for gp's blocks from 3 on; mal a stranger.
func answerPolicyCases() []policyCase {
	answer := func(signer, to protocol.AccountID, next uint64, sp *facts) func(t *testing.T) Decision {
		return func(t *testing.T) Decision {
			f := answerFacts{Asked: pat, Requester: doc, Signer: signer, To: to, SignerNext: ref(signer, next)}
			if sp != nil {
				f.Spans = sp.f.guardians[pat]
			}
			return answerSigner(f)
		}
	}
	appointed := func(may ...protocol.GuardianRight) *facts { return newFacts().appoint(pat, gp, 2, 3, 0, may...) }
	removed := newFacts().appoint(pat, gp, 2, 3, 0).unappoint(pat, gp, 4, 5)
	reappointed := newFacts().appoint(pat, gp, 2, 3, 0).unappoint(pat, gp, 4, 5).appoint(pat, gp, 5, 6, 0)
	return []policyCase{
		// the account asked; a stranger is not
		{RuleAnswerAsked, true, answer(pat, doc, 9, nil), answer(mal, doc, 9, nil)},
		// a guardian with approve; the same guardian without it is not
		{RuleAnswerGuardian, true, answer(gp, doc, 5, appointed()), answer(gp, doc, 5, appointed(protocol.RightRead))},
		// a stranger; the guardian is allowed
		{RuleAnswerNotAsked, false, answer(mal, doc, 5, appointed()), answer(gp, doc, 5, appointed())},
		// a guardian removed, even when the verifier's copy of its chain
		// puts its next block before the cut (block 5); the same guardian
		// appointed again answers
		{RuleAnswerRemoved, false, answer(gp, doc, 4, removed), answer(gp, doc, 6, reappointed)},
		// past the cut, too
		{RuleAnswerRemoved, false, answer(gp, doc, 5, removed), answer(gp, doc, 5, appointed())},
		// an answer to another account than the requester, even by pat
		{RuleAnswerOtherTo, false, answer(pat, mal, 9, nil), answer(pat, doc, 9, nil)},
	}
}
