package main

import (
	"context"
	"fmt"
	"io"

	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/node/ops"
)

var readersCmd = &command{name: "readers", summary: "show who can read a record, and whose access was revoked or expired", run: runReaders}

func runReaders(ctx context.Context, args []string) error {
	f := newFlags("readers", "[flags] CID", `
Readers shows who can read a record now (its author, its subject and its
grantees, each with the entry that made them a reader and any expiry; a
grantee under a standing grant is shown with its scope, and one a
guardian of the subject shared it with or revoked it from with that
guardian's name), whose grant its
subject revoked (or whose standing grant ended) and whose grant expired, as the acting
account's node sees the chains. It needs no passphrase. With --json it
prints what GET /api/v1/records/{cid}/readers answers.`, `
blockmrs readers bafybeib...`)
	f.withAccount()
	pos, _, err := f.parseCIDArgs(args, false)
	if err != nil {
		return err
	}
	return f.withSelected(ctx, func(repo *keyshare.Repo, me keyshare.AccountInfo) error {
		out, err := ops.RecordReaders(ctx, repo, me.ID, pos[0])
		if err != nil {
			return err
		}
		return f.printTable(out, func(t io.Writer) error {
			nm, err := loadNames(ctx, repo)
			if err != nil {
				return err
			}
			fmt.Fprintln(t, "STATUS\tACCOUNT\tROLE\tEXPIRES\tBLOCK")
			for _, g := range []struct {
				status string
				rs     []keyshare.Reader
			}{{"reader", out.Readers}, {"revoked", out.Revoked}, {"expired", out.Expired}} {
				for _, r := range g.rs {
					role := r.Role
					if r.Scope != "" {
						role += " under the standing grant " + r.Scope
					}
					if r.Guardian != "" {
						role += ", by guardian " + nm.of(r.Guardian)
					}
					fmt.Fprintf(t, "%s\t%s\t%s\t%s\t%s\n", g.status, cell(nm.of(r.Account)), role, formatTime(r.Expires), r.Via.Block)
				}
			}
			return nil
		})
	})
}
