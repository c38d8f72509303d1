package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/node/ops"
)

var idCmd = &command{name: "id", summary: "show an account's ID and keys; --export its profile for contacts", run: runID}

func runID(ctx context.Context, args []string) error {
	f := newFlags("id", "[flags]", `
Id prints the acting account's ID, age recipient, name, role, chain head
and sequence number, and whether its keys are encrypted. With --export it
writes the account's profile (the first block of its chain) as a CAR file
that others add with 'blockmrs contact add'; it holds public keys only.
While a daemon runs it also prints the node's peer ID and addresses and
the command with which a contact adds this account over the network.
With --share --qr it prints that share code as a QR code made of text
(light squares drawn, for a terminal with a dark background), then the
share code itself: a contact's phone reads it from the screen (GET
/api/v1/share-code.png is the same code as an image).
With --json it prints what GET /api/v1/id answers. Nothing here needs
the passphrase.`, `
blockmrs id
blockmrs id --export alice.car
blockmrs id --share --qr
blockmrs contact add --repo /tmp/clinic $(blockmrs id --share)`)
	f.withAccount()
	export := f.String("export", "", "write the profile CAR to `FILE` (- for stdout)")
	share := f.Bool("share", false, "print only what a contact passes to 'blockmrs contact add': the node's address and the account ID (needs a running daemon)")
	qr := f.Bool("qr", false, "with --share: print the share code as a QR code too")
	if _, err := f.parseArgs(args, false); err != nil {
		return err
	}
	if *qr && (!*share || f.json || *export != "") {
		return usagef("--qr goes with --share alone (not --json or --export)")
	}
	if *export == "-" && f.json {
		return usagef("--json and --export - both want stdout")
	}
	return f.withSelected(ctx, func(repo *keyshare.Repo, info keyshare.AccountInfo) error {
		if *export != "" {
			if _, err := f.writeOutput(*export, func(w io.Writer) error { return repo.ExportProfile(ctx, w, info.ID) }); err != nil {
				return fmt.Errorf("export profile: %w", err)
			}
			if *export == "-" {
				return nil
			}
		}
		if *qr {
			return printShareQR(ctx, f, repo, info)
		}
		// With a daemon running, the node's addresses and the share code
		// a contact adds this account with (blockmrs contact add ADDRESS ID).
		id, err := ops.ID(ctx, repo, daemonHost(ctx), ops.IDArgs{Account: info.ID})
		if err != nil {
			return err
		}
		if *share {
			if id.ShareCode == "" {
				return errors.New("--share needs a running daemon listening on an address")
			}
			fmt.Fprintln(f.out(), id.ShareCode)
			return nil
		}
		a := id.Account
		return f.printTable(id, func(t io.Writer) error {
			fmt.Fprintf(t, "id\t%s\n", a.ID)
			fmt.Fprintf(t, "name\t%s\n", a.Name)
			fmt.Fprintf(t, "role\t%s\n", a.Role)
			fmt.Fprintf(t, "recipient\t%s\n", a.Recipient)
			fmt.Fprintf(t, "chain\thead %s, seq %d\n", a.Head, a.Seq)
			keys := "not encrypted"
			if a.Encrypted {
				keys = "encrypted with a passphrase"
			}
			fmt.Fprintf(t, "keys\t%s\n", keys)
			fmt.Fprintf(t, "default\t%v\n", a.Default)
			if a.Stopped != "" {
				fmt.Fprintf(t, "stopped\t%s\n", a.Stopped)
			}
			if *export != "" {
				fmt.Fprintf(t, "exported\t%s\n", *export)
			}
			if id.PeerID != "" {
				fmt.Fprintf(t, "node\t%s\n", id.PeerID)
			}
			for _, addr := range id.Addrs {
				fmt.Fprintf(t, "address\t%s\n", addr)
			}
			if id.ShareCode != "" {
				fmt.Fprintf(t, "contacts add it with\tblockmrs contact add %s\n", id.ShareCode)
			}
			return nil
		})
	})
}

// printShareQR prints the account's share code as a text QR code (light
// modules drawn as blocks), then as text.
func printShareQR(ctx context.Context, f *cmdFlags, repo *keyshare.Repo, info keyshare.AccountInfo) error {
	q, err := ops.ShareCodeQR(ctx, repo, daemonHost(ctx), ops.IDArgs{Account: info.ID})
	if errors.Is(err, ops.ErrNoNode) {
		return errors.New("--share needs a running daemon listening on an address")
	}
	if err != nil {
		return err
	}
	fmt.Fprint(f.out(), q.Code.ToSmallString(false))
	fmt.Fprintln(f.out(), q.Text)
	return nil
}
