package keyshare

import (
	"testing"
	"time"

	"github.com/blockmrs/blockmrs/protocol"
)

// The attack review of guardian consent in the policy's table
// (TestPolicyTable takes these rows): which guardians a pack tells by
// themselves, what a re-appointment keeps of an accept, and the
// hand-over's consent.

// manyDeclines is an accept of pat's appointment of gp in block 2, then
// 5,000 declines of it.
func manyDeclines() []consentEvent {
	answers := []consentEvent{accept(2, 4)}
	for seq := uint64(5); seq < 5005; seq++ {
		answers = append(answers, decline(2, seq))
	}
	return answers
}

// guardianReads is pat's record, its key wrapped for gp under the read
// right of pat's appointment of gp (GuardianReadScope), given in pat's
// block 2.
func guardianReads() *facts {
	return newFacts().claim(pat, pat, 1).scoped(pat, gp, 1, GuardianReadScope).scope(pat, gp, 2, GuardianReadScope, 0)
}

func atkconsentPolicyCases() []policyCase {
	now := time.UnixMilli(1e12)
	accepted := allow(RuleGuardianAccepted, "gp accepted")
	pending := refuse(RuleGuardianNotAccepted, "gp has not accepted")
	span := guardianSpan{Guardian: gp, May: []protocol.GuardianRight{protocol.RightRead}, From: 3, Appointed: ref(pat, 2)}
	removed := span
	removed.Closed, removed.Before, removed.Ended = true, 5, ref(pat, 4)
	ended := span
	ended.Until = now.Add(-time.Second).UnixMilli()
	// pat appoints gp in block 2 from gp's block 3, and again in block 5
	// from gp's block from.
	again := func(from uint64) *facts {
		return newFacts().appoint(pat, gp, 2, 3, 0, protocol.RightRead).appoint(pat, gp, 5, from, 0, protocol.RightRead)
	}
	// pat removes gp and appoints it again in one block, 4: the removal
	// is its entry 0, the appointment its entry 1.
	sameBlock := func() *facts {
		x := newFacts().appoint(pat, gp, 2, 3, 0, protocol.RightRead, protocol.RightApprove).unappoint(pat, gp, 4, 6)
		re := ref(pat, 4)
		re.Index = 1
		return x.guardianEvent(pat, guardianEvent{Guardian: gp, May: []protocol.GuardianRight{protocol.RightRead}, From: 6, Via: re})
	}
	appointed := func() *facts { return newFacts().appoint(pat, gp, 2, 3, 0, protocol.RightRead, protocol.RightApprove) }
	notShared := refuse(RuleChainNotShared, "no record shared")
	served := func(c Decision) Decision {
		return serveChainGuardian(actingFor(pat), gp, nil, map[protocol.AccountID]Decision{pat: c}, notShared)
	}
	handover := HandoverFacts{Local: true, Appointed: true, Device: true}
	withConsent := func(c Decision) HandoverFacts { f := handover; f.Consent = c; return f }
	return []policyCase{
		{RuleEmergencyNotifyGuardian, true,
			func(t *testing.T) Decision { return emergencyNotifyGuardian(span, accepted, now) },
			func(t *testing.T) Decision { return emergencyNotifyGuardian(span, pending, now) }},
		{RuleEmergencyNotifyNotAccepted, false,
			// declined (or resigned) is no better than pending
			func(t *testing.T) Decision {
				return emergencyNotifyGuardian(span, refuse(RuleGuardianDeclined, "gp declined"), now)
			},
			func(t *testing.T) Decision { return emergencyNotifyGuardian(span, accepted, now) }},
		{RuleEmergencyNotifyEnded, false,
			// an accept does not outlive the removal, nor the until
			func(t *testing.T) Decision { return emergencyNotifyGuardian(removed, accepted, now) },
			func(t *testing.T) Decision { return emergencyNotifyGuardian(span, accepted, now) }},
		{RuleEmergencyNotifyEnded, false,
			func(t *testing.T) Decision { return emergencyNotifyGuardian(ended, accepted, now) },
			func(t *testing.T) Decision { return emergencyNotifyGuardian(ended, accepted, now.Add(-time.Hour)) }},
		// A re-appointment reaching back to earlier blocks of the
		// guardian's chain gives more (acts there would count): widened.
		{RuleGuardianWidened, false,
			func(t *testing.T) Decision { return consentOf(again(1), accept(2, 4)) },
			func(t *testing.T) Decision { return consentOf(again(7), accept(2, 4)) }},
		// A removal and a new appointment in one block: the new one is a
		// new offer, whatever it gives.
		{RuleGuardianNotAccepted, false,
			func(t *testing.T) Decision { return consentOf(sameBlock(), accept(2, 3)) },
			func(t *testing.T) Decision {
				return consentOf(sameBlock(), accept(2, 3), consentEvent{Ward: pat, Appointment: ref(pat, 4).Block, Via: ref(gp, 7)})
			}},
		// Accepted, then declined: a resignation. It counts for nothing on
		// the guardian's side, as a decline does…
		{RuleGuardianResigned, false,
			func(t *testing.T) Decision { return consentOf(appointed(), accept(2, 4), decline(2, 6)) },
			func(t *testing.T) Decision { return consentOf(appointed(), decline(2, 4), accept(2, 6)) }},
		// …as does one of a narrowed appointment that carried the accept…
		{RuleGuardianResigned, false,
			func(t *testing.T) Decision {
				x := newFacts().appoint(pat, gp, 2, 3, 0, protocol.RightRead, protocol.RightApprove).appoint(pat, gp, 5, 6, 0, protocol.RightRead)
				return consentOf(x, accept(2, 4), consentEvent{Ward: pat, Appointment: ref(pat, 5).Block, Decline: true, Via: ref(gp, 7)})
			},
			func(t *testing.T) Decision {
				x := newFacts().appoint(pat, gp, 2, 3, 0, protocol.RightRead, protocol.RightApprove).appoint(pat, gp, 5, 6, 0, protocol.RightRead)
				return consentOf(x, accept(2, 4))
			}},
		// A decline after a resignation, answered again and again, is
		// still a resignation (an accept came before them), decided in
		// one pass over the answers however many there are; an accept
		// after them all stands.
		{RuleGuardianResigned, false,
			func(t *testing.T) Decision { return consentOf(appointed(), manyDeclines()...) },
			func(t *testing.T) Decision {
				return consentOf(appointed(), append(manyDeclines(), accept(2, 6000))...)
			}},
		// Declines with no accept before them are a decline, however
		// many (an accept after them stands)…
		{RuleGuardianDeclined, false,
			func(t *testing.T) Decision { return consentOf(appointed(), decline(2, 4), decline(2, 6)) },
			func(t *testing.T) Decision { return consentOf(appointed(), decline(2, 4), decline(2, 6), accept(2, 7)) }},
		// …and one accept anywhere before the last decline makes it a
		// resignation.
		{RuleGuardianResigned, false,
			func(t *testing.T) Decision {
				return consentOf(appointed(), decline(2, 4), accept(2, 5), decline(2, 6), decline(2, 7))
			},
			func(t *testing.T) Decision {
				return consentOf(appointed(), decline(2, 4), accept(2, 5), decline(2, 6), decline(2, 7), accept(2, 8))
			}},
		// …but the ward's node is still served the guardian's chain, to
		// learn of it; after a decline of an offer never taken, it is not.
		{RuleChainGuardian, true,
			func(t *testing.T) Decision { return served(consentOf(appointed(), accept(2, 4), decline(2, 6))) },
			func(t *testing.T) Decision { return served(consentOf(appointed(), decline(2, 4))) }},
		// …and a second decline after the resignation does not stop it
		// (the ward's node may not have fetched the first yet); declines
		// with no accept before them do.
		{RuleChainGuardian, true,
			func(t *testing.T) Decision {
				return served(consentOf(appointed(), accept(2, 4), decline(2, 6), decline(2, 7)))
			},
			func(t *testing.T) Decision { return served(consentOf(appointed(), decline(2, 4), decline(2, 6))) }},
		// An appointment with read wraps the ward's records for the
		// guardian under GuardianReadScope; until it accepts, its node
		// does not fetch them (after the accept it does)…
		{RuleWantUnaccepted, false,
			func(t *testing.T) Decision {
				return wantRecord(guardianReads().eval(), gp, true, false, vouch(gp), pendingFacts{unaccepted: map[protocol.AccountID]Decision{pat: pending}})
			},
			func(t *testing.T) Decision {
				return wantRecord(guardianReads().eval(), gp, true, false, vouch(gp), pendingFacts{})
			}},
		// …but a record pat granted gp by itself is fetched all the same.
		{RuleWantReader, true,
			func(t *testing.T) Decision {
				x := newFacts().claim(pat, pat, 1).grant(pat, gp, 2, 0)
				return wantRecord(x.eval(), gp, true, false, vouch(gp), pendingFacts{unaccepted: map[protocol.AccountID]Decision{pat: pending}})
			},
			func(t *testing.T) Decision {
				return wantRecord(guardianReads().eval(), gp, true, false, vouch(gp), pendingFacts{unaccepted: map[protocol.AccountID]Decision{pat: pending}})
			}},
		{RuleHandoverNotWard, false,
			func(t *testing.T) Decision { return Handover(withConsent(pending)) },
			func(t *testing.T) Decision { return Handover(withConsent(accepted)) }},
	}
}
