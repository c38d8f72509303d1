package main

import (
	"context"
	"fmt"

	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/node/ops"
)

var hideCmd = &command{name: "hide", summary: "hide records from your listings", run: func(ctx context.Context, args []string) error {
	return runHide(ctx, args, true)
}}

// runHide implements hide and unhide.
func runHide(ctx context.Context, args []string, hidden bool) error {
	name, desc, example := "hide", `
Hide hides records from the acting account's listings ('blockmrs ls'
shows them again with --all) with a signed hide entry on its chain. Only a
record's subject may hide it. Hiding does not revoke grants: use 'blockmrs
revoke' for that. 'blockmrs unhide' undoes it.`, `blockmrs hide bafybeib...`
	if !hidden {
		name, desc, example = "unhide", `
Unhide shows hidden records in the acting account's listings again, with a
signed unhide entry on its chain. Only a record's subject may unhide it.`, `blockmrs unhide bafybeib...`
	}
	f := newFlags(name, "[flags] CID...", desc, example)
	f.withAccount()
	pos, cids, err := f.parseCIDArgs(args, true)
	if err != nil {
		return err
	}
	return f.withKeys(ctx, func(repo *keyshare.Repo, keys *keyshare.Keys) error {
		res, err := ops.Hide(ctx, repo, keys, ops.HideRecords{Records: pos, Hidden: hidden})
		if err != nil {
			return err
		}
		if f.json {
			return f.printJSON(res)
		}
		verb := "hid"
		if !hidden {
			verb = "unhid"
		}
		fmt.Fprintf(f.out(), "%s %d record(s) in block %s\n", verb, len(cids), res.Block)
		return nil
	})
}
