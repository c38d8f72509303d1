package main

import (
	"context"
	"fmt"
	"io"

	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/node/ops"
)

var accountsCmd = &command{name: "accounts", summary: "list this repo's own accounts (* marks the default)", run: runAccounts}

func runAccounts(ctx context.Context, args []string) error {
	f := newFlags("accounts", "[flags]", `
Accounts lists the accounts whose keys this repo holds, marking the
default one (used when --account is not given) with *. With --set-default
it first makes another local account the default (as POST
/api/v1/accounts/default does). Contacts are listed by 'blockmrs contact
ls'. With --json it prints what GET /api/v1/accounts answers.`, `
blockmrs accounts
blockmrs accounts --set-default "Dr Jones"`)
	setDefault := f.String("set-default", "", "make this local `ACCOUNT` (NAME, ID or ID suffix) the default")
	if _, err := f.parseArgs(args, false); err != nil {
		return err
	}
	return f.withRepo(ctx, func(repo *keyshare.Repo) error {
		var local ops.AccountList
		var err error
		if *setDefault != "" {
			local, err = ops.SetDefault(ctx, repo, ops.DefaultRequest{Account: *setDefault})
		} else {
			local, err = ops.Accounts(ctx, repo)
		}
		if err != nil {
			return err
		}
		return f.printTable(local, func(t io.Writer) error {
			fmt.Fprintln(t, "\tNAME\tROLE\tID\tSEQ\tKEYS")
			for _, a := range local.Accounts {
				mark, keys := "", "plain"
				if a.Default {
					mark = "*"
				}
				if a.Encrypted {
					keys = "encrypted"
				}
				fmt.Fprintf(t, "%s\t%s\t%s\t%s\t%d\t%s\n", mark, a.Name, a.Role, a.ID, a.Seq, keys)
			}
			return nil
		})
	})
}
