package keyshare

import (
	"testing"
	"time"
)

// pairPolicyCases are the table rows of the pairing rules (PairJoin).
func pairPolicyCases() []policyCase {
	live := PairFacts{Offered: true, Expires: tNow.Add(10 * time.Minute), MaxFailures: 3, ProofOK: true}
	with := func(change func(*PairFacts)) PairFacts {
		f := live
		change(&f)
		return f
	}
	return []policyCase{
		{RulePairAccepted, true,
			func(t *testing.T) Decision { return PairJoin(live, tNow) },
			func(t *testing.T) Decision { return PairJoin(with(func(f *PairFacts) { f.ProofOK = false }), tNow) }},
		{RulePairNoOffer, false,
			func(t *testing.T) Decision { return PairJoin(PairFacts{ProofOK: true}, tNow) },
			func(t *testing.T) Decision { return PairJoin(live, tNow) }},
		{RulePairExpired, false,
			func(t *testing.T) Decision { return PairJoin(live, live.Expires) },
			func(t *testing.T) Decision { return PairJoin(live, live.Expires.Add(-time.Millisecond)) }},
		{RulePairSpent, false,
			func(t *testing.T) Decision { return PairJoin(with(func(f *PairFacts) { f.Failures = 3 }), tNow) },
			func(t *testing.T) Decision { return PairJoin(with(func(f *PairFacts) { f.Failures = 2 }), tNow) }},
		// Found by the attack walk: facts without a failure limit (a
		// caller that forgot it) fail closed instead of allowing endless
		// guesses at the code.
		{RulePairSpent, false,
			func(t *testing.T) Decision {
				return PairJoin(with(func(f *PairFacts) { f.MaxFailures, f.Failures = 0, 1000 }), tNow)
			},
			func(t *testing.T) Decision { return PairJoin(with(func(f *PairFacts) { f.Failures = 0 }), tNow) }},
		{RuleRotationsOwn, true,
			func(t *testing.T) Decision { return ServeRotations(true, true) },
			func(t *testing.T) Decision { return ServeRotations(true, false) }},
		{RuleRotationsNone, false,
			func(t *testing.T) Decision { return ServeRotations(false, true) },
			func(t *testing.T) Decision { return ServeRotations(true, true) }},
		{RulePairWrongCode, false,
			func(t *testing.T) Decision { return PairJoin(with(func(f *PairFacts) { f.ProofOK = false }), tNow) },
			func(t *testing.T) Decision { return PairJoin(live, tNow) }},
	}
}

// A used offer is spent even with the right code, and an expired one
// stays expired: neither is revived by a right proof.
func TestPairJoinSpentBeforeProof(t *testing.T) {
	f := PairFacts{Offered: true, Expires: tNow.Add(time.Minute), Used: true, ProofOK: true, MaxFailures: 3}
	if d := PairJoin(f, tNow); d.Allow || d.Rule != RulePairSpent {
		t.Fatalf("used offer: %+v", d)
	}
	f.Used, f.Failures = false, 5
	if d := PairJoin(f, tNow.Add(time.Hour)); d.Allow || d.Rule != RulePairSpent {
		t.Fatalf("offer with too many failures: %+v", d)
	}
}
