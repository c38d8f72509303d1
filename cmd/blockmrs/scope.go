package main

import (
	"context"
	"fmt"
	"time"

	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/node/ops"
)

// Standing grants on the command line: 'grant --scope' and 'revoke
// --scope' (ops.GrantScope, ops.EndScope; --json prints what POST
// /api/v1/scopes and /api/v1/scopes/end answer).

// runGrantScope is 'blockmrs grant --scope SCOPE --to ACCOUNT [--expires]'.
func runGrantScope(ctx context.Context, f *cmdFlags, scope, to, expiresFlag string, pos []string) error {
	if len(pos) > 0 {
		return usagef("--scope grants a scope, not records: drop %q, or drop --scope", pos[0])
	}
	if to == "" {
		return usagef("missing --to ACCOUNT")
	}
	expires, err := parseExpiry(expiresFlag, time.Now())
	if err != nil {
		return err
	}
	return f.withKeysFor(ctx, "to", to, func(repo *keyshare.Repo, keys *keyshare.Keys, grantee keyshare.AccountInfo) error {
		g, err := ops.GrantScope(ctx, repo, keys, ops.ScopeGrantRequest{Scope: scope, To: string(grantee.ID), Expires: expires})
		if err != nil {
			return err
		}
		if f.json {
			return f.printJSON(g)
		}
		until := ""
		if !g.Expires.IsZero() {
			until = " until " + formatTime(g.Expires)
		}
		fmt.Fprintf(f.out(), "standing grant of %s (%s) to %s%s in block %s\n", g.Scope, ops.ScopeCovers(g.Scope), clean(label(grantee)), until, g.Block)
		fmt.Fprintf(f.out(), "%d present record(s) shared now; future records in the scope follow as they are written\n", g.Covered)
		return nil
	})
}

// runRevokeScope is 'blockmrs revoke --scope SCOPE --from ACCOUNT [--rekey]'.
func runRevokeScope(ctx context.Context, f *cmdFlags, scope, from string, pos []string, rekey bool) error {
	if len(pos) > 0 {
		return usagef("--scope ends a standing grant, not record grants: drop %q, or drop --scope", pos[0])
	}
	if from == "" {
		return usagef("missing --from ACCOUNT")
	}
	return f.withKeysFor(ctx, "from", from, func(repo *keyshare.Repo, keys *keyshare.Keys, grantee keyshare.AccountInfo) error {
		if rekey {
			return runScopeRekey(ctx, f, repo, keys, grantee, scope)
		}
		e, err := ops.EndScope(ctx, repo, keys, ops.ScopeEndRequest{Scope: scope, From: string(grantee.ID)})
		if err != nil {
			return err
		}
		if f.json {
			return f.printJSON(e)
		}
		fmt.Fprintf(f.out(), "ended the standing grant of %s to %s in block %s\n", e.Scope, clean(label(grantee)), e.Block)
		fmt.Fprintln(f.out(), "note: the records it covered stop opening for that account; what it already opened cannot be taken back")
		return nil
	})
}
