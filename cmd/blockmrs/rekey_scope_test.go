package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/blockmrs/blockmrs/internal/stocktools"
	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/node/api"
	"github.com/blockmrs/blockmrs/node/ops"
)

// revoke --scope S --from A --rekey over four daemons: the patient gives
// her GP and a specialist a laboratory scope, a clinic writes a lab
// result, both read it; she ends the GP's scope with re-key. The GP's
// node is refused the old CID and never gets the new one; the
// specialist, still a standing grantee, reads the new version on her
// own node, and stock age decrypts its ciphertext with the key she
// exports. The same re-key again through the API skips what is done.
func TestRevokeScopeRekeyOverTheNetwork(t *testing.T) {
	patient, gp, spec, clinic := newNode(t, ""), newNode(t, ""), newNode(t, ""), newNode(t, "")
	patientID := patient.initAccount("--name", "Pat", "--role", "patient", "--no-passphrase")
	gpID := gp.initAccount("--name", "Dr GP", "--role", "clinician", "--no-passphrase")
	specID := spec.initAccount("--name", "Dr Reed", "--role", "clinician", "--no-passphrase")
	clinicID := clinic.initAccount("--name", "City Lab", "--role", "clinic", "--no-passphrase")
	pd, gd, sd, cd := startDaemon(t, patient), startDaemon(t, gp), startDaemon(t, spec), startDaemon(t, clinic)
	all := []*daemonProc{pd, gd, sd, cd}
	for _, c := range []struct {
		n  *node
		at *daemonProc
		id string
	}{{gp, pd, patientID}, {spec, pd, patientID}, {clinic, pd, patientID}, {patient, gd, gpID}, {patient, sd, specID}, {patient, cd, clinicID}} {
		c.n.ok("contact", "add", c.at.addr(), c.id)
	}
	patient.ok("unlock") // her node acknowledges and covers as records arrive
	const lab = "patient/Observation.rs?category=laboratory"
	patient.ok("grant", "--scope", lab, "--to", gpID)
	patient.ok("grant", "--scope", lab, "--to", specID)

	var w struct {
		Records []struct {
			CID string `json:"cid"`
		} `json:"records"`
	}
	clinic.json(&w, "lab", "add", "--json", "--for", patientID, "fasting-glucose=95")
	if len(w.Records) != 1 {
		t.Fatalf("lab add: %+v", w)
	}
	old := w.Records[0].CID
	reads := func(n *node, c string) bool {
		return n.run("get", c, "-o", filepath.Join(t.TempDir(), "out")).code == 0
	}
	for _, n := range []*node{gp, spec} {
		waitUntil(t, 90*time.Second, "the standing grantees read the lab result", func() bool { return reads(n, old) }, all...)
	}

	var job ops.Job
	patient.json(&job, "revoke", "--scope", lab, "--from", gpID, "--rekey", "--json")
	if job.State != keyshare.JobDone || job.Total != 1 || job.Records[0].Record != old || job.Records[0].State != keyshare.JobRecordDone || job.Scope != lab {
		t.Fatalf("revoke --scope --rekey --json: %+v", job)
	}
	nw := job.Records[0].New

	// The specialist reads the new version on her node, by herself, and
	// stock age opens it with the key she exports.
	waitUntil(t, 90*time.Second, "the specialist reads the new version", func() bool { return reads(spec, nw) }, all...)
	dir := t.TempDir()
	keyFile, ctFile := filepath.Join(dir, "k"), filepath.Join(dir, "ct")
	if err := os.WriteFile(keyFile, []byte(spec.ok("key", "export", nw)), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(ctFile, []byte(spec.ok("cat", "--raw", nw)), 0o600); err != nil {
		t.Fatal(err)
	}
	plain, err := exec.Command(stocktools.Age(t), "-d", "-i", keyFile, ctFile).Output()
	if err != nil || !bytes.Contains(plain, []byte(`"Observation"`)) {
		t.Fatalf("stock age -d: %q, %v", plain, err)
	}
	var got bytes.Buffer
	out := filepath.Join(t.TempDir(), "new")
	spec.ok("get", nw, "-o", out)
	got.Write(readFile(t, out))
	if !bytes.Equal(got.Bytes(), plain) {
		t.Fatal("stock age and blockmrs get disagree on the new version")
	}

	// The GP's node: its old copy goes, it reads neither version, and no
	// node gives it the new one.
	waitUntil(t, 60*time.Second, "the GP's old copy is gone", func() bool { return gp.run("cat", "--raw", old).code != 0 }, all...)
	for _, c := range []string{old, nw} {
		if reads(gp, c) {
			t.Fatalf("the GP reads %s after the re-key", c)
		}
	}
	if r := gp.run("cat", "--raw", nw); r.code == 0 {
		t.Fatal("the GP's node holds the new version's ciphertext")
	}

	// The same re-key through the API: the grant is ended already, the
	// record is found re-keyed.
	pc, err := api.NewClient(patient.dir)
	if err != nil {
		t.Fatal(err)
	}
	again, err := pc.StartScopeRekey(t.Context(), "", api.ScopeEndRequest{Scope: lab, From: gpID})
	if err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 30*time.Second, "the API's re-key job ends", func() bool {
		j, err := pc.Job(t.Context(), "", again.ID)
		return err == nil && j.Finished()
	}, all...)
	end, err := pc.Job(t.Context(), "", again.ID)
	if err != nil || end.State != keyshare.JobDone || end.Records[0].State != keyshare.JobRecordSkipped || end.Records[0].New != nw {
		t.Fatalf("again through the API: %+v, %v", end, err)
	}
	sameJSON(t, "the re-key job", patient.ok("jobs", again.ID, "--json"), end)
	if _, err := pc.StartScopeRekey(t.Context(), "", api.ScopeEndRequest{Scope: "patient/Condition.rs", From: gpID}); err == nil || !strings.Contains(err.Error(), "no standing grant") {
		t.Fatalf("a scope never given: %v", err)
	}
	patient.verifyOK()
}
