package keyshare

import (
	"testing"
)

// The rows of the standing-grant re-key rule in the policy table
// (TestPolicyTable): which records ending a standing grant with re-key
// re-keys, judged once the unscope entry is on the chain.

func rekeyScopePolicyCases() []policyCase {
	// A doctor's lab record about Pat that gp read under Pat's lab scope,
	// which Pat ended.
	ended := func() *facts {
		return newFacts().claim(doc, pat, 1).scoped(doc, gp, 1, labScopeT).scope(pat, gp, 2, labScopeT, 0).unscope(pat, gp, 3, labScopeT)
	}
	decide := func(x *facts, subject string) Decision {
		a := x.eval()[0]
		if subject == "mal" {
			return rekeyScopeRecord(a, mal, gp, labScopeT)
		}
		return rekeyScopeRecord(a, pat, gp, labScopeT)
	}
	return []policyCase{
		{RuleRekeyScope, true,
			func(t *testing.T) Decision { return decide(ended(), "pat") },
			func(t *testing.T) Decision {
				// gp still reads it by a grant of the record itself
				return decide(ended().grant(pat, gp, 4, 0), "pat")
			}},
		{RuleRekeyScopeNot, false,
			func(t *testing.T) Decision {
				// the same scope name ended on another subject's chain re-keys nothing of Pat's
				return decide(ended(), "mal")
			},
			func(t *testing.T) Decision { return decide(ended(), "pat") }},
	}
}

// Every way around the standing-grant re-key rule is refused: records
// the grantee still reads, of another subject, under another scope, or
// never read under the ended one.
func TestRekeyScopeRecordAttacks(t *testing.T) {
	for _, tc := range []struct {
		name  string
		facts *facts
		scope string
		allow bool
	}{
		{"read under the ended scope", newFacts().claim(doc, pat, 1).scoped(doc, gp, 1, labScopeT).scope(pat, gp, 2, labScopeT, 0).unscope(pat, gp, 3, labScopeT), labScopeT, true},
		{"the scope is still live", newFacts().claim(doc, pat, 1).scoped(doc, gp, 1, labScopeT).scope(pat, gp, 2, labScopeT, 0), labScopeT, false},
		{"also granted one by one", newFacts().claim(pat, pat, 1).grant(pat, gp, 2, 0).scoped(pat, gp, 3, allScopeT).scope(pat, gp, 2, allScopeT, 0).unscope(pat, gp, 4, allScopeT), allScopeT, false},
		{"a key the author cc'd", newFacts().claim(doc, pat, 1, gp).scope(pat, gp, 2, labScopeT, 0).unscope(pat, gp, 3, labScopeT), labScopeT, false},
		{"still read under another live scope", newFacts().claim(doc, pat, 1).scoped(doc, gp, 1, labScopeT).scoped(pat, gp, 5, allScopeT).scope(pat, gp, 2, labScopeT, 0).scope(pat, gp, 3, allScopeT, 0).unscope(pat, gp, 4, labScopeT), labScopeT, false},
		{"lost under another scope than the one ended", newFacts().claim(doc, pat, 1).scoped(doc, gp, 1, labScopeT).scope(pat, gp, 2, labScopeT, 0).unscope(pat, gp, 3, labScopeT), allScopeT, false},
		{"revoked by CID before the end", newFacts().claim(doc, pat, 1).scoped(doc, gp, 1, labScopeT).scope(pat, gp, 2, labScopeT, 0).revoke(pat, gp, 3).unscope(pat, gp, 4, labScopeT), labScopeT, false},
		// An author's key citing a scope with no grant before its end gave
		// gp the record key all the same: re-keying takes the ciphertext away.
		{"an author's key under a scope ended with no grant", newFacts().claim(doc, pat, 1).scoped(doc, gp, 1, labScopeT).unscope(pat, gp, 3, labScopeT), labScopeT, true},
		{"an unscope on a stranger's chain", newFacts().claim(doc, pat, 1).scoped(doc, gp, 1, labScopeT).scope(pat, gp, 2, labScopeT, 0).unscope(mal, gp, 3, labScopeT), labScopeT, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := rekeyScopeRecord(tc.facts.eval()[0], pat, gp, tc.scope)
			if d.Allow != tc.allow || d.Reason == "" {
				t.Fatalf("got %+v, want allow=%v", d, tc.allow)
			}
			if want := map[bool]Rule{true: RuleRekeyScope, false: RuleRekeyScopeNot}[tc.allow]; d.Rule != want {
				t.Fatalf("rule %s, want %s", d.Rule, want)
			}
		})
	}
	// No access state, or one of no verified chain, re-keys nothing.
	if d := rekeyScopeRecord(nil, pat, gp, labScopeT); d.Allow {
		t.Fatalf("nil access: %+v", d)
	}
	if d := rekeyScopeRecord(&Access{}, pat, gp, labScopeT); d.Allow {
		t.Fatalf("unknown record: %+v", d)
	}
}
