package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestExpand(t *testing.T) {
	dir := t.TempDir()
	cidFile := filepath.Join(dir, "cid.2")
	if err := os.WriteFile(cidFile, []byte("  bafyTEST\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := expand("x{rep}:{file:"+filepath.Join(dir, "cid.{rep}")+"}!", 2)
	if err != nil || got != "x2:bafyTEST!" {
		t.Fatalf("expand = %q, %v", got, err)
	}
	if _, err := expand("{file:"+filepath.Join(dir, "none")+"}", 1); err == nil {
		t.Fatal("expand of a missing file succeeded")
	}
	if _, err := expand("{file:x", 1); err == nil {
		t.Fatal("expand of an unterminated {file: succeeded")
	}
}

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		in   []time.Duration
		want time.Duration
	}{
		{[]time.Duration{3, 1, 2}, 2},
		{[]time.Duration{4, 1, 3, 2}, 2}, // (2+3)/2 in integer nanoseconds
		{[]time.Duration{7}, 7},
	} {
		if got := median(tc.in); got != tc.want {
			t.Errorf("median(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

// TestRunPipeline pipes a file through two processes and checks the
// bytes arrive, and that a failing stage is reported with its stderr.
func TestRunPipeline(t *testing.T) {
	dir := t.TempDir()
	in, out := filepath.Join(dir, "in"), filepath.Join(dir, "out.{rep}")
	if err := os.WriteFile(in, []byte(strings.Repeat("x", 12345)), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := runPipeline(Pipeline{Stages: [][]string{{"cat"}, {"wc", "-c"}}, Stdin: in, Stdout: out}, 7)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(dir, "out.7"))
	if err != nil || strings.TrimSpace(string(got)) != "12345" {
		t.Fatalf("output %q, %v; want 12345", got, err)
	}
	if len(r.MaxRSS) != 2 || r.MaxRSS[0] <= 0 || r.MaxRSS[1] <= 0 || r.Wall <= 0 {
		t.Fatalf("measurement %+v", r)
	}

	_, err = runPipeline(Pipeline{Stages: [][]string{{"cat", filepath.Join(dir, "missing")}, {"cat"}}}, 1)
	if err == nil || !strings.Contains(err.Error(), "stage 1") || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("failing stage: err = %v", err)
	}
}
