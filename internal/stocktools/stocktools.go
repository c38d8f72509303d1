// Package stocktools gives tests and benchmarks the stock reference tools
// that blockmrs is compared against: the Kubo IPFS node (ipfs) and the age
// encryption tools (age, age-keygen).
//
// The tools are built from the Go module proxy by scripts/stock-tools.sh
// into a per-user cache (${BLOCKMRS_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/blockmrs-tools}),
// once per machine and version; nothing needs installing by hand. The first
// build takes a few minutes, later calls a few milliseconds.
//
// A stock Kubo node always gets its own temporary repo (StartKubo); it is
// never pointed at a blockmrs blockstore.
//
// It also holds the small helpers those tests share: deterministic data
// (PseudoRandom), test files (WriteFile), running a tool (RunTool) and
// closing at cleanup (CloseAtCleanup).
//
// This package is for tests and benchmarks only.
package stocktools

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
)

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
	buildLog  string
)

// Bin builds the stock tools if needed (once per process) and returns the
// directory holding ipfs, age and age-keygen. It fails the test with a
// one-line reason if the build fails; it never skips.
func Bin(tb testing.TB) string {
	tb.Helper()
	buildOnce.Do(func() { binDir, buildLog, buildErr = build() })
	if buildErr != nil {
		if strings.Contains(buildLog, "\n") {
			tb.Logf("stock-tools.sh output (tail):\n%s", buildLog)
		}
		tb.Fatalf("stocktools: building stock tools failed: %v", buildErr)
	}
	return binDir
}

// IPFS returns the path of the stock Kubo ipfs binary.
func IPFS(tb testing.TB) string {
	tb.Helper()
	return filepath.Join(Bin(tb), "ipfs")
}

// Age returns the path of the stock age binary.
func Age(tb testing.TB) string {
	tb.Helper()
	return filepath.Join(Bin(tb), "age")
}

// AgeKeygen returns the path of the stock age-keygen binary.
func AgeKeygen(tb testing.TB) string {
	tb.Helper()
	return filepath.Join(Bin(tb), "age-keygen")
}

// build runs scripts/stock-tools.sh and returns the bin dir it printed, and
// on failure the tail of its log.
func build() (dir, logTail string, err error) {
	script, err := findScript()
	if err != nil {
		return "", "", err
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.Command("bash", script)
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	runErr := cmd.Run()
	tail := lastLines(stderr.String(), 30)
	if runErr != nil {
		reason := lastLines(stderr.String(), 1)
		if reason == "" {
			reason = "no output"
		}
		return "", tail, fmt.Errorf("%s: %v: %s", filepath.Base(script), runErr, reason)
	}
	dir = lastLines(stdout.String(), 1)
	if dir == "" {
		return "", tail, fmt.Errorf("%s printed no bin dir", filepath.Base(script))
	}
	for _, name := range []string{"ipfs", "age", "age-keygen"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			return "", tail, fmt.Errorf("%s ran but %v", filepath.Base(script), err)
		}
	}
	return dir, "", nil
}

// findScript locates scripts/stock-tools.sh relative to this source file,
// falling back to walking up from the working directory (for -trimpath
// builds, where the source path is not a real path).
func findScript() (string, error) {
	const rel = "scripts/stock-tools.sh"
	if _, file, _, ok := runtime.Caller(0); ok {
		p := filepath.Join(filepath.Dir(file), "..", "..", rel)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		p := filepath.Join(dir, rel)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
		if filepath.Dir(dir) == dir {
			return "", errors.New("cannot find " + rel)
		}
	}
}

// lastLines returns the last n non-empty lines of s, joined by newlines.
func lastLines(s string, n int) string {
	var out []string
	lines := strings.Split(s, "\n")
	for i := len(lines) - 1; i >= 0 && len(out) < n; i-- {
		if l := strings.TrimSpace(lines[i]); l != "" {
			out = append(out, l)
		}
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return strings.Join(out, "\n")
}
