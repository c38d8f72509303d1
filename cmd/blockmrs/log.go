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
the repo knows, contacts included. It needs no passphrase. --limit shows
only the newest blocks (at least that many entries, a block never
split); --before SEQ only the blocks before block SEQ, so
'--before S --limit N', S the first SEQ printed, is the next older page.
With --json it prints what GET /api/v1/log answers.`, `
blockmrs log
blockmrs log "Dr Jones"
blockmrs log --limit 20`)
	f.withAccount()
	limit := f.Int("limit", 0, fmt.Sprintf("show only the newest blocks holding at least `N` entries (at most %d; 0: all)", ops.MaxLogLimit))
	before := f.Uint64("before", 0, "show only the blocks before block `SEQ`")
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
		entries, err := ops.Log(ctx, repo, ops.LogArgs{Account: string(who.ID), Before: *before, Limit: *limit})
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
