package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/blockmrs/blockmrs/keyshare"
)

var idCmd = &command{name: "id", summary: "show an account's ID and keys; --export its profile for contacts", run: runID}

func runID(ctx context.Context, args []string) error {
	f := newFlags("id", "[flags]", `
Id prints the acting account's ID, age recipient, name, role, chain head
and sequence number, and whether its keys are encrypted. With --export it
writes the account's profile (the first block of its chain) as a CAR file
that others add with 'blockmrs contact add'; it holds public keys only.
While a daemon runs it also prints the node's addresses and the command
with which a contact adds this account over the network. Nothing here
needs the passphrase.`, `
blockmrs id
blockmrs id --export alice.car
blockmrs contact add --repo /tmp/clinic $(blockmrs id --share)`)
	f.withAccount()
	export := f.String("export", "", "write the profile CAR to `FILE` (- for stdout)")
	share := f.Bool("share", false, "print only what a contact passes to 'blockmrs contact add': the node's address and the account ID (needs a running daemon)")
	if _, err := f.parseArgs(args, false); err != nil {
		return err
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
		// With a daemon running, the addresses a contact can add this
		// account from (blockmrs contact add ADDRESS ID).
		var addrs []string
		if inv := f.invocation(); inv.inDaemon() {
			for _, a := range inv.rt.Host.Addrs() {
				if strings.HasSuffix(a.String(), "/p2p-circuit") {
					continue // a relay address needs the relay's own part
				}
				addrs = append(addrs, a.String()+"/p2p/"+inv.rt.Host.ID().String())
			}
		}
		if *share {
			if len(addrs) == 0 {
				return errors.New("--share needs a running daemon listening on an address")
			}
			fmt.Fprintf(f.out(), "%s %s\n", addrs[0], info.ID)
			return nil
		}
		return f.printTable(struct {
			keyshare.AccountInfo
			Exported  string   `json:"exported,omitempty"`
			Addresses []string `json:"addresses,omitempty"`
		}{info, *export, addrs}, func(t io.Writer) error {
			fmt.Fprintf(t, "id\t%s\n", info.ID)
			fmt.Fprintf(t, "name\t%s\n", info.Name)
			fmt.Fprintf(t, "role\t%s\n", info.Role)
			fmt.Fprintf(t, "recipient\t%s\n", info.Recipient)
			fmt.Fprintf(t, "chain\thead %s, seq %d\n", info.Head, info.Seq)
			keys := "not encrypted"
			if info.Encrypted {
				keys = "encrypted with a passphrase"
			}
			fmt.Fprintf(t, "keys\t%s\n", keys)
			fmt.Fprintf(t, "default\t%v\n", info.Default)
			if info.Stopped != "" {
				fmt.Fprintf(t, "stopped\t%s\n", info.Stopped)
			}
			if *export != "" {
				fmt.Fprintf(t, "exported\t%s\n", *export)
			}
			for _, a := range addrs {
				fmt.Fprintf(t, "address\t%s\n", a)
			}
			if len(addrs) > 0 {
				fmt.Fprintf(t, "contacts add it with\tblockmrs contact add %s %s\n", addrs[0], info.ID)
			}
			return nil
		})
	})
}
