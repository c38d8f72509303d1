package main

import (
	"context"
	"fmt"
	"io"

	"github.com/blockmrs/blockmrs/keyshare"
)

var contactCmd = &command{name: "contact", summary: "add a contact from a CAR file (contact add), list contacts (contact ls)", run: runContact}

const contactHelp = `Usage: blockmrs contact add [flags] FILE|-
       blockmrs contact ls [flags]

Contact add imports a CAR file holding another account's chain: a profile
from 'blockmrs id --export' or a full 'blockmrs export'. Every block is
verified (signatures, links, no fork) before anything is stored; then the
account is known here and records can be added for it or granted to it.
Contact ls lists the accounts this repo knows but holds no keys for.
Run 'blockmrs contact add --help' for the flags.

Example:
  blockmrs contact add dr-jones.car
  blockmrs contact ls
`

func runContact(ctx context.Context, args []string) error {
	return runNested(ctx, "contact", contactHelp, args,
		subcommand{[]string{"add"}, runContactAdd},
		subcommand{[]string{"ls", "list"}, runContactLs})
}

func runContactAdd(ctx context.Context, args []string) error {
	f := newFlags("contact add", "[flags] FILE|-", `
Contact add imports a CAR file (- reads stdin) holding other accounts'
chains: a profile from 'blockmrs id --export' or a full 'blockmrs export'.
Everything is verified before anything is stored: a bad signature, a
broken link, a fork or a truncated file rejects the whole file and leaves
the repo as it was. It prints the accounts it added or advanced.`, `
blockmrs contact add dr-jones.car`)
	pos, err := f.parseArgs(args, false, "FILE")
	if err != nil {
		return err
	}
	return importAndReport(ctx, f, pos[0], false)
}

func runContactLs(ctx context.Context, args []string) error {
	f := newFlags("contact ls", "[flags]", `
Contact ls lists the accounts whose chains this repo holds but whose keys
it does not: their name, role, ID and chain sequence number.`, `
blockmrs contact ls`)
	if _, err := f.parseArgs(args, false); err != nil {
		return err
	}
	return f.withRepo(ctx, func(repo *keyshare.Repo) error {
		contacts, err := accountsWhere(ctx, repo, false)
		if err != nil {
			return err
		}
		return f.printTable(contacts, func(t io.Writer) error {
			fmt.Fprintln(t, "NAME\tROLE\tID\tSEQ")
			for _, a := range contacts {
				fmt.Fprintf(t, "%s\t%s\t%s\t%d\n", a.Name, a.Role, a.ID, a.Seq)
			}
			return nil
		})
	})
}
