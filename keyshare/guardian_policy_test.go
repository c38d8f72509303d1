package keyshare

import (
	"testing"

	"github.com/blockmrs/blockmrs/protocol"
)

// Guardians in the policy's table (TestPolicyTable takes these rows):
// pat is the ward, gp her guardian, mal a stranger, doc a grantee.

var allRights = []protocol.GuardianRight{protocol.RightRead, protocol.RightGrant, protocol.RightRevoke, protocol.RightApprove}

// appoint adds ward's appointment of guardian in ward's block seq, whose
// span starts at the guardian's block from.
func (x *facts) appoint(ward, guardian protocol.AccountID, seq, from uint64, until int64, may ...protocol.GuardianRight) *facts {
	if len(may) == 0 {
		may = allRights
	}
	return x.guardianEvent(ward, guardianEvent{Guardian: guardian, May: may, From: from, Until: until, Via: ref(ward, seq)})
}

// unappoint adds ward's removal of guardian in ward's block seq, cutting
// at the guardian's block before.
func (x *facts) unappoint(ward, guardian protocol.AccountID, seq, before uint64) *facts {
	return x.guardianEvent(ward, guardianEvent{Guardian: guardian, End: true, Before: before, Via: ref(ward, seq)})
}

func (x *facts) guardianEvent(ward protocol.AccountID, ev guardianEvent) *facts {
	if x.f.guardians == nil {
		x.f.guardians = map[protocol.AccountID][]guardianSpan{}
	}
	var evs []guardianEvent
	for _, s := range x.f.guardians[ward] { // rebuild from the spans' events
		evs = append(evs, guardianEvent{Guardian: s.Guardian, May: s.May, From: s.From, Until: s.Until, Via: s.Appointed})
		if s.Closed {
			evs = append(evs, guardianEvent{Guardian: s.Guardian, End: true, Before: s.Before, Via: s.Ended})
		}
	}
	x.f.guardians[ward] = guardianSpans(append(evs, ev))
	return x
}

// wardGrant adds guardian's grant, for ward, of the record to to, in the
// guardian's block seq.
func (x *facts) wardGrant(guardian, ward, to protocol.AccountID, seq uint64) *facts {
	x.f.Keys = append(x.f.Keys, keyFact{To: to, Key: []byte("k"), Via: ref(guardian, seq), Grant: true, Ward: ward})
	return x
}

func (x *facts) wardRevoke(guardian, ward, from protocol.AccountID, seq uint64) *facts {
	x.f.Revokes = append(x.f.Revokes, revokeFact{From: from, Via: ref(guardian, seq), Ward: ward})
	return x
}

func guardianPolicyCases() []policyCase {
	// pat's record; gp appointed at pat's block 2 for gp's blocks from 3
	// on; more adds what else the chains say.
	ward := func(more func(*facts)) []*Access {
		x := newFacts().claim(pat, pat, 1).appoint(pat, gp, 2, 3, 0)
		more(x)
		return x.eval()
	}
	spans := func(more func(*facts)) []guardianSpan {
		x := newFacts().appoint(pat, gp, 2, 3, 0)
		more(x)
		return x.f.guardians[pat]
	}
	act := func(sp []guardianSpan, by protocol.AccountID, seq uint64, right protocol.GuardianRight) Decision {
		d, _ := guardianAct(sp, ref(by, seq), right)
		return d
	}
	none := func(*facts) {}
	cl := &claimFact{Author: pat, Subject: pat, Entry: ref(pat, 1)}
	withSpans := func() *recordFacts {
		return &recordFacts{guardians: map[protocol.AccountID][]guardianSpan{pat: spans(none)}}
	}
	notShared := refuse(RuleChainNotShared, "no record shared")
	return []policyCase{
		{RuleGuardianAct, true,
			func(t *testing.T) Decision { return act(spans(none), gp, 4, protocol.RightGrant) },
			func(t *testing.T) Decision { return act(spans(none), mal, 4, protocol.RightGrant) }},
		{RuleGuardianNone, false,
			func(t *testing.T) Decision { return act(spans(none), mal, 4, protocol.RightGrant) },
			func(t *testing.T) Decision { return act(spans(none), gp, 4, protocol.RightGrant) }},
		{RuleGuardianOtherWard, false,
			func(t *testing.T) Decision {
				// gp's act names doc as its ward, replayed on pat's record
				d, _ := actFor(withSpans(), cl, ref(gp, 4), doc, protocol.RightGrant, "grant")
				return d
			},
			func(t *testing.T) Decision {
				d, _ := actFor(withSpans(), cl, ref(gp, 4), pat, protocol.RightGrant, "grant")
				return d
			}},
		{RuleGuardianEarly, false,
			func(t *testing.T) Decision { return act(spans(none), gp, 2, protocol.RightGrant) },
			func(t *testing.T) Decision { return act(spans(none), gp, 3, protocol.RightGrant) }},
		{RuleGuardianRemoved, false,
			func(t *testing.T) Decision {
				return act(spans(func(x *facts) { x.unappoint(pat, gp, 5, 6) }), gp, 6, protocol.RightGrant)
			},
			func(t *testing.T) Decision {
				return act(spans(func(x *facts) { x.unappoint(pat, gp, 5, 6) }), gp, 5, protocol.RightGrant)
			}},
		{RuleGuardianRight, false,
			func(t *testing.T) Decision {
				sp := newFacts().appoint(pat, gp, 2, 3, 0, protocol.RightRead).f.guardians[pat]
				return act(sp, gp, 4, protocol.RightGrant)
			},
			func(t *testing.T) Decision {
				sp := newFacts().appoint(pat, gp, 2, 3, 0, protocol.RightRead, protocol.RightGrant).f.guardians[pat]
				return act(sp, gp, 4, protocol.RightGrant)
			}},
		{RuleGuardianUntil, false,
			func(t *testing.T) Decision {
				// until is the time of gp's block 5 (ref times are seq × 1000)
				sp := newFacts().appoint(pat, gp, 2, 3, 5000).f.guardians[pat]
				return act(sp, gp, 5, protocol.RightGrant)
			},
			func(t *testing.T) Decision {
				sp := newFacts().appoint(pat, gp, 2, 3, 5000).f.guardians[pat]
				return act(sp, gp, 4, protocol.RightGrant)
			}},
		{RuleReadGuardian, true,
			func(t *testing.T) Decision {
				return readDecision(ward(func(x *facts) { x.wardGrant(gp, pat, doc, 4) })[0], doc)
			},
			func(t *testing.T) Decision {
				// the same grant in gp's block 2, before its span
				return readDecision(ward(func(x *facts) { x.wardGrant(gp, pat, doc, 2) })[0], doc)
			}},
		{RuleChainGuardian, true,
			func(t *testing.T) Decision {
				return serveChainGuardian(actingFor(gp), pat, []protocol.AccountID{gp}, nil, notShared)
			},
			func(t *testing.T) Decision {
				return serveChainGuardian(actingFor(doc), pat, []protocol.AccountID{gp}, nil, notShared)
			}},
	}
}

// Acts a guardian may not make are refused by evaluation, and reported.
func TestGuardianActsInEvaluation(t *testing.T) {
	base := func() *facts { return newFacts().claim(pat, pat, 1).appoint(pat, gp, 2, 3, 0) }
	cases := []struct {
		name  string
		x     *facts
		reads bool
		rule  Rule
	}{
		{"a guardian's grant", base().wardGrant(gp, pat, doc, 4), true, RuleReadGuardian},
		{"a stranger's grant for pat", base().wardGrant(mal, pat, doc, 4), false, RuleReadNone},
		{"a grant for another ward", base().wardGrant(gp, mal, doc, 4), false, RuleReadNone},
		{"a plain grant by the guardian", base().grant(gp, doc, 4, 0), false, RuleReadNone},
		{"after removal", base().unappoint(pat, gp, 5, 5).wardGrant(gp, pat, doc, 5), false, RuleReadNone},
		{"before removal", base().unappoint(pat, gp, 5, 5).wardGrant(gp, pat, doc, 4), true, RuleReadGuardian},
		{"revoked by the guardian", base().grant(pat, doc, 3, 0).wardRevoke(gp, pat, doc, 4), false, RuleReadRevoked},
		{"revoked by a stranger", base().grant(pat, doc, 3, 0).wardRevoke(mal, pat, doc, 4), true, RuleReadGrantee},
		{"the ward grants again after the guardian revoked", base().wardRevoke(gp, pat, doc, 4).grant(pat, doc, 5, 0), true, RuleReadGrantee},
		{"the ward revokes after the guardian granted", base().wardGrant(gp, pat, doc, 4).revoke(pat, doc, 5), false, RuleReadRevoked},
		// gp dates its grant far in the future (block 40: time 40 000);
		// removed at pat's block 6 (time 6 000), that grant takes effect
		// no later than the removal, so pat's revocation after it wins.
		{"a future-dated grant of a removed guardian", base().wardGrant(gp, pat, doc, 40).unappoint(pat, gp, 6, 41).revoke(pat, doc, 7), false, RuleReadRevoked},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := tc.x.eval()[0]
			d := readDecision(a, doc)
			if d.Allow != tc.reads || d.Rule != tc.rule {
				t.Fatalf("doc: %+v, want allow=%v rule %s (problems %v)", d, tc.reads, tc.rule, a.Problems)
			}
			if rd, ok := a.Reader(doc); ok && rd.Via.Account == gp && rd.Guardian != gp {
				t.Fatalf("a reader by gp's act does not name gp: %+v", rd)
			}
		})
	}
}
