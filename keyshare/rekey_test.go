package keyshare

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/blockmrs/blockmrs/protocol"
	"github.com/blockmrs/blockmrs/store"
)

// rekeyScene: Doc wrote a FHIR Observation about Pat (acknowledged), Pat
// granted it to Gus until a date and to Rev; Gus's and Rev's nodes hold
// it, as grantees' nodes do.
type rekeyScene struct {
	pat, doc, gus, rev *party
	node               map[*party]string
	rec                cid.Cid
	body               []byte
	clinical           *protocol.Clinical
	gusUntil           time.Time
}

const rekeyBody = `{"resourceType":"Observation","id":"hba1c-1","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"4548-4"}]}}`

func newRekeyScene(t *testing.T) *rekeyScene {
	t.Helper()
	ctx := context.Background()
	s := &rekeyScene{
		pat: newParty(t, "Pat", protocol.RolePatient), doc: newParty(t, "Doc", protocol.RoleClinician),
		gus: newParty(t, "Gus", protocol.RoleClinician), rev: newParty(t, "Rev", protocol.RoleClinician),
		node: map[*party]string{}, body: []byte(rekeyBody),
		gusUntil: time.Now().Add(72 * time.Hour).Truncate(time.Millisecond).UTC(),
	}
	for _, p := range []*party{s.pat, s.doc, s.gus, s.rev} {
		s.node[p] = newPeerID(t)
		if _, err := p.repo.SetDevice(ctx, p.keys, s.node[p], "", false); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []*party{s.doc, s.gus, s.rev} {
		send(t, p, s.pat)
		send(t, s.pat, p)
	}
	sum := sha256.Sum256(s.body)
	s.clinical = &protocol.Clinical{ResourceType: "Observation", ID: "hba1c-1", Code: "http://loinc.org|4548-4", Display: "HbA1c", Category: []string{"laboratory"}, Digest: sum[:]}
	s.rec = addClinical(t, s.doc, s.pat.keys.ID, s.body, s.clinical)
	send(t, s.doc, s.pat)
	if n, err := s.pat.repo.Acknowledge(ctx, s.pat.keys); err != nil || n != 1 {
		t.Fatalf("Pat acknowledged %d records: %v", n, err)
	}
	if _, err := s.pat.repo.Grant(ctx, s.pat.keys, []cid.Cid{s.rec}, s.gus.keys.ID, s.gusUntil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.pat.repo.Grant(ctx, s.pat.keys, []cid.Cid{s.rec}, s.rev.keys.ID, time.Time{}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []*party{s.gus, s.rev} {
		s.deliver(t, p)
		if err := p.repo.st.Pin(ctx, s.rec); err != nil { // as a fetch leaves it
			t.Fatal(err)
		}
	}
	return s
}

// deliver brings Pat's chain (and Doc's) and the records p may read to
// p's repo, as chain sync and fetching would.
func (s *rekeyScene) deliver(t *testing.T, p *party) {
	t.Helper()
	var car bytes.Buffer
	if _, err := s.pat.repo.ExportCAR(context.Background(), &car, s.pat.keys.ID, ExportOptions{For: p.keys.ID}); err != nil {
		t.Fatal(err)
	}
	if _, err := p.repo.ImportCAR(context.Background(), &car); err != nil {
		t.Fatal(err)
	}
}

// addClinical adds, as author, a FHIR record about subject whose envelope
// carries clinical fields (keyshare.NewRecord has none to give here).
func addClinical(t *testing.T, author *party, subject protocol.AccountID, body []byte, cl *protocol.Clinical) cid.Cid {
	t.Helper()
	ctx := context.Background()
	added, err := author.repo.st.Add(ctx, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if err := author.repo.IndexRecordBlocks(ctx, added.CID); err != nil {
		t.Fatal(err)
	}
	env := &protocol.Envelope{Title: "HbA1c 5.4 %", Kind: protocol.KindFHIR, MediaType: "application/fhir+json", FileName: "hba1c.json",
		Author: author.keys.Public(), Subject: keyOf(subject), Created: 1, FHIR: cl}
	hdr, err := env.Header()
	if err != nil {
		t.Fatal(err)
	}
	meta, err := seal(hdr, added.Key.Recipient())
	if err != nil {
		t.Fatal(err)
	}
	rec := &protocol.Record{Record: protocol.NewLink(added.CID), Subject: keyOf(subject), Meta: meta}
	for _, id := range []protocol.AccountID{author.keys.ID, subject} {
		acct, err := author.repo.Account(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		w, err := wrapKey(added.Key, acct)
		if err != nil {
			t.Fatal(err)
		}
		rec.Keys = append(rec.Keys, protocol.WrappedKey{To: keyOf(id), Key: w})
	}
	appendTo(t, author, protocol.NewEntry(rec))
	return added.CID
}

func decision(t *testing.T, r *Repo, peerID string, c cid.Cid) Decision {
	t.Helper()
	d, err := r.MayServe(context.Background(), peerID, c)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestRekey(t *testing.T) {
	ctx := context.Background()
	s := newRekeyScene(t)
	oldBlocks := recordBlocks(t, s.pat, s.rec)

	rk, err := s.pat.repo.Rekey(ctx, s.pat.keys, s.rec, s.rev.keys.ID)
	if err != nil {
		t.Fatal(err)
	}
	if rk.Skipped || !rk.Revoked || !rk.New.Defined() || rk.New.Equals(s.rec) {
		t.Fatalf("rekey: %+v", rk)
	}
	if !slices.Contains(rk.Readers, s.doc.keys.ID) || !slices.Contains(rk.Readers, s.gus.keys.ID) || slices.Contains(rk.Readers, s.rev.keys.ID) {
		t.Fatalf("new version wrapped for %v", rk.Readers)
	}

	// The new version: Pat's own record, superseding the old one, read by
	// Pat, Doc (the author) and Gus (with his expiry kept), not by Rev.
	na, err := s.pat.repo.Access(ctx, rk.New)
	if err != nil {
		t.Fatal(err)
	}
	if na.Author != s.pat.keys.ID || na.Proof != ProofOwn || na.Supersedes != s.rec.String() || na.RekeyOf == nil ||
		na.RekeyOf.Record != s.rec.String() || na.RekeyOf.Author != s.doc.keys.ID {
		t.Fatalf("new version: %+v (rekey of %+v)", na, na.RekeyOf)
	}
	if g, ok := na.Reader(s.gus.keys.ID); !ok || !g.Expires.Equal(s.gusUntil) {
		t.Fatalf("Gus on the new version: %+v %v (want until %s)", g, ok, s.gusUntil)
	}
	if _, ok := na.Reader(s.doc.keys.ID); !ok {
		t.Fatal("the old record's author does not read the new version")
	}
	if d := readDecision(na, s.rev.keys.ID); d.Allow {
		t.Fatalf("Rev reads the new version: %+v", d)
	}
	env, body, err := readAll(t, s.pat, rk.New)
	if err != nil || !bytes.Equal(body, s.body) {
		t.Fatalf("Pat reads the new version: %v %q", err, body)
	}
	if env.Title != "HbA1c 5.4 %" || env.Kind != protocol.KindFHIR || env.FileName != "hba1c.json" || env.FHIR == nil ||
		env.FHIR.Code != s.clinical.Code || !bytes.Equal(env.FHIR.Digest, s.clinical.Digest) || !slices.Equal(env.FHIR.Category, s.clinical.Category) {
		t.Fatalf("new envelope: %+v %+v", env, env.FHIR)
	}

	// The old one: marked re-keyed, gone from Pat's node, served to
	// nobody (Pat's own node, the live grantee, the revoked one), listed
	// only with all; the new one is served to Gus and refused to Rev.
	oa, err := s.pat.repo.Access(ctx, s.rec)
	if err != nil {
		t.Fatal(err)
	}
	if oa.Rekeyed == nil || oa.Rekeyed.New != rk.New.String() || oa.Rekeyed.Via.Account != s.pat.keys.ID {
		t.Fatalf("old record: rekeyed %+v", oa.Rekeyed)
	}
	if has, _ := s.pat.repo.st.Blockstore().Has(ctx, s.rec); has {
		t.Fatal("Pat's node keeps the old ciphertext")
	}
	s.pat.repo.SetNodeID(s.node[s.pat])
	for _, p := range []*party{s.pat, s.gus, s.rev, s.doc} {
		for _, b := range oldBlocks {
			if d := decision(t, s.pat.repo, s.node[p], b); d.Allow || d.Rule != RuleServeRekeyed {
				t.Fatalf("old block %s to %s's node: %+v", b, p.keys.ID, d)
			}
		}
	}
	if d := decision(t, s.pat.repo, s.node[s.gus], rk.New); !d.Allow {
		t.Fatalf("new version to Gus: %+v", d)
	}
	if d := decision(t, s.pat.repo, s.node[s.rev], rk.New); d.Allow || d.Rule != RuleServeNoReader {
		t.Fatalf("new version to Rev: %+v", d)
	}
	rows, err := s.pat.repo.List(ctx, s.pat.keys, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 || rows[0].Record != rk.New {
		t.Fatalf("Pat's listing: %v", rowCIDs(rows))
	}
	old, err := s.pat.repo.ListRecord(ctx, s.pat.keys, s.rec)
	if err != nil || old.Status != "rekeyed" {
		t.Fatalf("the old row: %+v %v", old.Listing, err)
	}
	// The subject's export still works, without the dropped ciphertext.
	var car bytes.Buffer
	if _, err := s.pat.repo.ExportCAR(ctx, &car, s.pat.keys.ID); err != nil {
		t.Fatalf("export after a re-key: %v", err)
	}

	// Gus's node: the chain arrives (the old copy stays until the new
	// version is here, served to nobody), then the new version; verify
	// there compares both, then the old copy goes.
	s.deliver(t, s.gus)
	for _, c := range []cid.Cid{s.rec, rk.New} {
		if err := s.gus.repo.st.Pin(ctx, c); err != nil { // as a fetch leaves them
			t.Fatal(err)
		}
	}
	gusOld := s.gus.repo.pinned(ctx)
	if !gusOld(s.rec) || !gusOld(rk.New) {
		t.Fatalf("Gus's node holds old %v new %v", gusOld(s.rec), gusOld(rk.New))
	}
	rep, err := s.gus.repo.Verify(ctx, VerifyOptions{Record: rk.New, Keys: s.gus.keys})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK || rep.Record.Rekey == nil || rep.Record.Rekey.Content != RekeyContentIdentical || rep.Record.Rekey.Envelope != "same" ||
		rep.Record.Rekey.Author != s.doc.keys.ID || rep.Record.Rekey.By != s.pat.keys.ID {
		t.Fatalf("verify on Gus's node: ok %v %+v %v", rep.OK, rep.Record.Rekey, rep.AllProblems())
	}
	dropped, err := s.gus.repo.DropRevoked(ctx, s.node[s.gus], rk.New)
	if err != nil || !slices.Contains(dropped, s.rec) {
		t.Fatalf("Gus's node dropped %v: %v", dropped, err)
	}
	if _, _, err := readAll(t, s.gus, rk.New); err != nil {
		t.Fatalf("Gus reads the new version: %v", err)
	}
	// Now only the digest in Doc's signed envelope is left to check by.
	rep, err = s.gus.repo.Verify(ctx, VerifyOptions{Record: rk.New, Keys: s.gus.keys})
	if err != nil || !rep.OK || rep.Record.Rekey.Content != RekeyContentDigest {
		t.Fatalf("verify after the drop: %v %+v %v", err, rep.Record.Rekey, rep.AllProblems())
	}
	rep, err = s.gus.repo.Verify(ctx, VerifyOptions{Record: s.rec, Keys: s.gus.keys})
	if err != nil || !rep.OK || rep.Record.Rekey == nil || rep.Record.Rekey.New != rk.New.String() {
		t.Fatalf("verify of the old record: %v %+v %v", err, rep.Record, rep.AllProblems())
	}

	// Rev's node: the revocation drops its copy; it wants neither
	// version.
	s.deliver(t, s.rev)
	if dropped, err := s.rev.repo.DropRevoked(ctx, s.node[s.rev]); err != nil || !slices.Contains(dropped, s.rec) {
		t.Fatalf("Rev's node dropped %v: %v", dropped, err)
	}
	w, err := s.rev.repo.WantedRecords(ctx, s.node[s.rev])
	if err != nil {
		t.Fatal(err)
	}
	if len(w) != 0 {
		t.Fatalf("Rev's node wants %v", w)
	}

	// Pat's log names the re-key.
	log, err := s.pat.repo.Log(ctx, s.pat.keys.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(log, func(le LogEntry) bool {
		return le.Type == protocol.TypeRekey && strings.HasPrefix(le.Summary, "re-key record "+s.rec.String()) && slices.Contains(le.Records, rk.New.String())
	}) {
		t.Fatal("the log does not show the re-key")
	}

	// Again: nothing to do.
	again, err := s.pat.repo.Rekey(ctx, s.pat.keys, s.rec, s.rev.keys.ID)
	if err != nil || !again.Skipped || !again.New.Equals(rk.New) {
		t.Fatalf("second re-key: %+v %v", again, err)
	}
	if verify, err := s.pat.repo.Verify(ctx, VerifyOptions{}); err != nil || !verify.OK {
		t.Fatalf("Pat's repo verifies: %v %v", err, verify.AllProblems())
	}
}

func rowCIDs(rows []Listed) []string {
	var out []string
	for _, r := range rows {
		out = append(out, r.Record.String()+" "+r.Status)
	}
	return out
}

func TestRekeyRefusals(t *testing.T) {
	ctx := context.Background()
	s := newRekeyScene(t)
	cases := []struct {
		name string
		by   *party
		c    cid.Cid
		from protocol.AccountID
		want string
	}{
		{"unknown record", s.pat, testCID("nobody's"), "", "unknown record"},
		{"not the subject", s.doc, s.rec, s.gus.keys.ID, "only the record's subject"},
		{"a grantee", s.gus, s.rec, "", "only the record's subject"},
		{"revoking the author", s.pat, s.rec, s.doc.keys.ID, "is the record's author, not a grantee"},
		{"revoking a stranger", s.pat, s.rec, testAccount(9), "has no grant to revoke"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.by.repo.Rekey(ctx, tc.by.keys, tc.c, tc.from)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
	// Content not on this node: Gus's grant is Pat's, but suppose Pat's
	// node lost the ciphertext.
	if err := s.pat.repo.deleteRecords(ctx, []cid.Cid{s.rec}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.pat.repo.Rekey(ctx, s.pat.keys, s.rec, s.rev.keys.ID); !errors.Is(err, store.ErrMissing) {
		t.Fatalf("re-key without the content: %v", err)
	}
	// Nothing was written by any refusal.
	a, err := s.pat.repo.Access(ctx, s.rec)
	if err != nil || a.Rekeyed != nil || len(a.Revoked) != 0 {
		t.Fatalf("after refusals: %+v %v", a, err)
	}
}

// A record with no reader left but its subject re-keys fine: the new
// version is hers alone, and the old ciphertext dies out everywhere.
func TestRekeyNoRemainingReader(t *testing.T) {
	ctx := context.Background()
	pat, rev := newParty(t, "Pat", protocol.RolePatient), newParty(t, "Rev", protocol.RoleClinician)
	send(t, rev, pat)
	c, err := pat.repo.AddRecord(ctx, pat.keys, NewRecord{Title: "note", Kind: protocol.KindNote, MediaType: "text/plain", Body: strings.NewReader("private")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pat.repo.Grant(ctx, pat.keys, []cid.Cid{c}, rev.keys.ID, time.Time{}); err != nil {
		t.Fatal(err)
	}
	rk, err := pat.repo.Rekey(ctx, pat.keys, c, rev.keys.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(rk.Readers) != 0 {
		t.Fatalf("readers %v", rk.Readers)
	}
	a, err := pat.repo.Access(ctx, rk.New)
	if err != nil || len(a.Readers) != 1 || a.Readers[0].Account != pat.keys.ID {
		t.Fatalf("new version readers: %+v %v", a, err)
	}
	if _, body, err := readAll(t, pat, rk.New); err != nil || string(body) != "private" {
		t.Fatalf("read: %q %v", body, err)
	}
}

// A job of three re-keys stopped after the first (the node goes down):
// the next Open shows it interrupted with two left, and the same re-key
// run again finishes them, skipping the first.
func TestRekeyJobInterruptedAndResumed(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	repo, err := Open(ctx, dir, Options{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	k, err := repo.CreateAccount(ctx, "Pat", protocol.RolePatient, nil)
	if err != nil {
		t.Fatal(err)
	}
	gus := newParty(t, "Gus", protocol.RoleClinician)
	send(t, gus, &party{repo: repo, keys: k})
	var recs []cid.Cid
	for i := range 3 {
		c, err := repo.AddRecord(ctx, k, NewRecord{Title: "note", Kind: protocol.KindNote, MediaType: "text/plain", Body: strings.NewReader(strings.Repeat("x", i+1))})
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, c)
	}
	if _, err := repo.Grant(ctx, k, recs, gus.keys.ID, time.Time{}); err != nil {
		t.Fatal(err)
	}
	// Bad input refuses the whole job.
	if _, err := repo.NewRekeyJob(ctx, k, gus.keys.ID, append(slices.Clone(recs), testCID("unknown"))); err == nil {
		t.Fatal("a job with an unknown record was made")
	}
	if jobs, _ := repo.RekeyJobs(ctx, k.ID); len(jobs) != 0 {
		t.Fatalf("a refused job was stored: %v", jobs)
	}

	j, err := repo.NewRekeyJob(ctx, k, gus.keys.ID, recs)
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	var seen []int
	got, err := repo.RunRekeyJob(runCtx, k, j.ID, func(p RekeyJob) {
		seen = append(seen, p.Done)
		if p.Done == 1 {
			stop() // the node goes down after the first record
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if got.State != JobInterrupted || got.Done != 1 || len(got.Left()) != 2 || !slices.Equal(seen, []int{0, 1, 1}) {
		t.Fatalf("stopped job: %+v, progress %v", got, seen)
	}
	// What a crash leaves: the job stored as running.
	got.State = JobRunning
	if err := repo.putJob(ctx, got); err != nil {
		t.Fatal(err)
	}
	repo.Close()
	repo, err = Open(ctx, dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { repo.Close() })
	k, err = repo.Unlock(ctx, k.ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	after, err := repo.RekeyJob(ctx, j.ID)
	if err != nil {
		t.Fatal(err)
	}
	if after.State != JobInterrupted || len(after.Left()) != 2 || !strings.Contains(after.Error, "2 of 3 record(s) left") {
		t.Fatalf("after the restart: %+v", after)
	}

	// The same re-key again: the first is skipped, the others done.
	j2, err := repo.NewRekeyJob(ctx, k, gus.keys.ID, recs)
	if err != nil {
		t.Fatal(err)
	}
	done, err := repo.RunRekeyJob(ctx, k, j2.ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	if done.State != JobDone || done.Done != 3 || done.Records[0].State != JobRecordSkipped || done.Records[1].State != JobRecordDone || done.Records[2].State != JobRecordDone {
		t.Fatalf("resumed job: %+v", done)
	}
	if done.Records[0].New != got.Records[0].New {
		t.Fatalf("the skipped record names %s, not its first re-key %s", done.Records[0].New, got.Records[0].New)
	}
}
