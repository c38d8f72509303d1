package ops

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/protocol"
)

// events is an audit sink that keeps what it is given.
type events struct {
	mu  sync.Mutex
	evs []keyshare.AuditEvent
}

func (e *events) Audit(_ context.Context, ev keyshare.AuditEvent) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.evs = append(e.evs, ev)
	return nil
}
func (e *events) Served(string, cid.Cid) {}
func (e *events) Close() error           { return nil }

// last returns the last event of kind whose reason has part, if any.
func (e *events) last(kind keyshare.AuditKind, part string) (keyshare.AuditEvent, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for i := len(e.evs) - 1; i >= 0; i-- {
		if e.evs[i].Kind == kind && strings.Contains(e.evs[i].Reason, part) {
			return e.evs[i], true
		}
	}
	return keyshare.AuditEvent{}, false
}

// Every change of who may read a record is in the audit log, whoever
// makes it and however: a standing grant, a guardian's grant and
// revocation for a ward, and a revocation with re-key (once, for the
// records that run re-keyed, not again when the finished job is run).
func TestAccessChangesAreAudited(t *testing.T) {
	ctx := t.Context()
	repo, err := keyshare.Open(ctx, t.TempDir(), keyshare.Options{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { repo.Close() })
	log := &events{}
	repo.SetAuditSink(log)
	pat, err := repo.CreateAccount(ctx, "Pat", protocol.RolePatient, nil)
	if err != nil {
		t.Fatal(err)
	}
	mum, err := repo.CreateAccount(ctx, "Mum", protocol.RolePatient, nil)
	if err != nil {
		t.Fatal(err)
	}
	gus, err := repo.CreateAccount(ctx, "Gus", protocol.RoleClinician, nil)
	if err != nil {
		t.Fatal(err)
	}
	var recs []cid.Cid
	for i := range 2 {
		c, err := repo.AddRecord(ctx, pat, keyshare.NewRecord{Title: "note", Kind: protocol.KindNote, MediaType: "text/plain", Body: strings.NewReader(strings.Repeat("n", i+1))})
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, c)
	}

	// A standing grant.
	g, err := GrantScope(ctx, repo, pat, ScopeGrantRequest{Scope: "patient/*.rs", To: "Gus"})
	if err != nil {
		t.Fatal(err)
	}
	ev, ok := log.last(keyshare.AuditGrant, "standing grant patient/*.rs")
	if !ok || ev.Subject != pat.ID || ev.Account != gus.ID || !strings.Contains(ev.Reason, "covering 2 present record(s)") || !strings.Contains(ev.Reason, g.Block) {
		t.Fatalf("standing grant's audit entry: %+v (found %v)", ev, ok)
	}
	if _, err := EndScope(ctx, repo, pat, ScopeEndRequest{Scope: "patient/*.rs", From: "Gus"}); err != nil {
		t.Fatal(err)
	}

	// A guardian's grant and revocation for her ward.
	if _, err := repo.AppointGuardian(ctx, pat, mum.ID, []protocol.GuardianRight{protocol.RightRead, protocol.RightGrant, protocol.RightRevoke}, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if _, err := AcceptWard(ctx, repo, mum, ConsentRequest{Ward: "Pat"}); err != nil {
		t.Fatal(err)
	}
	one := []string{recs[0].String()}
	if _, err := GrantForWard(ctx, repo, mum, WardGrantRequest{Ward: "Pat", Records: one, To: "Gus"}); err != nil {
		t.Fatal(err)
	}
	ev, ok = log.last(keyshare.AuditGrant, "granted by guardian "+string(mum.ID))
	if !ok || ev.Subject != pat.ID || ev.Account != gus.ID || len(ev.Records) != 1 || ev.Records[0] != recs[0] {
		t.Fatalf("guardian's grant audit entry: %+v (found %v)", ev, ok)
	}
	if _, err := RevokeForWard(ctx, repo, mum, WardRevokeRequest{Ward: "Pat", Records: one, From: "Gus"}); err != nil {
		t.Fatal(err)
	}
	ev, ok = log.last(keyshare.AuditRevoke, "revoked by guardian "+string(mum.ID))
	if !ok || ev.Subject != pat.ID || ev.Account != gus.ID || len(ev.Records) != 1 || ev.Records[0] != recs[0] {
		t.Fatalf("guardian's revocation audit entry: %+v (found %v)", ev, ok)
	}

	// Revoke with re-key.
	if _, err := repo.Grant(ctx, pat, recs, gus.ID, time.Time{}); err != nil {
		t.Fatal(err)
	}
	j, err := StartRekey(ctx, repo, pat, RevokeRequest{Records: []string{recs[0].String(), recs[1].String()}, From: "Gus"})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := log.last(keyshare.AuditRevoke, "job "+j.ID); ok {
		t.Fatal("a revoke entry before the job ran")
	}
	done, err := RunRekey(ctx, repo, pat, j.ID, nil)
	if err != nil || done.State != keyshare.JobDone {
		t.Fatalf("run: %+v, %v", done, err)
	}
	ev, ok = log.last(keyshare.AuditRevoke, "job "+j.ID)
	if !ok || ev.Subject != pat.ID || ev.Account != gus.ID || len(ev.Records) != 2 || !strings.Contains(ev.Reason, "2 record(s)") {
		t.Fatalf("re-key's audit entry: %+v (found %v)", ev, ok)
	}
	n := len(log.evs)
	if _, err := RunRekey(ctx, repo, pat, j.ID, nil); err != nil {
		t.Fatal(err)
	}
	if len(log.evs) != n {
		t.Fatalf("running the finished job again wrote %d more audit entries", len(log.evs)-n)
	}
}
