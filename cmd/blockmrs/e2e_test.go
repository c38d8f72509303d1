package main

// End-to-end tests: several real daemons, each a separate process with its
// own repo, talking libp2p on 127.0.0.1, driven by the command line (which
// goes through each daemon's API while it runs).

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/json"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// daemonProc is a running `blockmrs daemon` of a test node.
type daemonProc struct {
	t    *testing.T
	n    *node
	cmd  *exec.Cmd
	done chan struct{}
	logs *lockedBuffer
	info struct {
		PeerID string   `json:"peer_id"`
		Listen []string `json:"listen"`
		API    string   `json:"api"`
	}
}

// lockedBuffer is a bytes.Buffer safe for a writer and a reader at once.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startDaemon runs n's daemon on loopback ports chosen by the system,
// mDNS off, with extra environment (BLOCKMRS_BOOTSTRAP, …), and waits
// until it reports itself.
func startDaemon(t *testing.T, n *node, env ...string) *daemonProc {
	t.Helper()
	cmd := n.command("daemon", "--json")
	cmd.Env = append(cmd.Env, "BLOCKMRS_API=127.0.0.1:0", "BLOCKMRS_LISTEN=/ip4/127.0.0.1/tcp/0", "BLOCKMRS_MDNS=false", "BLOCKMRS_LOG=info")
	cmd.Env = append(cmd.Env, env...)
	d := &daemonProc{t: t, n: n, cmd: cmd, done: make(chan struct{}), logs: &lockedBuffer{}}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = d.logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { cmd.Wait(); close(d.done) }()
	t.Cleanup(func() { d.kill() })
	decoded := make(chan error, 1)
	go func() {
		br := bufio.NewReader(stdout)
		decoded <- json.NewDecoder(br).Decode(&d.info)
		io.Copy(io.Discard, br)
	}()
	select {
	case err := <-decoded:
		if err != nil {
			t.Fatalf("daemon --json: %v; log:\n%s", err, d.logs)
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("daemon did not start; log:\n%s", d.logs)
	}
	return d
}

// addr is the daemon's libp2p address, ready for contact add.
func (d *daemonProc) addr() string {
	for _, a := range d.info.Listen {
		if strings.Contains(a, "/tcp/") {
			return a + "/p2p/" + d.info.PeerID
		}
	}
	d.t.Fatalf("daemon listens on no TCP address: %v", d.info.Listen)
	return ""
}

// stop sends SIGTERM and waits for a clean exit.
func (d *daemonProc) stop() {
	d.t.Helper()
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(30 * time.Second):
		d.t.Fatalf("daemon did not stop on SIGTERM; log:\n%s", d.logs)
	}
	if code := d.cmd.ProcessState.ExitCode(); code != 0 {
		d.t.Fatalf("daemon exited %d after SIGTERM; log:\n%s", code, d.logs)
	}
}

// kill sends SIGKILL (if it still runs) and waits for it to be gone.
func (d *daemonProc) kill() {
	d.cmd.Process.Kill()
	<-d.done
}

// waitUntil polls cond every 100 ms until it holds or timeout passes.
func waitUntil(t *testing.T, timeout time.Duration, what string, cond func() bool, logs ...*daemonProc) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			var b strings.Builder
			for _, d := range logs {
				b.WriteString("\n--- " + d.info.PeerID + " log:\n" + d.logs.String())
			}
			t.Fatalf("timed out after %v waiting until %s%s", timeout, what, b.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// requestsOf reads `requests --json`.
type requestEntry struct {
	ID    string `json:"id"`
	From  string `json:"from"`
	To    string `json:"to"`
	State string `json:"state"`
}

func requestsOf(t *testing.T, n *node) (inbox, outbox []requestEntry) {
	t.Helper()
	var out struct {
		Inbox  []requestEntry `json:"inbox"`
		Outbox []requestEntry `json:"outbox"`
	}
	n.json(&out, "requests", "--json")
	return out.Inbox, out.Outbox
}

// TestEndToEndPatientClinicStranger walks the scenario with three
// daemons as separate processes: contact exchange over the network, the
// clinic requests access, the patient approves, the clinic reads; the
// patient revokes and the clinic's node loses the record and cannot get it
// back; the stranger, connected to the patient all along, never holds a
// block of the patient's but the profile it was given.
func TestEndToEndPatientClinicStranger(t *testing.T) {
	patient, clinic, stranger := newNode(t, ""), newNode(t, ""), newNode(t, "")
	patientID := patient.initAccount("--name", "Pat", "--role", "patient", "--no-passphrase")
	clinicID := clinic.initAccount("--name", "Dr Jones", "--role", "clinician", "--no-passphrase")
	stranger.initAccount("--name", "Mallory", "--role", "clinician", "--no-passphrase")

	pd := startDaemon(t, patient)
	cd := startDaemon(t, clinic)
	sd := startDaemon(t, stranger)
	all := []*daemonProc{pd, cd, sd}

	// The patient adds a record while its daemon runs.
	body := make([]byte, 3<<20)
	rand.Read(body)
	var added struct {
		CID string `json:"cid"`
	}
	patient.json(&added, "add", writeTemp(t, "mri.bin", body), "--title", "MRI", "--json")
	rec := added.CID

	// Contact exchange by address: the clinic and the stranger learn the
	// patient's profile (which names the patient's node).
	clinic.ok("contact", "add", pd.addr(), patientID)
	stranger.ok("contact", "add", pd.addr(), patientID)

	// Both ask for access; only the clinic is approved.
	clinic.ok("request", patientID, "--reason", "follow-up of the MRI")
	stranger.ok("request", patientID, "--reason", "curious")
	var fromClinic string
	waitUntil(t, 30*time.Second, "both requests reach the patient's inbox", func() bool {
		inbox, _ := requestsOf(t, patient)
		for _, r := range inbox {
			if r.From == clinicID {
				fromClinic = r.ID
			}
		}
		return len(inbox) == 2 && fromClinic != ""
	}, all...)
	patient.ok("approve", fromClinic)

	// The clinic's node receives the grant and the record by itself.
	out := filepath.Join(t.TempDir(), "mri.out")
	waitUntil(t, 60*time.Second, "the clinic reads the record", func() bool {
		return clinic.run("get", rec, "-o", out).code == 0
	}, all...)
	if !bytes.Equal(readFile(t, out), body) {
		t.Fatal("the clinic read other bytes than the patient added")
	}
	waitUntil(t, 30*time.Second, "the clinic's outbox shows the approval", func() bool {
		_, outbox := requestsOf(t, clinic)
		return len(outbox) == 1 && outbox[0].State == "approved"
	}, all...)

	// Revocation: the clinic's node drops its copy and reads fail. (That
	// the patient's node then refuses the record's blocks to the clinic's
	// node is checked in node/chainsync, which can count the refusals.)
	patient.ok("revoke", rec, "--from", clinicID)
	waitUntil(t, 30*time.Second, "the clinic's copy is gone", func() bool {
		return clinic.run("cat", "--raw", rec).code != 0
	}, all...)
	r := clinic.run("get", rec, "-o", filepath.Join(t.TempDir(), "again"))
	if r.code == 0 {
		t.Fatal("the clinic read the record after the revocation")
	}

	// The stranger holds nothing of the patient's but its profile: of
	// the patient's blocks, exactly one (the first chain block) is in the
	// stranger's store.
	if r := stranger.run("get", rec, "-o", filepath.Join(t.TempDir(), "x")); r.code == 0 {
		t.Fatal("the stranger read the record")
	}
	sd.stop()
	pd.stop()
	shared := 0
	strangerBlocks := blockFiles(t, filepath.Join(stranger.dir, "blocks"))
	for name := range blockFiles(t, filepath.Join(patient.dir, "blocks")) {
		if _, ok := strangerBlocks[name]; ok {
			shared++
		}
	}
	if shared != 1 {
		t.Fatalf("the stranger holds %d of the patient's blocks, want 1 (the profile)", shared)
	}
	var contacts struct {
		Accounts []struct {
			ID  string `json:"id"`
			Seq uint64 `json:"seq"`
		} `json:"accounts"`
	}
	stranger.json(&contacts, "contact", "ls", "--json")
	for _, c := range contacts.Accounts {
		if c.ID == patientID && c.Seq != 0 {
			t.Fatalf("the stranger holds the patient's chain up to seq %d", c.Seq)
		}
	}
	patient.verifyOK()
}

// TestKilledWhileReceivingResumesFromReplica kills a grantee's daemon with
// SIGKILL while it receives a record, takes the patient's node away, and
// restarts the grantee: its repo is consistent and the record arrives
// whole from the patient's declared replica.
func TestKilledWhileReceivingResumesFromReplica(t *testing.T) {
	patient, clinic, doctor := newNode(t, ""), newNode(t, ""), newNode(t, "")
	patientID := patient.initAccount("--name", "Pat", "--role", "patient", "--no-passphrase")
	clinic.initAccount("--name", "Clinic", "--role", "clinic", "--no-passphrase")
	doctorID := doctor.initAccount("--name", "Dr Who", "--role", "clinician", "--no-passphrase")
	pd := startDaemon(t, patient)
	cd := startDaemon(t, clinic)

	body := make([]byte, 128<<20)
	rand.Read(body)
	var added struct {
		CID string `json:"cid"`
	}
	patient.json(&added, "add", writeTemp(t, "scan.bin", body), "--title", "CT scan", "--json")
	rec := added.CID

	// The clinic's node becomes the patient's replica and takes the
	// ciphertext.
	clinic.ok("contact", "add", pd.addr(), patientID)
	patient.ok("replica", "add", cd.info.PeerID, "--name", "clinic")
	waitUntil(t, 120*time.Second, "the replica holds the record", func() bool {
		return clinic.run("cat", "--raw", rec).code == 0
	}, pd, cd)

	// The doctor's node knows both; the patient grants.
	bootstrap := "BLOCKMRS_BOOTSTRAP=" + pd.addr() + "," + cd.addr()
	dd := startDaemon(t, doctor, bootstrap)
	doctor.ok("contact", "add", pd.addr(), patientID)
	patient.ok("contact", "add", dd.addr(), doctorID)
	patient.ok("grant", rec, "--to", doctorID)

	// Kill the doctor's daemon once part of the record has arrived (the
	// patient's chain brings a few blocks first; the record has 128).
	blocksDir := filepath.Join(doctor.dir, "blocks")
	before := len(blockFiles(t, blocksDir))
	deadline := time.Now().Add(60 * time.Second)
	for len(blockFiles(t, blocksDir)) < before+16 {
		if time.Now().After(deadline) {
			t.Fatalf("the doctor's node received nothing; log:\n%s", dd.logs)
		}
		time.Sleep(2 * time.Millisecond)
	}
	dd.kill()
	got := len(blockFiles(t, blocksDir)) - before
	if got >= 128+1 {
		t.Fatalf("the transfer finished (%d blocks) before the kill; nothing was tested", got)
	}
	t.Logf("killed after %d blocks", got)

	// The replica learned the grantee from the patient's node (to know
	// which node acts for it); then the patient's node goes away, and the
	// doctor's comes back knowing only the replica.
	waitUntil(t, 30*time.Second, "the replica knows the doctor", func() bool {
		var contacts struct {
			Accounts []struct {
				ID string `json:"id"`
			} `json:"accounts"`
		}
		clinic.json(&contacts, "contact", "ls", "--json")
		for _, c := range contacts.Accounts {
			if c.ID == doctorID {
				return true
			}
		}
		return false
	}, pd, cd)
	pd.stop()
	dd = startDaemon(t, doctor, "BLOCKMRS_BOOTSTRAP="+cd.addr())
	out := filepath.Join(t.TempDir(), "scan.out")
	waitUntil(t, 120*time.Second, "the doctor reads the record, from the replica", func() bool {
		return doctor.run("get", rec, "-o", out).code == 0
	}, dd, cd)
	if !bytes.Equal(readFile(t, out), body) {
		t.Fatal("the doctor read other bytes than the patient added")
	}
	doctor.verifyOK()
}

// TestDaemonFlagsOverrideEnvironment starts a daemon whose environment
// asks for a public API address (refused) and whose flags ask for loopback
// ports: the flags win. A bad flag value fails with one line.
func TestDaemonFlagsOverrideEnvironment(t *testing.T) {
	n := newNode(t, "")
	n.initAccount("--name", "Clinic", "--role", "clinic", "--no-passphrase")
	n.env["BLOCKMRS_API"] = "0.0.0.0:4102"
	n.env["BLOCKMRS_LISTEN"] = "/ip4/127.0.0.1/tcp/1"
	// (The daemon logs to stderr too; its error is the last line.)
	r := n.run("daemon", "--mdns", "perhaps")
	lines := strings.Split(strings.TrimSuffix(r.stderr, "\n"), "\n")
	if last := lines[len(lines)-1]; r.code != 1 || !strings.HasPrefix(last, "blockmrs: daemon: ") || !strings.Contains(last, `"perhaps" is not true or false`) {
		t.Fatalf("bad --mdns: exit %d, stderr %q", r.code, r.stderr)
	}
	cmd := n.command("daemon", "--json", "--api", "127.0.0.1:0", "--listen", "/ip4/127.0.0.1/tcp/0", "--mdns", "false")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	logs := &lockedBuffer{}
	cmd.Stderr = logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	var info struct {
		API    string   `json:"api"`
		Listen []string `json:"listen"`
	}
	done := make(chan error, 1)
	go func() { done <- json.NewDecoder(out).Decode(&info) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("daemon: %v; log:\n%s", err, logs)
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("daemon did not start; log:\n%s", logs)
	}
	if !strings.HasPrefix(info.API, "http://127.0.0.1:") || strings.HasSuffix(info.API, ":4102") {
		t.Fatalf("api %q: the flag did not win", info.API)
	}
	for _, a := range info.Listen {
		if strings.HasSuffix(a, "/tcp/1") {
			t.Fatalf("listening on %s: the flag did not win", a)
		}
	}
}
