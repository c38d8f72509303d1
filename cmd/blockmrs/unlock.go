package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/node/ops"
)

var unlockCmd = &command{name: "unlock", summary: "keep an account unlocked in the running daemon for a session", run: runUnlock}

func runUnlock(ctx context.Context, args []string) error {
	f := newFlags("unlock", "[flags]", `
Unlock opens a session in the running daemon: the account's keys stay
unlocked in the daemon's memory, so commands run through it (and the web
app) need no passphrase and pay no scrypt unlock each time. The session
locks itself after --idle without use (default 15 minutes, at most 24
hours), on 'blockmrs lock', and when the daemon stops; keys are never
written anywhere unencrypted. Each wrong passphrase in a row makes the
next attempt wait longer. It needs a running daemon.`, `
blockmrs unlock
blockmrs unlock --account Pat --idle 1h`)
	f.withAccount()
	idle := f.Duration("idle", keyshare.DefaultIdle, "lock the session after this long without use (at most 24h)")
	if _, err := f.parseArgs(args, false); err != nil {
		return err
	}
	if *idle < time.Second || *idle > keyshare.MaxIdle {
		return usagef("--idle must be at least 1s and at most %s", keyshare.MaxIdle)
	}
	return f.withRepo(ctx, func(repo *keyshare.Repo) error {
		sessions := daemonSessions(ctx)
		if sessions == nil {
			return errors.New("sessions live in the running daemon: start it with 'blockmrs daemon', then unlock")
		}
		info, err := f.selected(ctx, repo)
		if err != nil {
			return err
		}
		var pass []byte
		if info.Encrypted {
			if pass, err = passphraseFor(ctx, info); err != nil {
				return err
			}
		}
		se, err := ops.Unlock(ctx, sessions, ops.UnlockRequest{Account: info.ID, Passphrase: string(pass), IdleSeconds: int64(*idle / time.Second)})
		if err != nil {
			return err
		}
		if f.json {
			return f.printJSON(se)
		}
		fmt.Fprintf(f.out(), "unlocked %s until %s without use (idle %s)\n", label(info), se.Expires.Format(time.RFC3339), time.Duration(se.IdleSeconds)*time.Second)
		return nil
	})
}
