package stocktools

// Helpers that the tests comparing blockmrs with the stock tools share:
// deterministic test data, test files, running a tool, closing at cleanup.

import (
	"bytes"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// PseudoRandom returns an endless deterministic byte stream: ChaCha8 keyed
// with seed (its first 32 bytes, zero-padded). The bytes do not depend on
// how the stream is read, so the data of one seed at two sizes are
// prefixes of one another.
func PseudoRandom(seed string) io.Reader {
	var key [32]byte
	copy(key[:], seed)
	return rand.NewChaCha8(key)
}

// PseudoRandomBytes returns the first n bytes of PseudoRandom(seed).
func PseudoRandomBytes(seed string, n int) []byte {
	b := make([]byte, n)
	_, _ = io.ReadFull(PseudoRandom(seed), b)
	return b
}

// WriteFile writes what r yields, streaming, to a new file at path that
// only its owner may read, and returns how many bytes it wrote. Any error
// fails tb.
func WriteFile(tb testing.TB, path string, r io.Reader) int64 {
	tb.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		tb.Fatal(err)
	}
	n, err := io.Copy(f, r)
	if err != nil {
		f.Close()
		tb.Fatalf("write %s: %v", filepath.Base(path), err)
	}
	if err := f.Close(); err != nil {
		tb.Fatal(err)
	}
	return n
}

// RunTool runs the tool bin (such as Age(tb)) with args and stdin (nil for
// none) and returns its stdout. If it fails, tb fails with its stderr.
func RunTool(tb testing.TB, stdin []byte, bin string, args ...string) []byte {
	tb.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdin = bytes.NewReader(stdin)
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		tb.Fatalf("%s %s: %v: %s", filepath.Base(bin), strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.Bytes()
}

// CloseAtCleanup closes c when the test ends, reporting a Close error.
func CloseAtCleanup(tb testing.TB, c io.Closer) {
	tb.Helper()
	tb.Cleanup(func() {
		if err := c.Close(); err != nil {
			tb.Errorf("Close: %v", err)
		}
	})
}
