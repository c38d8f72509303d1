package keyshare

import (
	"testing"

	"github.com/blockmrs/blockmrs/protocol"
)

// Guardian consent in the policy's table (TestPolicyTable takes these
// rows): pat appoints gp at her block 2; gp answers in its own blocks.

// accept and decline are gp's answers, in its block seq, to pat's
// appointment in her block appt.
func accept(appt, seq uint64) consentEvent {
	return consentEvent{Ward: pat, Appointment: ref(pat, appt).Block, Via: ref(gp, seq)}
}

func decline(appt, seq uint64) consentEvent {
	c := accept(appt, seq)
	c.Decline = true
	return c
}

// consentOf decides gp's consent to its latest appointment by pat in x.
func consentOf(x *facts, cs ...consentEvent) Decision {
	spans := x.f.guardians[pat]
	return guardianConsent(spans, latestSpan(spans, gp), cs)
}

func consentPolicyCases() []policyCase {
	appointed := func() *facts { return newFacts().appoint(pat, gp, 2, 3, 0, protocol.RightRead, protocol.RightApprove) }
	// pat appoints gp again in her block 5, with rights may and until.
	again := func(until int64, may ...protocol.GuardianRight) *facts {
		return newFacts().appoint(pat, gp, 2, 3, 1e12, protocol.RightRead, protocol.RightApprove).appoint(pat, gp, 5, 6, until, may...)
	}
	notShared := refuse(RuleChainNotShared, "no record shared")
	served := func(c Decision) Decision {
		return serveChainGuardian(actingFor(pat), gp, nil, map[protocol.AccountID]Decision{pat: c}, notShared)
	}
	return []policyCase{
		{RuleGuardianAccepted, true,
			func(t *testing.T) Decision { return consentOf(appointed(), accept(2, 4)) },
			// an accept of another appointment (a fork, another block) is none of this one's
			func(t *testing.T) Decision { return consentOf(appointed(), accept(7, 4)) }},
		{RuleGuardianNotAccepted, false,
			func(t *testing.T) Decision { return consentOf(appointed()) },
			func(t *testing.T) Decision { return consentOf(appointed(), accept(2, 4)) }},
		{RuleGuardianDeclined, false,
			// declined: the latest answer stands (accepted, then resigned, is
			// guardian/resigned: atkconsentPolicyCases)
			func(t *testing.T) Decision { return consentOf(appointed(), decline(2, 4)) },
			func(t *testing.T) Decision { return consentOf(appointed(), decline(2, 4), accept(2, 6)) }},
		{RuleGuardianCarried, true,
			// fewer rights, an earlier end: the accept of block 2 carries
			func(t *testing.T) Decision { return consentOf(again(5e11, protocol.RightRead), accept(2, 4)) },
			// after a removal, the new appointment is a new offer
			func(t *testing.T) Decision {
				x := newFacts().appoint(pat, gp, 2, 3, 0, protocol.RightRead).unappoint(pat, gp, 4, 5).appoint(pat, gp, 5, 6, 0, protocol.RightRead)
				return consentOf(x, accept(2, 4))
			}},
		{RuleGuardianWidened, false,
			// a new right (grant) needs a new accept
			func(t *testing.T) Decision {
				return consentOf(again(5e11, protocol.RightRead, protocol.RightGrant, protocol.RightApprove), accept(2, 4))
			},
			func(t *testing.T) Decision {
				return consentOf(again(5e11, protocol.RightRead, protocol.RightGrant, protocol.RightApprove), accept(2, 4), accept(5, 7))
			}},
		// The guardian's chain, to the ward's node: only once accepted.
		{RuleGuardianNotAccepted, false,
			func(t *testing.T) Decision { return served(consentOf(appointed())) },
			func(t *testing.T) Decision { return served(consentOf(appointed(), accept(2, 4))) }},
		{RuleChainGuardian, true,
			func(t *testing.T) Decision { return served(consentOf(appointed(), accept(2, 4))) },
			func(t *testing.T) Decision { return served(consentOf(appointed(), decline(2, 5))) }},
	}
}

// A later end (or none) widens an appointment as more rights do.
func TestConsentWidenedByUntil(t *testing.T) {
	for name, until := range map[string]int64{"later end": 2e12, "no end": 0} {
		x := newFacts().appoint(pat, gp, 2, 3, 1e12, protocol.RightRead).appoint(pat, gp, 5, 6, until, protocol.RightRead)
		if d := consentOf(x, accept(2, 4)); d.Allow || d.Rule != RuleGuardianWidened {
			t.Errorf("%s: %+v, want %s", name, d, RuleGuardianWidened)
		}
	}
	same := newFacts().appoint(pat, gp, 2, 3, 1e12, protocol.RightRead).appoint(pat, gp, 5, 6, 1e12, protocol.RightRead)
	if d := consentOf(same, accept(2, 4)); !d.Allow || d.Rule != RuleGuardianCarried {
		t.Errorf("the same rights and end again: %+v, want %s", d, RuleGuardianCarried)
	}
	// A decline of the older appointment does not carry into a new one.
	if d := consentOf(same, decline(2, 4)); d.Allow || d.Rule != RuleGuardianNotAccepted {
		t.Errorf("after a decline, a new appointment: %+v, want %s", d, RuleGuardianNotAccepted)
	}
}
