package stocktools

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// KuboProfiles are the `ipfs init` profiles every node gets. "test" keeps
// the node on 127.0.0.1 with random ports and no bootstrap peers, mDNS, NAT
// port mapping or AutoConf; "unixfs-v1-2025" makes `ipfs add` produce CIDv1,
// sha2-256, 1 MiB chunks, 1024 links per node, raw leaves, balanced layout.
const KuboProfiles = "test,unixfs-v1-2025"

// KuboOptions configure StartKubo.
type KuboOptions struct {
	// Daemon starts `ipfs daemon --offline=false` on loopback-only random
	// ports (stopped at test cleanup). Without it, commands run offline
	// directly against the repo.
	Daemon bool
}

// Kubo is a stock Kubo node with its own temporary repo.
type Kubo struct {
	// Path is the node's IPFS_PATH (a test temp dir).
	Path string

	bin        string
	peerID     string
	swarmAddr  string
	apiAddr    string
	gatewayURL string
}

// StartKubo initialises a fresh repo with KuboProfiles, turns on fsync for
// the flatfs block store (Datastore.Spec mount "/blocks": "sync": true) and
// telemetry off, and optionally starts a daemon. Everything is torn down at
// tb.Cleanup.
func StartKubo(tb testing.TB, opts KuboOptions) *Kubo {
	tb.Helper()
	k := &Kubo{Path: tb.TempDir(), bin: IPFS(tb)}

	if _, err := k.Run("init", "--profile="+KuboProfiles, "--empty-repo"); err != nil {
		tb.Fatalf("stocktools: %v", err)
	}
	if err := k.setFlatfsSync(); err != nil {
		tb.Fatalf("stocktools: %v", err)
	}
	if _, err := k.Run("config", "Plugins.Plugins.telemetry.Config.Mode", "off"); err != nil {
		tb.Fatalf("stocktools: %v", err)
	}
	out, err := k.Run("config", "Identity.PeerID")
	if err != nil {
		tb.Fatalf("stocktools: %v", err)
	}
	k.peerID = strings.TrimSpace(string(out))

	if opts.Daemon {
		if err := k.startDaemon(tb); err != nil {
			tb.Fatalf("stocktools: %v", err)
		}
	}
	return k
}

// Run runs `ipfs args...` against this node and returns its stdout. The
// error, if any, includes stderr.
func (k *Kubo) Run(args ...string) ([]byte, error) {
	return k.RunStdin(nil, args...)
}

// RunStdin is Run with stdin (nil for none).
func (k *Kubo) RunStdin(stdin io.Reader, args ...string) ([]byte, error) {
	var stdout, stderr bytes.Buffer
	cmd := k.Command(args...)
	cmd.Stdin = stdin
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return stdout.Bytes(), fmt.Errorf("ipfs %s: %v: %s",
			strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.Bytes(), nil
}

// Add adds data with `ipfs add -Q --pin=false` and returns the root CID.
// CID version, hash, chunker, raw leaves and layout come from the repo's
// profile, not from flags.
func (k *Kubo) Add(tb testing.TB, data []byte) string {
	tb.Helper()
	out, err := k.RunStdin(bytes.NewReader(data), "add", "-Q", "--pin=false")
	if err != nil {
		tb.Fatalf("stocktools: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// AddFile adds a file (or, recursively, a directory) like Add and returns
// the root CID.
func (k *Kubo) AddFile(tb testing.TB, path string) string {
	tb.Helper()
	out, err := k.Run("add", "-Q", "--pin=false", "-r", path)
	if err != nil {
		tb.Fatalf("stocktools: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// Cat returns the contents of the UnixFS file cid (`ipfs cat`).
func (k *Kubo) Cat(tb testing.TB, cid string) []byte {
	tb.Helper()
	out, err := k.Run("cat", cid)
	if err != nil {
		tb.Fatalf("stocktools: %v", err)
	}
	return out
}

// DagImport imports the blocks of a CAR file (`ipfs dag import
// --pin-roots=false`). It returns the error so tests can also check that
// Kubo rejects a bad CAR.
func (k *Kubo) DagImport(carPath string) error {
	_, err := k.Run("dag", "import", "--pin-roots=false", carPath)
	return err
}

// DagExport returns the CAR export of the DAG under cid (`ipfs dag export`).
func (k *Kubo) DagExport(tb testing.TB, cid string) []byte {
	tb.Helper()
	out, err := k.Run("dag", "export", cid)
	if err != nil {
		tb.Fatalf("stocktools: %v", err)
	}
	return out
}

// PeerID returns the node's peer ID.
func (k *Kubo) PeerID() string { return k.peerID }

// SwarmAddr returns the daemon's libp2p address including /p2p/<PeerID>
// (e.g. /ip4/127.0.0.1/tcp/41234/p2p/12D3Koo...), or "" without a daemon.
func (k *Kubo) SwarmAddr() string { return k.swarmAddr }

// APIAddr returns the daemon's RPC API multiaddr as Kubo recorded it in
// $IPFS_PATH/api, or "" without a daemon.
func (k *Kubo) APIAddr() string { return k.apiAddr }

// GatewayURL returns the daemon's HTTP gateway URL as Kubo recorded it in
// $IPFS_PATH/gateway, or "" without a daemon.
func (k *Kubo) GatewayURL() string { return k.gatewayURL }

// Connect dials another node's swarm address (`ipfs swarm connect`).
// Needs a daemon.
func (k *Kubo) Connect(addr string) error {
	_, err := k.Run("swarm", "connect", addr)
	return err
}

// Command returns the command `ipfs args...` against this node (its
// IPFS_PATH, telemetry off), for callers that stream its input or output;
// Run and RunStdin cover the rest.
func (k *Kubo) Command(args ...string) *exec.Cmd {
	cmd := exec.Command(k.bin, args...)
	env := make([]string, 0, len(os.Environ())+2)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "IPFS_PATH=") && !strings.HasPrefix(kv, "IPFS_TELEMETRY=") {
			env = append(env, kv)
		}
	}
	cmd.Env = append(env, "IPFS_PATH="+k.Path, "IPFS_TELEMETRY=off")
	return cmd
}

// setFlatfsSync sets "sync": true on the flatfs datastore mounted at
// /blocks (directly, or as the child of a "measure" wrapper). Kubo leaves
// "sync" out of the on-disk datastore_spec, so this does not trip its spec
// mismatch check. The old top-level Datastore.NoSync is deprecated.
func (k *Kubo) setFlatfsSync() error {
	out, err := k.Run("config", "--json", "Datastore.Spec")
	if err != nil {
		return err
	}
	var spec map[string]any
	if err := json.Unmarshal(out, &spec); err != nil {
		return fmt.Errorf("parse Datastore.Spec: %v", err)
	}
	mounts, _ := spec["mounts"].([]any)
	found := false
	for _, m := range mounts {
		mount, _ := m.(map[string]any)
		if mount == nil || mount["mountpoint"] != "/blocks" {
			continue
		}
		ds := mount
		if child, ok := mount["child"].(map[string]any); ok && mount["type"] == "measure" {
			ds = child
		}
		if ds["type"] != "flatfs" {
			return fmt.Errorf("/blocks mount is %v, not flatfs", ds["type"])
		}
		ds["sync"] = true
		found = true
	}
	if !found {
		return fmt.Errorf("no /blocks mount in Datastore.Spec: %s", out)
	}
	b, err := json.Marshal(spec)
	if err != nil {
		return err
	}
	_, err = k.Run("config", "--json", "Datastore.Spec", string(b))
	return err
}

// startDaemon starts `ipfs daemon`, waits for "Daemon is ready", reads back
// the addresses and registers its shutdown with tb.Cleanup.
func (k *Kubo) startDaemon(tb testing.TB) error {
	cmd := k.Command("daemon", "--offline=false")
	out := &daemonOutput{ready: make(chan struct{})}
	cmd.Stdout = out
	cmd.Stderr = out
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	tb.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	})

	select {
	case <-out.ready:
	case <-exited:
		return fmt.Errorf("ipfs daemon exited before ready: %s", out)
	case <-time.After(60 * time.Second):
		return fmt.Errorf("ipfs daemon not ready after 60s: %s", out)
	}

	api, err := os.ReadFile(filepath.Join(k.Path, "api"))
	if err != nil {
		return err
	}
	k.apiAddr = strings.TrimSpace(string(api))
	if gw, err := os.ReadFile(filepath.Join(k.Path, "gateway")); err == nil {
		k.gatewayURL = strings.TrimSpace(string(gw))
	}
	addrs, err := k.Run("swarm", "addrs", "local", "--id")
	if err != nil {
		return err
	}
	for _, a := range strings.Fields(string(addrs)) {
		if strings.HasPrefix(a, "/ip4/127.0.0.1/tcp/") {
			k.swarmAddr = a
			break
		}
	}
	if k.swarmAddr == "" {
		return errors.New("ipfs daemon has no /ip4/127.0.0.1/tcp swarm address: " + string(addrs))
	}
	return nil
}

// daemonOutput collects the daemon's output and closes ready once the
// daemon prints "Daemon is ready".
type daemonOutput struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	ready chan struct{}
	seen  bool
}

func (d *daemonOutput) Write(p []byte) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	n, err := d.buf.Write(p)
	if !d.seen && bytes.Contains(d.buf.Bytes(), []byte("Daemon is ready\n")) {
		d.seen = true
		close(d.ready)
	}
	return n, err
}

// String returns the output so far, on one line.
func (d *daemonOutput) String() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return strings.Join(strings.Fields(d.buf.String()), " ")
}
