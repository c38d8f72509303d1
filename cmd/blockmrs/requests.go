package main

import (
	"context"
	"fmt"
	"io"

	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/node/ops"
	"github.com/blockmrs/blockmrs/protocol"
)

var requestsCmd = &command{name: "requests", summary: "list access requests received (inbox) and sent (outbox)", run: runRequests}

func runRequests(ctx context.Context, args []string) error {
	f := newFlags("requests", "[flags]", `
Requests lists the access requests this repo's accounts received (the
inbox: new, approved or denied) and sent (the outbox: pending delivery,
delivered, approved or denied). With --account, only that account's.
Answer a new request with 'blockmrs approve ID' or 'blockmrs deny ID'
(an ID suffix of 6+ characters will do). A request to an account with
guardians who may approve is relayed to their nodes too; the state of an
answered request says who answered ("answered by NAME (guardian)" when a
guardian did), and the first answer stands. A new request none of this
repo's accounts may answer any more (a guardian who lost the approve
right) shows "new, no longer yours to answer".`, `
blockmrs requests
blockmrs requests --json`)
	f.StringVar(&f.account, "account", "", "list only this local `ACCOUNT`'s requests (NAME, ID or ID suffix)")
	if _, err := f.parseArgs(args, false); err != nil {
		return err
	}
	return f.withRepo(ctx, func(repo *keyshare.Repo) error {
		var me protocol.AccountID
		if f.account != "" {
			info, err := resolveLocal(ctx, repo, f.account)
			if err != nil {
				return err
			}
			me = info.ID
		}
		v, err := ops.Requests(ctx, repo, me)
		if err != nil {
			return err
		}
		inbox, outbox := v.Inbox, v.Outbox
		n, err := loadNames(ctx, repo)
		if err != nil {
			return err
		}
		return f.printTable(v, func(t io.Writer) error {
			fmt.Fprintln(t, "BOX\tID\tSTATE\tFROM\tTO\tRECORDS\tCREATED\tREASON")
			for _, q := range append(append([]keyshare.RequestInfo(nil), inbox...), outbox...) {
				from := n.of(q.From)
				if _, known := n[q.From]; !known && q.FromName != "" {
					from = q.FromName + " (" + q.From.Short() + ")"
				}
				if p, ok := v.Roles[q.From]; ok && q.Box == keyshare.Inbox {
					from += " [" + string(q.FromRole) + " " + roleBadge(p) + "]"
				}
				recs := "all"
				if len(q.Records) > 0 {
					recs = fmt.Sprint(len(q.Records))
				}
				reason := q.Reason
				if q.AnswerReason != "" {
					reason += " / answer: " + q.AnswerReason
				}
				if reason == "" {
					reason = "-"
				}
				state := q.State
				if q.NoLongerYours {
					state += ", no longer yours to answer"
				}
				if q.AnsweredBy != "" {
					state += ", " + answeredBy(n, q)
				}
				fmt.Fprintf(t, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", q.Box, q.ID, clean(state), clean(from), clean(n.of(q.To)),
					recs, formatTime(q.Created), truncate(clean(reason), 60))
			}
			return nil
		})
	})
}

// answeredBy says who answered q: "answered by NAME", with " (guardian)"
// when a guardian of the account asked did.
func answeredBy(n names, q keyshare.RequestInfo) string {
	s := "answered by " + n.of(q.AnsweredBy)
	if q.ByGuardian {
		s += " (guardian)"
	}
	return s
}
