package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/blockmrs/blockmrs/node/audit"
)

// auditEntry is what audit --json lists per event.
type auditEntry struct {
	Seq        uint64   `json:"seq"`
	Kind       string   `json:"kind"`
	Account    string   `json:"account"`
	Peer       string   `json:"peer"`
	Subject    string   `json:"subject"`
	Records    []string `json:"records"`
	Rule       string   `json:"rule"`
	ReportedBy string   `json:"reported_by"`
}

func auditOf(t *testing.T, n *node, args ...string) []auditEntry {
	t.Helper()
	var out struct {
		Node    string       `json:"node"`
		Entries []auditEntry `json:"entries"`
	}
	n.json(&out, append([]string{"audit", "--json"}, args...)...)
	if out.Node == "" {
		t.Fatalf("audit --json names no node")
	}
	return out.Entries
}

// TestAuditThroughReplica: a grantee reads the patient's record from the
// patient's replica while the patient's node is stopped; the replica's
// audit log records it, and the patient's node, when it comes back,
// receives the event (reported by the replica over /blockmrs/audit/1.0.0)
// and shows it in `audit`, also as a FHIR AuditEvent. Then the patient's
// audit log is tampered with and verify says so.
func TestAuditThroughReplica(t *testing.T) {
	patient, clinic, doctor := newNode(t, ""), newNode(t, ""), newNode(t, "")
	patientID := patient.initAccount("--name", "Pat", "--role", "patient", "--no-passphrase")
	clinic.initAccount("--name", "Clinic", "--role", "clinic", "--no-passphrase")
	doctorID := doctor.initAccount("--name", "Dr Who", "--role", "clinician", "--no-passphrase")
	pd := startDaemon(t, patient)
	cd := startDaemon(t, clinic)

	var added struct {
		CID string `json:"cid"`
	}
	patient.json(&added, "add", writeTemp(t, "note.txt", []byte("blood pressure 120/80")), "--title", "BP", "--json")
	rec := added.CID

	// The clinic's node becomes the patient's replica and takes the
	// record.
	clinic.ok("contact", "add", pd.addr(), patientID)
	patient.ok("replica", "add", cd.info.PeerID, "--name", "clinic")
	waitUntil(t, 120*time.Second, "the replica holds the record", func() bool {
		return clinic.run("cat", "--raw", rec).code == 0
	}, pd, cd)

	// The doctor meets the patient, then goes offline; the patient grants.
	dd := startDaemon(t, doctor)
	doctor.ok("contact", "add", pd.addr(), patientID)
	patient.ok("contact", "add", dd.addr(), doctorID)
	dd.stop()
	patient.ok("grant", rec, "--to", doctorID)
	waitUntil(t, 60*time.Second, "the replica knows the grant", func() bool {
		var readers struct {
			Readers []struct {
				Account string `json:"account"`
			} `json:"readers"`
		}
		clinic.json(&readers, "readers", rec, "--json")
		for _, r := range readers.Readers {
			if r.Account == doctorID {
				return true
			}
		}
		return false
	}, pd, cd)

	// The patient's node stops; the doctor reads through the replica.
	pd.stop()
	dd = startDaemon(t, doctor, "BLOCKMRS_BOOTSTRAP="+cd.addr())
	out := filepath.Join(t.TempDir(), "note.out")
	waitUntil(t, 120*time.Second, "the doctor reads the record, from the replica", func() bool {
		return doctor.run("get", rec, "-o", out).code == 0
	}, dd, cd)
	if string(readFile(t, out)) != "blood pressure 120/80" {
		t.Fatal("the doctor read other bytes than the patient added")
	}

	// The replica recorded what it served, for whom, under which rule.
	served := func(es []auditEntry) *auditEntry {
		for i, e := range es {
			if e.Kind == "serve" && e.Account == doctorID && e.Subject == patientID && len(e.Records) == 1 && e.Records[0] == rec {
				return &es[i]
			}
		}
		return nil
	}
	var onReplica *auditEntry
	waitUntil(t, 30*time.Second, "the replica's audit log records the serve", func() bool {
		onReplica = served(auditOf(t, clinic, "--all"))
		return onReplica != nil
	}, cd)
	if onReplica.Peer != dd.info.PeerID || onReplica.Rule != "read/grantee" || onReplica.ReportedBy != "" {
		t.Fatalf("the replica's serve event: %+v", onReplica)
	}
	// The patient's node is away: the report waits at the replica.

	// The patient's node comes back, knowing the replica; the replica
	// reports the event when they connect.
	pd = startDaemon(t, patient, "BLOCKMRS_BOOTSTRAP="+cd.addr())
	var onPatient *auditEntry
	waitUntil(t, 90*time.Second, "the patient's audit shows the doctor's read through the replica", func() bool {
		onPatient = served(auditOf(t, patient))
		return onPatient != nil
	}, pd, cd)
	if onPatient.ReportedBy != cd.info.PeerID || onPatient.Peer != dd.info.PeerID {
		t.Fatalf("the patient's copy of the event: %+v", onPatient)
	}
	// By record, and not before a date after it.
	if es := auditOf(t, patient, rec); served(es) == nil {
		t.Fatalf("audit %s does not list the read: %+v", rec, es)
	}
	if es := auditOf(t, patient, "--since", time.Now().Add(48*time.Hour).Format("2006-01-02")); len(es) != 0 {
		t.Fatalf("audit --since a later day lists %+v", es)
	}
	text := patient.ok("audit", rec)
	if !strings.Contains(text, "serve") || !strings.Contains(text, "Dr Who") || !strings.Contains(text, "read/grantee") {
		t.Fatalf("audit's table:\n%s", text)
	}

	// The FHIR export holds the read as an AuditEvent of type rest,
	// subtype read, with the patient as entity.
	var bundle struct {
		ResourceType string `json:"resourceType"`
		Entry        []struct {
			Resource struct {
				ResourceType string `json:"resourceType"`
				Type         struct{ Code string }
				Subtype      []struct{ System, Code string }
				Agent        []struct {
					Who struct {
						Identifier struct{ Value string }
					}
					Requestor bool
				}
				Entity []struct {
					What struct {
						Identifier struct{ Value string }
					}
					Role struct{ Code string }
				}
			} `json:"resource"`
		} `json:"entry"`
	}
	if err := json.Unmarshal([]byte(patient.ok("audit", rec, "--fhir")), &bundle); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, e := range bundle.Entry {
		r := e.Resource
		if r.ResourceType == "AuditEvent" && r.Type.Code == "rest" && len(r.Subtype) == 1 && r.Subtype[0].Code == "read" &&
			r.Agent[0].Who.Identifier.Value == doctorID && r.Agent[0].Requestor &&
			r.Entity[0].What.Identifier.Value == patientID && r.Entity[0].Role.Code == "1" {
			found = true
		}
	}
	if bundle.ResourceType != "Bundle" || !found {
		t.Fatalf("no AuditEvent for the read in the Bundle: %+v", bundle)
	}
	patient.verifyOK()

	// Tampering with the patient's audit log is detected by verify.
	pd.stop()
	logPath := filepath.Join(patient.dir, audit.Folder, audit.LogFile)
	data, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	edited := bytes.Replace(data, []byte("read/grantee"), []byte("read/GRANTEE"), 1)
	if bytes.Equal(edited, data) {
		t.Fatal("the rule is not in the log file")
	}
	if err := os.WriteFile(logPath, edited, 0o600); err != nil {
		t.Fatal(err)
	}
	r := patient.fail(1, "verify", "--chains")
	if !strings.Contains(r.stderr, "audit log: entry") || !strings.Contains(r.stderr, "was edited: its signature does not verify") {
		t.Fatalf("verify after editing the audit log: %+v", r)
	}
	if !strings.Contains(r.stdout, "problem: audit log: entry") {
		t.Fatalf("verify's report does not name the edited entry:\n%s", r.stdout)
	}
}

// TestAuditIndexDamaged: the audit index beside the log is overwritten,
// cut and removed in turn; `audit` still lists every event (by record
// and in full), `verify` passes once the node has rebuilt it, and the
// index is back.
func TestAuditIndexDamaged(t *testing.T) {
	n := newNode(t, "")
	n.initAccount("--name", "Pat", "--role", "patient", "--no-passphrase")
	var recs []string
	for i := range 3 {
		var added struct {
			CID string `json:"cid"`
		}
		n.json(&added, "add", writeTemp(t, "note.txt", []byte(strings.Repeat("x", i+1))), "--title", "note", "--json")
		recs = append(recs, added.CID)
		n.ok("get", added.CID, "-o", filepath.Join(t.TempDir(), "out"))
	}
	all := auditOf(t, n)
	byRecord := auditOf(t, n, recs[1])
	if len(all) < 3 || len(byRecord) == 0 {
		t.Fatalf("audit before any damage: %d events, %d for %s", len(all), len(byRecord), recs[1])
	}
	path := filepath.Join(n.dir, audit.Folder, audit.IndexFile)
	intact, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("no audit index beside the log: %v", err)
	}
	for name, damage := range map[string]func(){
		"overwritten": func() { os.WriteFile(path, bytes.Repeat([]byte{0xA5}, len(intact)), 0o600) },
		"cut":         func() { os.WriteFile(path, intact[:len(intact)/2], 0o600) },
		"removed":     func() { os.Remove(path) },
	} {
		damage()
		if got := auditOf(t, n); len(got) != len(all) {
			t.Fatalf("index %s: audit lists %d events, the log holds %d", name, len(got), len(all))
		}
		if got := auditOf(t, n, recs[1]); len(got) != len(byRecord) {
			t.Fatalf("index %s: audit %s lists %d events, want %d", name, recs[1], len(got), len(byRecord))
		}
		n.verifyOK()
		if _, err := os.Stat(path); err != nil {
			t.Fatalf("index %s: not rebuilt: %v", name, err)
		}
	}
}
