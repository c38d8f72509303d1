package main

import (
	"context"
	"fmt"
	"io"

	"github.com/blockmrs/blockmrs/keyshare"
)

var deviceCmd = &command{name: "device", summary: "declare which nodes act for the account (device add|rm|ls)", run: runDevice}

const deviceHelp = `Usage: blockmrs device add [flags] PEERID
       blockmrs device rm [flags] PEERID
       blockmrs device ls [flags]

A device is a node (a libp2p peer ID, as 'blockmrs daemon' prints it) that
acts for the account: a patient's laptop and phone, the clinic server that
hosts a clinician. The declaration is signed on the account's chain, so
every node that holds the chain knows which nodes may fetch what the
account may read. Device rm withdraws a declaration; device ls lists the
declared nodes.
Run 'blockmrs device add --help' for the flags.

Example:
  blockmrs device add 12D3KooW... --name laptop
  blockmrs device ls
`

func runDevice(ctx context.Context, args []string) error {
	return runNested(ctx, "device", deviceHelp, args,
		subcommand{[]string{"add"}, func(ctx context.Context, args []string) error { return runDeviceSet(ctx, args, false) }},
		subcommand{[]string{"rm", "remove"}, func(ctx context.Context, args []string) error { return runDeviceSet(ctx, args, true) }},
		subcommand{[]string{"ls", "list"}, runDeviceLs})
}

func runDeviceSet(ctx context.Context, args []string, remove bool) error {
	name, verb, desc := "device add", "declared", `
Device add signs, on the acting account's chain, that the node with the
given peer ID acts for the account. --name labels it for people.`
	if remove {
		name, verb, desc = "device rm", "withdrew", `
Device rm signs, on the acting account's chain, that the node with the
given peer ID no longer acts for the account.`
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
		block, err := repo.SetDevice(ctx, keys, pos[0], label, remove)
		if err != nil {
			return err
		}
		if f.json {
			return printJSON(struct {
				Account string `json:"account"`
				PeerID  string `json:"peer_id"`
				Removed bool   `json:"removed"`
				Block   string `json:"block"`
			}{string(keys.ID), pos[0], remove, block.String()})
		}
		fmt.Printf("%s device %s in block %s\n", verb, pos[0], block)
		return nil
	})
}

func runDeviceLs(ctx context.Context, args []string) error {
	f := newFlags("device ls", "[flags]", `
Device ls lists the nodes the acting account declares as acting for it.`, `
blockmrs device ls`)
	f.withAccount()
	if _, err := f.parseArgs(args, false); err != nil {
		return err
	}
	return f.withSelected(ctx, func(_ *keyshare.Repo, me keyshare.AccountInfo) error {
		devices := me.Devices
		if devices == nil {
			devices = []keyshare.DeviceInfo{}
		}
		return f.printTable(devices, func(t io.Writer) error {
			fmt.Fprintln(t, "PEER ID\tNAME")
			for _, d := range devices {
				fmt.Fprintf(t, "%s\t%s\n", d.PeerID, clean(d.Name))
			}
			return nil
		})
	})
}
