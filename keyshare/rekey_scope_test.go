package keyshare

import (
	"context"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
)

// A re-key keeps a standing grantee's key under its standing grant: the
// GP reads the new version under the scope, and ending the scope ends the
// new version for it as it ended the old (a plain grant would outlive it).
func TestRekeyKeepsTheStandingGrant(t *testing.T) {
	ctx := context.Background()
	s := newStandingScene(t)
	c := s.labRecord(t, s.pat, "Glucose 95 mg/dL")
	if _, _, err := s.pat.repo.GrantScope(ctx, s.pat.keys, s.gp.keys.ID, "patient/Observation.rs?category=laboratory", time.Time{}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.pat.repo.Grant(ctx, s.pat.keys, []cid.Cid{c}, s.clinic.keys.ID, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if d := reads(t, s.gp, c); d.Rule != RuleReadScope {
		// the GP has not the chain yet: read on the patient's repo
		send(t, s.pat, s.gp)
		if d = reads(t, s.gp, c); d.Rule != RuleReadScope {
			t.Fatalf("before the re-key the GP reads by %s", d.Rule)
		}
	}
	out, err := s.pat.repo.Rekey(ctx, s.pat.keys, c, s.clinic.keys.ID)
	if err != nil {
		t.Fatal(err)
	}
	a, err := s.pat.repo.AccessFor(ctx, out.New, s.pat.keys.ID)
	if err != nil {
		t.Fatal(err)
	}
	if d := readDecision(a, s.gp.keys.ID); d.Rule != RuleReadScope {
		t.Fatalf("the GP reads the new version by %s (%s), want %s", d.Rule, d.Reason, RuleReadScope)
	}
	if d := readDecision(a, s.clinic.keys.ID); d.Allow {
		t.Fatalf("the revoked clinic reads the new version: %s", d.Reason)
	}
	if _, err := s.pat.repo.EndScope(ctx, s.pat.keys, s.gp.keys.ID, "patient/Observation.rs?category=laboratory"); err != nil {
		t.Fatal(err)
	}
	if a, err = s.pat.repo.AccessFor(ctx, out.New, s.pat.keys.ID); err != nil {
		t.Fatal(err)
	}
	if d := readDecision(a, s.gp.keys.ID); d.Allow || d.Rule != RuleReadScopeEnded {
		t.Fatalf("after the end the GP reads the new version: %+v", d)
	}
}
