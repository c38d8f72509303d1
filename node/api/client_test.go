package api

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeClientFiles puts api.addr and api.token in a folder as a running
// daemon does.
func writeClientFiles(t *testing.T, addr, token string) string {
	t.Helper()
	dir := t.TempDir()
	if addr != "" {
		if err := os.WriteFile(filepath.Join(dir, AddrFile), []byte(addr+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, TokenFile), []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestClient(t *testing.T) {
	e := newEnv(t)
	c, err := NewClient(writeClientFiles(t, e.srv.URL(), e.token))
	if err != nil {
		t.Fatal(err)
	}
	id, err := c.Identity(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if id.PeerID != e.host.ID().String() {
		t.Fatalf("identity %+v", id)
	}
	if _, err := c.Peers(t.Context()); err != nil {
		t.Fatal(err)
	}

	// A wrong token: the API's one-line error comes back as the error.
	other, _ := LoadOrCreateToken(t.TempDir())
	c, err = NewClient(writeClientFiles(t, e.srv.URL(), other))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Peers(t.Context()); err == nil || strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), "token") {
		t.Fatalf("wrong token: %v", err)
	}

	if _, err := NewClient(writeClientFiles(t, "", e.token)); !errors.Is(err, ErrNoDaemon) {
		t.Fatalf("no api.addr: %v", err)
	}
	for _, bad := range []string{"http://192.0.2.1:4102", "http://127.0.0.1:1@evil.example", "http://127.0.0.1.evil.example:80", "https://127.0.0.1:4102", "http://127.0.0.1"} {
		if _, err := NewClient(writeClientFiles(t, bad, e.token)); err == nil {
			t.Fatalf("API address %q accepted", bad)
		}
	}
}
