package main

import (
	"context"
	"fmt"

	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/node/ops"
)

var revokeCmd = &command{name: "revoke", summary: "stop sharing records with an account", run: runRevoke}

func runRevoke(ctx context.Context, args []string) error {
	f := newFlags("revoke", "[flags] CID... --from ACCOUNT | --scope SCOPE --from ACCOUNT", `
Revoke ends an account's grant to records with a signed revoke entry on
the acting account's chain; only a record's subject may revoke. Once the
account imports the new chain it can no longer open the records, and no
node will serve them to it. Revoking cannot make anyone forget a key or
content already delivered. Flags may come before or after the CIDs.

With --scope instead of CIDs it ends a standing grant ('blockmrs grant
--scope'): one signed entry after which no record is given to the account
under that scope, and every record the scope covered (whoever wrapped its
key) stops opening for it and is served to it by no node that has the
new chain. Records granted to it one by one stay granted.`, `
blockmrs revoke bafybeib... --from "Dr Jones"
blockmrs revoke --scope 'patient/Observation.rs?category=laboratory' --from "Dr Grey"`)
	f.withAccount()
	from := f.String("from", "", "the `ACCOUNT` whose grant ends (NAME, ID or ID suffix)")
	scope := f.String("scope", "", "end the standing grant of this `SCOPE` instead of revoking CIDs")
	pos, err := f.parse(args)
	if err != nil {
		return err
	}
	if *scope != "" {
		return runRevokeScope(ctx, f, *scope, *from, pos)
	}
	if err := f.checkArgs(pos, true, "CID"); err != nil {
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
