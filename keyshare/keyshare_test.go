package keyshare

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/blockmrs/blockmrs/protocol"
)

type party struct {
	repo *Repo
	keys *Keys
}

func newParty(t *testing.T, name string, role protocol.Role) *party {
	t.Helper()
	return newPartyWith(t, name, role, Options{})
}

// newPartyWith is newParty with repo options (a clock, say).
func newPartyWith(t *testing.T, name string, role protocol.Role, opts Options) *party {
	t.Helper()
	ctx := context.Background()
	opts.Create = true
	r, err := Open(ctx, t.TempDir(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	k, err := r.CreateAccount(ctx, name, role, nil)
	if err != nil {
		t.Fatal(err)
	}
	return &party{repo: r, keys: k}
}

// send exports from's account as a CAR and imports it into to.
func send(t *testing.T, from, to *party) *ImportResult {
	t.Helper()
	var buf bytes.Buffer
	if _, err := from.repo.ExportCAR(context.Background(), &buf, from.keys.ID); err != nil {
		t.Fatal(err)
	}
	res, err := to.repo.ImportCAR(context.Background(), &buf)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func readAll(t *testing.T, p *party, c cid.Cid) (*protocol.Envelope, []byte, error) {
	t.Helper()
	env, body, err := p.repo.OpenRecord(context.Background(), p.keys, c)
	if err != nil {
		return nil, nil, err
	}
	defer body.Close()
	data, err := io.ReadAll(body)
	return env, data, err
}

func mustVerify(t *testing.T, p *party) {
	t.Helper()
	rep, err := p.repo.Verify(context.Background(), VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK {
		t.Fatalf("verify failed: %+v", rep)
	}
}

const observation = `{"resourceType":"Observation","status":"final","code":{"text":"Hemoglobin"},"valueQuantity":{"value":13.2,"unit":"g/dL"}}`

func TestPatientDoctorFlow(t *testing.T) {
	ctx := context.Background()
	patient := newParty(t, "Pat", protocol.RolePatient)
	doctor := newParty(t, "Dr Who", protocol.RoleClinician)

	// Exchange profiles offline.
	var prof bytes.Buffer
	if err := patient.repo.ExportProfile(ctx, &prof, patient.keys.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := doctor.repo.ImportCAR(ctx, &prof); err != nil {
		t.Fatal(err)
	}
	send(t, doctor, patient)

	// The doctor writes a record for the patient.
	rec1, err := doctor.repo.AddRecord(ctx, doctor.keys, NewRecord{Title: "Blood test", Kind: protocol.KindFHIR,
		MediaType: "application/fhir+json", Subject: patient.keys.ID, Body: strings.NewReader(observation)})
	if err != nil {
		t.Fatal(err)
	}
	send(t, doctor, patient)
	env, data, err := readAll(t, patient, rec1)
	if err != nil {
		t.Fatal(err)
	}
	if string(data) != observation || env.Title != "Blood test" {
		t.Fatalf("patient read %q %q", env.Title, data)
	}
	mustVerify(t, patient)

	// The patient adds a record and grants it to the doctor.
	scan := bytes.Repeat([]byte("%PDF-1.7 scan "), 100000)
	rec2, err := patient.repo.AddRecord(ctx, patient.keys, NewRecord{Title: "X-ray report", Kind: protocol.KindFile,
		MediaType: "application/pdf", Body: bytes.NewReader(scan)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := doctor.repo.Grant(ctx, doctor.keys, []cid.Cid{rec2}, patient.keys.ID, time.Time{}); err == nil {
		t.Fatal("non-subject grant accepted")
	}
	if _, err := patient.repo.Grant(ctx, patient.keys, []cid.Cid{rec2, rec1}, doctor.keys.ID, time.Time{}); err != nil {
		t.Fatal(err)
	}
	send(t, patient, doctor)
	if _, data, err := readAll(t, doctor, rec2); err != nil || !bytes.Equal(data, scan) {
		t.Fatalf("doctor read rec2: %v", err)
	}
	list, err := doctor.repo.List(ctx, doctor.keys, false)
	if err != nil || len(list) != 2 {
		t.Fatalf("doctor list: %v %d", err, len(list))
	}
	mustVerify(t, doctor)

	// Revoke and hide.
	if _, err := patient.repo.Revoke(ctx, patient.keys, []cid.Cid{rec2}, doctor.keys.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := patient.repo.Hide(ctx, patient.keys, []cid.Cid{rec1}, true); err != nil {
		t.Fatal(err)
	}
	send(t, patient, doctor)
	if _, _, err := readAll(t, doctor, rec2); !errors.Is(err, ErrNoAccess) || !strings.Contains(err.Error(), "revoked") {
		t.Fatalf("doctor read after revoke: %v", err)
	}
	pl, _ := patient.repo.List(ctx, patient.keys, false)
	if len(pl) != 1 || !pl[0].Record.Equals(rec2) {
		t.Fatalf("patient list after hide: %+v", pl)
	}
	pl, _ = patient.repo.List(ctx, patient.keys, true)
	if len(pl) != 2 {
		t.Fatalf("patient list --all: %d", len(pl))
	}
	a, _ := patient.repo.Access(ctx, rec2)
	if len(a.Revoked) != 1 || a.Revoked[0].Account != doctor.keys.ID {
		t.Fatalf("access after revoke: %+v", a)
	}
	mustVerify(t, patient)
	mustVerify(t, doctor)

	// Importing the same export again changes nothing.
	res := send(t, patient, doctor)
	if res.NewBlocks != 0 {
		t.Fatalf("re-import brought %d blocks", res.NewBlocks)
	}
}

func TestForkDetected(t *testing.T) {
	ctx := context.Background()
	alice := newParty(t, "Alice", protocol.RolePatient)
	bob := newParty(t, "Bob", protocol.RoleClinician)
	send(t, alice, bob)

	// Alice's keys sign two different blocks at seq 1 in two repos.
	twin, err := Open(ctx, t.TempDir(), Options{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	defer twin.Close()
	var buf bytes.Buffer
	alice.repo.ExportCAR(ctx, &buf, alice.keys.ID)
	if _, err := twin.ImportCAR(ctx, &buf); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.repo.AddRecord(ctx, alice.keys, NewRecord{Title: "a", Kind: protocol.KindNote, MediaType: "text/plain", Body: strings.NewReader("one")}); err != nil {
		t.Fatal(err)
	}
	twin.mu.Lock()
	_, err = twin.appendBlock(ctx, alice.keys, []protocol.Entry{{Type: "other-history", RawBody: []byte{0xa1, 0x61, 0x78, 0x01}}})
	twin.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	send(t, alice, bob)
	buf.Reset()
	if _, err := twin.ExportCAR(ctx, &buf, alice.keys.ID); err != nil {
		t.Fatal(err)
	}
	_, err = bob.repo.ImportCAR(ctx, &buf)
	var fe *ForkError
	if !errors.As(err, &fe) || fe.Seq != 1 {
		t.Fatalf("fork not detected: %v", err)
	}
	forks, _ := bob.repo.Forks(ctx)
	if len(forks) != 1 {
		t.Fatalf("fork evidence: %+v", forks)
	}
	rep, _ := bob.repo.Verify(ctx, VerifyOptions{})
	if rep.OK {
		t.Fatal("verify passes with a fork on record")
	}
}

func (r *Repo) mustHead(t *testing.T, id protocol.AccountID) cid.Cid {
	st, err := r.state(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return st.head()
}

func TestRollbackIgnored(t *testing.T) {
	ctx := context.Background()
	alice := newParty(t, "Alice", protocol.RolePatient)
	bob := newParty(t, "Bob", protocol.RoleClinician)
	var old bytes.Buffer
	alice.repo.ExportCAR(ctx, &old, alice.keys.ID)
	alice.repo.AddRecord(ctx, alice.keys, NewRecord{Title: "a", Kind: protocol.KindNote, MediaType: "text/plain", Body: strings.NewReader("x")})
	send(t, alice, bob)
	head := bob.repo.mustHead(t, alice.keys.ID)
	res, err := bob.repo.ImportCAR(ctx, &old)
	if err != nil {
		t.Fatal(err)
	}
	if res.NewBlocks != 0 || len(res.Unchanged) != 1 || bob.repo.mustHead(t, alice.keys.ID) != head {
		t.Fatalf("older head moved the chain back: %+v", res)
	}
}

func TestCriticalUnknownEntryStopsChain(t *testing.T) {
	ctx := context.Background()
	alice := newParty(t, "Alice", protocol.RolePatient)
	bob := newParty(t, "Bob", protocol.RoleClinician)
	send(t, bob, alice)
	rec, _ := alice.repo.AddRecord(ctx, alice.keys, NewRecord{Title: "a", Kind: protocol.KindNote, MediaType: "text/plain", Body: strings.NewReader("x")})
	body := []byte{0xa1, 0x61, 0x78, 0x01} // {"x": 1}
	alice.repo.mu.Lock()
	_, err := alice.repo.appendBlock(ctx, alice.keys, []protocol.Entry{{Type: "from-the-future", Critical: true, RawBody: body}})
	alice.repo.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.repo.Grant(ctx, alice.keys, []cid.Cid{rec}, bob.keys.ID, time.Time{}); err == nil || !strings.Contains(err.Error(), "does not understand") {
		t.Fatalf("append after critical unknown entry: %v", err)
	}
	info, _ := alice.repo.Account(ctx, alice.keys.ID)
	if info.Stopped == "" {
		t.Fatal("stopped chain not reported")
	}
	mustVerify(t, alice)
}

func TestWrongPassphrase(t *testing.T) {
	ctx := context.Background()
	r, err := Open(ctx, t.TempDir(), Options{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	k, err := r.CreateAccount(ctx, "Pat", protocol.RolePatient, []byte("correct horse"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Unlock(ctx, k.ID, []byte("wrong")); !errors.Is(err, ErrWrongPassphrase) {
		t.Fatalf("wrong passphrase: %v", err)
	}
	if _, err := r.Unlock(ctx, k.ID, nil); !errors.Is(err, ErrPassphraseNeeded) {
		t.Fatalf("no passphrase: %v", err)
	}
	got, err := r.Unlock(ctx, k.ID, []byte("correct horse"))
	if err != nil || got.ID != k.ID {
		t.Fatalf("unlock: %v", err)
	}
}

func TestRepoLocked(t *testing.T) {
	dir := t.TempDir()
	r, err := Open(context.Background(), dir, Options{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := Open(context.Background(), dir, Options{}); !errors.Is(err, ErrRepoLocked) {
		t.Fatalf("second open: %v", err)
	}
}

func TestGrantExpiry(t *testing.T) {
	ctx := context.Background()
	now := time.Now()
	alice := newParty(t, "Alice", protocol.RolePatient)
	alice.repo.clock = func() time.Time { return now }
	bob := newParty(t, "Bob", protocol.RoleClinician)
	send(t, bob, alice)
	rec, _ := alice.repo.AddRecord(ctx, alice.keys, NewRecord{Title: "a", Kind: protocol.KindNote, MediaType: "text/plain", Body: strings.NewReader("x")})
	if _, err := alice.repo.Grant(ctx, alice.keys, []cid.Cid{rec}, bob.keys.ID, now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	a, _ := alice.repo.Access(ctx, rec)
	if _, ok := a.Reader(bob.keys.ID); !ok {
		t.Fatal("grantee cannot read before expiry")
	}
	alice.repo.clock = func() time.Time { return now.Add(2 * time.Hour) }
	a, _ = alice.repo.Access(ctx, rec)
	if _, ok := a.Reader(bob.keys.ID); ok || len(a.Expired) != 1 {
		t.Fatalf("grantee can read after expiry: %+v", a)
	}
}

func TestImportRejectsTamperedCAR(t *testing.T) {
	ctx := context.Background()
	alice := newParty(t, "Alice", protocol.RolePatient)
	alice.repo.AddRecord(ctx, alice.keys, NewRecord{Title: "a", Kind: protocol.KindNote, MediaType: "text/plain", Body: strings.NewReader("x")})
	var buf bytes.Buffer
	alice.repo.ExportCAR(ctx, &buf, alice.keys.ID)
	car := buf.Bytes()
	bob := newParty(t, "Bob", protocol.RoleClinician)
	before, _ := bob.repo.Accounts(ctx)
	for _, bad := range [][]byte{car[:len(car)/2], car[:len(car)-1], flip(car, len(car)-10), flip(car, len(car)/2)} {
		if _, err := bob.repo.ImportCAR(ctx, bytes.NewReader(bad)); err == nil {
			t.Fatal("tampered CAR accepted")
		} else if strings.Contains(err.Error(), "\n") {
			t.Fatalf("multi-line error: %q", err)
		}
	}
	after, _ := bob.repo.Accounts(ctx)
	if len(after) != len(before) {
		t.Fatal("rejected import changed the accounts")
	}
}

func flip(b []byte, i int) []byte {
	c := bytes.Clone(b)
	c[i] ^= 0x40
	return c
}

func FuzzImportCAR(f *testing.F) {
	ctx := context.Background()
	dir := f.TempDir()
	src, err := Open(ctx, dir, Options{Create: true})
	if err != nil {
		f.Fatal(err)
	}
	k, _ := src.CreateAccount(ctx, "Alice", protocol.RolePatient, nil)
	src.AddRecord(ctx, k, NewRecord{Title: "a", Kind: protocol.KindNote, MediaType: "text/plain", Body: strings.NewReader("x")})
	var buf bytes.Buffer
	src.ExportCAR(ctx, &buf, k.ID)
	src.Close()
	f.Add(buf.Bytes())
	dst, err := Open(ctx, f.TempDir(), Options{Create: true})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { dst.Close() })
	f.Fuzz(func(t *testing.T, data []byte) {
		res, err := dst.ImportCAR(ctx, bytes.NewReader(data))
		if err != nil {
			return
		}
		for _, a := range res.Accounts {
			if _, err := dst.Log(ctx, a.ID); err != nil {
				t.Fatalf("imported chain unreadable: %v", err)
			}
		}
	})
}

func TestJSONShapes(t *testing.T) {
	ctx := context.Background()
	p := newParty(t, "Pat", protocol.RolePatient)
	rec, err := p.repo.AddRecord(ctx, p.keys, NewRecord{Title: "note", Kind: protocol.KindNote, MediaType: "text/plain", Body: strings.NewReader("x")})
	if err != nil {
		t.Fatal(err)
	}
	l, err := p.repo.List(ctx, p.keys, false)
	if err != nil || len(l) != 1 {
		t.Fatal(err)
	}
	b, err := json.Marshal(l[0])
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	json.Unmarshal(b, &got)
	if got["cid"] != rec.String() || got["title"] != "note" || got["status"] != "readable" || got["acked"] != true {
		t.Fatalf("listing JSON: %s", b)
	}
	info, _ := p.repo.Account(ctx, p.keys.ID)
	b, _ = json.Marshal(info)
	json.Unmarshal(b, &got)
	if got["head"] != info.Head.String() || got["name"] != "Pat" {
		t.Fatalf("account JSON: %s", b)
	}
}

// mayServe is Repo.MayServe with the decision as (allowed, reason).
func mayServe(ctx context.Context, r *Repo, peerID string, c cid.Cid) (bool, string, error) {
	d, err := r.MayServe(ctx, peerID, c)
	return d.Allow, string(d.Rule) + ": " + d.Reason, err
}
