package node

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/node/api"
	"github.com/blockmrs/blockmrs/node/config"
	"github.com/blockmrs/blockmrs/node/p2p"
	"github.com/blockmrs/blockmrs/protocol"
)

// loopbackEnv puts the daemon on 127.0.0.1, random ports.
func loopbackEnv(extra map[string]string) func(string) string {
	env := map[string]string{
		config.EnvListen: "/ip4/127.0.0.1/tcp/0,/ip4/127.0.0.1/udp/0/quic-v1",
		config.EnvAPI:    "127.0.0.1:0",
	}
	for k, v := range extra {
		env[k] = v
	}
	return func(k string) string { return env[k] }
}

// running is a daemon started in-process.
type running struct {
	info   Info
	cancel context.CancelFunc
	done   chan error
	logs   *lockedWriter
}

func startDaemon(t *testing.T, dir string) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{cancel: cancel, done: make(chan error, 1), logs: &lockedWriter{}}
	started := make(chan Info, 1)
	d := &Daemon{
		Logger:  slog.New(slog.NewTextHandler(r.logs, nil)),
		Getenv:  loopbackEnv(nil),
		Started: func(i Info) { started <- i },
	}
	go func() { r.done <- d.Run(ctx, dir) }()
	select {
	case r.info = <-started:
	case err := <-r.done:
		cancel()
		t.Fatalf("daemon did not start: %v", err)
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatal("daemon did not start in 30 s")
	}
	t.Cleanup(func() { r.stop(t) })
	return r
}

// stop cancels the daemon and waits for Run to return (once).
func (r *running) stop(t *testing.T) {
	t.Helper()
	if r.done == nil {
		return
	}
	r.cancel()
	select {
	case err := <-r.done:
		if err != nil {
			t.Errorf("daemon stopped with %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("daemon did not stop in 30 s")
	}
	r.done = nil
}

func get(t *testing.T, url, token string, v any) {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("GET %s: %v: %s", url, err, body)
	}
}

func TestDaemon(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "repo")
	d := startDaemon(t, dir)

	// First run created the repo files; the overrides were not written.
	for name, mode := range map[string]os.FileMode{config.FileName: 0o600, p2p.KeyFile: 0o600, api.TokenFile: 0o600, APIAddrFile: 0o600} {
		st, err := os.Stat(filepath.Join(dir, name))
		if err != nil || st.Mode().Perm() != mode {
			t.Fatalf("%s: %v %v", name, st, err)
		}
	}
	cfg, err := config.Load(config.Path(dir))
	if err != nil || cfg.API != config.Default().API {
		t.Fatalf("config on disk %+v, %v", cfg, err)
	}
	keyBytes, _ := os.ReadFile(filepath.Join(dir, p2p.KeyFile))
	key, err := crypto.UnmarshalPrivateKey(keyBytes)
	if err != nil {
		t.Fatal(err)
	}
	if id, _ := peer.IDFromPrivateKey(key); id != d.info.PeerID {
		t.Fatalf("peer ID %s is not node.key's %s", d.info.PeerID, id)
	}

	// The API, found through api.addr, with the token read from the repo.
	addr, _ := os.ReadFile(filepath.Join(dir, APIAddrFile))
	base := strings.TrimSpace(string(addr))
	if base != d.info.API || !strings.HasPrefix(base, "http://127.0.0.1:") {
		t.Fatalf("api.addr %q, daemon says %q", addr, d.info.API)
	}
	tokBytes, _ := os.ReadFile(filepath.Join(dir, api.TokenFile))
	token := strings.TrimSpace(string(tokBytes))
	var id api.Identity
	get(t, base+"/api/v1/id", token, &id)
	if id.PeerID != d.info.PeerID.String() || len(id.Listen) == 0 || len(id.Accounts) != 0 {
		t.Fatalf("id %+v", id)
	}

	// A peer dials the daemon over libp2p and shows in /peers.
	otherKey, _ := p2p.LoadOrCreateKey(t.TempDir())
	oc := config.Default()
	oc.Listen = []string{"/ip4/127.0.0.1/tcp/0"}
	other, err := p2p.NewHost(t.Context(), oc, otherKey)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	if err := other.Connect(ctx, peer.AddrInfo{ID: d.info.PeerID, Addrs: d.info.Listen}); err != nil {
		t.Fatal(err)
	}
	var ps api.Peers
	get(t, base+"/api/v1/peers", token, &ps)
	if len(ps.Peers) != 1 || ps.Peers[0].ID != other.ID().String() {
		t.Fatalf("peers %+v", ps)
	}

	d.stop(t)

	// The logs name the peer and the API, never the key or the token.
	logs := d.logs.String()
	if !strings.Contains(logs, d.info.PeerID.String()) || !strings.Contains(logs, base) {
		t.Fatalf("logs lack the peer ID or API address:\n%s", logs)
	}
	raw, _ := key.Raw()
	if strings.Contains(logs, token) || strings.Contains(logs, string(raw)) {
		t.Fatal("a secret reached the logs")
	}
	if strings.Count(logs, "node running") != 1 {
		t.Fatalf("started logged %d times", strings.Count(logs, "node running"))
	}

	// Stopped: the API is gone, api.addr removed, the lock released.
	if _, err := http.Get(base + "/api/v1/health"); err == nil {
		t.Fatal("API still answers")
	}
	if _, err := os.Stat(filepath.Join(dir, APIAddrFile)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("api.addr left behind: %v", err)
	}
	repo, err := OpenRepo(t.Context(), dir, false)
	if err != nil {
		t.Fatalf("repo after shutdown: %v", err)
	}
	if _, err := repo.CreateAccount(t.Context(), "Pat", protocol.RolePatient, nil); err != nil {
		t.Fatal(err)
	}
	repo.Close()

	// Second run: same identity and token, the account is listed.
	d2 := startDaemon(t, dir)
	if d2.info.PeerID != d.info.PeerID {
		t.Fatalf("peer ID changed across restarts: %s, %s", d.info.PeerID, d2.info.PeerID)
	}
	get(t, d2.info.API+"/api/v1/id", token, &id)
	if len(id.Accounts) != 1 || !id.Accounts[0].Local || id.Accounts[0].Name != "Pat" {
		t.Fatalf("accounts %+v", id.Accounts)
	}
	if strings.Contains(d2.logs.String(), "wrote default config") {
		t.Fatal("second run rewrote the config")
	}
}

func TestDaemonStartFailures(t *testing.T) {
	dir := t.TempDir()
	// The repo in use by another process (here: this one).
	repo, err := OpenRepo(t.Context(), dir, true)
	if err != nil {
		t.Fatal(err)
	}
	d := &Daemon{Logger: slog.New(slog.DiscardHandler), Getenv: loopbackEnv(nil)}
	if err := d.Run(t.Context(), dir); !errors.Is(err, keyshare.ErrRepoLocked) {
		t.Fatalf("locked repo: %v", err)
	}
	repo.Close()

	// Bad overrides, a bad config file: a one-line error, and the lock is
	// released afterwards.
	d.Getenv = loopbackEnv(map[string]string{config.EnvAPI: "0.0.0.0:4102"})
	if err := d.Run(t.Context(), dir); err == nil || !strings.Contains(err.Error(), "loopback") {
		t.Fatalf("public API address: %v", err)
	}
	os.WriteFile(config.Path(dir), []byte(`{"version": 7}`), 0o600)
	d.Getenv = loopbackEnv(nil)
	err = d.Run(t.Context(), dir)
	if err == nil || !strings.Contains(err.Error(), "version 7") || strings.Contains(err.Error(), "\n") {
		t.Fatalf("bad config: %v", err)
	}
	repo, err = OpenRepo(t.Context(), dir, false)
	if err != nil {
		t.Fatalf("lock not released after failed starts: %v", err)
	}
	repo.Close()
}

// lockedWriter collects logs written from the daemon's goroutines.
type lockedWriter struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedWriter) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
