package main

// Errors that say what is wrong and what to do, in one line.

import (
	"bytes"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multibase"
)

// TestDuplicateCIDs: every command taking a list of CIDs refuses a CID
// given twice up front (exit 2, one line "CID X given twice"), also when
// the two are spelled in different bases.
func TestDuplicateCIDs(t *testing.T) {
	t.Parallel()
	n := newNode(t, "")
	n.initAccount("--name", "alice", "--no-passphrase")
	c := strings.TrimSpace(n.ok("add", writeTemp(t, "note.txt", []byte("hello")), "--kind", "note", "--title", "n"))
	parsed, err := cid.Decode(c)
	if err != nil {
		t.Fatal(err)
	}
	b58, err := parsed.StringOfBase(multibase.Base58BTC)
	if err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"grant", c, c, "--to", "alice"},
		{"revoke", c, c, "--from", "alice"},
		{"hide", c, c},
		{"unhide", c, c},
		{"request", "alice", "--records", c + "," + c},
	} {
		r := n.fail(2, args...)
		if !strings.Contains(r.stderr, "CID "+c+" given twice (see 'blockmrs "+args[0]+" --help')") {
			t.Errorf("%v: %q", args, r.stderr)
		}
	}
	r := n.fail(2, "grant", c, b58, "--to", "alice")
	if !strings.Contains(r.stderr, "CID "+c+" given twice (also as "+b58+")") {
		t.Errorf("two spellings: %q", r.stderr)
	}
	// Nothing was signed.
	if out := n.ok("log"); strings.Contains(out, "grant") || strings.Contains(out, "hide") {
		t.Errorf("log after refused commands:\n%s", out)
	}
}

// TestDaemonKilledMidCommand: a daemon killed (SIGKILL) while a command
// runs in it gives one line saying it stopped, that the command may or
// may not have taken effect, and how to check; the check then runs alone.
func TestDaemonKilledMidCommand(t *testing.T) {
	n := newNode(t, "")
	n.initAccount("--name", "alice", "--no-passphrase")
	d := startAPIDaemon(t, n)
	args := []string{"add", "-", "--title", "interrupted"}
	cmd := n.command(args...)
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pw.Close()
	cmd.Stdin = pr
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pr.Close()
	// Once this much went through the pipe, the daemon is reading stdin.
	if _, err := pw.Write(bytes.Repeat([]byte("x"), 1<<20)); err != nil {
		t.Fatal(err)
	}
	d.cmd.Process.Kill()
	err = cmd.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Fatalf("add: %v (stderr %q)", err, stderr.String())
	}
	checkOneLine(t, args, stderr.String())
	want := "blockmrs: add: the daemon stopped while the command ran: it may or may not have taken effect: check with 'blockmrs log' or 'blockmrs ls' before running it again\n"
	if stderr.String() != want {
		t.Fatalf("stderr %q\nwant   %q", stderr.String(), want)
	}
	waitUntil(t, 10*time.Second, "the killed daemon's lock released", func() bool { return !lockHeld(n.dir) })
	n.ok("ls") // the check it suggests runs alone
}
