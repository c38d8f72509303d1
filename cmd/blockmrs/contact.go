package main

import (
	"context"
	"fmt"
	"os"

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
	if len(args) == 0 {
		return usagef("missing subcommand: add or ls")
	}
	switch args[0] {
	case "add":
		return inSubcommand("contact add", runContactAdd(ctx, args[1:]))
	case "ls", "list":
		return inSubcommand("contact ls", runContactLs(ctx, args[1:]))
	case "-h", "-help", "--help":
		fmt.Fprint(os.Stdout, contactHelp)
		return errHelpShown
	}
	return usagef("unknown subcommand %q (want add or ls)", truncate(args[0], 40))
}

func runContactAdd(ctx context.Context, args []string) (err error) {
	f := newFlags("contact add", "[flags] FILE|-", `
Contact add imports a CAR file (- reads stdin) holding other accounts'
chains: a profile from 'blockmrs id --export' or a full 'blockmrs export'.
Everything is verified before anything is stored: a bad signature, a
broken link, a fork or a truncated file rejects the whole file and leaves
the repo as it was. It prints the accounts it added or advanced.`, `
blockmrs contact add dr-jones.car`)
	pos, err := f.parse(args)
	if err != nil {
		return err
	}
	if err := f.checkArgs(pos, false, "FILE"); err != nil {
		return err
	}
	repo, err := f.openRepo(ctx)
	if err != nil {
		return err
	}
	defer closeRepo(repo, &err)
	sum, err := importFile(ctx, repo, pos[0])
	if err != nil {
		return err
	}
	if f.json {
		return printJSON(sum)
	}
	return sum.print()
}

func runContactLs(ctx context.Context, args []string) (err error) {
	f := newFlags("contact ls", "[flags]", `
Contact ls lists the accounts whose chains this repo holds but whose keys
it does not: their name, role, ID and chain sequence number.`, `
blockmrs contact ls`)
	pos, err := f.parse(args)
	if err != nil {
		return err
	}
	if err := f.checkArgs(pos, false); err != nil {
		return err
	}
	repo, err := f.openRepo(ctx)
	if err != nil {
		return err
	}
	defer closeRepo(repo, &err)
	all, err := repo.Accounts(ctx)
	if err != nil {
		return err
	}
	contacts := []keyshare.AccountInfo{}
	for _, a := range all {
		if !a.Local {
			contacts = append(contacts, a)
		}
	}
	if f.json {
		return printJSON(contacts)
	}
	t := newTable()
	fmt.Fprintln(t, "NAME\tROLE\tID\tSEQ")
	for _, a := range contacts {
		fmt.Fprintf(t, "%s\t%s\t%s\t%d\n", a.Name, a.Role, a.ID, a.Seq)
	}
	return t.Flush()
}
