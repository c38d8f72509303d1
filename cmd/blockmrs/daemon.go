package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	bmnode "github.com/blockmrs/blockmrs/node"
	"github.com/blockmrs/blockmrs/node/config"
)

var daemonCmd = &command{name: "daemon", summary: "run the node: libp2p host and local API, until interrupted", run: runDaemon}

func runDaemon(ctx context.Context, args []string) error {
	f := newFlags("daemon", "[flags]", `
Daemon runs this repo's node until it is interrupted (Ctrl-C, SIGTERM),
then shuts down cleanly. On first run it creates the repo, its config
(config.json), the node's own libp2p key (node.key) and the local API
token (api.token). It listens for peers on the configured addresses
(TCP and QUIC) and serves the local HTTP API on 127.0.0.1 only, to
holders of the token. The flags below, else $BLOCKMRS_LISTEN,
$BLOCKMRS_API, $BLOCKMRS_BOOTSTRAP, $BLOCKMRS_MDNS and
$BLOCKMRS_PRIVATE_DHT, override the config for this run. While it runs it holds the repo, and every other
command run for this repo runs inside it, through the local API: same
arguments, output and exit status, files relative to your folder, your
$BLOCKMRS_PASSPHRASE (or, on a terminal, the passphrase asked for) sent
to it over loopback. Only init needs the daemon stopped.`, `
blockmrs daemon
BLOCKMRS_API=127.0.0.1:0 blockmrs daemon --repo /tmp/clinic
blockmrs daemon --listen /ip4/0.0.0.0/tcp/4101 --bootstrap /dns4/clinic.example/tcp/4101/p2p/12D3KooW...`)
	// Each flag stands for its environment variable and wins over it.
	overrides := map[string]*string{
		config.EnvListen:     f.String("listen", "", "listen on these libp2p `MULTIADDRS` (comma-separated)"),
		config.EnvAPI:        f.String("api", "", "serve the local API on this loopback `HOST:PORT`"),
		config.EnvBootstrap:  f.String("bootstrap", "", "dial these peers at start: `MULTIADDRS` ending in /p2p/PEER_ID (comma-separated)"),
		config.EnvMDNS:       f.String("mdns", "", "find nodes on the local network: `true|false`"),
		config.EnvPrivateDHT: f.String("private-dht", "", "join the private DHT: `true|false`"),
	}
	if _, err := f.parseArgs(args, false); err != nil {
		return err
	}
	getenv := func(key string) string {
		if v, ok := overrides[key]; ok && *v != "" {
			return *v
		}
		return os.Getenv(key)
	}
	f.bind(ctx)
	dir, err := f.repoPath()
	if err != nil {
		return err
	}
	logger := slog.Default()
	if os.Getenv(envLog) == "" { // a daemon says what it does, unlike a command
		logger = slog.New(slog.NewTextHandler(f.errOut(), &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	d := &bmnode.Daemon{Logger: logger, Getenv: getenv, Exec: execInDaemon, Started: func(info bmnode.Info) {
		if f.json {
			listen := make([]string, len(info.Listen))
			for i, a := range info.Listen {
				listen[i] = a.String()
			}
			_ = f.printJSON(struct {
				PeerID string   `json:"peer_id"`
				Listen []string `json:"listen"`
				API    string   `json:"api"`
			}{info.PeerID.String(), listen, info.API})
			return
		}
		fmt.Fprintf(f.out(), "node %s\n", info.PeerID)
		for _, a := range info.Listen {
			fmt.Fprintf(f.out(), "listening on %s\n", a)
		}
		fmt.Fprintf(f.out(), "API on %s\n", info.API)
	}}
	return d.Run(ctx, dir)
}
