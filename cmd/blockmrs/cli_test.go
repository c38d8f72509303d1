package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/blockmrs/blockmrs/internal/stocktools"
)

func TestFlagsAnywhere(t *testing.T) {
	for _, tc := range []struct {
		args    []string
		to, exp string
		all     bool
		pos     []string
	}{
		{args: []string{"a", "b"}, pos: []string{"a", "b"}},
		{args: []string{"--to", "x", "a", "b"}, to: "x", pos: []string{"a", "b"}},
		{args: []string{"a", "--to", "x", "b"}, to: "x", pos: []string{"a", "b"}},
		{args: []string{"a", "b", "--to=x", "--expires", "1h"}, to: "x", exp: "1h", pos: []string{"a", "b"}},
		{args: []string{"-to", "x", "a", "--all", "b"}, to: "x", all: true, pos: []string{"a", "b"}},
		{args: []string{"a", "--", "--to", "b"}, pos: []string{"a", "--to", "b"}},
		{args: []string{"--to", "--", "a"}, to: "--", pos: []string{"a"}},
		{args: []string{"--all", "--", "-"}, all: true, pos: []string{"-"}},
		{args: []string{"-", "--to", "x"}, to: "x", pos: []string{"-"}},
	} {
		f := newFlags("test", "", "", "")
		to := f.String("to", "", "")
		exp := f.String("expires", "", "")
		all := f.Bool("all", false, "")
		pos, err := f.parse(tc.args)
		if err != nil {
			t.Errorf("%q: %v", tc.args, err)
			continue
		}
		if *to != tc.to || *exp != tc.exp || *all != tc.all || !reflect.DeepEqual(pos, tc.pos) {
			t.Errorf("%q: to %q expires %q all %v pos %q", tc.args, *to, *exp, *all, pos)
		}
	}
	f := newFlags("test", "", "", "")
	var ue *usageError
	if _, err := f.parse([]string{"a", "--nope"}); !errors.As(err, &ue) {
		t.Errorf("unknown flag after an argument: %v", err)
	}
}

func TestParseExpiry(t *testing.T) {
	now := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"":                     {},
		"720h":                 now.Add(720 * time.Hour),
		"90m":                  now.Add(90 * time.Minute),
		"30d":                  now.Add(30 * 24 * time.Hour),
		"2027-01-01T00:00:00Z": time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC),
		"2027-01-01":           time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC),
	} {
		got, err := parseExpiry(in, now)
		if err != nil || !got.Equal(want) {
			t.Errorf("%q: %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"soon", "-1h", "0s", "0d", "1.5d", "2027-13-01", "d"} {
		var ue *usageError
		if _, err := parseExpiry(in, now); !errors.As(err, &ue) {
			t.Errorf("%q: %v, want a usage error", in, err)
		}
	}
}

func TestOneLine(t *testing.T) {
	if got := oneLine("a\nb\r\n  c\t"); got != "a b c" {
		t.Errorf("%q", got)
	}
	if got := clean("Dr\x1b[31m Jones\n"); got != "Dr[31m Jones" {
		t.Errorf("%q", got)
	}
}

// TestStockAge decrypts a record with the stock age tool, from the raw
// ciphertext ('cat --raw') and the exported record key ('key export').
func TestStockAge(t *testing.T) {
	t.Parallel()
	age := stocktools.Age(t)
	n := newNode(t, "")
	n.initAccount("--name", "alice", "--no-passphrase")
	data := pdfLike(t, 1<<20+4321)
	c := strings.TrimSpace(n.ok("add", writeTemp(t, "scan.pdf", data)))
	key := n.ok("key", "export", c)
	if !strings.HasPrefix(key, "AGE-SECRET-KEY-1") || strings.Count(key, "\n") != 1 {
		t.Fatalf("key export: %q", key)
	}
	dir := t.TempDir()
	keyFile, ctFile, ptFile := filepath.Join(dir, "k"), filepath.Join(dir, "ct"), filepath.Join(dir, "pt")
	if err := os.WriteFile(keyFile, []byte(key), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(ctFile, []byte(n.ok("cat", "--raw", c)), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(age, "-d", "-i", keyFile, "-o", ptFile, ctFile).CombinedOutput(); err != nil {
		t.Fatalf("age -d: %v\n%s", err, out)
	}
	if got := readFile(t, ptFile); string(got) != string(data) {
		t.Fatal("age -d: plaintext differs")
	}
}
