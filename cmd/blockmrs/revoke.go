package main

import (
	"context"
	"fmt"

	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/node/ops"
)

var revokeCmd = &command{name: "revoke", summary: "stop sharing records with an account", run: runRevoke}

func runRevoke(ctx context.Context, args []string) error {
	f := newFlags("revoke", "[flags] CID... --from ACCOUNT", `
Revoke ends an account's grant to records with a signed revoke entry on
the acting account's chain; only a record's subject may revoke. Once the
account imports the new chain it can no longer open the records, and no
node will serve them to it. Revoking cannot make anyone forget a key or
content already delivered. Flags may come before or after the CIDs.`, `
blockmrs revoke bafybeib... --from "Dr Jones"`)
	f.withAccount()
	from := f.String("from", "", "the `ACCOUNT` whose grant ends (NAME, ID or ID suffix)")
	pos, err := f.parseArgs(args, true, "CID")
	if err != nil {
		return err
	}
	if *from == "" {
		return usagef("missing --from ACCOUNT")
	}
	cids, err := parseCIDs(pos)
	if err != nil {
		return err
	}
	return f.withKeysFor(ctx, "from", *from, func(repo *keyshare.Repo, keys *keyshare.Keys, grantee keyshare.AccountInfo) error {
		rv, err := ops.Revoke(ctx, repo, keys, ops.RevokeRequest{Records: cidStrings(cids), From: string(grantee.ID)})
		if err != nil {
			return err
		}
		rv.Records = pos
		if f.json {
			return f.printJSON(rv)
		}
		fmt.Fprintf(f.out(), "revoked %d record(s) from %s in block %s\n", len(cids), clean(label(grantee)), rv.Block)
		fmt.Fprintln(f.out(), "note: this stops future access; it cannot make anyone forget what was already delivered")
		return nil
	})
}
