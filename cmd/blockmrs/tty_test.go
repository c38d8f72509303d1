package main

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// openPTY opens a pseudo-terminal: the master, and the terminal end.
func openPTY(t *testing.T) (master, tty *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Skipf("unlock pty: %v", err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Skipf("pty number: %v", err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("open pty: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return m, s
}

// promptedThroughDaemon runs 'get rec' on a terminal without
// $BLOCKMRS_PASSPHRASE while the daemon runs: the daemon asks the client,
// the client asks on the terminal, then runs the command again with the
// passphrase typed.
func promptedThroughDaemon(t *testing.T, n *node, rec, passphrase string) result {
	t.Helper()
	master, tty := openPTY(t)
	saved := n.env[envPassphrase]
	delete(n.env, envPassphrase)
	cmd := n.command("get", rec)
	n.env[envPassphrase] = saved
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	cmd.Stdin = tty
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	tty.Close()
	var seen strings.Builder
	buf := make([]byte, 256)
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(seen.String(), "Passphrase for ") {
		master.SetReadDeadline(deadline)
		k, err := master.Read(buf)
		if err != nil {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("no prompt on the terminal (saw %q, stderr %q): %v", seen.String(), stderr.String(), err)
		}
		seen.Write(buf[:k])
	}
	fmt.Fprintf(master, "%s\n", passphrase)
	go func() { // drain the terminal
		for {
			if _, err := master.Read(buf); err != nil {
				return
			}
		}
	}()
	err := cmd.Wait()
	code := 0
	if ee, ok := err.(interface{ ExitCode() int }); ok {
		code = ee.ExitCode()
	}
	return result{code, stdout.String(), stderr.String()}
}

// TestVerifyProgressOnTerminal: with stderr on a terminal, verify shows
// its block re-hash progress there and clears the line after; with stderr
// not a terminal (every other test) nothing but errors goes there.
func TestVerifyProgressOnTerminal(t *testing.T) {
	n := newNode(t, "")
	n.initAccount("--name", "alice", "--no-passphrase")
	master, tty := openPTY(t)
	cmd := n.command("verify")
	var stdout bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, tty
	if err := cmd.Run(); err != nil {
		t.Fatalf("verify: %v\n%s", err, stdout.String())
	}
	tty.Close()
	var seen bytes.Buffer
	buf := make([]byte, 4096)
	master.SetReadDeadline(time.Now().Add(5 * time.Second))
	for !strings.Contains(seen.String(), "\x1b[K") {
		k, err := master.Read(buf)
		seen.Write(buf[:k])
		if err != nil {
			break
		}
	}
	if got := seen.String(); !strings.HasPrefix(got, "\rverifying blocks: ") || !strings.HasSuffix(got, "\r\x1b[K") {
		t.Fatalf("terminal got %q", got)
	}
	if !strings.Contains(stdout.String(), "verified: ok") {
		t.Fatalf("stdout %q", stdout.String())
	}
}
