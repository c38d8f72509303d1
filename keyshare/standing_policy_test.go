package keyshare

import (
	"strings"
	"testing"

	"github.com/blockmrs/blockmrs/protocol"
)

// The standing-grant rules beyond the table's pairs: how keys under a
// scope combine with grants, revocations and each other, who may give
// them, and what the serving, fetching and keeping rules make of them.

const (
	labScopeT  = "patient/Observation.rs?category=laboratory"
	allScopeT  = "patient/*.rs"
	fileScopeT = "patient/Binary.rs"
)

// grd is a guardian in the standing-grant cases (gp is the grantee there).
var grd = testAccount(5)

func TestStandingKeysCombine(t *testing.T) {
	for _, tc := range []struct {
		name  string
		facts *facts
		rule  Rule
	}{
		{"an author's key, scope live", newFacts().claim(doc, pat, 1).scoped(doc, gp, 1, labScopeT).scope(pat, gp, 2, labScopeT, 0), RuleReadScope},
		{"the patient's own record, her own key under her scope", newFacts().claim(pat, pat, 1).scoped(pat, gp, 3, labScopeT).scope(pat, gp, 2, labScopeT, 0), RuleReadScope},
		{"a third party's key under a scope the patient gave him", newFacts().claim(pat, pat, 1).scoped(mal, mal, 3, fileScopeT).scope(pat, mal, 2, fileScopeT, 0), RuleReadNone},
		{"the author's scope over the author's own records", newFacts().claim(doc, pat, 1).scoped(doc, gp, 1, labScopeT).scope(doc, gp, 2, labScopeT, 0), RuleReadScopeUnknown},
		{"another patient's scope", newFacts().claim(doc, pat, 1).scoped(doc, gp, 1, labScopeT).scope(mal, gp, 2, labScopeT, 0), RuleReadScopeUnknown},
		{"a scope given to someone else", newFacts().claim(doc, pat, 1).scoped(doc, gp, 1, labScopeT).scope(pat, mal, 2, labScopeT, 0), RuleReadScopeUnknown},
		{"the record revoked from the grantee after the author's key", newFacts().claim(doc, pat, 1).scoped(doc, gp, 1, labScopeT).scope(pat, gp, 2, labScopeT, 0).revoke(pat, gp, 3), RuleReadRevoked},
		{"the patient's key after that revocation", newFacts().claim(doc, pat, 1).scoped(doc, gp, 1, labScopeT).scope(pat, gp, 2, labScopeT, 0).revoke(pat, gp, 3).scoped(pat, gp, 4, labScopeT), RuleReadScope},
		{"an explicit grant outlives the scope's end", newFacts().claim(pat, pat, 1).grant(pat, gp, 2, 0).scoped(pat, gp, 3, allScopeT).scope(pat, gp, 2, allScopeT, 0).unscope(pat, gp, 4, allScopeT), RuleReadGrantee},
		{"an expired grant, a live scope", newFacts().claim(pat, pat, 1).grant(pat, gp, 2, tNow.UnixMilli()).scoped(pat, gp, 4, allScopeT).scope(pat, gp, 3, allScopeT, 0), RuleReadScope},
		{"a key the author cc'd outlives the scope's end", newFacts().claim(doc, pat, 1, gp).scope(pat, gp, 2, labScopeT, 0).unscope(pat, gp, 3, labScopeT), RuleReadGrantee},
		{"one scope ended, another live", newFacts().claim(doc, pat, 1).scoped(doc, gp, 1, labScopeT).scoped(pat, gp, 5, allScopeT).scope(pat, gp, 2, labScopeT, 0).scope(pat, gp, 3, allScopeT, 0).unscope(pat, gp, 4, labScopeT), RuleReadScope},
		{"both ended", newFacts().claim(doc, pat, 1).scoped(doc, gp, 1, labScopeT).scoped(pat, gp, 5, allScopeT).scope(pat, gp, 2, labScopeT, 0).scope(pat, gp, 3, allScopeT, 0).unscope(pat, gp, 4, labScopeT).unscope(pat, gp, 6, allScopeT), RuleReadScopeEnded},
		{"a guardian's revocation after the author's key", newFacts().claim(doc, pat, 1).scoped(doc, gp, 1, labScopeT).scope(pat, gp, 2, labScopeT, 0).appoint(pat, grd, 3, 1, 0).wardRevoke(grd, pat, gp, 4), RuleReadRevoked},
		{"the patient's key after a guardian's revocation", newFacts().claim(doc, pat, 1).scoped(doc, gp, 1, labScopeT).scope(pat, gp, 2, labScopeT, 0).appoint(pat, grd, 3, 1, 0).wardRevoke(grd, pat, gp, 4).scoped(pat, gp, 6, labScopeT), RuleReadScope},
		{"a guardian without the revoke right leaves the key", newFacts().claim(doc, pat, 1).scoped(doc, gp, 1, labScopeT).scope(pat, gp, 2, labScopeT, 0).appoint(pat, grd, 3, 1, 0, protocol.RightRead).wardRevoke(grd, pat, gp, 4), RuleReadScope},
		{"a stranger's revocation leaves the key", newFacts().claim(doc, pat, 1).scoped(doc, gp, 1, labScopeT).scope(pat, gp, 2, labScopeT, 0).wardRevoke(grd, pat, gp, 4), RuleReadScope},
		{"a removed guardian's revocation leaves the key", newFacts().claim(doc, pat, 1).scoped(doc, gp, 1, labScopeT).scope(pat, gp, 2, labScopeT, 0).appoint(pat, grd, 3, 1, 0).unappoint(pat, grd, 4, 3).wardRevoke(grd, pat, gp, 5), RuleReadScope},
		{"ended, then expired grant again", newFacts().claim(pat, pat, 1).scoped(pat, gp, 3, allScopeT).scope(pat, gp, 2, allScopeT, 0).unscope(pat, gp, 4, allScopeT).scope(pat, gp, 5, allScopeT, tNow.UnixMilli()), RuleReadScopeExpired},
	} {
		t.Run(tc.name, func(t *testing.T) {
			as := tc.facts.eval()
			d := readDecision(as[0], gpOr(tc.name))
			if d.Rule != tc.rule {
				t.Fatalf("got %+v, want %s", d, tc.rule)
			}
		})
	}
}

// gpOr is the account a case asks about: gp, or mal where the case is
// mal's own attempt.
func gpOr(name string) protocol.AccountID {
	if strings.Contains(name, "third party") {
		return mal
	}
	return gp
}

// The problems a verifier reports: keys under a scope by a third party, or
// citing a scope never given; a key under an ended scope is no problem.
func TestStandingProblems(t *testing.T) {
	problems := func(x *facts) string { return strings.Join(x.eval()[0].Problems, "\n") }
	if p := problems(newFacts().claim(pat, pat, 1).scoped(mal, gp, 3, allScopeT).scope(pat, gp, 2, allScopeT, 0)); !strings.Contains(p, "only the record's author or subject") {
		t.Errorf("a third party's key: %q", p)
	}
	if p := problems(newFacts().claim(doc, pat, 1).scoped(doc, gp, 1, labScopeT)); !strings.Contains(p, "never gave") {
		t.Errorf("a key citing no grant: %q", p)
	}
	if p := problems(newFacts().claim(doc, pat, 1).scoped(doc, gp, 1, labScopeT).scope(pat, gp, 2, labScopeT, 0).unscope(pat, gp, 3, labScopeT)); p != "" {
		t.Errorf("a key under an ended scope reported: %q", p)
	}
}

// Ending the scope ends serving and makes the grantee's node drop the
// record; the grantee's node fetches it while the scope is live; the
// ended scope still opens the patient's chain to the grantee, so that it
// learns of the end.
func TestStandingServingKeepingFetching(t *testing.T) {
	live := newFacts().claim(doc, pat, 1).scoped(doc, gp, 1, labScopeT).ack(pat, doc, 2, 1).scope(pat, gp, 3, labScopeT, 0)
	ended := newFacts().claim(doc, pat, 1).scoped(doc, gp, 1, labScopeT).ack(pat, doc, 2, 1).scope(pat, gp, 3, labScopeT, 0).unscope(pat, gp, 4, labScopeT)
	for _, node := range []vouchSet{vouch(pat), vouch(doc), {pat: vouchReplica}} {
		if d := serveRecordBlock(actingFor(gp), live.eval(), true, node); !d.Allow {
			t.Errorf("live scope, node %v: %+v", node, d)
		}
		if d := serveRecordBlock(actingFor(gp), ended.eval(), true, node); d.Allow {
			t.Errorf("ended scope, node %v: served: %+v", node, d)
		}
	}
	if d := wantRecord(live.eval(), gp, true, false, vouch(gp), pendingFacts{}); d.Rule != RuleWantReader {
		t.Errorf("gp's node does not fetch under a live scope: %+v", d)
	}
	if d := keepRecord(ended.eval(), set(gp), set(), vouch(gp)); d.Rule != RuleDropRevoked {
		t.Errorf("gp's node keeps the record after the end: %+v", d)
	}
	if d := keepRecord(live.eval(), set(gp), set(), vouch(gp)); d.Rule != RuleKeepNeeded {
		t.Errorf("gp's node drops the record under a live scope: %+v", d)
	}
	endedEvs := []scopeEvent{{To: gp, Scope: labScopeT, Via: ref(pat, 3)}, {To: gp, Scope: labScopeT, End: true, Via: ref(pat, 4)}}
	if d := serveChain(actingFor(gp), pat, nil, endedEvs, vouch(pat)); d.Rule != RuleChainScope {
		t.Errorf("an ended scope closes the patient's chain to the grantee: %+v", d)
	}
	// The author's chain is served to the grantee who reads its record.
	shared := map[protocol.AccountID][]*Access{gp: live.eval()}
	if d := serveChain(actingFor(gp), doc, shared, nil, vouch(pat)); d.Rule != RuleChainShared {
		t.Errorf("the author's chain to the grantee: %+v", d)
	}
}

func TestCoverRecord(t *testing.T) {
	evs := []scopeEvent{{To: gp, Scope: labScopeT, Via: ref(pat, 2)}}
	ended := append(append([]scopeEvent{}, evs...), scopeEvent{To: gp, Scope: labScopeT, End: true, Via: ref(pat, 3)})
	pending := newFacts().claim(doc, pat, 1).eval()[0]
	acked := newFacts().claim(doc, pat, 1).ack(pat, doc, 2, 1).eval()[0]
	revoked := newFacts().claim(pat, pat, 1).grant(pat, gp, 2, 0).revoke(pat, gp, 3).eval()[0]
	reads := newFacts().claim(pat, pat, 1).grant(pat, gp, 2, 0).eval()[0]
	for _, tc := range []struct {
		name  string
		a     *Access
		to    protocol.AccountID
		evs   []scopeEvent
		in    bool
		allow bool
	}{
		{"at creation, live, in scope", nil, gp, evs, true, true},
		{"at creation, out of scope", nil, gp, evs, false, false},
		{"at creation, ended", nil, gp, ended, true, false},
		{"at creation, never given", nil, mal, evs, true, false},
		{"to the subject", nil, pat, evs, true, false},
		{"an acknowledged claim", acked, gp, evs, true, true},
		{"a pending claim", pending, gp, evs, true, false},
		{"revoked from the grantee", revoked, gp, evs, true, false},
		{"the grantee reads already", reads, gp, evs, true, false},
	} {
		d := coverRecord(tc.a, pat, tc.to, labScopeT, tc.evs, tc.in, tNow)
		if d.Allow != tc.allow || (d.Rule != RuleCoverScope && d.Rule != RuleCoverNot) || d.Reason == "" {
			t.Errorf("%s: %+v, want allow=%v", tc.name, d, tc.allow)
		}
	}
}
