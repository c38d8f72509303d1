package main

import (
	"context"
	"fmt"

	"github.com/blockmrs/blockmrs/keyshare"
)

var accountsCmd = &command{name: "accounts", summary: "list this repo's own accounts (* marks the default)", run: runAccounts}

func runAccounts(ctx context.Context, args []string) (err error) {
	f := newFlags("accounts", "[flags]", `
Accounts lists the accounts whose keys this repo holds, marking the
default one (used when --account is not given) with *. With --set-default
it first makes another local account the default. Contacts are listed by
'blockmrs contact ls'.`, `
blockmrs accounts
blockmrs accounts --set-default "Dr Jones"`)
	setDefault := f.String("set-default", "", "make this local `ACCOUNT` (NAME, ID or ID suffix) the default")
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
	if *setDefault != "" {
		info, err := repo.Resolve(ctx, *setDefault, true)
		if err != nil {
			return fmt.Errorf("account: %w", err)
		}
		if err := repo.SetDefault(ctx, info.ID); err != nil {
			return err
		}
	}
	all, err := repo.Accounts(ctx)
	if err != nil {
		return err
	}
	local := []keyshare.AccountInfo{}
	for _, a := range all {
		if a.Local {
			local = append(local, a)
		}
	}
	if f.json {
		return printJSON(local)
	}
	t := newTable()
	fmt.Fprintln(t, "\tNAME\tROLE\tID\tSEQ\tKEYS")
	for _, a := range local {
		mark, keys := "", "plain"
		if a.Default {
			mark = "*"
		}
		if a.Encrypted {
			keys = "encrypted"
		}
		fmt.Fprintf(t, "%s\t%s\t%s\t%s\t%d\t%s\n", mark, a.Name, a.Role, a.ID, a.Seq, keys)
	}
	return t.Flush()
}
