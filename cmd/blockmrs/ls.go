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
date (the resource's clinical date, else the day it was written),
status, versions and readers. Hidden records are left out unless
--all is given; --all also lists records the account could read before
(status revoked or expired); --kind and --q keep only records of a kind
or whose title holds some text; --type and --code keep only FHIR records
of a resource type or with a code (system|code, or the code alone);
--since and --until keep records dated within a range (the resource's
clinical date, else the day the record was written; FHIR dates YYYY,
YYYY-MM or YYYY-MM-DD); --author keeps those an account wrote. A record
replaced by newer versions is one row, its versions shown in its
history (the VERSIONS column; --versions lists each as a row). Given CIDs, it lists just those records,
whatever their status (the row the web app's record page shows; a record
the account could never read has status "no access"). With --json it
prints what GET /api/v1/records answers: {"records": [...]}.`, `
blockmrs ls
blockmrs ls --all --json
blockmrs ls --kind fhir --q glucose
blockmrs ls --type Observation --code 4548-4 --since 2019-01 --until 2019-12-31
blockmrs ls --author "Dr Jones"
blockmrs ls bafybeib...`)
	f.withAccount()
	all := f.Bool("all", false, "also list hidden, revoked and expired records")
	kind := f.String("kind", "", "list only records of this `KIND` (file, fhir, note)")
	query := f.String("q", "", "list only records whose title holds this `TEXT` (ignoring case)")
	typ := f.String("type", "", "list only FHIR records of this resource `TYPE` (Observation, Condition, ...)")
	code := f.String("code", "", "list only FHIR records with this `CODE` (system|code, or the code alone)")
	since := f.String("since", "", "list only records dated on or after this `DATE` (YYYY[-MM[-DD]])")
	until := f.String("until", "", "list only records dated on or before this `DATE`")
	author := f.String("author", "", "list only records written by this `ACCOUNT` (NAME, ID or ID suffix)")
	versions := f.Bool("versions", false, "list every version of a record as a row of its own")
	pos, err := f.parseArgs(args, true)
	if err != nil {
		return err
	}
	cids, err := parseCIDs(pos)
	if err != nil {
		return err
	}
	return f.withKeys(ctx, func(repo *keyshare.Repo, keys *keyshare.Keys) error {
		req := ops.ListRecords{All: *all, Kind: protocol.Kind(*kind), Query: *query, Type: *typ, Code: *code,
			Since: *since, Until: *until, Versions: *versions}
		if *author != "" {
			a, err := resolveFlag(ctx, repo, "author", *author)
			if err != nil {
				return err
			}
			req.Author = a.ID
		}
		// --json prints the operation's result, the body of GET
		// /api/v1/records (for given CIDs, their rows as GET
		// /api/v1/records/{cid} answers each).
		res := ops.RecordList{Records: []keyshare.Listed{}}
		if len(cids) == 0 {
			res, err = ops.Records(ctx, repo, keys, req)
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
			fmt.Fprintln(t, "CID\tTITLE\tKIND\tAUTHOR\tSUBJECT\tDATE\tSTATUS\tVERSIONS\tREADERS")
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
				date := l.Created.Local().Format("2006-01-02")
				if l.FHIR != nil {
					kind = l.FHIR.ResourceType
					if l.FHIR.Date != "" {
						date = cell(l.FHIR.Date)
					}
				}
				fmt.Fprintf(t, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\n", l.Record, cell(title), kind, cell(nm.of(l.Author)), cell(nm.of(l.Subject)),
					date, status, 1+len(l.History), cell(readers(nm, l.Readers)))
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
