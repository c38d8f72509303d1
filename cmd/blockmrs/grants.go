package main

import (
	"context"
	"fmt"
	"io"

	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/node/ops"
)

var grantsCmd = &command{name: "grants", summary: "list what the account shared and what was shared with it", run: runGrants}

func runGrants(ctx context.Context, args []string) error {
	f := newFlags("grants", "[flags]", `
Grants lists the live grants of the records the acting account can read:
what it shared (as the records' subject) and what others shared with it,
one row per record and grantee, with the grant's expiry and the chain
block that holds it (SCOPE names the standing grant a row comes under).
Above them it lists the live standing grants ('blockmrs grant --scope')
the account gave and was given: scope, what it covers, the records read
under it now and its end. --with keeps the grants to or from one account.
Revoked and expired grants are shown by 'blockmrs readers CID'. With
--json it prints what GET /api/v1/grants answers.`, `
blockmrs grants
blockmrs grants --with "Dr Grey" --json`)
	f.withAccount()
	with := f.String("with", "", "list only the grants to or from this `ACCOUNT`")
	if _, err := f.parseArgs(args, false); err != nil {
		return err
	}
	return f.withKeys(ctx, func(repo *keyshare.Repo, keys *keyshare.Keys) error {
		out, err := ops.Grants(ctx, repo, keys, ops.ListGrants{With: *with})
		if err != nil {
			return err
		}
		return f.printTable(out, func(t io.Writer) error {
			nm, err := loadNames(ctx, repo)
			if err != nil {
				return err
			}
			if len(out.Standing) > 0 {
				fmt.Fprintln(t, "STANDING GRANT\tCOVERS\tFROM\tTO\tRECORDS\tEXPIRES\tBLOCK")
				for _, s := range out.Standing {
					fmt.Fprintf(t, "%s\t%s\t%s\t%s\t%d\t%s\t%s\n", s.Scope, s.Covers, cell(nm.of(s.From)), cell(nm.of(s.To)), s.Records, formatTime(s.Expires), s.Via.Block)
				}
				fmt.Fprintln(t) // a blank line ends the first table's columns
			}
			fmt.Fprintln(t, "CID\tTITLE\tFROM\tTO\tEXPIRES\tSCOPE\tBLOCK")
			for _, g := range out.Grants {
				fmt.Fprintf(t, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", g.Record, cell(g.Title), cell(nm.of(g.Subject)), cell(nm.of(g.To)), formatTime(g.Expires), g.Scope, g.Via.Block)
			}
			return nil
		})
	})
}
