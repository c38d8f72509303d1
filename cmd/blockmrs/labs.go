package main

import (
	"context"
	"fmt"
	"io"

	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/node/ops"
)

var labsCmd = &command{name: "labs", summary: "show lab values over time, from the FHIR Observations you can read", run: runLabs}

func runLabs(ctx context.Context, args []string) error {
	f := newFlags("labs", "[flags] [CODE]", `
Labs reads every FHIR Observation record the acting account can read (not
hidden) and prints its values oldest first: the date it was measured, the
name, the value and unit, who signed the record and its CID. CODE keeps
one test: a LOINC code (1558-6), a lab panel field (fasting-glucose; see
'blockmrs lab add --help') or the name of a value written as 'other:'.
--for keeps the values about one account (a clinician reading one
patient's). Records that cannot be read as Observations are skipped and
counted on stderr. With --json it prints what GET /api/v1/labs answers.`, `
blockmrs labs
blockmrs labs fasting-glucose
blockmrs labs 13457-7 --for Pat --json`)
	f.withAccount()
	forFlag := f.String("for", "", "only values about this `ACCOUNT` (NAME, ID or ID suffix)")
	pos, err := f.parseOptionalArg(args)
	if err != nil {
		return err
	}
	req := ops.ListLabs{For: *forFlag}
	if len(pos) == 1 {
		req.Code = pos[0]
	}
	return f.withKeys(ctx, func(repo *keyshare.Repo, keys *keyshare.Keys) error {
		res, err := ops.Labs(ctx, repo, keys, req)
		if err != nil {
			return err
		}
		if res.Skipped > 0 && !f.json {
			fmt.Fprintf(f.errOut(), "skipped %d FHIR record(s) that are not readable Observations\n", res.Skipped)
			for _, p := range res.Problems {
				fmt.Fprintf(f.errOut(), "  %s\n", clean(p))
			}
		}
		return f.printTable(res, func(t io.Writer) error {
			nm, err := loadNames(ctx, repo)
			if err != nil {
				return err
			}
			fmt.Fprintln(t, "DATE\tNAME\tVALUE\tUNIT\tCODE\tAUTHOR\tCID")
			for _, v := range res.Values {
				unit, code := v.Unit, v.Code
				if unit == "" {
					unit = "-"
				}
				if code == "" {
					code = "-"
				}
				fmt.Fprintf(t, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", cell(v.Effective), cell(v.Name), cell(v.Value), cell(unit), cell(code), cell(nm.of(v.Author)), v.CID)
			}
			return nil
		})
	})
}
