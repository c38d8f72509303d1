package main

import (
	"bytes"
	"crypto/rand"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestFullDisk runs blockmrs on a repo in a small tmpfs the test mounts
// (root only; it skips, saying so, elsewhere: store's TestFullDiskInjected
// is the always-run variant). A too-big add, from a file or from stdin,
// fails with one line naming the folder and the space needed and leaves
// no block behind; ls, verify and gc keep working, also once something
// else has filled the disk to the last byte.
func TestFullDisk(t *testing.T) {
	n := newNode(t, "")
	if os.Geteuid() != 0 {
		t.Skip("variant: tmpfs skipped (not root); see store.TestFullDiskInjected")
	}
	if err := os.Mkdir(n.dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=128m", "tmpfs", n.dir).CombinedOutput(); err != nil {
		t.Skipf("variant: tmpfs skipped (mount: %v: %s); see store.TestFullDiskInjected", err, strings.TrimSpace(string(out)))
	}
	t.Cleanup(func() { _ = exec.Command("umount", "-l", n.dir).Run() })
	t.Log("variant: mounted 128 MiB tmpfs at", n.dir)

	n.initAccount("--name", "alice", "--no-passphrase")
	small := n.ok("add", writeTemp(t, "note.txt", []byte("blood pressure 120/80")))
	before := countBlockFiles(t, n.dir)

	big := make([]byte, 100<<20)
	_, _ = rand.Read(big)
	bigFile := writeTemp(t, "scan.bin", big)
	for _, c := range []struct {
		name  string
		stdin io.Reader
		args  []string
	}{
		{"file", nil, []string{"add", bigFile}},
		{"stdin", bytes.NewReader(big), []string{"add", "-"}},
	} {
		r := n.failIn(c.stdin, 1, c.args...)
		if !strings.Contains(r.stderr, n.dir) || !strings.Contains(r.stderr, "needs ") || !strings.Contains(r.stderr, "MiB") {
			t.Fatalf("%s: error does not name the folder and the space needed: %q", c.name, r.stderr)
		}
		t.Logf("%s: %s", c.name, strings.TrimSpace(r.stderr))
		if got := countBlockFiles(t, n.dir); got != before {
			t.Fatalf("%s: failed add left blocks: %d before, %d after", c.name, before, got)
		}
	}
	n.ok("ls")
	n.verifyOK()
	n.ok("gc")

	// Something else fills the disk to the last byte.
	filler, err := os.Create(filepath.Join(n.dir, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 1<<20)
	for {
		if _, err := filler.Write(chunk); err != nil {
			break
		}
	}
	for {
		if _, err := filler.Write(chunk[:4096]); err != nil {
			break
		}
	}
	filler.Close()
	if !strings.Contains(n.ok("ls"), "") {
		t.Fatal("ls")
	}
	n.verifyOK()
	if out := n.ok("gc"); !strings.Contains(out, "removed 0 block(s)") {
		t.Fatalf("gc on a full disk: %s", out)
	}
	if got := n.ok("get", strings.TrimSpace(small)); got != "blood pressure 120/80" {
		t.Fatalf("get on a full disk: %q", got)
	}
	r := n.failIn(strings.NewReader("more"), 1, "add", "-")
	t.Logf("add on a full disk: %s", strings.TrimSpace(r.stderr))
}

// countBlockFiles counts the block files of the repo in dir.
func countBlockFiles(t *testing.T, dir string) int {
	t.Helper()
	n := 0
	err := filepath.WalkDir(filepath.Join(dir, "blocks"), func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(d.Name(), ".data") {
			n++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestKilledAddSwept kills 'blockmrs add -' half way (SIGKILL): the next
// command's open removes its orphan blocks, gc --json reports the blocks
// and bytes freed and the interrupted add, and the repo verifies.
func TestKilledAddSwept(t *testing.T) {
	n := newNode(t, "")
	n.initAccount("--name", "alice", "--no-passphrase")
	rec := strings.TrimSpace(n.ok("add", writeTemp(t, "note.txt", []byte("kept"))))
	before := countBlockFiles(t, n.dir)

	cmd := n.command("add", "-")
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 1<<20)
	deadline := time.Now().Add(30 * time.Second)
	for countBlockFiles(t, n.dir) < before+4 && time.Now().Before(deadline) {
		_, _ = rand.Read(chunk)
		if _, err := in.Write(chunk); err != nil {
			t.Fatal(err)
		}
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	orphans := countBlockFiles(t, n.dir) - before
	if orphans < 4 {
		t.Fatalf("the killed add left only %d blocks", orphans)
	}
	var gc struct {
		Removed      int   `json:"removed"`
		RemovedBytes int64 `json:"removed_bytes"`
		Interrupted  int   `json:"interrupted_adds"`
	}
	n.json(&gc, "gc", "--json")
	if gc.Removed != orphans || gc.RemovedBytes < int64(orphans-1)<<20 || gc.Interrupted != 1 {
		t.Fatalf("gc --json: %+v, want %d blocks (about 1 MiB each) and 1 interrupted add", gc, orphans)
	}
	if got := countBlockFiles(t, n.dir); got != before {
		t.Fatalf("after gc: %d block files, want %d", got, before)
	}
	if out := n.ok("gc"); !strings.Contains(out, "removed 0 block(s), 0 bytes freed") {
		t.Fatalf("second gc: %s", out)
	}
	if got := n.ok("get", rec); got != "kept" {
		t.Fatalf("get: %q", got)
	}
	n.verifyOK()
}
