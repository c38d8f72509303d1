package main

// The tests build the blockmrs binary once and run it as a real process,
// each repo in its own temporary folder ($BLOCKMRS_PATH), in a new session
// with no controlling terminal so nothing can prompt.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
)

// bin is the built blockmrs binary.
var bin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "blockmrs-cli-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bin = filepath.Join(dir, "blockmrs")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building blockmrs:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// node is one repo and how to run blockmrs against it.
type node struct {
	t    *testing.T
	dir  string            // $BLOCKMRS_PATH
	home string            // $HOME
	env  map[string]string // extra environment (BLOCKMRS_PASSPHRASE, ...)
}

// newNode returns a node with a fresh, not yet created repo folder. With
// a non-empty passphrase, BLOCKMRS_PASSPHRASE is set.
func newNode(t *testing.T, passphrase string) *node {
	t.Helper()
	base := t.TempDir()
	n := &node{t: t, dir: filepath.Join(base, "repo"), home: filepath.Join(base, "home"), env: map[string]string{}}
	if err := os.Mkdir(n.home, 0o700); err != nil {
		t.Fatal(err)
	}
	if passphrase != "" {
		n.env[envPassphrase] = passphrase
	}
	return n
}

// initAccount runs init and returns the new account's ID.
func (n *node) initAccount(args ...string) string {
	n.t.Helper()
	var out struct {
		ID string `json:"id"`
	}
	n.json(&out, append([]string{"init", "--json"}, args...)...)
	if out.ID == "" {
		n.t.Fatalf("init %v: no id in output", args)
	}
	return out.ID
}

type result struct {
	code           int
	stdout, stderr string
}

// command prepares blockmrs with args in the node's environment.
func (n *node) command(args ...string) *exec.Cmd {
	cmd := exec.Command(bin, args...)
	env := []string{}
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "BLOCKMRS_") || strings.HasPrefix(kv, "HOME=") {
			continue
		}
		env = append(env, kv)
	}
	env = append(env, "HOME="+n.home, envPath+"="+n.dir)
	for k, v := range n.env {
		env = append(env, k+"="+v)
	}
	cmd.Env = env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true} // no controlling terminal
	return cmd
}

// exec runs blockmrs with args and stdin (may be nil).
func (n *node) exec(stdin io.Reader, args ...string) result {
	n.t.Helper()
	cmd := n.command(args...)
	cmd.Stdin = stdin
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			n.t.Fatalf("blockmrs %s: %v", strings.Join(args, " "), err)
		}
		code = ee.ExitCode()
	}
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

func (n *node) run(args ...string) result {
	n.t.Helper()
	return n.exec(nil, args...)
}

// ok runs blockmrs, requires exit 0 and an empty stderr, and returns
// stdout.
func (n *node) ok(args ...string) string {
	n.t.Helper()
	r := n.run(args...)
	if r.code != 0 || r.stderr != "" {
		n.t.Fatalf("blockmrs %s: exit %d, stderr %q, stdout %q", strings.Join(args, " "), r.code, r.stderr, r.stdout)
	}
	return r.stdout
}

// json runs blockmrs (args should include --json) and decodes stdout,
// which must be exactly one JSON document, into v.
func (n *node) json(v any, args ...string) {
	n.t.Helper()
	out := n.ok(args...)
	dec := json.NewDecoder(strings.NewReader(out))
	if err := dec.Decode(v); err != nil {
		n.t.Fatalf("blockmrs %s: stdout is not JSON: %v\n%s", strings.Join(args, " "), err, out)
	}
	if dec.More() {
		n.t.Fatalf("blockmrs %s: more than one JSON document on stdout", strings.Join(args, " "))
	}
}

// fail runs blockmrs and requires exit status code and a one-line error
// naming the command; it returns the result.
func (n *node) fail(code int, args ...string) result {
	n.t.Helper()
	return n.failIn(nil, code, args...)
}

func (n *node) failIn(stdin io.Reader, code int, args ...string) result {
	n.t.Helper()
	r := n.exec(stdin, args...)
	if r.code != code {
		n.t.Fatalf("blockmrs %s: exit %d, want %d (stderr %q)", strings.Join(args, " "), r.code, code, r.stderr)
	}
	checkOneLine(n.t, args, r.stderr)
	return r
}

// checkOneLine requires stderr to be exactly one "blockmrs: ..." line.
func checkOneLine(t *testing.T, args []string, stderr string) {
	t.Helper()
	if !strings.HasPrefix(stderr, "blockmrs: ") || !strings.HasSuffix(stderr, "\n") || strings.Count(stderr, "\n") != 1 {
		t.Fatalf("blockmrs %s: stderr is not one error line: %q", strings.Join(args, " "), stderr)
	}
}

// verifyOK requires 'verify' to pass.
func (n *node) verifyOK(args ...string) string {
	n.t.Helper()
	out := n.ok(append([]string{"verify"}, args...)...)
	if !strings.Contains(out, "verified: ok") {
		n.t.Fatalf("verify %v: no 'verified: ok' in\n%s", args, out)
	}
	return out
}

// listed is what the tests read from a row of 'ls --json'.
type listed struct {
	CID      link   `json:"cid"`
	Known    bool   `json:"known"`
	Author   string `json:"author"`
	Subject  string `json:"subject"`
	Title    string `json:"title"`
	Kind     string `json:"kind"`
	Media    string `json:"media_type"`
	Readable bool   `json:"readable"`
	Status   string `json:"status"`
	Hidden   bool   `json:"hidden"`
	Readers  []struct {
		Account string `json:"account"`
		Role    string `json:"role"`
	} `json:"readers"`
	Error string `json:"error"`
}

func (n *node) ls(args ...string) map[string]listed {
	n.t.Helper()
	var l struct {
		Records []listed `json:"records"`
	}
	n.json(&l, append([]string{"ls", "--json"}, args...)...)
	out := map[string]listed{}
	for _, x := range l.Records {
		out[x.CID] = x
	}
	return out
}

// link is a CID as keyshare's JSON encodes it: a plain string.
type link = string

// file writes data to a new file in a temporary folder.
func writeTemp(t *testing.T, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func readFile(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// cidRe matches a CIDv1 in base32.
var cidRe = regexp.MustCompile(`\bbaf[a-z2-7]{50,}\b`)
