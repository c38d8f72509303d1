package main

// Errors that say what is wrong and what to do, in one line.

import (
	"strings"
	"testing"

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

