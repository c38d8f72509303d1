package main

import (
	"context"
	"fmt"
	"io"

	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/node/ops"
)

var logCmd = &command{name: "log", summary: "show every entry of an account's chain", run: runLog}

func runLog(ctx context.Context, args []string) error {
	f := newFlags("log", "[flags] [ACCOUNT]", `
Log prints every entry of an account's signed chain, oldest first, one per
line: sequence number, time, entry type (profile, record, grant, revoke,
hide, unhide, ack) and a summary. It shows the acting account's chain, or
with an ACCOUNT argument (NAME, ID or ID suffix) the chain of any account
the repo knows, contacts included. It needs no passphrase.`, `
blockmrs log
blockmrs log "Dr Jones"`)
	f.withAccount()
	pos, err := f.parseOptionalArg(args)
	if err != nil {
		return err
	}
	if len(pos) == 1 && f.account != "" {
		return usagef("give either --account or an ACCOUNT argument, not both")
	}
	return f.withRepo(ctx, func(repo *keyshare.Repo) error {
		var who keyshare.AccountInfo
		var err error
		if len(pos) == 1 {
			who, err = repo.Resolve(ctx, pos[0], false)
		} else {
			who, err = f.selected(ctx, repo)
		}
		if err != nil {
			return err
		}
		entries, err := ops.Log(ctx, repo, ops.LogArgs{Account: string(who.ID)})
		if err != nil {
			return err
		}
		return f.printTable(entries, func(t io.Writer) error {
			for _, e := range entries {
				typ := e.Type
				if e.Critical {
					typ += "!"
				}
				fmt.Fprintf(t, "%d\t%s\t%s\t%s\n", e.Seq, formatTime(e.Time), clean(typ), clean(e.Summary))
			}
			return nil
		})
	})
}
