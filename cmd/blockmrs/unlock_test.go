package main

// Unlocks through a daemon are bounded: however many commands bring a
// passphrase at once, the daemon runs at most keyshare.MaxConcurrentUnlocks
// scrypt decryptions (about 256 MiB each) at a time.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/protocol"
)

// unlockMemoryCap is the peak resident memory a daemon may reach while
// many commands unlock at once (SECURITY.md states it).
const unlockMemoryCap = 1 << 30

// peakRSS reads a process's peak resident set size (VmHWM) in bytes.
func peakRSS(t *testing.T, pid int) int64 {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(data)) {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				t.Fatalf("VmHWM line %q: %v", line, err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmHWM in /proc/PID/status")
	return 0
}

// TestConcurrentUnlocksThroughDaemon: 30 commands at once, each with the
// passphrase, all succeed through a running daemon, and then a dozen
// with as many wrong passphrases all fail saying so; the daemon's peak
// memory stays under unlockMemoryCap throughout.
func TestConcurrentUnlocksThroughDaemon(t *testing.T) {
	n := newNode(t, "patient pass")
	n.initAccount("--name", "Pat", "--role", "patient")
	added := n.exec(strings.NewReader("hemoglobin 13.5"), "add", "-", "--title", "Hb")
	if added.code != 0 {
		t.Fatalf("add: %+v", added)
	}
	rec := strings.TrimSpace(added.stdout)
	dmn := startAPIDaemon(t, n)
	pid := dmn.cmd.Process.Pid
	t.Logf("daemon peak memory before the commands: %d MiB", peakRSS(t, pid)>>20)

	runAll := func(count int, env func(i int) string) []result {
		results := make([]result, count)
		var wg sync.WaitGroup
		for i := range count {
			wg.Go(func() {
				cmd := n.command("get", rec)
				if env != nil {
					cmd.Env = append(cmd.Env, env(i)) // the last one wins
				}
				var stdout, stderr bytes.Buffer
				cmd.Stdout, cmd.Stderr = &stdout, &stderr
				err := cmd.Run()
				results[i] = result{code: cmd.ProcessState.ExitCode(), stdout: stdout.String(), stderr: stderr.String()}
				if err != nil && results[i].code <= 0 {
					t.Errorf("command %d: %v", i, err)
				}
			})
		}
		wg.Wait()
		return results
	}

	start := time.Now()
	for i, r := range runAll(30, nil) {
		if r.code != 0 || r.stdout != "hemoglobin 13.5" || r.stderr != "" {
			t.Fatalf("command %d of 30: %+v", i, r)
		}
	}
	peak := peakRSS(t, pid)
	t.Logf("30 concurrent unlocking commands: %v, daemon peak memory %d MiB (cap %d MiB)", time.Since(start).Round(time.Millisecond), peak>>20, unlockMemoryCap>>20)
	if peak > unlockMemoryCap {
		t.Fatalf("daemon peak memory %d MiB is over the %d MiB cap", peak>>20, unlockMemoryCap>>20)
	}

	// Wrong passphrases, all different: nothing to share, so each is a
	// full scrypt run, and the bound is what keeps memory down.
	start = time.Now()
	for i, r := range runAll(12, func(i int) string { return fmt.Sprintf("%s=wrong %d", envPassphrase, i) }) {
		if r.code != 1 || r.stdout != "" || !strings.HasPrefix(r.stderr, "blockmrs: get: ") || !strings.HasSuffix(r.stderr, ": wrong passphrase\n") {
			t.Fatalf("wrong passphrase %d: %+v", i, r)
		}
	}
	peak = peakRSS(t, pid)
	t.Logf("and 12 concurrent wrong passphrases: %v, daemon peak memory %d MiB", time.Since(start).Round(time.Millisecond), peak>>20)
	if peak > unlockMemoryCap {
		t.Fatalf("daemon peak memory %d MiB is over the %d MiB cap", peak>>20, unlockMemoryCap>>20)
	}
	dmn.stop(t)
}

// TestUnlockWaitHonoursCancellation: while the process's unlock slots are
// busy, an unlock whose context ends returns at once with the context's
// error, before the busy ones finish, which fail with
// keyshare.ErrWrongPassphrase. (Each scrypt run takes seconds under the
// race detector: the test runs as few as it can.)
func TestUnlockWaitHonoursCancellation(t *testing.T) {
	ctx := t.Context()
	repo, err := keyshare.Open(ctx, t.TempDir(), keyshare.Options{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	defer repo.Close()
	k, err := repo.CreateAccount(ctx, "Pat", protocol.RolePatient, []byte("right"))
	if err != nil {
		t.Fatal(err)
	}
	busy := make(chan error, keyshare.MaxConcurrentUnlocks)
	for i := range keyshare.MaxConcurrentUnlocks {
		go func() {
			_, err := repo.Unlock(ctx, k.ID, fmt.Appendf(nil, "wrong %d", i))
			busy <- err
		}()
	}
	time.Sleep(100 * time.Millisecond) // the busy ones hold the slots by now
	cctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	_, err = repo.Unlock(cctx, k.ID, []byte("right"))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("cancelled unlock: %v", err)
	}
	select {
	case err := <-busy:
		t.Fatalf("a busy unlock finished (%v) before the cancelled one returned: the test proves nothing on a machine this fast", err)
	default:
	}
	for range keyshare.MaxConcurrentUnlocks {
		if err := <-busy; !errors.Is(err, keyshare.ErrWrongPassphrase) {
			t.Fatalf("wrong passphrase: %v", err)
		}
	}
}
