package main

import (
	"bytes"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// observation is the FHIR record the doctor writes.
const observation = `{
  "resourceType": "Observation",
  "status": "final",
  "code": {"coding": [{"system": "http://loinc.org", "code": "718-7", "display": "Hemoglobin"}]},
  "valueQuantity": {"value": 13.2, "unit": "g/dL"}
}
`

// pdfLike returns a PDF-looking file of n bytes (random after the header).
func pdfLike(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	copy(b, "%PDF-1.7\n")
	return b
}

// TestWalk is the walk from the issue: a patient and a doctor, each with
// a repo on one machine, exchange profiles, records, grants, a revocation
// and a hide through CAR files, and both repos verify at every step.
func TestWalk(t *testing.T) {
	t.Parallel()
	p := newNode(t, "")                      // patient: keys not encrypted
	d := newNode(t, "correct horse battery") // doctor: keys encrypted
	files := t.TempDir()
	car := func(name string) string { return filepath.Join(files, name) }
	verifyBoth := func() {
		t.Helper()
		p.verifyOK()
		d.verifyOK()
	}

	patient := p.initAccount("--name", "patient", "--no-passphrase")
	doctor := d.initAccount("--name", "Dr Jones", "--role", "clinician")
	var did struct {
		Account struct {
			Encrypted bool `json:"encrypted"`
			Role      string
		} `json:"account"`
	}
	d.json(&did, "id", "--json")
	if !did.Account.Encrypted || did.Account.Role != "clinician" {
		t.Fatalf("doctor id: %+v, want encrypted clinician", did)
	}

	// Exchange profiles.
	p.ok("id", "--export", car("patient-profile.car"))
	d.ok("id", "--export", car("doctor-profile.car"))
	var added struct {
		Added []struct{ ID, Name, Role string } `json:"added"`
	}
	p.json(&added, "contact", "add", "--json", car("doctor-profile.car"))
	if len(added.Added) != 1 || added.Added[0].ID != doctor || added.Added[0].Name != "Dr Jones" {
		t.Fatalf("patient contact add: %+v", added)
	}
	d.ok("contact", "add", car("patient-profile.car"))
	var contacts struct {
		Accounts []struct {
			ID   string `json:"id"`
			Name string `json:"name"`
		} `json:"accounts"`
	}
	d.json(&contacts, "contact", "ls", "--json")
	if len(contacts.Accounts) != 1 || contacts.Accounts[0].ID != patient {
		t.Fatalf("doctor contact ls: %+v", contacts)
	}
	verifyBoth()

	// The doctor writes a FHIR Observation for the patient.
	obs := writeTemp(t, "hb.json", []byte(observation))
	var rec1 struct{ CID, Subject, Title string }
	d.json(&rec1, "add", "--json", "--kind", "fhir", "--for", "patient", "--title", "Hemoglobin", obs)
	if rec1.Subject != patient || rec1.CID == "" {
		t.Fatalf("doctor add: %+v", rec1)
	}
	d.ok("export", car("doctor-1.car"))
	verifyBoth()

	// The patient imports it, sees it with the doctor as author, reads it.
	var imp struct {
		Updated      []struct{ ID string } `json:"updated"`
		Acknowledged int                   `json:"acknowledged"`
	}
	p.json(&imp, "import", "--json", car("doctor-1.car"))
	if len(imp.Updated) != 1 || imp.Updated[0].ID != doctor || imp.Acknowledged != 1 {
		t.Fatalf("patient import: %+v", imp)
	}
	l := p.ls()
	if r, ok := l[rec1.CID]; !ok || !r.Readable || r.Status != "readable" || r.Author != doctor || r.Subject != patient ||
		r.Kind != "fhir" || r.Title != "Hemoglobin" || r.Media != "application/fhir+json" {
		t.Fatalf("patient ls: %+v", l)
	}
	if got := p.ok("get", rec1.CID); got != observation {
		t.Fatalf("patient get: %q", got)
	}
	verifyBoth()

	// The patient adds a PDF-like file (several blocks) and grants it to
	// the doctor, flags after the CID.
	pdfData := pdfLike(t, 2<<20+12345)
	pdf := writeTemp(t, "scan.pdf", pdfData)
	var rec2 struct {
		CID       string
		MediaType string `json:"media_type"`
		Title     string
	}
	p.json(&rec2, "add", pdf, "--json")
	if rec2.MediaType != "application/pdf" || rec2.Title != "scan.pdf" {
		t.Fatalf("patient add: %+v", rec2)
	}
	var grant struct {
		To      string   `json:"to"`
		Records []string `json:"records"`
	}
	p.json(&grant, "grant", rec2.CID, "--to", "Dr Jones", "--json")
	if grant.To != doctor || len(grant.Records) != 1 {
		t.Fatalf("grant: %+v", grant)
	}
	p.ok("export", car("patient-1.car"))
	verifyBoth()

	// The doctor imports and reads it; ls shows both records.
	d.ok("import", car("patient-1.car"))
	out := filepath.Join(files, "scan-copy.pdf")
	d.ok("get", "-o", out, rec2.CID)
	if !bytes.Equal(readFile(t, out), pdfData) {
		t.Fatal("doctor get: bytes differ")
	}
	l = d.ls()
	if len(l) != 2 || !l[rec1.CID].Readable || !l[rec2.CID].Readable || l[rec2.CID].Author != patient {
		t.Fatalf("doctor ls: %+v", l)
	}
	verifyBoth()

	// The patient revokes the scan from the doctor and hides the
	// observation.
	p.ok("revoke", "--from", doctor[len(doctor)-8:], rec2.CID)
	p.ok("hide", rec1.CID)
	verifyBoth()
	p.ok("export", car("patient-2.car"))
	d.ok("import", car("patient-2.car"))
	verifyBoth()

	// The doctor can no longer read the scan.
	r := d.fail(1, "get", rec2.CID)
	if !strings.Contains(r.stderr, "revoked") || !strings.Contains(r.stderr, rec2.CID) {
		t.Fatalf("doctor get after revoke: %q", r.stderr)
	}
	out2 := filepath.Join(files, "scan-again.pdf")
	d.fail(1, "get", "-o", out2, rec2.CID)
	if _, err := os.Stat(out2); !os.IsNotExist(err) {
		t.Fatalf("failed get left %s behind", out2)
	}
	l = d.ls()
	if _, ok := l[rec2.CID]; ok {
		t.Fatalf("doctor ls lists the revoked record: %+v", l[rec2.CID])
	}
	l = d.ls("--all")
	if l[rec2.CID].Status != "revoked" || l[rec2.CID].Readable {
		t.Fatalf("doctor ls --all: %+v", l[rec2.CID])
	}
	// Hiding is not revoking: the doctor still reads the observation.
	// (keyshare's List leaves records the subject hid out of every
	// account's listing, not only the subject's; --all shows them.)
	if !l[rec1.CID].Readable {
		t.Fatalf("doctor ls --all: the observation should stay readable: %+v", l[rec1.CID])
	}
	if got := d.ok("get", rec1.CID); got != observation {
		t.Fatalf("doctor get of the hidden observation: %q", got)
	}
	if !strings.Contains(d.ok("ls", "--all"), "revoked") {
		t.Fatal("doctor ls --all table: no 'revoked'")
	}

	// The patient no longer lists the hidden observation unless --all.
	l = p.ls()
	if _, ok := l[rec1.CID]; ok || !l[rec2.CID].Readable {
		t.Fatalf("patient ls after hide: %+v", l)
	}
	l = p.ls("--all")
	if l[rec1.CID].Status != "hidden" || !l[rec1.CID].Readable {
		t.Fatalf("patient ls --all: %+v", l[rec1.CID])
	}
	verifyBoth()

	// Chain of custody of both records, from both sides.
	custody := p.verifyOK(rec2.CID)
	for _, want := range []string{"signed in block", "CID matches", "decrypted        yes", "revoked", "Dr Jones"} {
		if !strings.Contains(custody, want) {
			t.Errorf("patient verify %s: no %q in\n%s", rec2.CID, want, custody)
		}
	}
	custody = d.verifyOK(rec1.CID)
	if !strings.Contains(custody, "author           Dr Jones ("+doctor+")") || !strings.Contains(custody, "decrypted        yes") {
		t.Errorf("doctor verify %s:\n%s", rec1.CID, custody)
	}

	// The patient's log shows the grant, the revoke and the hide.
	logOut := p.ok("log")
	for _, want := range []string{"grant " + rec2.CID + " to Dr Jones", "revoke " + rec2.CID + " from Dr Jones", "hide " + rec1.CID, "ack"} {
		if !strings.Contains(logOut, want) {
			t.Errorf("patient log: no %q in\n%s", want, logOut)
		}
	}
	var entries []struct{ Type string }
	d.json(&entries, "log", "patient", "--json")
	var types []string
	for _, e := range entries {
		types = append(types, e.Type)
	}
	if got := strings.Join(types, " "); got != "profile device ack record grant revoke hide" { // init declares the node as a device
		t.Errorf("doctor's copy of the patient's log: %s", got)
	}

	// Unhide brings the observation back.
	p.ok("unhide", rec1.CID)
	if _, ok := p.ls()[rec1.CID]; !ok {
		t.Fatal("patient ls after unhide: observation missing")
	}
	verifyBoth()
}
