package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/blockmrs/blockmrs/internal/stocktools"
	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/node/api"
	"github.com/blockmrs/blockmrs/node/ops"
)

// revoke --rekey from the command line, without a daemon: progress lines,
// bad input in one line with nothing written, a second run that skips what
// is done, jobs, and ls showing the new versions only.
func TestRevokeRekeyCommand(t *testing.T) {
	t.Parallel()
	p, _, _, doctor, rec := pair(t)
	friend := p.initAccount("--name", "friend", "--no-passphrase")
	other := p.initAccount("--name", "other", "--no-passphrase")
	var recs []string
	for i := range 2 {
		recs = append(recs, strings.TrimSpace(p.ok("add", "--kind", "note", writeTemp(t, "n.txt", []byte(strings.Repeat("note ", i+1))))))
	}
	all := append([]string{rec}, recs...)
	p.ok(append([]string{"grant", "--to", "friend", "--expires", "30d"}, all...)...)
	p.ok(append([]string{"grant", "--to", "other"}, recs[0])...)

	// Bad input: each one line, and nothing written.
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"revoke", "--rekey", "--from", "friend", "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"}, "no verified chain holds it"},
		{[]string{"revoke", "--rekey", "--from", "doctor", rec}, "the record's author, not a grantee"},
		{[]string{"revoke", "--rekey", "--from", "other", rec}, "has no grant to revoke"},
		{[]string{"revoke", "--rekey", "--from", "friend", "--account", "friend", rec}, "only the record's subject"},
		{[]string{"revoke", "--rekey", "--from", "nobody", rec}, "nobody"},
	} {
		if r := p.fail(1, c.args...); !strings.Contains(r.stderr, c.want) {
			t.Errorf("%v: %q, want %q", c.args, r.stderr, c.want)
		}
	}
	if out := p.ok("jobs"); strings.Count(out, "\n") != 1 {
		t.Fatalf("a refused re-key left a job: %q", out)
	}

	// Three records: a line per record, then the summary.
	out := p.ok(append([]string{"revoke", "--from", "friend", "--rekey"}, all...)...)
	lines := regexp.MustCompile(`(?m)^\[(\d)/3\] (\S+) re-keyed as (\S+)$`).FindAllStringSubmatch(out, -1)
	if len(lines) != 3 || !strings.HasPrefix(out, "re-keying 3 record(s), revoking friend") || !strings.Contains(out, "re-keyed 3 record(s)") ||
		!strings.Contains(out, "cannot be taken back") {
		t.Fatalf("revoke --rekey:\n%s", out)
	}
	newOf := map[string]string{}
	for _, l := range lines {
		newOf[l[2]] = l[3]
	}
	// The other grantee of recs[0] reads its new version, the revoked one
	// reads none; the patient's ls lists only the new versions.
	for _, c := range all {
		if _, ok := newOf[c]; !ok {
			t.Fatalf("no line for %s:\n%s", c, out)
		}
	}
	var rd struct {
		Readers []keyshare.Reader `json:"readers"`
	}
	p.json(&rd, "readers", newOf[recs[0]], "--json")
	roles := map[string]string{}
	for _, r := range rd.Readers {
		roles[string(r.Account)] = r.Role
	}
	if len(rd.Readers) != 2 || roles[friend] != "" || roles[other] != "grantee" {
		t.Fatalf("readers of the new version: %+v", rd.Readers)
	}
	p.json(&rd, "readers", newOf[rec], "--json")
	roles = map[string]string{}
	for _, r := range rd.Readers {
		roles[string(r.Account)] = r.Role
	}
	if roles[doctor] != "grantee" || roles[friend] != "" || len(rd.Readers) != 2 {
		t.Fatalf("the doctor's record, re-keyed: readers %+v", rd.Readers)
	}
	listed := p.ls()
	for _, c := range all {
		if _, ok := listed[c]; ok {
			t.Errorf("ls still lists the re-keyed %s", c)
		}
		if _, ok := listed[newOf[c]]; !ok {
			t.Errorf("ls does not list the new version %s", newOf[c])
		}
	}

	// The same again: everything is skipped; jobs shows both.
	again := p.ok(append([]string{"revoke", "--from", "friend", "--rekey"}, all...)...)
	if strings.Count(again, "was re-keyed already, as ") != 3 {
		t.Fatalf("second run:\n%s", again)
	}
	var jobs ops.JobList
	p.json(&jobs, "jobs", "--json")
	if len(jobs.Jobs) != 2 || jobs.Jobs[0].State != keyshare.JobDone || jobs.Jobs[1].Done != 3 {
		t.Fatalf("jobs: %+v", jobs)
	}
	one := p.ok("jobs", jobs.Jobs[1].ID)
	if !strings.Contains(one, "done, 3 of 3 record(s) re-keyed") || strings.Count(one, " re-keyed as ") != 3 {
		t.Fatalf("jobs ID:\n%s", one)
	}
	if r := p.fail(1, "jobs", "nope"); !strings.Contains(r.stderr, "not found") {
		t.Fatalf("jobs of an unknown ID: %q", r.stderr)
	}
	p.verifyOK()
}

// Through the daemon, over the network: the patient revokes the doctor's
// record from a friend's node with re-key; the GP, still a grantee, gets
// the new version on her node by herself and reads it, stock age decrypts
// it with the key she exports, and the CLI's job is the API's.
func TestRevokeRekeyOverTheNetwork(t *testing.T) {
	patient, gp, friend := newNode(t, ""), newNode(t, ""), newNode(t, "")
	patientID := patient.initAccount("--name", "Pat", "--role", "patient", "--no-passphrase")
	gpID := gp.initAccount("--name", "Dr Grey", "--role", "clinician", "--no-passphrase")
	friendID := friend.initAccount("--name", "Sam", "--no-passphrase")
	pd, gd, fd := startDaemon(t, patient), startDaemon(t, gp), startDaemon(t, friend)
	all := []*daemonProc{pd, gd, fd}
	body := bytes.Repeat([]byte("ferritin 40 ng/mL\n"), 100_000)
	var added struct {
		CID string `json:"cid"`
	}
	patient.json(&added, "add", writeTemp(t, "labs.txt", body), "--title", "Labs", "--json")
	rec := added.CID
	for _, c := range []struct {
		n  *node
		at *daemonProc
		id string
	}{{gp, pd, patientID}, {friend, pd, patientID}, {patient, gd, gpID}, {patient, fd, friendID}} {
		c.n.ok("contact", "add", c.at.addr(), c.id)
	}
	patient.ok("grant", rec, "--to", gpID, "--expires", "30d")
	patient.ok("grant", rec, "--to", friendID)
	for _, n := range []*node{gp, friend} {
		waitUntil(t, 60*time.Second, "the grantees read the record", func() bool {
			return n.run("get", rec, "-o", filepath.Join(t.TempDir(), "x")).code == 0
		}, all...)
	}

	var job ops.Job
	patient.json(&job, "revoke", rec, "--from", friendID, "--rekey", "--json")
	if job.State != keyshare.JobDone || job.Total != 1 || job.Records[0].State != keyshare.JobRecordDone {
		t.Fatalf("revoke --rekey --json: %+v", job)
	}
	pc, err := api.NewClient(patient.dir)
	if err != nil {
		t.Fatal(err)
	}
	fromAPI, err := pc.Job(t.Context(), "", job.ID)
	if err != nil {
		t.Fatal(err)
	}
	sameJSON(t, "the re-key job", patient.ok("jobs", job.ID, "--json"), fromAPI)
	nw := job.Records[0].New

	// The GP reads the new version, on her node, by herself.
	out := filepath.Join(t.TempDir(), "new")
	waitUntil(t, 60*time.Second, "the GP reads the new version", func() bool {
		return gp.run("get", nw, "-o", out).code == 0
	}, all...)
	if !bytes.Equal(readFile(t, out), body) {
		t.Fatal("the new version holds other bytes")
	}
	if v := gp.ok("verify", nw); !regexp.MustCompile(`re-keyed +by Pat from ` + rec + ` written by Pat`).MatchString(v) {
		t.Fatalf("verify of the new version on the GP's node:\n%s", v)
	}
	// Stock age, with the key she exports and the raw ciphertext.
	dir := t.TempDir()
	keyFile, ctFile := filepath.Join(dir, "k"), filepath.Join(dir, "ct")
	if err := os.WriteFile(keyFile, []byte(gp.ok("key", "export", nw)), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(ctFile, []byte(gp.ok("cat", "--raw", nw)), 0o600); err != nil {
		t.Fatal(err)
	}
	plain, err := exec.Command(stocktools.Age(t), "-d", "-i", keyFile, ctFile).Output()
	if err != nil || !bytes.Equal(plain, body) {
		t.Fatalf("stock age -d: %d bytes, %v", len(plain), err)
	}

	// The friend's node: its old copy goes, and it reads neither version.
	waitUntil(t, 30*time.Second, "the friend's copy is gone", func() bool {
		return friend.run("cat", "--raw", rec).code != 0
	}, all...)
	for _, c := range []string{rec, nw} {
		if friend.run("get", c, "-o", filepath.Join(t.TempDir(), "x")).code == 0 {
			t.Fatalf("the revoked friend reads %s", c)
		}
	}
	// The GP's old copy goes too, once the new version is there.
	waitUntil(t, 30*time.Second, "the GP's old copy is gone", func() bool {
		return gp.run("cat", "--raw", rec).code != 0
	}, all...)
}
