package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/node/ops"
)

var (
	deviceCmd  = &command{name: "device", summary: "pair, declare and remove the nodes that act for the account (device pair|join|add|rm|ls)", run: runDevice}
	replicaCmd = &command{name: "replica", summary: "declare which nodes keep the account's ciphertext available (replica add|rm|ls)", run: runReplica}
)

const deviceHelp = `Usage: blockmrs device pair [flags]
       blockmrs device join [flags] CODE
       blockmrs device add [flags] PEERID
       blockmrs device rm [flags] PEERID
       blockmrs device ls [flags]

A device is a node (a libp2p peer ID, as 'blockmrs daemon' prints it) that
acts for the account: a patient's laptop and phone, the clinic server that
hosts a clinician. The declaration is signed on the account's chain, so
every node that holds the chain knows which nodes may fetch what the
account may read. Device pair shows a one-time code (and QR code) that
a new device passes to device join to receive the account's keys; device
add declares a node without giving it keys; device rm removes a device
and rotates the account's key; device ls lists the declared nodes.
Run 'blockmrs device pair --help' (and so on) for the flags.

Example:
  blockmrs device pair                        (on the laptop)
  blockmrs device join '/ip4/.../p2p/12D3KooW... 7KQ2-M9XF-3TRA'   (on the phone)
  blockmrs device rm 12D3KooW...              (the phone was lost)
  blockmrs device ls
`

const replicaHelp = `Usage: blockmrs replica add [flags] PEERID
       blockmrs replica rm [flags] PEERID
       blockmrs replica ls [flags]

A replica is a node (a libp2p peer ID) that keeps the account's chain and
the ciphertext of the records it owns or wrote available when the
account's own nodes are offline: a clinic server, or a stock IPFS node
chosen as a backup ('ipfs id' prints its peer ID). A replica acts for
nobody and can decrypt nothing; nodes serve it the account's blocks
because the account declared it, signed, on its chain.
Run 'blockmrs replica add --help' for the flags.

Example:
  blockmrs replica add 12D3KooW... --name "home backup"
  blockmrs replica ls
`

func runDevice(ctx context.Context, args []string) error {
	return runNested(ctx, "device", deviceHelp, args,
		subcommand{[]string{"pair"}, runDevicePair},
		subcommand{[]string{"join"}, runDeviceJoin},
		subcommand{[]string{"add"}, func(ctx context.Context, args []string) error { return runNodeSet(ctx, args, false, false) }},
		subcommand{[]string{"rm", "remove"}, runDeviceRm},
		subcommand{[]string{"ls", "list"}, func(ctx context.Context, args []string) error { return runNodeLs(ctx, args, false) }})
}

func runReplica(ctx context.Context, args []string) error {
	return runNested(ctx, "replica", replicaHelp, args,
		subcommand{[]string{"add"}, func(ctx context.Context, args []string) error { return runNodeSet(ctx, args, false, true) }},
		subcommand{[]string{"rm", "remove"}, func(ctx context.Context, args []string) error { return runNodeSet(ctx, args, true, true) }},
		subcommand{[]string{"ls", "list"}, func(ctx context.Context, args []string) error { return runNodeLs(ctx, args, true) }})
}

// runNodeSet runs device add|rm (replica=false) and replica add|rm.
func runNodeSet(ctx context.Context, args []string, remove, replica bool) error {
	kind, role := "device", "acts for the account"
	if replica {
		kind, role = "replica", "keeps the account's chain and ciphertext available"
	}
	name, verb, desc := kind+" add", "declared", `
`+capitalize(kind)+` add signs, on the acting account's chain, that the node with the
given peer ID `+role+`. --name labels it for people.`
	if remove {
		name, verb, desc = kind+" rm", "withdrew", `
`+capitalize(kind)+` rm signs, on the acting account's chain, that the node with the
given peer ID no longer `+role+`.`
	}
	f := newFlags(name, "[flags] PEERID", desc, "\nblockmrs "+name+" 12D3KooW...")
	f.withAccount()
	label := ""
	if !remove {
		f.StringVar(&label, "name", "", "a `NAME` for the device (laptop, phone, clinic server)")
	}
	pos, err := f.parseArgs(args, false, "PEERID")
	if err != nil {
		return err
	}
	return f.withKeys(ctx, func(repo *keyshare.Repo, keys *keyshare.Keys) error {
		var out ops.NodeSet
		var err error
		if remove {
			out, err = ops.Withdraw(ctx, repo, keys, ops.WithdrawRequest{PeerID: pos[0], Replica: replica})
		} else {
			out, err = ops.Declare(ctx, repo, keys, ops.DeclareRequest{PeerID: pos[0], Name: label, Replica: replica})
		}
		if err != nil {
			return err
		}
		if f.json {
			return f.printJSON(out)
		}
		fmt.Fprintf(f.out(), "%s %s %s in block %s\n", verb, kind, pos[0], out.Block)
		return nil
	})
}

// runNodeLs runs device ls (replica=false) and replica ls.
func runNodeLs(ctx context.Context, args []string, replica bool) error {
	kind, what := "device", "as acting for it"
	if replica {
		kind, what = "replica", "as its replicas"
	}
	f := newFlags(kind+" ls", "[flags]", `
`+capitalize(kind)+` ls lists the nodes the acting account declares `+what+`.
With --json it prints the account's devices and replicas both, as
GET /api/v1/devices answers.`, `
blockmrs `+kind+` ls`)
	f.withAccount()
	if _, err := f.parseArgs(args, false); err != nil {
		return err
	}
	return f.withSelected(ctx, func(_ *keyshare.Repo, me keyshare.AccountInfo) error {
		list := ops.ListDevices(me)
		devices := list.Devices
		if replica {
			devices = list.Replicas
		}
		return f.printTable(list, func(t io.Writer) error {
			fmt.Fprintln(t, "PEER ID\tNAME")
			for _, d := range devices {
				fmt.Fprintf(t, "%s\t%s\n", d.PeerID, clean(d.Name))
			}
			return nil
		})
	})
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
