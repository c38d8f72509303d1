package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/node/ops"
	"github.com/blockmrs/blockmrs/protocol"
)

var lsCmd = &command{name: "ls", summary: "list the records the account can read", run: runLs}

func runLs(ctx context.Context, args []string) error {
	f := newFlags("ls", "[flags] [CID...]", `
Ls lists the records the acting account can read now, newest first: those
about it, those it wrote and those granted to it, with their titles (read
from the encrypted envelopes, so it needs the keys), author, subject,
creation date, status and readers. Hidden records are left out unless
--all is given; --all also lists records the account could read before
(status revoked or expired); --kind and --q keep only records of a kind
or whose title holds some text. Given CIDs, it lists just those records,
whatever their status (the row the web app's record page shows; a record
the account could never read has status "no access"). With --json it
prints what GET /api/v1/records answers: {"records": [...]}.`, `
blockmrs ls
blockmrs ls --all --json
blockmrs ls --kind fhir --q glucose
blockmrs ls bafybeib...`)
	f.withAccount()
	all := f.Bool("all", false, "also list hidden, revoked and expired records")
	kind := f.String("kind", "", "list only records of this `KIND` (file, fhir, note)")
	query := f.String("q", "", "list only records whose title holds this `TEXT` (ignoring case)")
	pos, err := f.parseArgs(args, true)
	if err != nil {
		return err
	}
	cids, err := parseCIDs(pos)
	if err != nil {
		return err
	}
	return f.withKeys(ctx, func(repo *keyshare.Repo, keys *keyshare.Keys) error {
		// --json prints the operation's result, the body of GET
		// /api/v1/records (for given CIDs, their rows as GET
		// /api/v1/records/{cid} answers each).
		res := ops.RecordList{Records: []keyshare.Listed{}}
		if len(cids) == 0 {
			res, err = ops.Records(ctx, repo, keys, ops.ListRecords{All: *all, Kind: protocol.Kind(*kind), Query: *query})
			if err != nil {
				return err
			}
		}
		for _, c := range cids {
			l, err := ops.Record(ctx, repo, keys, c)
			if err != nil {
				return err
			}
			res.Records = append(res.Records, l)
		}
		list := res.Records
		return f.printTable(res, func(t io.Writer) error {
			nm, err := loadNames(ctx, repo)
			if err != nil {
				return err
			}
			fmt.Fprintln(t, "CID\tTITLE\tKIND\tAUTHOR\tSUBJECT\tCREATED\tSTATUS\tREADERS")
			for _, l := range list {
				title, kind, status := l.Title, string(l.Kind), l.Status
				if title == "" {
					title = "-"
				}
				if kind == "" {
					kind = "-"
				}
				if l.Error != "" {
					title, status = "?", "error"
				}
				fmt.Fprintf(t, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", l.Record, cell(title), kind, cell(nm.of(l.Author)), cell(nm.of(l.Subject)),
					l.Created.Local().Format("2006-01-02"), status, cell(readers(nm, l.Readers)))
			}
			return nil
		})
	})
}

// readers lists reader names, comma-separated.
func readers(nm names, rs []keyshare.Reader) string {
	s := make([]string, len(rs))
	for i, r := range rs {
		s[i] = nm.of(r.Account)
	}
	if len(s) == 0 {
		return "-"
	}
	return strings.Join(s, ",")
}

// cell makes a value safe for one table cell (see clean), not longer
// than 48 characters.
func cell(s string) string {
	s = clean(s)
	if r := []rune(s); len(r) > 48 {
		s = string(r[:47]) + "…"
	}
	return s
}
