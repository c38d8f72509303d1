package keyshare

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
)

// Ending a standing grant with re-key: every record the GP lost by the
// end is re-keyed for the remaining readers (the author, the lab's own
// standing grant), never for the GP; the record also granted to the GP
// one by one is kept and listed; running it again finishes nothing twice.
func TestScopeRekeyJob(t *testing.T) {
	ctx := context.Background()
	s := newStandingScene(t)
	const scope = "patient/Observation.rs?category=laboratory"
	own := s.labRecord(t, s.pat, "HbA1c 6.1%")
	granted := s.labRecord(t, s.pat, "Glucose 95 mg/dL")
	vital := s.addFHIR(t, s.pat, "Pulse", "vital-signs")
	for _, p := range []*party{s.gp, s.lab} {
		if _, _, err := s.pat.repo.GrantScope(ctx, s.pat.keys, p.keys.ID, scope, time.Time{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.pat.repo.Grant(ctx, s.pat.keys, []cid.Cid{granted}, s.gp.keys.ID, time.Time{}); err != nil {
		t.Fatal(err)
	}
	send(t, s.pat, s.clinic)
	byClinic := s.labRecord(t, s.clinic, "Potassium 4.1 mmol/L")
	s.authorWritten(t, s.clinic, byClinic)
	for _, c := range []cid.Cid{own, granted, byClinic} {
		if a, err := s.pat.repo.AccessFor(ctx, c, s.pat.keys.ID); err != nil || !readDecision(a, s.gp.keys.ID).Allow {
			t.Fatalf("before: the GP cannot read %s: %v", c, err)
		}
	}

	if _, _, err := s.pat.repo.NewScopeRekeyJob(ctx, s.pat.keys, s.gp.keys.ID, "patient/Condition.rs"); !errors.Is(err, ErrNoStanding) {
		t.Fatalf("a scope never given: %v", err)
	}
	j, block, err := s.pat.repo.NewScopeRekeyJob(ctx, s.pat.keys, s.gp.keys.ID, scope)
	if err != nil || !block.Defined() {
		t.Fatalf("new job: block %s, %v", block, err)
	}
	var recs []string
	for _, jr := range j.Records {
		recs = append(recs, jr.Record)
	}
	want := []string{own.String(), byClinic.String()}
	slices.Sort(recs)
	slices.Sort(want)
	if !slices.Equal(recs, want) || j.Scope != scope || j.From != s.gp.keys.ID {
		t.Fatalf("job records %v scope %q from %s, want %v", recs, j.Scope, j.From, want)
	}
	if len(j.Kept) != 1 || j.Kept[0].Record != granted.String() || j.Kept[0].Reason == "" {
		t.Fatalf("kept %+v, want %s", j.Kept, granted)
	}
	end, err := s.pat.repo.RunRekeyJob(ctx, s.pat.keys, j.ID, nil)
	if err != nil || end.State != JobDone || end.Done != 2 {
		t.Fatalf("run: %+v, %v", end, err)
	}
	send(t, s.pat, s.gp)
	send(t, s.pat, s.lab)
	for _, jr := range end.Records {
		old, _ := cid.Decode(jr.Record)
		nw, err := cid.Decode(jr.New)
		if err != nil {
			t.Fatal(err)
		}
		a, err := s.pat.repo.AccessFor(ctx, nw, s.pat.keys.ID)
		if err != nil {
			t.Fatal(err)
		}
		if d := readDecision(a, s.gp.keys.ID); d.Allow {
			t.Fatalf("the GP reads the new version %s: %s", nw, d.Reason)
		}
		if d := readDecision(a, s.lab.keys.ID); d.Rule != RuleReadScope {
			t.Fatalf("the lab reads the new version by %s, want %s", d.Rule, RuleReadScope)
		}
		if old == byClinic {
			if d := readDecision(a, s.clinic.keys.ID); !d.Allow {
				t.Fatalf("the clinic, the author, cannot read the new version: %s", d.Reason)
			}
		}
		if d := reads(t, s.gp, old); d.Allow {
			t.Fatalf("the GP's repo still reads the old %s: %s", old, d.Reason)
		}
		if d := reads(t, s.gp, nw); d.Allow {
			t.Fatalf("the GP's repo reads the new %s: %s", nw, d.Reason)
		}
		if err := opens(t, s.lab, nw); err != nil {
			t.Fatalf("the lab's key does not open the new version: %v", err)
		}
	}
	if d := reads(t, s.gp, granted); d.Rule != RuleReadGrantee {
		t.Fatalf("the record granted one by one: %+v", d)
	}
	if a, err := s.pat.repo.AccessFor(ctx, vital, s.pat.keys.ID); err != nil || a.Rekeyed != nil {
		t.Fatalf("a record outside the scope was re-keyed: %v", err)
	}

	// The same re-key again (as after a restart): the grant is ended
	// already, every record is found re-keyed.
	again, block, err := s.pat.repo.NewScopeRekeyJob(ctx, s.pat.keys, s.gp.keys.ID, scope)
	if err != nil || block.Defined() || again.Total != 2 {
		t.Fatalf("again: %+v block %s, %v", again, block, err)
	}
	end, err = s.pat.repo.RunRekeyJob(ctx, s.pat.keys, again.ID, nil)
	if err != nil || end.State != JobDone {
		t.Fatalf("run again: %+v, %v", end, err)
	}
	for _, jr := range end.Records {
		if jr.State != JobRecordSkipped {
			t.Fatalf("again: %s %s, want skipped", jr.Record, jr.State)
		}
	}
}

// A job made while the grantee had lost a record, run after the subject
// granted it the record again, does not take that record from it: the
// rule is checked again as the job reaches each record.
func TestScopeRekeyJobRechecks(t *testing.T) {
	ctx := context.Background()
	s := newStandingScene(t)
	const scope = "patient/Observation.rs?category=laboratory"
	c := s.labRecord(t, s.pat, "HbA1c 6.1%")
	if _, _, err := s.pat.repo.GrantScope(ctx, s.pat.keys, s.gp.keys.ID, scope, time.Time{}); err != nil {
		t.Fatal(err)
	}
	j, _, err := s.pat.repo.NewScopeRekeyJob(ctx, s.pat.keys, s.gp.keys.ID, scope)
	if err != nil || j.Total != 1 {
		t.Fatalf("new job: %+v, %v", j, err)
	}
	if _, err := s.pat.repo.Grant(ctx, s.pat.keys, []cid.Cid{c}, s.gp.keys.ID, time.Time{}); err != nil {
		t.Fatal(err)
	}
	end, err := s.pat.repo.RunRekeyJob(ctx, s.pat.keys, j.ID, nil)
	if err != nil || end.State != JobFailed || end.Records[0].State != JobRecordFailed {
		t.Fatalf("run: %+v, %v", end, err)
	}
	if a, err := s.pat.repo.AccessFor(ctx, c, s.pat.keys.ID); err != nil || a.Rekeyed != nil || !readDecision(a, s.gp.keys.ID).Allow {
		t.Fatalf("the record granted again was re-keyed or revoked: %v", err)
	}
}

// A standing grant's re-key stopped half way (the node stopped, the
// command was interrupted) is finished by making it again: the grant is
// not ended twice, the record re-keyed already is skipped, the other one
// re-keyed.
func TestScopeRekeyJobResumes(t *testing.T) {
	ctx := context.Background()
	s := newStandingScene(t)
	const scope = "patient/Observation.rs?category=laboratory"
	s.labRecord(t, s.pat, "HbA1c 6.1%")
	s.labRecord(t, s.pat, "Glucose 95 mg/dL")
	if _, _, err := s.pat.repo.GrantScope(ctx, s.pat.keys, s.gp.keys.ID, scope, time.Time{}); err != nil {
		t.Fatal(err)
	}
	j, _, err := s.pat.repo.NewScopeRekeyJob(ctx, s.pat.keys, s.gp.keys.ID, scope)
	if err != nil || j.Total != 2 {
		t.Fatalf("new job: %+v, %v", j, err)
	}
	stop, cancel := context.WithCancel(ctx)
	end, err := s.pat.repo.RunRekeyJob(stop, s.pat.keys, j.ID, func(p RekeyJob) {
		if p.Done == 1 {
			cancel()
		}
	})
	cancel()
	if err != nil || end.State != JobInterrupted || len(end.Left()) != 1 {
		t.Fatalf("stopped: %+v, %v", end, err)
	}
	again, block, err := s.pat.repo.NewScopeRekeyJob(ctx, s.pat.keys, s.gp.keys.ID, scope)
	if err != nil || block.Defined() || again.Total != 2 {
		t.Fatalf("again: %+v block %s, %v", again, block, err)
	}
	end, err = s.pat.repo.RunRekeyJob(ctx, s.pat.keys, again.ID, nil)
	if err != nil || end.State != JobDone {
		t.Fatalf("finish: %+v, %v", end, err)
	}
	states := map[string]int{}
	for _, jr := range end.Records {
		states[jr.State]++
	}
	if states[JobRecordSkipped] != 1 || states[JobRecordDone] != 1 {
		t.Fatalf("finish: %v", states)
	}
}
