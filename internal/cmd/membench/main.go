// Command membench measures the resident memory of a `blockmrs daemon`:
// idle, and while it serves one record to ten nodes fetching it at once.
// scripts/bench-memory.sh runs it; BENCHMARKS.md reports its numbers.
//
// Usage:
//
//	membench -blockmrs BIN [-ipfs BIN] [-size MiB] [-fetchers N] [-idle DUR] [-modes stream,bitswap] [-private-dht] [-keep]
//
// What it does, in a fresh temp dir:
//
//  1. `blockmrs init --no-passphrase` makes a patient's repo, and
//     `blockmrs add` adds a record of -size MiB of random bytes.
//  2. For every fetcher (-fetchers per mode), it opens a keyshare repo in
//     this process with a clinician account that declares the fetcher's
//     libp2p host as its device, exports the account's profile as a CAR,
//     and has the patient's repo import it (`blockmrs contact add FILE`)
//     and grant it the record (`blockmrs grant CID --to ID`). All of this
//     runs before the daemon starts, straight against the repo.
//  3. For each mode, it starts `blockmrs daemon` as a separate process,
//     listening on 127.0.0.1 only, waits -idle, and reads VmRSS and VmHWM
//     from /proc/PID/status: the idle numbers.
//  4. Then the mode's fetchers connect to that daemon and fetch the record
//     concurrently with node/exchange (Exchange.Fetch; "stream" is the
//     default DAG stream, "bitswap" turns it off). A sampler reads the
//     daemon's VmRSS every 5 ms; the peak it saw, and VmHWM after, are the
//     daemon's peak while serving. Each fetcher's copy of the ciphertext is
//     checked against `blockmrs cat --raw`. It waits -idle again, reads
//     VmRSS (memory handed back or kept) and stops the daemon.
//  5. With -ipfs, it starts a stock Kubo daemon (`ipfs init
//     --profile=test,unixfs-v1-2025`, loopback, random ports, no
//     bootstrap peers) and reads its idle VmRSS and VmHWM the same way.
//
// The fetchers run in this process, so their memory is not counted; the
// daemon is the only process measured. It prints a Markdown table.
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/node/api"
	"github.com/blockmrs/blockmrs/node/config"
	"github.com/blockmrs/blockmrs/node/exchange"
	"github.com/blockmrs/blockmrs/node/p2p"
	"github.com/blockmrs/blockmrs/protocol"
)

func main() {
	bin := flag.String("blockmrs", "", "path of the blockmrs `BINARY` to measure (required)")
	ipfs := flag.String("ipfs", "", "path of a stock Kubo `BINARY` whose idle daemon to measure too (optional)")
	size := flag.Int("size", 64, "record size in `MiB`")
	fetchers := flag.Int("fetchers", 10, "concurrent fetchers per mode")
	idle := flag.Duration("idle", 10*time.Second, "how long a daemon sits idle before its idle memory is read")
	modes := flag.String("modes", "stream,bitswap", "fetch `MODES`, comma-separated: stream (DAG stream, the default), bitswap")
	keep := flag.Bool("keep", false, "keep the temp dir")
	dht := flag.Bool("private-dht", false, "run the daemon with the private DHT on ($BLOCKMRS_PRIVATE_DHT)")
	flag.Parse()
	if *bin == "" || *size <= 0 || *fetchers <= 0 || flag.NArg() != 0 {
		flag.Usage()
		os.Exit(2)
	}
	var ms []string
	for _, m := range strings.Split(*modes, ",") {
		switch m = strings.TrimSpace(m); m {
		case "stream", "bitswap":
			ms = append(ms, m)
		case "":
		default:
			fmt.Fprintf(os.Stderr, "membench: unknown mode %q\n", m)
			os.Exit(2)
		}
	}
	b := &bench{bin: *bin, ipfs: *ipfs, size: *size, fetchers: *fetchers, idle: *idle, modes: ms, dht: *dht}
	err := b.run(context.Background(), *keep)
	if err != nil {
		fmt.Fprintln(os.Stderr, "membench:", err)
		os.Exit(1)
	}
}

type bench struct {
	bin, ipfs string
	size      int
	fetchers  int
	idle      time.Duration
	modes     []string
	dht       bool

	dir  string // temp dir
	repo string // the patient's repo
}

// fetcher is one in-process clinician node.
type fetcher struct {
	repo *keyshare.Repo
	host host.Host
	ex   *exchange.Exchange
	id   protocol.AccountID
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "membench: "+format+"\n", args...)
}

func (b *bench) run(ctx context.Context, keep bool) (err error) {
	b.dir, err = os.MkdirTemp("", "blockmrs-membench.")
	if err != nil {
		return err
	}
	defer func() {
		if keep {
			logf("kept %s", b.dir)
		} else {
			os.RemoveAll(b.dir)
		}
	}()
	b.repo = filepath.Join(b.dir, "patient")

	// 1. The patient's repo and the record.
	if _, err := b.cli("init", "--no-passphrase", "--name", "Patient"); err != nil {
		return err
	}
	// The daemon's identity: node.key in the repo (init writes it in
	// current releases; otherwise it is made here, where the daemon will
	// load it from).
	nodeKey, err := p2p.LoadOrCreateKey(b.repo)
	if err != nil {
		return err
	}
	daemonID, err := peer.IDFromPrivateKey(nodeKey)
	if err != nil {
		return err
	}
	in := filepath.Join(b.dir, "record.bin")
	if err := writeRandom(in, int64(b.size)<<20); err != nil {
		return err
	}
	logf("adding a %d MiB record", b.size)
	out, err := b.cli("add", in, "--title", "membench")
	if err != nil {
		return err
	}
	rec, err := cid.Decode(strings.TrimSpace(string(out)))
	if err != nil {
		return fmt.Errorf("blockmrs add printed %q: %w", out, err)
	}
	raw, err := b.cli("cat", "--raw", rec.String())
	if err != nil {
		return err
	}
	want := sha256.Sum256(raw)
	raw = nil

	// 2. The fetchers, known to and granted by the patient.
	logf("making %d clinician nodes and granting them the record", b.fetchers*len(b.modes))
	byMode := make(map[string][]*fetcher)
	var all []*fetcher
	defer func() {
		for _, f := range all {
			f.ex.Close()
			f.host.Close()
			f.repo.Close()
		}
	}()
	quiet := slog.New(slog.DiscardHandler)
	for _, m := range b.modes {
		for i := range b.fetchers {
			f, err := b.newFetcher(ctx, fmt.Sprintf("%s-%d", m, i), quiet)
			if err != nil {
				return err
			}
			all = append(all, f)
			if m == "bitswap" {
				f.ex.DisableStream()
			}
			byMode[m] = append(byMode[m], f)
			if _, err := b.cli("grant", rec.String(), "--to", string(f.id)); err != nil {
				return err
			}
		}
	}

	// 3 and 4. One fresh daemon per mode: idle, then serving.
	var rows [][]string
	for _, m := range b.modes {
		row, err := b.serve(ctx, m, byMode[m], daemonID, rec, want)
		if err != nil {
			return err
		}
		rows = append(rows, row)
	}

	// 5. Stock Kubo, idle.
	if b.ipfs != "" {
		rss, hwm, err := b.kuboIdle()
		if err != nil {
			return fmt.Errorf("kubo: %w", err)
		}
		rows = append(rows, []string{"stock Kubo 0.43 (test profile, no peers)", mib(rss), mib(hwm), "—", "—", "—", "—"})
	}

	fmt.Printf("| daemon (memory in MiB) | idle VmRSS | idle VmHWM | serving: peak VmRSS (5 ms samples) | serving: VmHWM | VmRSS %s after | %d fetches of %d MiB took |\n", b.idle, b.fetchers, b.size)
	fmt.Println("| --- | --- | --- | --- | --- | --- | --- |")
	for _, r := range rows {
		fmt.Printf("| %s |\n", strings.Join(r, " | "))
	}
	return nil
}

// serve starts a daemon on the patient's repo, reads its memory after
// b.idle, has fs fetch rec from it at once while sampling its VmRSS, checks
// what they got, reads its memory b.idle later and stops it. It returns
// the table row (MiB).
func (b *bench) serve(ctx context.Context, mode string, fs []*fetcher, daemonID peer.ID, rec cid.Cid, want [sha256.Size]byte) ([]string, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	daemonAddr, err := ma.NewMultiaddr(fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", port))
	if err != nil {
		return nil, err
	}
	d, err := b.startDaemon(daemonAddr)
	if err != nil {
		return nil, err
	}
	defer d.stop()
	pid := d.cmd.Process.Pid
	logf("%s: daemon pid %d up; idle for %s", mode, pid, b.idle)
	time.Sleep(b.idle)
	idleRSS, idleHWM, err := readMem(pid)
	if err != nil {
		return nil, err
	}

	daemonInfo := peer.AddrInfo{ID: daemonID, Addrs: []ma.Multiaddr{daemonAddr}}
	var peak atomic.Int64
	stop := sample(pid, &peak)
	start := time.Now()
	errs := make([]error, len(fs))
	var wg sync.WaitGroup
	for i, f := range fs {
		wg.Go(func() {
			fctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
			defer cancel()
			f.host.Peerstore().AddAddrs(daemonInfo.ID, daemonInfo.Addrs, time.Hour)
			errs[i] = f.ex.Fetch(fctx, rec, daemonInfo.ID)
		})
	}
	wg.Wait()
	took := time.Since(start)
	stop()
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("%s fetch: %w\ndaemon log:\n%s", mode, err, d.log())
	}
	_, hwm, err := readMem(pid)
	if err != nil {
		return nil, err
	}
	logf("%s: %d fetches of %d MiB in %s; daemon peak VmRSS %s MiB", mode, len(fs), b.size, took.Round(time.Millisecond), mib(peak.Load()))
	// Untimed check: every fetcher holds the record's exact ciphertext.
	for _, f := range fs {
		got, err := ciphertextHash(ctx, f.repo, rec)
		if err != nil || got != want {
			return nil, fmt.Errorf("%s fetch: fetched ciphertext differs from the daemon's (%v)", mode, err)
		}
	}
	time.Sleep(b.idle)
	after, _, err := readMem(pid)
	if err != nil {
		return nil, err
	}
	if err := d.stop(); err != nil {
		logf("daemon stop: %v", err)
	}
	return []string{
		"blockmrs, fetched over " + mode + map[bool]string{true: ", private DHT on"}[b.dht],
		mib(idleRSS), mib(idleHWM), mib(peak.Load()), mib(hwm), mib(after),
		fmt.Sprintf("%.1f s", took.Seconds()),
	}, nil
}

// cli runs blockmrs against the patient's repo and returns its stdout.
func (b *bench) cli(args ...string) ([]byte, error) {
	cmd := exec.Command(b.bin, args...)
	cmd.Env = append(os.Environ(), "BLOCKMRS_PATH="+b.repo)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("blockmrs %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

// newFetcher opens a clinician's repo and host in this process, and makes
// the clinician a contact of the patient.
func (b *bench) newFetcher(ctx context.Context, name string, log *slog.Logger) (*fetcher, error) {
	dir := filepath.Join(b.dir, "clinician-"+name)
	repo, err := keyshare.Open(ctx, filepath.Join(dir, "repo"), keyshare.Options{Create: true})
	if err != nil {
		return nil, err
	}
	key, err := p2p.LoadOrCreateKey(dir)
	if err != nil {
		repo.Close()
		return nil, err
	}
	cfg := config.Default()
	cfg.Listen = []string{"/ip4/127.0.0.1/tcp/0"}
	h, err := p2p.NewHost(ctx, cfg, key)
	if err != nil {
		repo.Close()
		return nil, err
	}
	f := &fetcher{repo: repo, host: h, ex: exchange.New(h, repo, log)}
	keys, err := repo.CreateAccount(ctx, "Dr "+name, protocol.RoleClinician, nil, keyshare.DeviceInfo{PeerID: h.ID().String(), Name: name})
	if err == nil {
		f.id = keys.ID
		err = b.addContact(ctx, repo, keys.ID, filepath.Join(dir, "profile.car"))
	}
	if err != nil {
		f.ex.Close()
		h.Close()
		repo.Close()
		return nil, err
	}
	return f, nil
}

func (b *bench) addContact(ctx context.Context, repo *keyshare.Repo, id protocol.AccountID, path string) error {
	var buf bytes.Buffer
	if err := repo.ExportProfile(ctx, &buf, id); err != nil {
		return err
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		return err
	}
	_, err := b.cli("contact", "add", path)
	return err
}

// daemon is a running `blockmrs daemon`.
type daemon struct {
	cmd    *exec.Cmd
	logBuf *lockedBuffer
	exited chan struct{}
	once   sync.Once
	err    error
}

func (d *daemon) log() string { return d.logBuf.String() }

// stop sends SIGTERM and waits (SIGKILL after 30 s).
func (d *daemon) stop() error {
	d.once.Do(func() {
		_ = d.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-d.exited:
		case <-time.After(30 * time.Second):
			_ = d.cmd.Process.Kill()
			<-d.exited
			d.err = errors.New("did not stop within 30 s; killed")
		}
	})
	return d.err
}

func (b *bench) startDaemon(listen ma.Multiaddr) (*daemon, error) {
	cmd := exec.Command(b.bin, "daemon")
	cmd.Env = append(os.Environ(),
		"BLOCKMRS_PATH="+b.repo,
		config.EnvListen+"="+listen.String(),
		config.EnvAPI+"=127.0.0.1:0",
		config.EnvMDNS+"=false",
		config.EnvPrivateDHT+"="+strconv.FormatBool(b.dht),
	)
	d := &daemon{cmd: cmd, logBuf: new(lockedBuffer), exited: make(chan struct{})}
	cmd.Stdout = d.logBuf
	cmd.Stderr = d.logBuf
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		_ = cmd.Wait()
		close(d.exited)
	}()
	addrFile := filepath.Join(b.repo, api.AddrFile)
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case <-d.exited:
			return nil, fmt.Errorf("blockmrs daemon exited at start: %s", d.log())
		default:
		}
		if _, err := os.Stat(addrFile); err == nil {
			c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%s", mustValue(listen, ma.P_TCP)), time.Second)
			if err == nil {
				c.Close()
				return d, nil
			}
		}
		if time.Now().After(deadline) {
			d.stop()
			return nil, fmt.Errorf("blockmrs daemon not up after 60 s: %s", d.log())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// kuboIdle starts a stock Kubo daemon on a fresh repo, waits b.idle and
// returns its VmRSS and VmHWM.
func (b *bench) kuboIdle() (rss, hwm int64, err error) {
	path := filepath.Join(b.dir, "kubo")
	env := append(os.Environ(), "IPFS_PATH="+path, "IPFS_TELEMETRY=off")
	run := func(args ...string) error {
		cmd := exec.Command(b.ipfs, args...)
		cmd.Env = env
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("ipfs %s: %w: %s", strings.Join(args, " "), err, out)
		}
		return nil
	}
	if err := run("init", "--profile=test,unixfs-v1-2025", "--empty-repo"); err != nil {
		return 0, 0, err
	}
	if err := run("config", "Plugins.Plugins.telemetry.Config.Mode", "off"); err != nil {
		return 0, 0, err
	}
	cmd := exec.Command(b.ipfs, "daemon", "--offline=false")
	cmd.Env = env
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return 0, 0, err
	}
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return 0, 0, err
	}
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGINT)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	}()
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		seen := false
		for sc.Scan() {
			if !seen && strings.Contains(sc.Text(), "Daemon is ready") {
				seen = true
				close(ready)
			}
		}
	}()
	select {
	case <-ready:
	case <-time.After(60 * time.Second):
		return 0, 0, fmt.Errorf("ipfs daemon not ready after 60 s: %s", stderr.String())
	}
	logf("kubo pid %d up; idle for %s", cmd.Process.Pid, b.idle)
	time.Sleep(b.idle)
	return readMem(cmd.Process.Pid)
}

// sample reads pid's VmRSS every 5 ms into peak (the highest seen) until
// the returned stop is called.
func sample(pid int, peak *atomic.Int64) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			if rss, _, err := readMem(pid); err == nil && rss > peak.Load() {
				peak.Store(rss)
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() {
		close(done)
		<-finished
	}
}

// readMem returns VmRSS and VmHWM of pid, in bytes.
func readMem(pid int) (rss, hwm int64, err error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok || (k != "VmRSS" && k != "VmHWM") {
			continue
		}
		f := strings.Fields(v) // "12345 kB"
		if len(f) != 2 || f[1] != "kB" {
			return 0, 0, fmt.Errorf("/proc/%d/status: %q", pid, line)
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("/proc/%d/status: %q", pid, line)
		}
		if k == "VmRSS" {
			rss = n << 10
		} else {
			hwm = n << 10
		}
	}
	if rss == 0 || hwm == 0 {
		return 0, 0, fmt.Errorf("/proc/%d/status has no VmRSS or VmHWM", pid)
	}
	return rss, hwm, nil
}

func ciphertextHash(ctx context.Context, repo *keyshare.Repo, c cid.Cid) ([sha256.Size]byte, error) {
	var sum [sha256.Size]byte
	r, err := repo.Store().Cat(ctx, c)
	if err != nil {
		return sum, err
	}
	defer r.Close()
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		return sum, err
	}
	copy(sum[:], h.Sum(nil))
	return sum, nil
}

func mib(n int64) string { return fmt.Sprintf("%.1f", float64(n)/(1<<20)) }

func writeRandom(path string, n int64) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.CopyN(f, rand.Reader, n); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func mustValue(a ma.Multiaddr, code int) string {
	v, err := a.ValueForProtocol(code)
	if err != nil {
		panic(err)
	}
	return v
}

// lockedBuffer is a bytes.Buffer safe for a process's output goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}
