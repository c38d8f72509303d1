package keyshare

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/blockmrs/blockmrs/protocol"
)

// TestWriteFileOnce: the first write creates the file whole; a second
// write to the same path fails with fs.ErrExist and leaves the bytes and
// the mode as they were, and no temporary file behind.
func TestWriteFileOnce(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "x.key")
	if err := writeFileOnce(p, []byte("first"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := writeFileOnce(p, []byte("second"), 0o644)
	if !errors.Is(err, fs.ErrExist) {
		t.Fatalf("second write: %v, want fs.ErrExist", err)
	}
	got, _ := os.ReadFile(p)
	if string(got) != "first" {
		t.Fatalf("file now holds %q", got)
	}
	if st, _ := os.Stat(p); st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", st.Mode())
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Fatalf("folder holds %d entries, want only x.key", len(ents))
	}
	// A symlink at the path is not followed nor replaced.
	target := filepath.Join(dir, "target")
	link := filepath.Join(dir, "link.key")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	if err := writeFileOnce(link, []byte("x"), 0o600); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("write over a symlink: %v", err)
	}
	if _, err := os.Lstat(target); !errors.Is(err, fs.ErrNotExist) {
		t.Fatal("the symlink was followed")
	}
}

// TestKeyFileNeverReplaced: adding an account whose key file is already
// on disk (a crash after the key file, before the first block) fails and
// leaves the key file's bytes unchanged.
func TestKeyFileNeverReplaced(t *testing.T) {
	ctx := context.Background()
	r, err := Open(ctx, t.TempDir(), Options{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	k, err := GenerateKeys()
	if err != nil {
		t.Fatal(err)
	}
	old := []byte("the only copy of some keys")
	if err := os.WriteFile(r.keyPath(k.ID), old, 0o600); err != nil {
		t.Fatal(err)
	}
	err = r.AddAccount(ctx, k, "Pat", protocol.RolePatient, nil)
	if !errors.Is(err, fs.ErrExist) {
		t.Fatalf("add over an existing key file: %v", err)
	}
	if got, _ := os.ReadFile(r.keyPath(k.ID)); !bytes.Equal(got, old) {
		t.Fatal("the key file was replaced")
	}
	if _, err := r.Account(ctx, k.ID); err == nil {
		t.Fatal("the account was added without its key file")
	}
}
