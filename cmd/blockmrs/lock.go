package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/node/ops"
)

var lockCmd = &command{name: "lock", summary: "end an account's unlocked session in the running daemon", run: runLock}

func runLock(ctx context.Context, args []string) error {
	f := newFlags("lock", "[flags]", `
Lock ends the acting account's session in the running daemon (see
'blockmrs unlock'), or every session with --all, and wipes the signing
keys from the daemon's memory. Commands then need the passphrase again.`, `
blockmrs lock
blockmrs lock --all`)
	f.withAccount()
	all := f.Bool("all", false, "end every account's session")
	if _, err := f.parseArgs(args, false); err != nil {
		return err
	}
	return f.withRepo(ctx, func(repo *keyshare.Repo) error {
		sessions := daemonSessions(ctx)
		if sessions == nil {
			return errors.New("sessions live in the running daemon, and none is running: nothing is unlocked")
		}
		req := ops.LockRequest{}
		if !*all {
			info, err := f.selected(ctx, repo)
			if err != nil {
				return err
			}
			req.Account = info.ID
		}
		n := ops.Lock(sessions, req)
		if f.json {
			return f.printJSON(n)
		}
		fmt.Fprintf(f.out(), "locked %d session(s)\n", n.Locked)
		return nil
	})
}
