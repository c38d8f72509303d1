package node

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/node/addrbook"
	"github.com/blockmrs/blockmrs/node/api"
	"github.com/blockmrs/blockmrs/node/attest"
	"github.com/blockmrs/blockmrs/node/audit"
	"github.com/blockmrs/blockmrs/node/chainsync"
	"github.com/blockmrs/blockmrs/node/config"
	"github.com/blockmrs/blockmrs/node/emergency"
	"github.com/blockmrs/blockmrs/node/exchange"
	"github.com/blockmrs/blockmrs/node/internal/fsutil"
	"github.com/blockmrs/blockmrs/node/p2p"
	"github.com/blockmrs/blockmrs/node/pair"
	"github.com/blockmrs/blockmrs/node/recovery"
	"github.com/blockmrs/blockmrs/node/requests"
)

// APIAddrFile names the repo file where a running daemon writes its API's
// base URL (http://127.0.0.1:PORT and a newline), so the command line can
// find it even when the config asks for port 0. It is removed on a clean
// shutdown; after a crash it may be stale, which the repo lock tells: a
// daemon runs exactly when the repo is locked.
const APIAddrFile = api.AddrFile

// DefaultShutdownTimeout is how long Run waits for API requests in flight
// when it stops. Commands running through the API are cancelled first and
// stop at once, so this bounds only a request that ignores cancellation;
// with it the whole daemon stops within 2 s of SIGTERM.
const DefaultShutdownTimeout = time.Second

// Info describes a running daemon.
type Info struct {
	// PeerID is the node's libp2p peer ID.
	PeerID peer.ID
	// Listen lists the libp2p addresses the host is bound to.
	Listen []ma.Multiaddr
	// API is the local API's base URL, http://HOST:PORT.
	API string
}

// Daemon runs a node: the repo, the libp2p host and the local API. The
// zero value is ready to use.
type Daemon struct {
	// Logger receives the daemon's logs; nil means slog.Default().
	Logger *slog.Logger
	// Getenv reads the BLOCKMRS_* overrides of the config; nil means
	// os.Getenv.
	Getenv func(string) string
	// ShutdownTimeout bounds the wait for API requests in flight at
	// shutdown; 0 means DefaultShutdownTimeout.
	ShutdownTimeout time.Duration
	// Started, when set, is called once everything runs, before Run
	// blocks.
	Started func(Info)
	// Exec, when set, is called once the node runs, before the API
	// starts; the function it returns serves the API's POST /api/v1/exec
	// (commands run inside the daemon). Nil: the API answers 501.
	Exec func(rt *Runtime) api.ExecFunc
}

// Runtime is what a running daemon lends to code that works inside it
// (the commands run through the API's exec endpoint). It is valid until
// Run returns; its users must not close anything in it. Fields are added
// as the node grows.
type Runtime struct {
	// Repo is the daemon's open repo (the daemon holds its lock).
	Repo *keyshare.Repo
	// Dir is the repo folder.
	Dir string
	// Host is the node's libp2p host.
	Host host.Host
	// Exchange is the node's block exchange.
	Exchange *exchange.Exchange
	// Sync is the node's chain sync (contact add by address uses it).
	Sync *chainsync.Service
	// Requests delivers access requests and answers; Kick it after
	// queueing one.
	Requests *requests.Service
	// Emergency serves and asks for emergency access (node/emergency).
	Emergency *emergency.Service
	// Attest serves and fetches role proofs and directory answers.
	Attest *attest.Service
	// Sessions holds the accounts unlocked for a session (blockmrs
	// unlock); they lock when the daemon stops.
	Sessions *keyshare.Sessions
	// Pair pairs devices (device pair, device join).
	Pair *pair.Service
	// Book is the node's address book (peers forget uses it).
	Book *addrbook.Book
	// Logger is the daemon's logger.
	Logger *slog.Logger
}

// Run opens the repo in repoDir (creating it on first run), loads or
// creates config.json, the node key (node.key) and the API token
// (api.token), starts the libp2p host and the local API, dials the
// bootstrap peers, logs the peer ID, listen addresses and API address once,
// and serves until ctx is cancelled. Then it stops the API (waiting up to
// ShutdownTimeout for requests in flight), closes the host and closes the
// repo, releasing its lock. The caller turns SIGINT and SIGTERM into the
// cancellation of ctx.
//
// Run returns nil after a shutdown asked for by ctx, and an error when the
// node cannot start or the API fails while running. Errors name the step
// that failed without a "daemon:" prefix: the caller knows it ran the
// daemon (the command line prints "blockmrs: daemon: ...").
func (d *Daemon) Run(ctx context.Context, repoDir string) (err error) {
	log := d.Logger
	if log == nil {
		log = slog.Default()
	}
	timeout := d.ShutdownTimeout
	if timeout <= 0 {
		timeout = DefaultShutdownTimeout
	}

	repo, err := OpenRepo(ctx, repoDir, true)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := repo.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("close repo: %w", cerr))
		}
	}()

	cfg, created, err := config.LoadOrCreate(repoDir)
	if err != nil {
		return err
	}
	if created {
		log.Info("wrote default config", "path", config.Path(repoDir))
	}
	if err := cfg.ApplyEnv(d.Getenv); err != nil {
		return err
	}
	key, err := p2p.LoadOrCreateKey(repoDir)
	if err != nil {
		return err
	}
	token, err := api.LoadOrCreateToken(repoDir)
	if err != nil {
		return err
	}

	h, err := p2p.NewHost(ctx, cfg, key)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := h.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("close host: %w", cerr))
		}
	}()

	// The address book: the kept addresses of known accounts' nodes go
	// into the peerstore before any service dials; those learned while
	// running are kept. Stops before the host closes.
	book, err := addrbook.Start(ctx, h, repo, log)
	if err != nil {
		return fmt.Errorf("address book: %w", err)
	}
	defer book.Close()

	// Block exchange stops before the host closes.
	ex := exchange.New(h, repo, log)
	defer func() {
		if cerr := ex.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("close exchange: %w", cerr))
		}
	}()

	// Chain sync: heads announced to entitled peers, granted records
	// fetched. It stops before the exchange it fetches with.
	cs := chainsync.New(h, repo, ex, log)
	defer cs.Close()

	// Audit reports: events about other nodes' accounts go to their
	// nodes, and theirs about ours are kept; stops before the host closes.
	if al := AuditLog(repo); al != nil {
		au := audit.New(h, repo, al, audit.ServiceOptions{Logger: log})
		defer au.Close()
	}

	// Access requests: served, and delivered while the node runs; stops
	// before the host closes.
	rq := requests.New(h, repo, requests.Options{Logger: log})
	defer rq.Close()

	// Recovery requests: delivered to contacts' nodes and polled for
	// responses while a recovery runs here; kept for this node's contacts.
	rc := recovery.New(h, repo, recovery.Options{Logger: log, Book: book})
	defer rc.Close()

	// Role proofs and the clinic directory, served to anyone (public by
	// design); roles of requesters verified as their requests arrive.
	trust, err := cfg.TrustedAuthorities()
	if err != nil {
		return err
	}
	if err := repo.SetConfigTrust(trust); err != nil {
		return err
	}
	at := attest.New(h, repo, attest.Options{Logger: log})
	defer at.Close()

	// Background work (dials) stops before the host closes.
	bg, stopBG := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() {
		stopBG()
		wg.Wait()
	}()

	if cfg.PrivateDHT {
		// NewHost started it as the host's peer routing; it closes with
		// the host.
		log.Info("private DHT on (peer routing only)", "protocol", string(p2p.DHTProtocol))
	}
	if cfg.MDNS {
		svc, err := p2p.StartMDNS(h, log)
		if err != nil {
			return fmt.Errorf("mdns: %w", err)
		}
		defer svc.Close()
	}

	// Unlock sessions: keys held in memory, wiped when the daemon stops.
	sessions := keyshare.NewSessions(repo)
	defer sessions.Close()

	// Emergency access: packs delivered to custodians, requests decided
	// for this node's custodians (with their unlocked keys), notices of
	// every decision sent to the patient's nodes; stops before the host.
	em := emergency.New(h, repo, emergency.SessionKeys(bg, repo, sessions), emergency.Options{Logger: log, Book: book})
	defer em.Close()
	// Device pairing: the node's offer, and joining another device's
	// account; closes (wiping an offer's keys) before the host and the sessions;
	// copies other devices' rotation files and refreshes the sessions.
	pr := pair.New(h, repo, pair.Options{Logger: log, Joined: cs.AccountJoined, Sessions: sessions})
	defer pr.Close()

	// Records written about an unlocked account are acknowledged as they
	// arrive (after its key opens them), so they count on its node.
	ackCtx, stopAck := context.WithCancel(context.Background())
	ackDone := make(chan struct{})
	go func() {
		defer close(ackDone)
		acknowledgeArrivals(ackCtx, repo, sessions, log)
	}()
	defer func() {
		stopAck()
		<-ackDone
	}()

	var execFn api.ExecFunc
	if d.Exec != nil {
		execFn = d.Exec(&Runtime{Repo: repo, Dir: repoDir, Host: h, Exchange: ex, Sync: cs, Requests: rq, Attest: at, Sessions: sessions, Emergency: em, Pair: pr, Book: book, Logger: log})
	}
	srv, err := api.Listen(ctx, api.Options{Addr: cfg.API, Token: token, Host: h, Repo: repo, Profiles: cs, Sessions: sessions, RequestsKick: rq.Kick, Attest: at, Emergency: em, Pair: pr, Book: book, Exec: execFn, Logger: log})
	if err != nil {
		return err
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve() }()
	serveDone := false // served was read
	addrFile := filepath.Join(repoDir, APIAddrFile)
	defer func() {
		if rerr := os.Remove(addrFile); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
			err = errors.Join(err, rerr)
		}
		sctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		if serr := srv.Shutdown(sctx); serr != nil {
			err = errors.Join(err, serr)
		}
		if !serveDone {
			if serr := <-served; serr != nil {
				err = errors.Join(err, serr)
			}
		}
	}()
	if err := fsutil.WriteFileAtomic(addrFile, []byte(srv.URL()+"\n"), 0o600); err != nil {
		return err
	}

	if peers, _ := cfg.BootstrapPeers(); len(peers) > 0 {
		wg.Go(func() {
			n := p2p.Bootstrap(bg, h, peers, log)
			log.Info("bootstrap", "connected", n, "of", len(peers))
			if n > 0 && cfg.PrivateDHT {
				if err := p2p.RefreshDHT(bg, h); err != nil && bg.Err() == nil {
					log.Debug("private DHT refresh", "err", err)
				}
			}
		})
	}

	info := Info{PeerID: h.ID(), Listen: h.Network().ListenAddresses(), API: srv.URL()}
	log.Info("node running", "peer", info.PeerID.String(), "listen", multiaddrStrings(info.Listen), "api", info.API)
	if d.Started != nil {
		d.Started(info)
	}

	select {
	case <-ctx.Done():
		log.Info("node stopping")
		return nil
	case serr := <-served:
		serveDone = true
		if serr == nil {
			serr = errors.New("api stopped")
		}
		return serr
	}
}

func multiaddrStrings(addrs []ma.Multiaddr) []string {
	out := make([]string, len(addrs))
	for i, a := range addrs {
		out[i] = a.String()
	}
	return out
}
