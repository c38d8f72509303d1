package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/node/ops"
	"github.com/blockmrs/blockmrs/protocol"
)

var auditCmd = &command{name: "audit", summary: "show who accessed the account's records (the node's audit log)", run: runAudit}

func runAudit(ctx context.Context, args []string) error {
	f := newFlags("audit", "[flags] [CID]", `
Audit answers "who accessed my records": it lists the events of this
node's audit log about the acting account, oldest first: each record a
local account opened (read), each record the node served to a peer
(serve: which node, which account, under which rule), grants,
revocations, requests, approvals, denials and emergency uses, and the
events the account's replicas and other nodes reported about it
(REPORTED BY). Given a record CID it lists that record's events only;
--since keeps those from a date on. The log is append-only and
hash-linked, each entry signed by the node's key: 'blockmrs verify'
checks it. --fhir writes the events as a FHIR R4 Bundle of AuditEvents
instead (what GET /api/v1/audit/fhir answers); --json prints what GET
/api/v1/audit answers.`, `
blockmrs audit
blockmrs audit bafkrei... --since 2026-12-01
blockmrs audit --fhir > audit-events.json`)
	f.withAccount()
	since := f.String("since", "", "list the events from this `DATE` (2026-12-01) or time (RFC 3339) on")
	all := f.Bool("all", false, "list every event of the node, about any account")
	asFHIR := f.Bool("fhir", false, "write a FHIR R4 Bundle of AuditEvents")
	pos, err := f.parseOptionalArg(args)
	if err != nil {
		return err
	}
	q := ops.AuditQuery{Since: *since, All: *all}
	if len(pos) == 1 {
		q.Record = pos[0]
	}
	return f.withSelected(ctx, func(repo *keyshare.Repo, me keyshare.AccountInfo) error {
		if *asFHIR {
			doc, err := ops.AuditFHIR(ctx, repo, me.ID, q, time.Now())
			if err != nil {
				return err
			}
			_, err = f.out().Write(append(doc, '\n'))
			return err
		}
		out, err := ops.Audit(ctx, repo, me.ID, q)
		if err != nil {
			return err
		}
		return f.printTable(out, func(t io.Writer) error {
			nm, err := loadNames(ctx, repo)
			if err != nil {
				return err
			}
			fmt.Fprintln(t, "TIME\tEVENT\tWHO\tNODE\tRECORD\tRULE\tREPORTED BY\tWHY")
			for _, e := range out.Entries {
				rec := "-"
				if len(e.Records) > 0 {
					rec = e.Records[0]
					if len(e.Records) > 1 {
						rec += fmt.Sprintf(" (+%d)", len(e.Records)-1)
					}
				}
				fmt.Fprintf(t, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", formatTime(e.Time), e.Kind, cell(nm.of(e.Account)),
					orDash(shortPeer(e.Peer)), rec, orDash(e.Rule), orDash(shortPeer(e.ReportedBy)), orDash(clean(e.Reason)))
			}
			if len(out.Entries) == 0 {
				fmt.Fprintln(t, "(no events)")
			}
			return nil
		})
	})
}

// shortPeer shortens a peer ID for a table cell.
func shortPeer(p string) string {
	if p == "" {
		return ""
	}
	return protocol.AccountID(p).Short()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
