package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/node/api"
	"github.com/blockmrs/blockmrs/node/ops"
)

var peersCmd = &command{name: "peers", summary: "list connected peers and the address book (peers), drop a kept address (peers forget)", run: runPeers}

// runPeers is 'peers' (the listing) or 'peers forget PEER'.
func runPeers(ctx context.Context, args []string) error {
	if len(args) > 0 && args[0] == "forget" {
		return inSubcommand("peers forget", runPeersForget(ctx, args[1:]))
	}
	f := newFlags("peers", "[flags] | forget PEER", `
Peers asks the daemon running for this repo (through its local API) which
libp2p peers it is connected to, and prints their peer IDs and addresses;
then the address book: where the nodes of the accounts this repo knows
(its own devices, contacts, guardians and wards, custodians, requesters)
were last reached, with the accounts that declare them. The book is kept
in the repo and given to the node's peerstore when the daemon starts, so
a restarted node dials them by itself. 'peers forget PEER' drops one. It
needs a running daemon. With --json it prints what GET /api/v1/peers
answers: {"peers": [...], "kept": [...]}.`, `
blockmrs peers
blockmrs peers forget 12D3KooWNode...`)
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
	if p.Kept == nil {
		p.Kept = []api.KeptPeer{}
	}
	// --json prints what GET /api/v1/peers answers.
	return f.printTable(p, func(t io.Writer) error {
		fmt.Fprintln(t, "PEER ID\tADDRESSES")
		for _, peer := range p.Peers {
			fmt.Fprintf(t, "%s\t%s\n", peer.ID, strings.Join(peer.Addrs, " "))
		}
		fmt.Fprintln(t, "\t")
		fmt.Fprintln(t, "KEPT PEER ID\tLAST KNOWN ADDRESSES\tSEEN\tACCOUNTS")
		for _, k := range p.Kept {
			accounts := make([]string, len(k.Accounts))
			for i, a := range k.Accounts {
				accounts[i] = a.Short()
			}
			fmt.Fprintf(t, "%s\t%s\t%s\t%s\n", k.ID, strings.Join(k.Addrs, " "), k.Seen.Local().Format(time.DateTime), strings.Join(accounts, " "))
		}
		return nil
	})
}

func runPeersForget(ctx context.Context, args []string) error {
	f := newFlags("peers forget", "[flags] PEER", `
Peers forget drops the peer PEER (a peer ID, as 'blockmrs peers' lists
it) from the address book: its kept addresses are deleted from the repo
and, with a running daemon, from the node's peerstore (a connection open
now stays up). The book keeps it again when it next connects, as long as
a chain declares it a node of an account this repo knows. With --json it
prints what POST /api/v1/peers/forget answers.`, `
blockmrs peers forget 12D3KooWNode...`)
	pos, err := f.parseArgs(args, true, "PEER")
	if err != nil {
		return err
	}
	if len(pos) > 1 {
		return usagef("unexpected argument %q", pos[1])
	}
	return f.withRepo(ctx, func(repo *keyshare.Repo) error {
		var forget func(context.Context, peer.ID) (bool, error)
		if inv := f.invocation(); inv.inDaemon() && inv.rt.Book != nil {
			forget = inv.rt.Book.Forget
		}
		gone, err := ops.ForgetPeer(ctx, repo, forget, pos[0])
		if err != nil {
			return err
		}
		if f.json {
			return f.printJSON(gone)
		}
		fmt.Fprintf(f.out(), "forgot the kept addresses of %s\n", gone.ID)
		return nil
	})
}
