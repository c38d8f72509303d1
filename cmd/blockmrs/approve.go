package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/node/ops"
	"github.com/blockmrs/blockmrs/protocol"
)

var approveCmd = &command{name: "approve", summary: "grant an access request from the inbox", run: runApprove}

func runApprove(ctx context.Context, args []string) error {
	f := newFlags("approve", "[flags] ID", `
Approve grants a request in the inbox (see 'blockmrs requests'; an ID
suffix of 6+ characters will do): the records it asks for, or all the
records the asked account may grant, go to the requester in a grant entry
on the asked account's chain, and a signed answer is queued for the
daemon to deliver. The grant ends when the request asked (its duration,
from now) unless --expires says otherwise. The requester's profile, which
came with the request, becomes a contact. --records narrows the grant to
some of the records asked for.`, `
blockmrs approve bafyrei...
blockmrs approve 4xyzab --expires 7d
blockmrs approve 4xyzab --records bafkrei...`)
	f.StringVar(&f.account, "account", "", "act as this local `ACCOUNT` (default: the account the request asks)")
	expiresFlag := f.String("expires", "", "end the grant after a `DURATION` (720h, 30d) or at an RFC 3339 time or date (default: the duration asked for)")
	records := f.String("records", "", "grant only these of the records asked for: a comma-separated `CID,...` list (default: all asked for)")
	pos, err := f.parseArgs(args, false, "ID")
	if err != nil {
		return err
	}
	var cids []cid.Cid
	if *records != "" {
		if cids, err = parseCIDs(strings.Split(*records, ",")); err != nil {
			return err
		}
	}
	expires, err := parseExpiry(*expiresFlag, time.Now())
	if err != nil {
		return err
	}
	return f.withInboxKeys(ctx, pos[0], func(repo *keyshare.Repo, keys *keyshare.Keys, q keyshare.RequestInfo) error {
		info, err := ops.Approve(ctx, repo, keys, q.ID, ops.ApproveRequest{Records: cidStrings(cids), Expires: expires})
		if err != nil {
			return err
		}
		return f.printTable(info, func(t io.Writer) error {
			until := ""
			if !info.Expires.IsZero() {
				until = " until " + formatTime(info.Expires)
			}
			fmt.Fprintf(t, "approved request %s: granted%s in block %s; answer queued\n", info.ID, until, info.Grant)
			return nil
		})
	})
}

// withInboxKeys finds the inbox request sel names and unlocks the keys of
// the account that answers it: --account if given (it must be the one
// asked), else the account asked.
func (f *cmdFlags) withInboxKeys(ctx context.Context, sel string, fn func(repo *keyshare.Repo, keys *keyshare.Keys, q keyshare.RequestInfo) error) error {
	return f.withRepo(ctx, func(repo *keyshare.Repo) error {
		q, err := repo.FindRequest(ctx, keyshare.Inbox, sel)
		if err != nil {
			return err
		}
		who := f.account
		if who == "" {
			who = string(q.To)
			// A request to a ward this node's account is guardian of.
			if g, ok, err := repo.LocalGuardian(ctx, q.To, protocol.RightApprove); err == nil && ok {
				if local, _ := repo.Resolve(ctx, string(q.To), true); local.ID != q.To {
					who = string(g)
				}
			}
		}
		me, err := resolveLocal(ctx, repo, who)
		if err != nil {
			return err
		}
		if me.ID != q.To {
			if err := repo.MayActFor(ctx, me.ID, q.To, protocol.RightApprove); err != nil {
				return fmt.Errorf("request %s asks %s, not %s: %w", q.ID, q.To, label(me), err)
			}
		}
		keys, err := unlock(ctx, repo, me)
		if err != nil {
			return err
		}
		return fn(repo, keys, q)
	})
}
