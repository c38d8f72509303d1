package keyshare

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/blockmrs/blockmrs/protocol"
)

// Guardians through real repos and chains: Kim (the ward), her mother
// (guardian), Dr Doc (the clinician the mother grants to), a second
// child of the mother's (another ward), and Mal (a stranger). Every
// verifier — the ward's repo and the clinician's — must refuse each act
// a guardian may not make, however it was written.

type guardianScene struct {
	kim, mum, doc, sib, mal *party
	rec                     cid.Cid
	clock                   *time.Time
}

func newGuardianScene(t *testing.T) *guardianScene {
	t.Helper()
	ctx := context.Background()
	now := time.Now().UTC()
	s := &guardianScene{clock: &now}
	clock := Options{Clock: func() time.Time { return *s.clock }}
	s.kim = newPartyWith(t, "Kim", protocol.RolePatient, clock)
	s.mum = newPartyWith(t, "Mum", protocol.RolePatient, clock)
	s.doc = newPartyWith(t, "Dr Doc", protocol.RoleClinician, clock)
	s.sib = newPartyWith(t, "Sib", protocol.RolePatient, clock)
	s.mal = newPartyWith(t, "Mal", protocol.RolePatient, clock)
	all := []*party{s.kim, s.mum, s.doc, s.sib, s.mal}
	for _, a := range all {
		for _, b := range all {
			if a != b {
				send(t, a, b)
			}
		}
	}
	var err error
	s.rec, err = s.kim.repo.AddRecord(ctx, s.kim.keys, NewRecord{Title: "Vaccinations", Kind: protocol.KindNote, MediaType: "text/plain", Body: strings.NewReader("MMR 2024")})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// sync sends every chain to every verifier (the ward, the guardian and
// the clinician).
func (s *guardianScene) sync(t *testing.T) {
	t.Helper()
	for _, from := range []*party{s.kim, s.mum, s.doc, s.sib, s.mal} {
		for _, to := range []*party{s.kim, s.mum, s.doc} {
			if from != to {
				send(t, from, to)
			}
		}
	}
}

// docReads returns Dr Doc's reader entry for the record as verifier v
// judges it.
func (s *guardianScene) docReads(t *testing.T, v *party) (Reader, Decision) {
	t.Helper()
	a, err := v.repo.AccessFor(context.Background(), s.rec, s.kim.keys.ID)
	if err != nil {
		t.Fatal(err)
	}
	rd, _ := a.Reader(s.doc.keys.ID)
	return rd, readDecision(a, s.doc.keys.ID)
}

// force writes body on p's chain, bypassing every check the repo makes
// before it writes: what a hostile or buggy guardian's node could sign.
func force(t *testing.T, p *party, body protocol.EntryBody) {
	t.Helper()
	e := protocol.NewEntry(body)
	e.Critical = body.EntryType() == protocol.TypeWardRevoke
	p.repo.mu.Lock()
	defer p.repo.mu.Unlock()
	if _, err := p.repo.appendBlock(context.Background(), p.keys, []protocol.Entry{e}); err != nil {
		t.Fatal(err)
	}
}

// forgedGrant is a wardgrant by p for ward of the record to Dr Doc (its
// key bytes need not open: the verifiers must refuse it before that).
func (s *guardianScene) forgedGrant(ward *party) *protocol.WardGrant {
	return &protocol.WardGrant{Ward: keyOf(ward.keys.ID), To: keyOf(s.doc.keys.ID),
		Keys: []protocol.RecordKey{{Record: protocol.NewLink(s.rec), Key: []byte("not a key")}}}
}

func TestGuardianActsAndTheirLimits(t *testing.T) {
	ctx := context.Background()
	s := newGuardianScene(t)
	verifiers := []*party{s.kim, s.doc}
	refusedEverywhere := func(t *testing.T, what string) {
		t.Helper()
		s.sync(t)
		for _, v := range verifiers {
			if _, d := s.docReads(t, v); d.Allow {
				t.Fatalf("%s: %s's repo lets Dr Doc read: %+v", what, v.keys.ID, d)
			}
		}
	}

	// Before any appointment the mother can do nothing for Kim.
	if _, err := s.mum.repo.GrantForWard(ctx, s.mum.keys, s.kim.keys.ID, []cid.Cid{s.rec}, s.doc.keys.ID, time.Time{}); !errors.Is(err, ErrNotGuardian) {
		t.Fatalf("grant before appointment: %v", err)
	}
	force(t, s.mal, s.forgedGrant(s.kim))
	refusedEverywhere(t, "a stranger's wardgrant for Kim")

	// Kim appoints her mother, who reads under the read right.
	if _, err := s.kim.repo.AppointGuardian(ctx, s.kim.keys, s.mum.keys.ID, allRights, s.clock.Add(24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	s.sync(t)
	// Not accepted yet: the mother's node does not act for Kim.
	if _, err := s.mum.repo.GrantForWard(ctx, s.mum.keys, s.kim.keys.ID, []cid.Cid{s.rec}, s.doc.keys.ID, time.Time{}); !errors.Is(err, ErrNotGuardian) || !strings.Contains(err.Error(), "not accepted") {
		t.Fatalf("grant before the accept: %v", err)
	}
	acceptAs(t, s.mum, s.kim.keys.ID)
	s.sync(t)
	if d := reads(t, s.mum, s.rec); d.Rule != RuleReadScope {
		t.Fatalf("the guardian does not read: %+v", d)
	}
	mine, _, err := s.kim.repo.Guardians(ctx, s.kim.keys.ID)
	if err != nil || len(mine) != 1 || mine[0].Guardian != s.mum.keys.ID || !mine[0].Live {
		t.Fatalf("Kim's guardians: %+v, %v", mine, err)
	}
	_, wards, err := s.mum.repo.Guardians(ctx, s.mum.keys.ID)
	if err != nil || len(wards) != 1 || wards[0].Ward != s.kim.keys.ID {
		t.Fatalf("the mother's wards: %+v, %v", wards, err)
	}

	// The appointment makes Mal's forged act count no more.
	refusedEverywhere(t, "a stranger's wardgrant, after the appointment")

	// The mother grants Dr Doc the record; every verifier accepts it and
	// names her.
	if _, err := s.mum.repo.GrantForWard(ctx, s.mum.keys, s.kim.keys.ID, []cid.Cid{s.rec}, s.doc.keys.ID, time.Time{}); err != nil {
		t.Fatal(err)
	}
	s.sync(t)
	for _, v := range verifiers {
		rd, d := s.docReads(t, v)
		if d.Rule != RuleReadGuardian || rd.Guardian != s.mum.keys.ID {
			t.Fatalf("%s's repo: Dr Doc %+v, %+v", v.keys.ID, d, rd)
		}
	}
	if _, data, err := readAll(t, s.doc, s.rec); err != nil || string(data) != "MMR 2024" {
		t.Fatalf("Dr Doc cannot open the record: %q, %v", data, err)
	}

	// The mother revokes it again, as Kim's guardian.
	if _, err := s.mum.repo.RevokeForWard(ctx, s.mum.keys, s.kim.keys.ID, []cid.Cid{s.rec}, s.doc.keys.ID); err != nil {
		t.Fatal(err)
	}
	s.sync(t)
	for _, v := range verifiers {
		if rd, d := s.docReads(t, v); d.Allow {
			t.Fatalf("revoked by the guardian, Dr Doc still reads on %s: %+v", v.keys.ID, d)
		} else if a, _ := v.repo.AccessFor(ctx, s.rec, s.kim.keys.ID); len(a.Revoked) != 1 || a.Revoked[0].Guardian != s.mum.keys.ID {
			t.Fatalf("the revocation does not name the guardian: %+v %+v", a.Revoked, rd)
		}
	}
	// Replayed for another ward: the mother's act names Sib, on Kim's
	// record; every verifier refuses it.
	force(t, s.mum, s.forgedGrant(s.sib))
	refusedEverywhere(t, "a wardgrant naming another ward")

	// Outside the rights: Kim re-appoints her mother with read alone.
	if _, err := s.kim.repo.AppointGuardian(ctx, s.kim.keys, s.mum.keys.ID, []protocol.GuardianRight{protocol.RightRead}, time.Time{}); err != nil {
		t.Fatal(err)
	}
	s.sync(t)
	if _, err := s.mum.repo.GrantForWard(ctx, s.mum.keys, s.kim.keys.ID, []cid.Cid{s.rec}, s.doc.keys.ID, time.Time{}); !errors.Is(err, ErrNotGuardian) {
		t.Fatalf("grant without the right: %v", err)
	}
	g := s.forgedGrant(s.kim)
	key, _, err := s.mum.repo.RecordKey(ctx, s.mum.keys, s.rec)
	if err != nil {
		t.Fatal(err)
	}
	docInfo, _ := s.mum.repo.Account(ctx, s.doc.keys.ID)
	if g.Keys[0].Key, err = wrapKey(key, docInfo); err != nil {
		t.Fatal(err)
	}
	force(t, s.mum, g)
	refusedEverywhere(t, "a grant outside the rights")
	s.sync(t)
	a, _ := s.doc.repo.AccessFor(ctx, s.rec, s.kim.keys.ID)
	if !strings.Contains(strings.Join(a.Problems, "\n"), "does not let") {
		t.Fatalf("the refused act is not reported: %v", a.Problems)
	}

	// After until: all rights again until tomorrow, then the clock moves
	// past it; a grant dated after it is refused (and the repo will not
	// write one).
	if _, err := s.kim.repo.AppointGuardian(ctx, s.kim.keys, s.mum.keys.ID, allRights, s.clock.Add(24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	s.sync(t)
	*s.clock = s.clock.Add(48 * time.Hour)
	if _, err := s.mum.repo.GrantForWard(ctx, s.mum.keys, s.kim.keys.ID, []cid.Cid{s.rec}, s.doc.keys.ID, time.Time{}); !errors.Is(err, ErrNotGuardian) {
		t.Fatalf("grant after until: %v", err)
	}
	force(t, s.mum, g)
	refusedEverywhere(t, "a grant after until")

	// Removal: appointed again (more than the mother accepted last: she
	// accepts again), the mother grants (counts), Kim removes her; the
	// next act is refused everywhere, the one before stands.
	if _, err := s.kim.repo.AppointGuardian(ctx, s.kim.keys, s.mum.keys.ID, allRights, time.Time{}); err != nil {
		t.Fatal(err)
	}
	s.sync(t)
	acceptAs(t, s.mum, s.kim.keys.ID)
	s.sync(t)
	if _, err := s.mum.repo.GrantForWard(ctx, s.mum.keys, s.kim.keys.ID, []cid.Cid{s.rec}, s.doc.keys.ID, time.Time{}); err != nil {
		t.Fatal(err)
	}
	s.sync(t)
	if _, err := s.kim.repo.RemoveGuardian(ctx, s.kim.keys, s.mum.keys.ID); err != nil {
		t.Fatal(err)
	}
	s.sync(t)
	for _, v := range verifiers {
		if _, d := s.docReads(t, v); d.Rule != RuleReadGuardian {
			t.Fatalf("the grant made before the removal no longer stands on %s: %+v", v.keys.ID, d)
		}
	}
	if d := reads(t, s.mum, s.rec); d.Allow {
		t.Fatalf("the removed guardian still reads: %+v", d)
	}
	if _, err := s.mum.repo.RevokeForWard(ctx, s.mum.keys, s.kim.keys.ID, []cid.Cid{s.rec}, s.doc.keys.ID); !errors.Is(err, ErrNotGuardian) {
		t.Fatalf("revoke after removal: %v", err)
	}
	force(t, s.mum, &protocol.WardRevoke{Ward: keyOf(s.kim.keys.ID), From: keyOf(s.doc.keys.ID), Records: []protocol.Link{protocol.NewLink(s.rec)}})
	s.sync(t)
	for _, v := range verifiers {
		if _, d := s.docReads(t, v); d.Rule != RuleReadGuardian {
			t.Fatalf("a revocation after the removal counted on %s: %+v", v.keys.ID, d)
		}
	}
	if _, err := s.kim.repo.RemoveGuardian(ctx, s.kim.keys, s.mum.keys.ID); !errors.Is(err, ErrNotGuardian) {
		t.Fatalf("removing a removed guardian: %v", err)
	}
	mine, _, _ = s.kim.repo.Guardians(ctx, s.kim.keys.ID)
	if len(mine) == 0 || mine[0].Live || mine[0].Before == nil {
		t.Fatalf("after removal Kim's guardians say %+v", mine)
	}
	// verify reports each refused act, on every verifier, and nothing
	// else.
	for _, v := range []*party{s.kim, s.doc} {
		rep, err := v.repo.Verify(ctx, VerifyOptions{})
		if err != nil {
			t.Fatal(err)
		}
		all := strings.Join(rep.Problems, "\n")
		for _, want := range []string{"is not a guardian of the ward", "as the ward, not", "does not let", "at or after the appointment's end", "the ward removed"} {
			if !strings.Contains(all, want) {
				t.Errorf("verify on %s does not report %q: %s", v.keys.ID, want, all)
			}
		}
		if len(rep.Problems) != 5 {
			t.Errorf("verify on %s: %d problems, want the 5 refused acts: %s", v.keys.ID, len(rep.Problems), all)
		}
	}
}
