package main

import (
	"context"
	"fmt"
	"io"

	"github.com/blockmrs/blockmrs/keyshare"
)

var idCmd = &command{name: "id", summary: "show an account's ID and keys; --export its profile for contacts", run: runID}

func runID(ctx context.Context, args []string) error {
	f := newFlags("id", "[flags]", `
Id prints the acting account's ID, age recipient, name, role, chain head
and sequence number, and whether its keys are encrypted. With --export it
writes the account's profile (the first block of its chain) as a CAR file
that others add with 'blockmrs contact add'; it holds public keys only.
Nothing here needs the passphrase.`, `
blockmrs id
blockmrs id --export alice.car`)
	f.withAccount()
	export := f.String("export", "", "write the profile CAR to `FILE` (- for stdout)")
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
		return f.printTable(struct {
			keyshare.AccountInfo
			Exported string `json:"exported,omitempty"`
		}{info, *export}, func(t io.Writer) error {
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
			return nil
		})
	})
}
