package main

// Output files: no command writes into the repo folder, however the path
// is spelled, alone or through the daemon; and the errors for a folder or
// a missing folder name the path the user gave.

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestNoOutputIntoRepo runs every command that writes a file with a path
// into the repo (the key file itself, a new file in the repo, the repo
// folder; directly, through a symlink to the repo, through "..", relative
// to a folder inside the repo, through a symlink file pointing at the key
// file), alone and through a running daemon. Each is refused in one line
// that names the path and says to choose one outside the repo; the key
// file's bytes and the keys folder's listing are unchanged.
func TestNoOutputIntoRepo(t *testing.T) {
	n := newNode(t, "")
	id := n.initAccount("--name", "alice", "--no-passphrase")
	rec := strings.TrimSpace(n.ok("add", writeTemp(t, "note.txt", []byte("hello")), "--kind", "note", "--title", "n"))
	keyFile := filepath.Join(n.dir, "keys", id+".key")
	keyBytes := readFile(t, keyFile)
	keysDir := func() []string {
		ents, err := os.ReadDir(filepath.Join(n.dir, "keys"))
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		return names
	}
	before := strings.Join(keysDir(), " ")

	outside := t.TempDir()
	viaLink := filepath.Join(outside, "repo-link")
	if err := os.Symlink(n.dir, viaLink); err != nil {
		t.Fatal(err)
	}
	fileLink := filepath.Join(outside, "innocent.car")
	if err := os.Symlink(keyFile, fileLink); err != nil {
		t.Fatal(err)
	}
	paths := []string{
		keyFile,
		filepath.Join(viaLink, "keys", id+".key"),
		filepath.Join(n.dir, "keys", "..", "keys", id+".key"),
		filepath.Join(outside, "..", filepath.Base(filepath.Dir(n.dir)), "repo", "keys", id+".key"),
		filepath.Join(n.dir, "new.car"),
		n.dir,
		fileLink,
	}
	writers := func(p string) [][]string {
		return [][]string{{"export", p}, {"get", "-o", p, rec}, {"id", "--export", p}}
	}
	check := func(how string, r result, args []string, given string) {
		t.Helper()
		if r.code != 1 {
			t.Fatalf("%s: %v: exit %d (%+v)", how, args, r.code, r)
		}
		checkOneLine(t, args, r.stderr)
		if !strings.Contains(r.stderr, given+" is inside the repo folder: choose a path outside the repo") {
			t.Errorf("%s: %v: %q", how, args, r.stderr)
		}
		if !bytes.Equal(readFile(t, keyFile), keyBytes) {
			t.Fatalf("%s: %v overwrote the key file", how, args)
		}
		if got := strings.Join(keysDir(), " "); got != before {
			t.Fatalf("%s: %v: keys folder now holds %s", how, args, got)
		}
		if fi, err := os.Lstat(fileLink); err != nil || fi.Mode()&os.ModeSymlink == 0 {
			t.Fatalf("%s: %v: the symlink outside was replaced", how, args)
		}
	}
	run := func(how string) {
		for _, p := range paths {
			for _, args := range writers(p) {
				check(how, n.run(args...), args, p)
			}
		}
		// Relative to a folder inside the repo.
		for _, args := range writers(id + ".key") {
			check(how+", relative", n.runIn(filepath.Join(n.dir, "keys"), nil, args...), args, id+".key")
		}
		for _, args := range writers("../blocks/x") {
			check(how+", relative ..", n.runIn(filepath.Join(n.dir, "keys"), nil, args...), args, "../blocks/x")
		}
	}
	run("alone")
	if _, err := os.Stat(filepath.Join(n.dir, "new.car")); !os.IsNotExist(err) {
		t.Fatal("a refused export left a file in the repo")
	}
	d := startAPIDaemon(t, n)
	run("through the daemon")
	// Outside the repo the same commands work, through the symlinked
	// file's folder too (the link itself is replaced, not its target).
	good := filepath.Join(outside, "alice.car")
	n.ok("export", good)
	n.ok("get", "-o", filepath.Join(outside, "note.txt"), rec)
	d.stop(t)
	if !bytes.Equal(readFile(t, keyFile), keyBytes) {
		t.Fatal("the key file changed")
	}
	n.verifyOK()
}

// TestOutputPathErrors: -o naming a folder, a path ending in "/", or a
// path whose folder does not exist is refused in one line that names the
// path as given (not a temporary file), alone and relative to the folder
// the command runs in.
func TestOutputPathErrors(t *testing.T) {
	n := newNode(t, "")
	n.initAccount("--name", "alice", "--no-passphrase")
	rec := strings.TrimSpace(n.ok("add", writeTemp(t, "note.txt", []byte("hello")), "--kind", "note", "--title", "n"))
	work := t.TempDir()
	if err := os.Mkdir(filepath.Join(work, "out"), 0o700); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(work, "plain")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(work, "missing", "x")
	cases := []struct {
		dir  string // where the command runs ("" for anywhere)
		path string
		want string
	}{
		{"", filepath.Join(work, "out"), filepath.Join(work, "out") + " is a folder: give a file name, as in " + filepath.Join(work, "out", "NAME")},
		{"", filepath.Join(work, "out") + "/", filepath.Join(work, "out") + "/ is a folder: give a file name"},
		{"", filepath.Join(work, "new") + "/", filepath.Join(work, "new") + "/ ends in / (a folder): give a file name"},
		{"", missing, missing + ": the folder " + filepath.Join(work, "missing") + " does not exist"},
		{work, "missing/x", "missing/x: the folder missing does not exist"},
		{work, "out/", "out/ is a folder: give a file name, as in out/NAME"},
		{work, ".", ". is a folder"},
		{"", file + "/x", file + "/x: " + file + " is not a folder"},
	}
	for _, c := range cases {
		for _, args := range [][]string{{"get", "-o", c.path, rec}, {"export", c.path}, {"id", "--export", c.path}} {
			var r result
			if c.dir == "" {
				r = n.run(args...)
			} else {
				r = n.runIn(c.dir, nil, args...)
			}
			if r.code != 1 {
				t.Fatalf("%v: exit %d (%+v)", args, r.code, r)
			}
			checkOneLine(t, args, r.stderr)
			if !strings.Contains(r.stderr, c.want) || strings.Contains(r.stderr, ".blockmrs-") {
				t.Errorf("%v: %q, want it to contain %q", args, r.stderr, c.want)
			}
		}
	}
	if ents, _ := os.ReadDir(filepath.Join(work, "out")); len(ents) != 0 {
		t.Fatalf("out/ holds %d files", len(ents))
	}
}
