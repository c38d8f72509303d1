package main

import (
	"context"
	"fmt"

	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/node/ops"
)

// runScopeRekey ends a standing grant with re-key ('revoke --scope S
// --from A --rekey'): the job runs in this command, a line per record.
func runScopeRekey(ctx context.Context, f *cmdFlags, repo *keyshare.Repo, keys *keyshare.Keys, grantee keyshare.AccountInfo, scope string) error {
	j, err := ops.StartScopeRekey(ctx, repo, keys, ops.ScopeEndRequest{Scope: scope, From: string(grantee.ID), Rekey: true})
	if err != nil {
		return err
	}
	if !f.json {
		out := f.out()
		fmt.Fprintf(out, "ended the standing grant of %s to %s; re-keying the %d record(s) it lost (job %s)\n", j.Scope, clean(label(grantee)), j.Total, j.ID)
		for _, k := range j.Kept {
			fmt.Fprintf(out, "kept %s: %s\n", k.Record, oneLine(k.Reason))
		}
	}
	return runJob(ctx, f, repo, keys, grantee, j)
}
