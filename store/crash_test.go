package store

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	cid "github.com/ipfs/go-cid"
)

// TestCrashRecovery kills a process that is adding records (SIGKILL, no
// Close) and checks that every record it had reported as added is intact
// after reopening, and that the store is usable. (A process kill leaves
// the page cache alone, so this exercises recovery, not fsync; flush
// ordering is argued in durable.go.)
func TestCrashRecovery(t *testing.T) {
	if dir := os.Getenv("BLOCKMRS_STORE_CRASH_CHILD"); dir != "" {
		crashChild(dir)
		return
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashRecovery$")
	cmd.Env = append(os.Environ(), "BLOCKMRS_STORE_CRASH_CHILD="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	type rec struct {
		c   cid.Cid
		key *age.X25519Identity
	}
	var done []rec
	sc := bufio.NewScanner(out)
	deadline := time.Now().Add(30 * time.Second)
	for len(done) < 5 && sc.Scan() && time.Now().Before(deadline) {
		f := strings.Fields(sc.Text())
		if len(f) != 3 || f[0] != "added" {
			continue
		}
		c, err := cid.Decode(f[1])
		if err != nil {
			t.Fatal(err)
		}
		k, err := age.ParseX25519Identity(f[2])
		if err != nil {
			t.Fatal(err)
		}
		done = append(done, rec{c, k})
	}
	// The child is in the middle of another Add by now.
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	if len(done) < 5 {
		t.Fatalf("child reported only %d records", len(done))
	}

	s := openStoreAt(t, dir)
	ctx := context.Background()
	for i, r := range done {
		dr, err := s.Decrypt(ctx, r.c, r.key)
		if err != nil {
			t.Fatalf("record %d %s: %v", i, r.c, err)
		}
		mustEqual(t, fmt.Sprintf("record %d", i), readAll(t, dr), randBytes(uint64(i), 2*mib+i))
	}
	if _, err := s.GC(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Add(ctx, strings.NewReader("after the crash")); err != nil {
		t.Fatal(err)
	}
}

func crashChild(dir string) {
	s, err := Open(context.Background(), dir)
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(1)
	}
	for i := 0; ; i++ {
		a, err := s.Add(context.Background(), newFastReader(uint64(i), int64(2*mib+i)))
		if err != nil {
			fmt.Println("add:", err)
			os.Exit(1)
		}
		fmt.Println("added", a.CID, a.Key)
	}
}
