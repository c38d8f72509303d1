package main

import (
	"context"
	"fmt"
	"io"

	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/node/ops"
)

var jobsCmd = &command{name: "jobs", summary: "show re-key jobs and their progress (jobs [ID])", run: runJobs}

func runJobs(ctx context.Context, args []string) error {
	f := newFlags("jobs", "[flags] [ID]", `
Jobs lists the acting account's re-key jobs ('blockmrs revoke --rekey',
or Revoke with "Re-key" ticked in the web app), newest first: how many of
their records are re-keyed, and their state. With an ID it shows that
job, a line per record. A job stopped half way (the daemon stopped, the
account was locked, the command was interrupted) is "interrupted": run
the same revoke --rekey again to finish it. With --json it prints what
GET /api/v1/jobs (or GET /api/v1/jobs/{id}) answers.`, `
blockmrs jobs
blockmrs jobs 3f2a9c0e1b7d4a65 --json`)
	f.withAccount()
	pos, err := f.parseOptionalArg(args)
	if err != nil {
		return err
	}
	return f.withSelected(ctx, func(repo *keyshare.Repo, me keyshare.AccountInfo) error {
		if len(pos) == 1 {
			j, err := ops.JobOf(ctx, repo, me, pos[0])
			if err != nil {
				return err
			}
			if f.json {
				return f.printJSON(j)
			}
			fmt.Fprintf(f.out(), "job %s: %s, %d of %d record(s) re-keyed, %d failed\n", j.ID, j.State, j.Done, j.Total, j.Failed)
			if j.Error != "" {
				fmt.Fprintln(f.out(), oneLine(j.Error))
			}
			for _, jr := range j.Records {
				fmt.Fprintln(f.out(), recordLine(jr))
			}
			return nil
		}
		out, err := ops.Jobs(ctx, repo, me)
		if err != nil {
			return err
		}
		return f.printTable(out, func(t io.Writer) error {
			nm, err := loadNames(ctx, repo)
			if err != nil {
				return err
			}
			fmt.Fprintln(t, "ID\tSTATE\tDONE\tFAILED\tTOTAL\tREVOKED\tSTARTED")
			for _, j := range out.Jobs {
				fmt.Fprintf(t, "%s\t%s\t%d\t%d\t%d\t%s\t%s\n", j.ID, j.State, j.Done, j.Failed, j.Total, cell(nm.of(j.From)), formatTime(j.Started))
			}
			return nil
		})
	})
}
