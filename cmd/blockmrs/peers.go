package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/blockmrs/blockmrs/node/api"
)

var peersCmd = &command{name: "peers", summary: "list the peers the running daemon is connected to", run: runPeers}

func runPeers(ctx context.Context, args []string) error {
	f := newFlags("peers", "[flags]", `
Peers asks the daemon running for this repo (through its local API) which
libp2p peers it is connected to, and prints their peer IDs and addresses.
It needs a running daemon. With --json it prints what GET /api/v1/peers
answers: {"peers": [...]}.`, `
blockmrs peers`)
	if _, err := f.parseArgs(args, false); err != nil {
		return err
	}
	c, err := f.daemonClient()
	if err != nil {
		return err
	}
	p, err := c.Peers(ctx)
	if err != nil {
		return err
	}
	if p.Peers == nil {
		p.Peers = []api.Peer{}
	}
	// --json prints what GET /api/v1/peers answers.
	return f.printTable(p, func(t io.Writer) error {
		fmt.Fprintln(t, "PEER ID\tADDRESSES")
		for _, peer := range p.Peers {
			fmt.Fprintf(t, "%s\t%s\n", peer.ID, strings.Join(peer.Addrs, " "))
		}
		return nil
	})
}
