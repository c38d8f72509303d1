package keyshare

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/blockmrs/blockmrs/protocol"
)

// Standing grants through real repos and chains: a patient, her GP (the
// grantee), a clinic that knows the GP and one that does not, each with
// a declared node.

type standingScene struct {
	pat, gp, clinic, lab *party
	node                 map[*party]string
}

func newStandingScene(t *testing.T) *standingScene {
	ctx := context.Background()
	s := &standingScene{
		pat:    newParty(t, "Pat", protocol.RolePatient),
		gp:     newParty(t, "Dr GP", protocol.RoleClinician),
		clinic: newParty(t, "Clinic", protocol.RoleClinic),
		lab:    newParty(t, "Lab", protocol.RoleClinic),
		node:   map[*party]string{},
	}
	for _, p := range []*party{s.pat, s.gp, s.clinic, s.lab} {
		s.node[p] = newPeerID(t)
		if _, err := p.repo.SetDevice(ctx, p.keys, s.node[p], "", false); err != nil {
			t.Fatal(err)
		}
	}
	// Everybody knows the patient and she knows everybody; the clinic
	// knows the GP, the lab does not.
	for _, p := range []*party{s.gp, s.clinic, s.lab} {
		send(t, p, s.pat)
		send(t, s.pat, p)
	}
	send(t, s.gp, s.clinic)
	return s
}

// labRecord adds a laboratory Observation by author about the patient.
func (s *standingScene) labRecord(t *testing.T, author *party, title string) cid.Cid {
	t.Helper()
	return s.addFHIR(t, author, title, "laboratory")
}

func (s *standingScene) addFHIR(t *testing.T, author *party, title, category string) cid.Cid {
	t.Helper()
	c, err := author.repo.AddRecord(context.Background(), author.keys, NewRecord{Title: title, Kind: protocol.KindFHIR,
		MediaType: "application/fhir+json", Subject: s.pat.keys.ID, Body: strings.NewReader(observation),
		FHIR: &protocol.Clinical{ResourceType: "Observation", Category: []string{category}}})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// reads tells whether p may read c by its repo's view, and by which rule.
func reads(t *testing.T, p *party, c cid.Cid) Decision {
	t.Helper()
	a, err := p.repo.AccessFor(context.Background(), c, p.keys.ID)
	if err != nil {
		t.Fatal(err)
	}
	return readDecision(a, p.keys.ID)
}

// opens checks that p's key opens c (its envelope) with p's repo.
func opens(t *testing.T, p *party, c cid.Cid) error {
	t.Helper()
	_, _, err := p.repo.Envelope(context.Background(), p.keys, c)
	return err
}

// authorWritten delivers an author's record to the patient, who
// acknowledges it and covers it for her standing grantees, as her node
// does when it arrives.
func (s *standingScene) authorWritten(t *testing.T, author *party, c cid.Cid) int {
	t.Helper()
	ctx := context.Background()
	send(t, author, s.pat)
	if n, err := s.pat.repo.Acknowledge(ctx, s.pat.keys, c); err != nil || n != 1 {
		t.Fatalf("acknowledge: %d, %v", n, err)
	}
	n, err := s.pat.repo.CoverStanding(ctx, s.pat.keys, c)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestStandingGrantCoversPresentAndFutureRecords(t *testing.T) {
	ctx := context.Background()
	s := newStandingScene(t)
	const lab = "patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory"

	// Present records: a lab result, a vital sign and a note of hers.
	old := s.labRecord(t, s.pat, "HbA1c")
	vital := s.addFHIR(t, s.pat, "Pulse", "vital-signs")
	note, err := s.pat.repo.AddRecord(ctx, s.pat.keys, NewRecord{Title: "Diary", Kind: protocol.KindNote, MediaType: "text/plain", Body: strings.NewReader("private")})
	if err != nil {
		t.Fatal(err)
	}
	block, covered, err := s.pat.repo.GrantScope(ctx, s.pat.keys, s.gp.keys.ID, lab, time.Time{})
	if err != nil || covered != 1 || !block.Defined() {
		t.Fatalf("grant scope: block %s, %d covered, %v", block, covered, err)
	}
	send(t, s.pat, s.gp)
	if d := reads(t, s.gp, old); d.Rule != RuleReadScope {
		t.Fatalf("the GP cannot read the present lab result: %+v", d)
	}
	if err := opens(t, s.gp, old); err != nil {
		t.Fatalf("the GP's key does not open it: %v", err)
	}
	for _, c := range []cid.Cid{vital, note} {
		if d := reads(t, s.gp, c); d.Allow {
			t.Fatalf("the GP reads a record outside the scope: %+v", d)
		}
	}
	given, _, err := s.pat.repo.StandingGrants(ctx, s.pat.keys.ID)
	if err != nil || len(given) != 1 || given[0].Scope != "patient/Observation.rs?category=laboratory" || !given[0].Live || given[0].To != s.gp.keys.ID {
		t.Fatalf("standing grants given: %+v, %v", given, err)
	}
	_, received, err := s.gp.repo.StandingGrants(ctx, s.gp.keys.ID)
	if err != nil || len(received) != 1 || received[0].From != s.pat.keys.ID {
		t.Fatalf("standing grants received by the GP: %+v, %v", received, err)
	}

	// A future record by the clinic, which sees the scope on her chain
	// and knows the GP: it wraps the key for the GP itself.
	send(t, s.pat, s.clinic)
	byClinic := s.labRecord(t, s.clinic, "Cholesterol")
	if n := s.authorWritten(t, s.clinic, byClinic); n != 0 {
		t.Fatalf("the patient's node covered %d keys the clinic had given", n)
	}
	// A future record by the lab, which does not know the GP: her node
	// gives the key.
	byLab := s.labRecord(t, s.lab, "Ferritin")
	if n := s.authorWritten(t, s.lab, byLab); n != 1 {
		t.Fatalf("the patient's node covered %d keys, want 1", n)
	}
	// A non-laboratory record by the clinic is not shared.
	clinicNote, err := s.clinic.repo.AddRecord(ctx, s.clinic.keys, NewRecord{Title: "Letter", Kind: protocol.KindNote, MediaType: "text/plain", Subject: s.pat.keys.ID, Body: strings.NewReader("x")})
	if err != nil {
		t.Fatal(err)
	}
	if n := s.authorWritten(t, s.clinic, clinicNote); n != 0 {
		t.Fatalf("a note was covered by the laboratory scope (%d keys)", n)
	}
	for _, author := range []*party{s.clinic, s.lab, s.pat} {
		send(t, author, s.gp)
	}
	for _, c := range []cid.Cid{byClinic, byLab} {
		if d := reads(t, s.gp, c); d.Rule != RuleReadScope {
			t.Fatalf("the GP cannot read a future lab result %s: %+v", c, d)
		}
		if err := opens(t, s.gp, c); err != nil {
			t.Fatalf("the GP's key does not open %s: %v", c, err)
		}
	}
	if d := reads(t, s.gp, clinicNote); d.Allow {
		t.Fatalf("the GP reads the clinic's note: %+v", d)
	}
	// The patient's own node serves the GP's node every covered record.
	for _, c := range []cid.Cid{old, byClinic, byLab} {
		if ok, why, err := mayServe(ctx, s.pat.repo, s.node[s.gp], c); err != nil || !ok {
			t.Fatalf("the patient's node refuses %s to the GP: %s %v", c, why, err)
		}
	}
	mustVerify(t, s.pat)

	// Ending the scope: one entry; the GP loses every record it covered,
	// whoever gave the key, on every node holding her chain.
	if _, err := s.pat.repo.EndScope(ctx, s.pat.keys, s.gp.keys.ID, lab); err != nil {
		t.Fatal(err)
	}
	send(t, s.pat, s.gp)
	send(t, s.pat, s.clinic)
	for _, c := range []cid.Cid{old, byClinic, byLab} {
		if d := reads(t, s.gp, c); d.Rule != RuleReadScopeEnded {
			t.Fatalf("the GP still reads %s after the end: %+v", c, d)
		}
		if ok, why, _ := mayServe(ctx, s.pat.repo, s.node[s.gp], c); ok {
			t.Fatalf("the patient's node serves %s after the end: %s", c, why)
		}
	}
	if ok, why, _ := mayServe(ctx, s.clinic.repo, s.node[s.gp], byClinic); ok {
		t.Fatalf("the clinic's node serves its record to the GP after the end: %s", why)
	}
	// A record written after the end is wrapped for nobody.
	later := s.labRecord(t, s.clinic, "LDL")
	if n := s.authorWritten(t, s.clinic, later); n != 0 {
		t.Fatalf("covered %d keys after the end", n)
	}
	send(t, s.clinic, s.gp)
	if d := reads(t, s.gp, later); d.Allow {
		t.Fatalf("the GP reads a record written after the end: %+v", d)
	}
	given, _, _ = s.pat.repo.StandingGrants(ctx, s.pat.keys.ID)
	if len(given) != 1 || given[0].Live || given[0].Ended == nil {
		t.Fatalf("the ended grant is listed as %+v", given)
	}
	if _, err := s.pat.repo.EndScope(ctx, s.pat.keys, s.gp.keys.ID, lab); !errors.Is(err, ErrNoStanding) {
		t.Fatalf("ending it twice: %v", err)
	}
	mustVerify(t, s.pat)
	mustVerify(t, s.gp)
}

// Hidden records are not in standing grants, and the patient's node
// never covers a claim she has not acknowledged.
func TestStandingGrantHiddenAndPending(t *testing.T) {
	ctx := context.Background()
	s := newStandingScene(t)
	rec := s.labRecord(t, s.pat, "HbA1c")
	if _, err := s.pat.repo.Hide(ctx, s.pat.keys, []cid.Cid{rec}, true); err != nil {
		t.Fatal(err)
	}
	if _, n, err := s.pat.repo.GrantScope(ctx, s.pat.keys, s.gp.keys.ID, "patient/*.rs", time.Time{}); err != nil || n != 0 {
		t.Fatalf("a hidden record was covered: %d, %v", n, err)
	}
	if _, err := s.pat.repo.Hide(ctx, s.pat.keys, []cid.Cid{rec}, false); err != nil {
		t.Fatal(err)
	}
	if n, err := s.pat.repo.CoverStanding(ctx, s.pat.keys); err != nil || n != 1 {
		t.Fatalf("the shown record is not covered: %d, %v", n, err)
	}
	// Hidden again, the key she gave stops counting.
	if _, err := s.pat.repo.Hide(ctx, s.pat.keys, []cid.Cid{rec}, true); err != nil {
		t.Fatal(err)
	}
	send(t, s.pat, s.gp)
	if d := reads(t, s.gp, rec); d.Rule != RuleReadScopeHidden {
		t.Fatalf("the GP reads a hidden record: %+v", d)
	}

	pending := s.labRecord(t, s.lab, "Ferritin")
	send(t, s.lab, s.pat)
	if n, err := s.pat.repo.CoverStanding(ctx, s.pat.keys, pending); err != nil || n != 0 {
		t.Fatalf("an unacknowledged claim was covered: %d, %v", n, err)
	}
}

func TestGrantScopeRefuses(t *testing.T) {
	ctx := context.Background()
	s := newStandingScene(t)
	stranger := newParty(t, "Stranger", protocol.RoleClinician)
	for _, tc := range []struct {
		name    string
		to      protocol.AccountID
		scope   string
		expires time.Time
		says    string
	}{
		{"write scope", s.gp.keys.ID, "patient/Observation.cruds", time.Time{}, "only lets the grantee read"},
		{"user scope", s.gp.keys.ID, "user/*.rs", time.Time{}, "not supported"},
		{"to herself", s.pat.keys.ID, "patient/*.rs", time.Time{}, "yourself"},
		{"an unknown account", stranger.keys.ID, "patient/*.rs", time.Time{}, "unknown account"},
		{"expired", s.gp.keys.ID, "patient/*.rs", time.Now().Add(-time.Hour), "past"},
	} {
		head := s.pat.repo.mustHead(t, s.pat.keys.ID)
		if _, _, err := s.pat.repo.GrantScope(ctx, s.pat.keys, tc.to, tc.scope, tc.expires); err == nil || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.says)
		}
		if s.pat.repo.mustHead(t, s.pat.keys.ID) != head {
			t.Errorf("%s: a block was written", tc.name)
		}
	}
	if _, err := s.pat.repo.EndScope(ctx, s.pat.keys, s.gp.keys.ID, "patient/*.rs"); !errors.Is(err, ErrNoStanding) {
		t.Errorf("ending a grant never made: %v", err)
	}
}

// Attacks: keys under a scope that only look like a standing grant.
func TestStandingGrantAttacks(t *testing.T) {
	ctx := context.Background()
	s := newStandingScene(t)
	mal := newParty(t, "Mal", protocol.RoleClinician)
	malNode := newPeerID(t)
	if _, err := mal.repo.SetDevice(ctx, mal.keys, malNode, "", false); err != nil {
		t.Fatal(err)
	}
	send(t, mal, s.pat)
	send(t, s.pat, mal)
	const lab = "patient/Observation.rs?category=laboratory"

	// 1. The clinic writes a record about the patient and, beside it, a
	// key for Mal under a laboratory scope the patient never gave him.
	// 2. The clinic also "grants" Mal that scope on its own chain.
	rec := s.labRecord(t, s.clinic, "Cholesterol")
	key, _, err := s.clinic.repo.RecordKey(ctx, s.clinic.keys, rec)
	if err != nil {
		t.Fatal(err)
	}
	malInfo, _ := s.clinic.repo.Account(ctx, mal.keys.ID)
	if malInfo.ID == "" {
		send(t, mal, s.clinic)
		malInfo, _ = s.clinic.repo.Account(ctx, mal.keys.ID)
	}
	w, err := wrapKey(key, malInfo)
	if err != nil {
		t.Fatal(err)
	}
	appendTo(t, s.clinic,
		protocol.NewEntry(&protocol.ScopeGrant{To: keyOf(mal.keys.ID), Scope: lab}),
		protocol.NewEntry(&protocol.ScopedKeys{To: keyOf(mal.keys.ID), Scope: lab, Keys: []protocol.RecordKey{{Record: protocol.NewLink(rec), Key: w}}}))
	s.authorWritten(t, s.clinic, rec)
	send(t, s.clinic, mal)
	send(t, s.pat, mal)
	for _, r := range []*Repo{s.pat.repo, mal.repo} {
		a, err := r.AccessFor(ctx, rec, mal.keys.ID)
		if err != nil {
			t.Fatal(err)
		}
		if d := readDecision(a, mal.keys.ID); d.Rule != RuleReadScopeUnknown {
			t.Fatalf("a key citing a scope the patient never gave: %+v", d)
		}
	}
	if ok, why, _ := mayServe(ctx, s.pat.repo, malNode, rec); ok {
		t.Fatalf("the patient's node serves Mal under a scope she never gave: %s", why)
	}

	// 3. Another patient gave Mal the laboratory scope over her records;
	// the clinic's key for Mal on this patient's record cites it.
	other := newParty(t, "Other", protocol.RolePatient)
	send(t, mal, other)
	if _, _, err := other.repo.GrantScope(ctx, other.keys, mal.keys.ID, lab, time.Time{}); err != nil {
		t.Fatal(err)
	}
	send(t, other, s.pat)
	if a, _ := s.pat.repo.AccessFor(ctx, rec, mal.keys.ID); readDecision(a, mal.keys.ID).Allow {
		t.Fatal("another patient's scope opens this patient's record")
	}

	// 4. The patient gives Mal a scope of her files; Mal writes, on his
	// own chain, a key for himself to her lab record under it.
	if _, _, err := s.pat.repo.GrantScope(ctx, s.pat.keys, mal.keys.ID, "patient/Binary.rs", time.Time{}); err != nil {
		t.Fatal(err)
	}
	appendTo(t, mal, protocol.NewEntry(&protocol.ScopedKeys{To: keyOf(mal.keys.ID), Scope: "patient/Binary.rs",
		Keys: []protocol.RecordKey{{Record: protocol.NewLink(rec), Key: w}}}))
	send(t, mal, s.pat)
	if a, _ := s.pat.repo.AccessFor(ctx, rec, mal.keys.ID); readDecision(a, mal.keys.ID).Allow {
		t.Fatal("a key Mal gave himself under her scope counts")
	}
	if ok, why, _ := mayServe(ctx, s.pat.repo, malNode, rec); ok {
		t.Fatalf("served to Mal: %s", why)
	}
	// Her files scope opens her chain to Mal (he must see it end), but
	// no one else's (the clinic's "scope" opens the clinic's own chain to
	// him: that is the clinic's say).
	if ok, why, _ := mayServe(ctx, s.pat.repo, malNode, s.pat.repo.mustHead(t, s.pat.keys.ID)); !ok {
		t.Fatalf("her chain is refused to her grantee: %s", why)
	}
	if ok, why, _ := mayServe(ctx, s.pat.repo, malNode, s.pat.repo.mustHead(t, s.lab.keys.ID)); ok {
		t.Fatalf("the lab's chain is served to Mal: %s", why)
	}
	mustVerifyProblems(t, s.pat, "never gave", "only the record's author or subject")
}

// A replica of the patient, which holds her chain and the ciphertext and
// opens nothing, stops serving the GP the record the moment her end of
// the scope reaches it: it needs no envelope to tell.
func TestStandingGrantEndOnReplica(t *testing.T) {
	ctx := context.Background()
	s := newStandingScene(t)
	replica := newParty(t, "Replica host", protocol.RoleClinic)
	repNode := newPeerID(t)
	if _, err := s.pat.repo.SetReplica(ctx, s.pat.keys, repNode, "backup", false); err != nil {
		t.Fatal(err)
	}
	rec := s.labRecord(t, s.pat, "HbA1c")
	if _, n, err := s.pat.repo.GrantScope(ctx, s.pat.keys, s.gp.keys.ID, "patient/Observation.rs", time.Time{}); err != nil || n != 1 {
		t.Fatalf("grant: %d %v", n, err)
	}
	replica.repo.SetNodeID(repNode)
	send(t, s.gp, replica)
	var car bytes.Buffer
	if _, err := s.pat.repo.ExportCAR(ctx, &car, s.pat.keys.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := replica.repo.ImportCAR(ctx, &car); err != nil {
		t.Fatal(err)
	}
	if ok, why, err := mayServe(ctx, replica.repo, s.node[s.gp], rec); err != nil || !ok {
		t.Fatalf("the replica refuses the GP under a live scope: %s %v", why, err)
	}
	if _, err := s.pat.repo.EndScope(ctx, s.pat.keys, s.gp.keys.ID, "patient/Observation.rs"); err != nil {
		t.Fatal(err)
	}
	send(t, s.pat, replica)
	if ok, why, _ := mayServe(ctx, replica.repo, s.node[s.gp], rec); ok {
		t.Fatalf("the replica serves the GP after the end: %s", why)
	}
}

// mustVerifyProblems checks that p's verify reports each of says.
func mustVerifyProblems(t *testing.T, p *party, says ...string) {
	t.Helper()
	rep, err := p.repo.Verify(context.Background(), VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	all := strings.Join(rep.AllProblems(), "\n")
	for _, s := range says {
		if !strings.Contains(all, s) {
			t.Errorf("verify does not report %q:\n%s", s, all)
		}
	}
}
