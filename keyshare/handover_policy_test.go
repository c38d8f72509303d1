package keyshare

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/blockmrs/blockmrs/protocol"
)

// handoverPolicyCases are the table rows of Handover (guardian
// handover).
func handoverPolicyCases() []policyCase {
	ward := HandoverFacts{Local: true, Appointed: true, Device: true, Consent: allow(RuleGuardianAccepted, "accepted")}
	with := func(change func(*HandoverFacts)) HandoverFacts {
		f := ward
		change(&f)
		return f
	}
	return []policyCase{
		{RuleHandoverWard, true,
			func(t *testing.T) Decision { return Handover(ward) },
			func(t *testing.T) Decision { return Handover(with(func(f *HandoverFacts) { f.Removed = true })) }},
		{RuleHandoverNotWard, false,
			func(t *testing.T) Decision { return Handover(with(func(f *HandoverFacts) { f.Appointed = false })) },
			func(t *testing.T) Decision { return Handover(ward) }},
	}
}

// Every fact Handover looks at refuses on its own.
func TestHandoverEachFactRefuses(t *testing.T) {
	base := HandoverFacts{Local: true, Appointed: true, Device: true, Consent: allow(RuleGuardianAccepted, "accepted")}
	for name, change := range map[string]func(*HandoverFacts){
		"self":        func(f *HandoverFacts) { f.Self = true },
		"not local":   func(f *HandoverFacts) { f.Local = false },
		"not a ward":  func(f *HandoverFacts) { f.Appointed = false },
		"removed":     func(f *HandoverFacts) { f.Removed = true },
		"other nodes": func(f *HandoverFacts) { f.Device = false },
		"no consent":  func(f *HandoverFacts) { f.Consent = refuse(RuleGuardianNotAccepted, "not accepted") },
	} {
		f := base
		change(&f)
		if d := Handover(f); d.Allow || d.Rule != RuleHandoverNotWard || d.Reason == "" {
			t.Errorf("%s: %+v", name, d)
		}
	}
}

// handoverScene is a mother's repo holding her account, a minor's she
// made on this node (Kim), an account of hers that is nobody's ward
// (Sib) and a contact (Mal).
type handoverScene struct {
	mum, mal *party
	kim, sib *Keys
	self     string
	clock    *time.Time
}

func newHandoverScene(t *testing.T) *handoverScene {
	t.Helper()
	ctx := context.Background()
	now := time.Now().UTC()
	s := &handoverScene{clock: &now, self: newPeerID(t)}
	opts := Options{Clock: func() time.Time { return *s.clock }}
	s.mum = newPartyWith(t, "Mum", protocol.RolePatient, opts)
	s.mal = newPartyWith(t, "Mal", protocol.RolePatient, opts)
	send(t, s.mal, s.mum)
	var err error
	if s.kim, err = s.mum.repo.CreateAccount(ctx, "Kim", protocol.RolePatient, nil, DeviceInfo{PeerID: s.self}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.mum.repo.AppointGuardian(ctx, s.kim, s.mum.keys.ID, protocol.GuardianRights, now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.mum.repo.AcceptWard(ctx, s.mum.keys, s.kim.ID); err != nil { // as guardian create does
		t.Fatal(err)
	}
	if s.sib, err = s.mum.repo.CreateAccount(ctx, "Sib", protocol.RolePatient, nil, DeviceInfo{PeerID: s.self}); err != nil {
		t.Fatal(err)
	}
	return s
}

func (s *handoverScene) decide(t *testing.T, guardian, ward protocol.AccountID, self string) Decision {
	t.Helper()
	f, err := s.mum.repo.HandoverFacts(context.Background(), guardian, ward, self)
	if err != nil {
		t.Fatal(err)
	}
	return Handover(f)
}

// Attacks on the hand-over rule through a real repo: every way of
// handing over an account that is not a ward made here for the acting
// account is refused, and a ward's keys, once forgotten, cannot be
// handed over again.
func TestHandoverAttacks(t *testing.T) {
	ctx := context.Background()
	s := newHandoverScene(t)
	mum, kim := s.mum.keys.ID, s.kim.ID
	if d := s.decide(t, mum, kim, s.self); !d.Allow {
		t.Fatalf("the ward made here: %+v", d)
	}
	// The appointment's end passed: coming of age is when hand-over
	// happens, so it still may.
	*s.clock = s.clock.Add(2 * time.Hour)
	if d := s.decide(t, mum, kim, s.self); !d.Allow {
		t.Fatalf("after the appointment's until: %+v", d)
	}
	*s.clock = s.clock.Add(-2 * time.Hour)
	// Mum resigned: she is not acting as Kim's guardian, so she may not
	// hand Kim over (the web app offers no hand-over then either) until
	// she accepts again.
	if _, _, err := s.mum.repo.DeclineWard(ctx, s.mum.keys, kim); err != nil {
		t.Fatal(err)
	}
	if d := s.decide(t, mum, kim, s.self); d.Allow || !strings.Contains(d.Reason, "declined") {
		t.Fatalf("after resigning: %+v", d)
	}
	if _, _, err := s.mum.repo.AcceptWard(ctx, s.mum.keys, kim); err != nil {
		t.Fatal(err)
	}
	if d := s.decide(t, mum, kim, s.self); !d.Allow {
		t.Fatalf("accepted again: %+v", d)
	}
	for name, c := range map[string]struct {
		guardian, ward protocol.AccountID
		self           string
		want           string
	}{
		"itself":                      {mum, mum, s.self, "itself"},
		"an own account, not a ward":  {mum, s.sib.ID, s.self, "never appointed"},
		"a ward, by another account":  {s.sib.ID, kim, s.self, "never appointed"},
		"a contact's account":         {mum, s.mal.keys.ID, s.self, "not in this repo"},
		"from a node it does not use": {mum, kim, newPeerID(t), "does not declare this node"},
	} {
		if d := s.decide(t, c.guardian, c.ward, c.self); d.Allow || !strings.Contains(d.Reason, c.want) {
			t.Errorf("%s: %+v", name, d)
		}
	}

	// Mal forges an appointment of Mum on his own chain: it is not
	// Kim's chain, so it makes him no ward of hers either way.
	force(t, s.mal, &protocol.GuardianAppoint{To: keyOf(mum), May: protocol.GuardianRights})
	send(t, s.mal, s.mum)
	if d := s.decide(t, mum, s.mal.keys.ID, s.self); d.Allow {
		t.Fatalf("a contact's self-made appointment: %+v", d)
	}

	// The ward removed the guardian: refused.
	if _, err := s.mum.repo.RemoveGuardian(ctx, s.kim, mum); err != nil {
		t.Fatal(err)
	}
	if d := s.decide(t, mum, kim, s.self); d.Allow || !strings.Contains(d.Reason, "removed") {
		t.Fatalf("after the removal: %+v", d)
	}
	// Appointed again: the accept of the removed appointment does not
	// carry over (guardian/not-accepted) until Mum accepts anew. Then
	// handed over (the keys forgotten): a second hand-over, a replay of
	// the first, is refused.
	if _, err := s.mum.repo.AppointGuardian(ctx, s.kim, mum, protocol.GuardianRights, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if d := s.decide(t, mum, kim, s.self); d.Allow || !strings.Contains(d.Reason, "has not accepted") {
		t.Fatalf("appointed again, not accepted: %+v", d)
	}
	if _, _, err := s.mum.repo.AcceptWard(ctx, s.mum.keys, kim); err != nil {
		t.Fatal(err)
	}
	if d := s.decide(t, mum, kim, s.self); !d.Allow {
		t.Fatalf("appointed again: %+v", d)
	}
	if err := s.mum.repo.ForgetKeys(ctx, kim); err != nil {
		t.Fatal(err)
	}
	if d := s.decide(t, mum, kim, s.self); d.Allow || !strings.Contains(d.Reason, "not in this repo") {
		t.Fatalf("after the keys were forgotten: %+v", d)
	}
}

// ForgetKeys leaves the account a contact: no key file nor rotation
// files, not local, not the default; its chain and the guardian
// appointment on it stay, and the repo's other accounts are untouched.
func TestForgetKeys(t *testing.T) {
	ctx := context.Background()
	s := newHandoverScene(t)
	kim := s.kim.ID
	if _, err := s.mum.repo.RotateAge(ctx, s.kim); err != nil {
		t.Fatal(err)
	}
	if names, err := s.mum.repo.rotationFiles(kim); err != nil || len(names) != 1 {
		t.Fatalf("rotation files before: %v %v", names, err)
	}
	if err := s.mum.repo.SetDefault(ctx, kim); err != nil {
		t.Fatal(err)
	}
	before, _ := s.mum.repo.Account(ctx, kim)
	if err := s.mum.repo.ForgetKeys(ctx, kim); err != nil {
		t.Fatal(err)
	}
	after, err := s.mum.repo.Account(ctx, kim)
	if err != nil || after.Local || after.Default || after.Head != before.Head {
		t.Fatalf("after: %+v %v", after, err)
	}
	if _, err := s.mum.repo.Unlock(ctx, kim, nil); err == nil {
		t.Fatal("the forgotten keys still unlock")
	}
	if names, err := s.mum.repo.rotationFiles(kim); err != nil || len(names) != 0 {
		t.Fatalf("rotation files after: %v %v", names, err)
	}
	def, err := s.mum.repo.Resolve(ctx, "", true)
	if err != nil || def.ID == kim || !def.Local {
		t.Fatalf("default after: %+v %v", def, err)
	}
	_, wards, err := s.mum.repo.Guardians(ctx, s.mum.keys.ID)
	if err != nil || len(wards) != 1 || wards[0].Ward != kim {
		t.Fatalf("the appointment after: %+v %v", wards, err)
	}
	if err := s.mum.repo.ForgetKeys(ctx, kim); err != nil {
		t.Fatalf("forgetting again: %v", err)
	}
	if rep, err := s.mum.repo.Verify(ctx, VerifyOptions{}); err != nil || len(rep.Problems) != 0 || len(rep.IndexProblems) != 0 {
		t.Fatalf("verify after: %+v %v", rep, err)
	}
}
