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

// revoke --scope --rekey from the command line, without a daemon: bad
// input in one line with nothing written, a line per record and per
// record kept, and a second run that ends nothing twice and skips what is
// done.
func TestRevokeScopeRekeyCommand(t *testing.T) {
	t.Parallel()
	p := newNode(t, "")
	p.initAccount("--name", "Pat", "--role", "patient", "--no-passphrase")
	p.initAccount("--name", "friend", "--no-passphrase")
	const lab = "patient/Observation.rs?category=laboratory"
	var w struct {
		Records []struct {
			CID  string `json:"cid"`
			Test string `json:"test"`
		} `json:"records"`
	}
	p.json(&w, "lab", "add", "--json", "--account", "Pat", "--for", "Pat", "fasting-glucose=95", "ldl=110")
	if len(w.Records) != 2 {
		t.Fatalf("lab add: %+v", w)
	}
	glucose, ldl := w.Records[0].CID, w.Records[1].CID
	p.ok("grant", "--account", "Pat", "--scope", lab, "--to", "friend")
	p.ok("grant", "--account", "Pat", ldl, "--to", "friend")

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"revoke", "--account", "Pat", "--scope", "patient/Condition.rs", "--from", "friend", "--rekey"}, "no standing grant patient/Condition.rs"},
		{[]string{"revoke", "--account", "Pat", "--scope", "patient/Observation.cruds", "--from", "friend", "--rekey"}, "scope"},
		{[]string{"revoke", "--account", "Pat", "--scope", lab, "--from", "nobody", "--rekey"}, "nobody"},
		{[]string{"revoke", "--account", "Pat", "--scope", lab, "--from", "friend", "--rekey", glucose}, "drop"},
	} {
		r := p.run(c.args...)
		if r.code == 0 || !strings.Contains(r.stderr, c.want) || strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 {
			t.Errorf("%v: exit %d, %q, want one line with %q", c.args, r.code, r.stderr, c.want)
		}
	}
	var g ops.GrantList
	p.json(&g, "grants", "--account", "Pat", "--json")
	if len(g.Standing) != 1 {
		t.Fatalf("a refused re-key ended the standing grant: %+v", g.Standing)
	}
	if out := p.ok("jobs", "--account", "Pat"); strings.Count(out, "\n") != 1 {
		t.Fatalf("a refused re-key left a job: %q", out)
	}

	out := p.ok("revoke", "--account", "Pat", "--scope", lab, "--from", "friend", "--rekey")
	for _, want := range []string{
		"ended the standing grant of " + lab + " to friend (",
		"; re-keying the 1 record(s) it lost (job ",
		"kept " + ldl + ": ",
		"[1/1] " + glucose + " re-keyed as ",
		"re-keyed 1 record(s)",
		"cannot be taken back",
	} {
		if !strings.Contains(out, want) {
			t.Fatalf("revoke --scope --rekey does not say %q:\n%s", want, out)
		}
	}
	p.json(&g, "grants", "--account", "Pat", "--json")
	if len(g.Standing) != 0 {
		t.Fatalf("the standing grant is still live: %+v", g.Standing)
	}
	listed := p.ls("--account", "Pat")
	if _, ok := listed[glucose]; ok {
		t.Fatal("ls still lists the re-keyed glucose")
	}
	if _, ok := listed[ldl]; !ok {
		t.Fatal("the record granted one by one was re-keyed")
	}
	if r := p.run("get", "--account", "friend", ldl, "-o", filepath.Join(t.TempDir(), "x")); r.code != 0 {
		t.Fatalf("friend lost the record granted one by one: %s", r.stderr)
	}

	again := p.ok("revoke", "--account", "Pat", "--scope", lab, "--from", "friend", "--rekey")
	if !strings.Contains(again, glucose+" was re-keyed already, as ") {
		t.Fatalf("second run:\n%s", again)
	}
	var jobs ops.JobList
	p.json(&jobs, "jobs", "--account", "Pat", "--json")
	if len(jobs.Jobs) != 2 || jobs.Jobs[0].State != keyshare.JobDone || jobs.Jobs[1].Scope != lab || len(jobs.Jobs[1].Kept) != 1 {
		t.Fatalf("jobs: %+v", jobs)
	}
	p.verifyOK()
}
