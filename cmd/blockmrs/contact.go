package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/node/ops"
	"github.com/blockmrs/blockmrs/store"
)

var contactCmd = &command{name: "contact", summary: "add a contact from a CAR file (contact add), list contacts (contact ls)", run: runContact}

const contactHelp = `Usage: blockmrs contact add [flags] FILE|-
       blockmrs contact add [flags] ADDRESS ACCOUNT
       blockmrs contact ls [flags]

Contact add imports another account's chain: from a CAR file (a profile
from 'blockmrs id --export' or a full 'blockmrs export'), or over the
network from the node at ADDRESS that hosts ACCOUNT (needs a running
daemon). Every block is verified (signatures, links, no fork) before
anything is stored; then the account is known here and records can be
added for it, granted to it or requested from it.
Contact ls lists the accounts this repo knows but holds no keys for.
Run 'blockmrs contact add --help' for the flags.

Example:
  blockmrs contact add dr-jones.car
  blockmrs contact add /ip4/192.0.2.7/tcp/4001/p2p/12D3KooWNode... 12D3KooWAccount...
  blockmrs contact ls
`

func runContact(ctx context.Context, args []string) error {
	return runNested(ctx, "contact", contactHelp, args,
		subcommand{[]string{"add"}, runContactAdd},
		subcommand{[]string{"ls", "list"}, runContactLs})
}

func runContactAdd(ctx context.Context, args []string) error {
	f := newFlags("contact add", "[flags] FILE|- | ADDRESS ACCOUNT", `
Contact add imports a CAR file (- reads stdin) holding other accounts'
chains: a profile from 'blockmrs id --export' or a full 'blockmrs export'.
Everything is verified before anything is stored: a bad signature, a
broken link, a fork or a truncated file rejects the whole file and leaves
the repo as it was. It prints the accounts it added or advanced; with
--json, what POST /api/v1/contacts/import answers for the same file.

Given a node's ADDRESS (a multiaddr ending in /p2p/PEER_ID, as 'blockmrs
id' shows it on that node) and the ID of an ACCOUNT hosted there, the
running daemon dials the node and asks it for that account's profile (a
node gives it out only for accounts it hosts, and only to whoever names
the account). The profile names the account's nodes, so requests to it
can be delivered. ADDRESS ACCOUNT is the share code that 'blockmrs id
--share' prints on that node; with --json it prints what POST
/api/v1/contacts answers.`, `
blockmrs contact add dr-jones.car
blockmrs contact add /ip4/192.0.2.7/tcp/4001/p2p/12D3KooWNode... 12D3KooWAccount...`)
	pos, err := f.parseArgs(args, true, "FILE")
	if err != nil {
		return err
	}
	if addr, err := ma.NewMultiaddr(pos[0]); err == nil {
		if len(pos) != 2 {
			return usagef("contact add ADDRESS needs the ACCOUNT hosted there")
		}
		return contactFromNode(ctx, f, addr.String(), pos[1])
	}
	if len(pos) > 1 {
		return usagef("unexpected argument %q", pos[1])
	}
	return contactFromFile(ctx, f, pos[0])
}

// contactFromFile imports the profile file name ("-": stdin).
func contactFromFile(ctx context.Context, f *cmdFlags, name string) error {
	return f.withRepo(ctx, func(repo *keyshare.Repo) error {
		in, err := f.openInput(ctx, name)
		if err != nil {
			return err
		}
		defer in.Close()
		added, err := ops.ImportContact(ctx, repo, in, 0)
		if errors.Is(err, store.ErrImportLimit) {
			return fmt.Errorf("%w; a file this large is a full export: use 'blockmrs import --max-size'", err)
		}
		if err != nil {
			return err
		}
		return printContactAdded(ctx, f, repo, added)
	})
}

// contactFromNode adds the account a share code names, through the
// running daemon's chain sync.
func contactFromNode(ctx context.Context, f *cmdFlags, addr, account string) error {
	code, err := ops.ParseShareParts(addr, account)
	if err != nil {
		return usagef("%v", err)
	}
	return f.withRepo(ctx, func(repo *keyshare.Repo) error {
		var profiles ops.Profiles
		if inv := f.invocation(); inv.inDaemon() {
			profiles = inv.rt.Sync
		}
		added, err := ops.AddContact(ctx, repo, profiles, ops.AddContactArgs{ShareCode: addr + " " + string(code.Account)})
		if errors.Is(err, ops.ErrNoNode) {
			return errors.New("adding a contact from the network needs a running daemon (start 'blockmrs daemon')")
		}
		if err != nil {
			return err
		}
		return printContactAdded(ctx, f, repo, added)
	})
}

// printContactAdded prints what a contact add changed: with --json the
// API's answer, else a line per account.
func printContactAdded(ctx context.Context, f *cmdFlags, repo *keyshare.Repo, added ops.ContactAdded) error {
	if f.json {
		return f.printJSON(added)
	}
	names, err := loadNames(ctx, repo)
	if err != nil {
		return err
	}
	t := f.newTable()
	for _, a := range added.Added {
		fmt.Fprintf(t, "added\t%s\t%s\t%s\tseq %d\n", cell(a.Name), a.Role, a.ID, a.Seq)
	}
	for _, a := range added.Updated {
		fmt.Fprintf(t, "updated\t%s\t%s\t%s\tseq %d\n", cell(a.Name), a.Role, a.ID, a.Seq)
	}
	for _, id := range added.Unchanged {
		fmt.Fprintf(t, "unchanged\t%s\t\t%s\t\n", cell(names.of(id)), id)
	}
	if err := t.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(f.out(), "%d new chain block(s)\n", added.NewBlocks)
	if added.Skipped > 0 {
		fmt.Fprintf(f.out(), "skipped %d blocks not reachable from the roots (%d bytes, not stored)\n", added.Skipped, added.SkippedBytes)
	}
	return nil
}

func runContactLs(ctx context.Context, args []string) error {
	f := newFlags("contact ls", "[flags]", `
Contact ls lists the accounts whose chains this repo holds but whose keys
it does not: their name, role, ID and chain sequence number. With --json
it prints what GET /api/v1/contacts answers.`, `
blockmrs contact ls`)
	if _, err := f.parseArgs(args, false); err != nil {
		return err
	}
	return f.withRepo(ctx, func(repo *keyshare.Repo) error {
		contacts, err := ops.Contacts(ctx, repo)
		if err != nil {
			return err
		}
		return f.printTable(contacts, func(t io.Writer) error {
			fmt.Fprintln(t, "NAME\tROLE\tID\tSEQ")
			for _, a := range contacts.Accounts {
				role := string(a.Role)
				if a.RoleProof != nil {
					role += " " + roleBadge(*a.RoleProof)
				}
				fmt.Fprintf(t, "%s\t%s\t%s\t%d\n", a.Name, role, a.ID, a.Seq)
			}
			return nil
		})
	})
}
