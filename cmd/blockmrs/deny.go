package main

import (
	"context"
	"fmt"
	"io"

	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/node/ops"
	"github.com/blockmrs/blockmrs/protocol"
)

var denyCmd = &command{name: "deny", summary: "refuse an access request from the inbox", run: runDeny}

func runDeny(ctx context.Context, args []string) error {
	f := newFlags("deny", "[flags] ID", `
Deny refuses a request in the inbox (see 'blockmrs requests'; an ID suffix
of 6+ characters will do): a signed answer, with --reason if given, is
queued for the daemon to deliver to the requester. Nothing is granted.`, `
blockmrs deny 4xyzab --reason "please ask at the next visit"`)
	f.StringVar(&f.account, "account", "", "act as this local `ACCOUNT` (default: the account the request asks)")
	reason := f.String("reason", "", "why, shown to the requester (`TEXT`)")
	pos, err := f.parseArgs(args, false, "ID")
	if err != nil {
		return err
	}
	if len(*reason) > protocol.MaxReasonLen {
		return usagef("--reason: over %d bytes", protocol.MaxReasonLen)
	}
	return f.withInboxKeys(ctx, pos[0], func(repo *keyshare.Repo, keys *keyshare.Keys, q keyshare.RequestInfo) error {
		info, err := ops.Deny(ctx, repo, keys, q.ID, ops.DenyRequest{Reason: *reason})
		if err != nil {
			return err
		}
		return f.printTable(info, func(t io.Writer) error {
			fmt.Fprintf(t, "denied request %s; answer queued\n", info.ID)
			return nil
		})
	})
}
