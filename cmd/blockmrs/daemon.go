package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	bmnode "github.com/blockmrs/blockmrs/node"
)

var daemonCmd = &command{name: "daemon", summary: "run the node: libp2p host and local API, until interrupted", run: runDaemon}

func runDaemon(ctx context.Context, args []string) error {
	f := newFlags("daemon", "[flags]", `
Daemon runs this repo's node until it is interrupted (Ctrl-C, SIGTERM),
then shuts down cleanly. On first run it creates the repo, its config
(config.json), the node's own libp2p key (node.key) and the local API
token (api.token). It listens for peers on the configured addresses
(TCP and QUIC) and serves the local HTTP API on 127.0.0.1 only, to
holders of the token. $BLOCKMRS_LISTEN, $BLOCKMRS_API and $BLOCKMRS_MDNS
override the config. While it runs it holds the repo, and every other
command run for this repo runs inside it, through the local API: same
arguments, output and exit status, files relative to your folder, your
$BLOCKMRS_PASSPHRASE (or, on a terminal, the passphrase asked for) sent
to it over loopback. Only init needs the daemon stopped.`, `
blockmrs daemon
BLOCKMRS_API=127.0.0.1:0 blockmrs daemon --repo /tmp/clinic`)
	if _, err := f.parseArgs(args, false); err != nil {
		return err
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
	d := &bmnode.Daemon{Logger: logger, Exec: execInDaemon, Started: func(info bmnode.Info) {
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
