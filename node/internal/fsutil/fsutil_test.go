package fsutil

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	if err := WriteFileAtomic(p, []byte("one"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := WriteFileAtomic(p, []byte("two"), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(p)
	if err != nil || string(got) != "two" {
		t.Fatalf("read back %q, %v", got, err)
	}
	st, _ := os.Stat(p)
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", st.Mode())
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Fatalf("temp files left: %v", ents)
	}
}

func TestLoadOrCreateSecret(t *testing.T) {
	p := filepath.Join(t.TempDir(), "s")
	calls := 0
	mk := func() ([]byte, error) { calls++; return []byte("secret"), nil }
	a, created, err := LoadOrCreateSecret(p, mk)
	if err != nil || !created || string(a) != "secret" {
		t.Fatalf("first: %q %v %v", a, created, err)
	}
	b, created, err := LoadOrCreateSecret(p, mk)
	if err != nil || created || string(b) != "secret" || calls != 1 {
		t.Fatalf("second: %q %v %v calls=%d", b, created, err, calls)
	}
	if err := os.Chmod(p, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadOrCreateSecret(p, mk); !errors.Is(err, ErrSecretMode) {
		t.Fatalf("readable by others: %v", err)
	}
}
