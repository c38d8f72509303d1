package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/node/ops"
)

var sessionsCmd = &command{name: "sessions", summary: "list the accounts unlocked in the running daemon", run: runSessions}

func runSessions(ctx context.Context, args []string) error {
	f := newFlags("sessions", "[flags]", `
Sessions lists the unlock sessions open in the running daemon (see
'blockmrs unlock'): each unlocked account, its idle time and when the
session locks itself unless used. It needs a running daemon. With --json
it prints what GET /api/v1/sessions answers.`, `
blockmrs sessions`)
	if _, err := f.parseArgs(args, false); err != nil {
		return err
	}
	return f.withRepo(ctx, func(repo *keyshare.Repo) error {
		ss := daemonSessions(ctx)
		if ss == nil {
			return errors.New("sessions live in the running daemon, and none is running: nothing is unlocked")
		}
		out := ops.Sessions(ss)
		return f.printTable(out, func(t io.Writer) error {
			nm, err := loadNames(ctx, repo)
			if err != nil {
				return err
			}
			fmt.Fprintln(t, "ACCOUNT\tIDLE\tLOCKS AT")
			for _, s := range out.Sessions {
				fmt.Fprintf(t, "%s\t%s\t%s\n", cell(nm.long(s.Account)), time.Duration(s.IdleSeconds)*time.Second, formatTime(s.Expires))
			}
			return nil
		})
	})
}
