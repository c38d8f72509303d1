package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/node/ops"
)

var trustCmd = &command{name: "trust", summary: "the authorities whose attestations verify roles (trust add|rm|ls)", run: runTrust}

const trustHelp = `Usage: blockmrs trust add [flags] ACCOUNT
       blockmrs trust rm [flags] ACCOUNT
       blockmrs trust ls [flags]

A role (clinician, clinic) is shown as verified only when live
attestations lead to it from an authority this repo trusts. The trust
list is made of the authorities shipped with this release (none in this
one), those in config.json's "trust" list, and those added with 'trust
add'. 'trust rm' removes any of them (a shipped or configured one stays
removed until added again); 'trust ls' shows each with its source.
Run 'blockmrs trust add --help' for the flags.

Example:
  blockmrs trust add 12D3KooWAuthority...
  blockmrs trust ls
`

func runTrust(ctx context.Context, args []string) error {
	return runNested(ctx, "trust", trustHelp, args,
		subcommand{[]string{"add"}, func(ctx context.Context, args []string) error { return runTrustSet(ctx, args, false) }},
		subcommand{[]string{"rm", "remove"}, func(ctx context.Context, args []string) error { return runTrustSet(ctx, args, true) }},
		subcommand{[]string{"ls", "list"}, runTrustLs})
}

func runTrustSet(ctx context.Context, args []string, remove bool) error {
	name, desc, api := "trust add", `
Trust add makes ACCOUNT a trusted authority: roles attested on paths
from it are shown as verified. The account must be known here (add it as
a contact first) and declare the role authority.`, "POST /api/v1/trust"
	if remove {
		name, desc, api = "trust rm", `
Trust rm stops trusting ACCOUNT, whatever its source: roles resting on
its attestations are no longer verified.`, "POST /api/v1/trust/remove"
	}
	f := newFlags(name, "[flags] ACCOUNT", desc+" With --json it prints what "+api+" answers.", "\nblockmrs "+name+" 12D3KooWAuthority...")
	pos, err := f.parseArgs(args, false, "ACCOUNT")
	if err != nil {
		return err
	}
	return f.withRepo(ctx, func(repo *keyshare.Repo) error {
		var out ops.TrustList
		var err error
		if remove {
			out, err = ops.Distrust(ctx, repo, ops.TrustRequest{Account: pos[0]})
		} else {
			out, err = ops.Trust(ctx, repo, ops.TrustRequest{Account: pos[0]})
		}
		if err != nil {
			return err
		}
		if f.json {
			return f.printJSON(out)
		}
		verb := "trusted"
		if remove {
			verb = "no longer trusted"
		}
		fmt.Fprintf(f.out(), "%s: %s\n", verb, clean(pos[0]))
		return nil
	})
}

func runTrustLs(ctx context.Context, args []string) error {
	f := newFlags("trust ls", "[flags]", `
Trust ls lists the trusted authorities with their sources (shipped,
config, user), and shipped or configured ones that were removed. With
--json it prints what GET /api/v1/trust answers.`, `
blockmrs trust ls`)
	if _, err := f.parseArgs(args, false); err != nil {
		return err
	}
	return f.withRepo(ctx, func(repo *keyshare.Repo) error {
		out, err := ops.ListTrust(ctx, repo)
		if err != nil {
			return err
		}
		return f.printTable(out, func(t io.Writer) error {
			fmt.Fprintln(t, "ACCOUNT\tNAME\tSOURCES\tSTATE")
			for _, a := range out.Trusted {
				state := "trusted"
				if a.Removed {
					state = "removed"
				}
				fmt.Fprintf(t, "%s\t%s\t%s\t%s\n", a.Account, cell(a.Name), strings.Join(a.Sources, ","), state)
			}
			if len(out.Trusted) == 0 {
				fmt.Fprintln(t, "(no trusted authority: no role is verified; add one with 'blockmrs trust add ACCOUNT')")
			}
			return nil
		})
	})
}
