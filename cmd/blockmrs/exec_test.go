package main

// Commands through a running daemon's API (POST /api/v1/exec): the same
// output, errors and exit codes as when they run alone.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// apiDaemon is a running `blockmrs daemon` process for a node.
type apiDaemon struct {
	cmd    *exec.Cmd
	stderr *strings.Builder
	done   chan error
	api    string
	peer   string
}

// startAPIDaemon starts the node's daemon on 127.0.0.1 (any ports) and
// waits until it serves.
func startAPIDaemon(t *testing.T, n *node) *apiDaemon {
	t.Helper()
	n.env["BLOCKMRS_API"] = "127.0.0.1:0"
	n.env["BLOCKMRS_LISTEN"] = "/ip4/127.0.0.1/tcp/0"
	defer func() {
		delete(n.env, "BLOCKMRS_API")
		delete(n.env, "BLOCKMRS_LISTEN")
	}()
	d := &apiDaemon{cmd: n.command("daemon", "--json"), stderr: &strings.Builder{}, done: make(chan error, 1)}
	stdout, err := d.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	d.cmd.Stderr = d.stderr
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var info struct {
		PeerID string `json:"peer_id"`
		API    string `json:"api"`
	}
	decoded := make(chan error, 1)
	go func() {
		br := bufio.NewReader(stdout)
		decoded <- json.NewDecoder(br).Decode(&info)
		io.Copy(io.Discard, br)
		d.done <- d.cmd.Wait()
	}()
	t.Cleanup(func() { d.cmd.Process.Kill(); <-d.done })
	select {
	case err := <-decoded:
		if err != nil {
			t.Fatalf("daemon: %v (stderr %s)", err, d.stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("daemon did not start")
	}
	d.api, d.peer = info.API, info.PeerID
	return d
}

// stop sends SIGTERM and requires a clean exit within a few seconds (no
// command left hanging inside).
func (d *apiDaemon) stop(t *testing.T) {
	t.Helper()
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-d.done:
		d.done <- err // for the cleanup
		if err != nil {
			t.Fatalf("daemon exit: %v (stderr %s)", err, d.stderr.String())
		}
	case <-time.After(8 * time.Second):
		t.Fatal("daemon did not stop in time")
	}
}

// runIn runs blockmrs in folder dir with stdin (may be nil).
func (n *node) runIn(dir string, stdin io.Reader, args ...string) result {
	n.t.Helper()
	cmd := n.command(args...)
	cmd.Dir, cmd.Stdin = dir, stdin
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		n.t.Fatal(err)
	}
	return result{code, stdout.String(), stderr.String()}
}

func TestCommandsThroughDaemon(t *testing.T) {
	p := newNode(t, "patient pass")
	d := newNode(t, "doctor pass")
	p.initAccount("--name", "Pat", "--role", "patient")
	doctor := d.initAccount("--name", "Dr Grey", "--role", "clinician")
	work := t.TempDir() // the folder the commands run in
	p.ok("id", "--export", filepath.Join(work, "pat.car"))
	d.ok("id", "--export", filepath.Join(work, "grey.car"))
	d.ok("contact", "add", filepath.Join(work, "pat.car"))
	p.ok("contact", "add", filepath.Join(work, "grey.car"))
	if err := os.WriteFile(filepath.Join(work, "hb.json"), []byte(`{"resourceType":"Observation","status":"final","code":{"text":"Hemoglobin"}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	rec := strings.TrimSpace(p.ok("add", filepath.Join(work, "hb.json"), "--kind", "fhir", "--title", "Hemoglobin"))

	// What the read-only commands print, and how failures look, alone.
	same := [][]string{
		{"ls"}, {"ls", "--json"}, {"accounts"}, {"contact", "ls"}, {"log"}, {"log", "--json"},
		{"verify"}, {"verify", rec}, {"key", "export", rec}, {"cat", "--raw", rec}, {"get", rec},
		{"device", "ls"}, // (id --json differs: through the daemon it has the node's addresses; TestOpsThroughCLIAndAPI)
		// failures: usage (exit 2) and others (exit 1)
		{"get"}, {"get", "not-a-cid"}, {"ls", "--bogus"}, {"grant", rec, "--to", "Nobody"},
		{"add", "missing-file.txt"}, {"contact", "frob"}, {"add", "--help"}, {"nonsense"},
	}
	direct := map[string]result{}
	for _, args := range same {
		direct[strings.Join(args, " ")] = p.runIn(work, nil, args...)
	}
	wrong := func(n *node) result {
		n.env[envPassphrase] = "wrong"
		defer func() { n.env[envPassphrase] = "patient pass" }()
		return n.runIn(work, nil, "get", rec)
	}
	wrongDirect := wrong(p)

	dmn := startAPIDaemon(t, p)
	for _, args := range same {
		k := strings.Join(args, " ")
		got := p.runIn(work, nil, args...)
		if got != direct[k] {
			t.Errorf("%s through the daemon:\n%+v\nalone:\n%+v", k, got, direct[k])
		}
	}
	if got := wrong(p); got != wrongDirect || got.code != 1 {
		t.Errorf("wrong passphrase through the daemon %+v, alone %+v", got, wrongDirect)
	}

	// On a terminal, without $BLOCKMRS_PASSPHRASE: asked for and retried.
	if r := promptedThroughDaemon(t, p, rec, "patient pass"); r != direct["get "+rec] {
		t.Errorf("get with the passphrase typed on the terminal: %+v", r)
	}

	// Writes: add a file (relative name) and stdin, get -o a relative path.
	scan := bytes.Repeat([]byte("scan-bytes "), 50000)
	if err := os.WriteFile(filepath.Join(work, "scan.pdf"), scan, 0o600); err != nil {
		t.Fatal(err)
	}
	r := p.runIn(work, nil, "add", "scan.pdf", "--title", "X-ray")
	scanCID := strings.TrimSpace(r.stdout)
	if r.code != 0 || r.stderr != "" || !cidRe.MatchString(scanCID) {
		t.Fatalf("add scan.pdf: %+v", r)
	}
	r = p.runIn(work, strings.NewReader("a note from stdin"), "add", "-", "--kind", "note", "--title", "note")
	noteCID := strings.TrimSpace(r.stdout)
	if r.code != 0 || !cidRe.MatchString(noteCID) {
		t.Fatalf("add -: %+v", r)
	}
	if l := p.ls(); l[scanCID].Title != "X-ray" || l[noteCID].Title != "note" {
		t.Fatalf("ls after adds: %+v", l)
	}
	if r := p.runIn(work, nil, "get", scanCID, "-o", "copy.pdf"); r.code != 0 || r.stdout != "" || r.stderr != "" {
		t.Fatalf("get -o: %+v", r)
	}
	if !bytes.Equal(readFile(t, filepath.Join(work, "copy.pdf")), scan) {
		t.Fatal("get -o copy.pdf: wrong content")
	}
	if r := p.runIn(work, nil, "get", noteCID); r.stdout != "a note from stdin" {
		t.Fatalf("get note: %+v", r)
	}

	// Grant to the doctor, export (relative path), the doctor imports it
	// (alone) and reads the scan; then revoke and grant again.
	if r := p.runIn(work, nil, "grant", scanCID, "--to", "Dr Grey"); r.code != 0 || !strings.Contains(r.stdout, "granted 1 record(s) to Dr Grey") {
		t.Fatalf("grant: %+v", r)
	}
	if r := p.runIn(work, nil, "export", "pat-chain.car"); r.code != 0 || !strings.Contains(r.stdout, "to pat-chain.car") {
		t.Fatalf("export: %+v", r)
	}
	d.ok("import", filepath.Join(work, "pat-chain.car"))
	d.ok("get", scanCID, "-o", filepath.Join(work, "doctor-copy.pdf"))
	if !bytes.Equal(readFile(t, filepath.Join(work, "doctor-copy.pdf")), scan) {
		t.Fatal("the doctor's copy differs")
	}
	if r := p.runIn(work, nil, "revoke", scanCID, "--from", doctor); r.code != 0 || !strings.Contains(r.stdout, "revoked 1 record(s)") {
		t.Fatalf("revoke: %+v", r)
	}
	// Import through the daemon, from a file and from stdin.
	d.ok("export", filepath.Join(work, "grey-chain.car"))
	if r := p.runIn(work, nil, "import", "grey-chain.car"); r.code != 0 || !strings.Contains(r.stdout, "new chain block(s)") {
		t.Fatalf("import: %+v", r)
	}
	if r := p.runIn(work, bytes.NewReader(readFile(t, filepath.Join(work, "grey-chain.car"))), "import", "-"); r.code != 0 || !strings.Contains(r.stdout, "0 new chain block(s)") {
		t.Fatalf("import -: %+v", r)
	}
	// Device add through the daemon: the daemon's own node is already
	// declared by init; declare another.
	if r := p.runIn(work, nil, "device", "add", "12D3KooWHHzSeKaY8xuZVzkLbKFfvNgPPeKhFBGrMbNzbm5akpqu", "--name", "laptop"); r.code != 0 {
		t.Fatalf("device add: %+v", r)
	}
	devs := p.runIn(work, nil, "device", "ls").stdout
	if !strings.Contains(devs, "laptop") || !strings.Contains(devs, dmn.peer) {
		t.Fatalf("device ls: %s (node %s)", devs, dmn.peer)
	}
	p.verifyOK()

	// Commands that do not run through the daemon say so.
	r = p.fail(1, "init", "--name", "Again")
	if !strings.Contains(r.stderr, "daemon") {
		t.Fatalf("init with a daemon: %q", r.stderr)
	}

	// Ctrl-C of a command through the daemon: the client reports it as
	// alone, the daemon cancels the command (it then stops at once).
	cmd := p.command("add", "-", "--title", "never")
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pw.Close()
	cmd.Stdin = pr
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pr.Close()
	// Once this much went through the pipe, the daemon is reading stdin.
	if _, err := pw.Write(bytes.Repeat([]byte("x"), 1<<20)); err != nil {
		t.Fatal(err)
	}
	cmd.Process.Signal(os.Interrupt)
	err = cmd.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 130 || stderr.String() != "blockmrs: add: interrupted\n" {
		t.Fatalf("interrupted add: %v %q", err, stderr.String())
	}
	for _, l := range p.ls() {
		if l.Title == "never" {
			t.Fatal("the interrupted add left a record")
		}
	}

	after := p.runIn(work, nil, "ls", "--json")
	dmn.stop(t)
	if alone := p.runIn(work, nil, "ls", "--json"); alone != after {
		t.Fatalf("ls alone after the daemon:\n%+v\nthrough it:\n%+v", alone, after)
	}
}

// TestStaleAPIAddr: a daemon killed with SIGKILL leaves api.addr behind;
// the repo is not locked, so commands run alone and no token is sent. A
// repo held by another command with a stale api.addr pointing at a
// foreign server does not send the token either.
func TestStaleAPIAddr(t *testing.T) {
	n := newNode(t, "")
	n.initAccount("--name", "Solo", "--no-passphrase")
	dmn := startAPIDaemon(t, n)
	n.ok("ls")
	dmn.cmd.Process.Kill()
	<-dmn.done
	dmn.done <- nil
	if _, err := os.Stat(filepath.Join(n.dir, "api.addr")); err != nil {
		t.Fatalf("api.addr after SIGKILL: %v", err)
	}
	// Something else now listens where the daemon was, recording tokens.
	var sawToken, hits atomic.Int32
	ln, err := net.Listen("tcp", strings.TrimPrefix(dmn.api, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if r.Header.Get("Authorization") != "" {
			sawToken.Add(1)
		}
		fmt.Fprint(w, `{"proof":"00"}`)
	})}
	go srv.Serve(ln)
	defer srv.Close()

	if out := n.ok("ls"); !strings.Contains(out, "CID") {
		t.Fatalf("ls with a stale api.addr: %q", out)
	}
	if hits.Load() != 0 {
		t.Fatal("a command contacted a stale api.addr although the repo was not locked")
	}

	// Now the repo is locked by someone (not a daemon): the server at
	// api.addr must prove it holds the token before getting it.
	lock, err := os.OpenFile(filepath.Join(n.dir, "repo.lock"), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		t.Fatal(err)
	}
	r := n.fail(1, "ls")
	if !strings.Contains(r.stderr, "not this repo's daemon") {
		t.Fatalf("ls against an impostor: %q", r.stderr)
	}
	if sawToken.Load() != 0 || hits.Load() == 0 {
		t.Fatalf("token sent to an impostor: %d (hits %d)", sawToken.Load(), hits.Load())
	}
}
