package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/node/ops"
)

var directoryCmd = &command{name: "directory", summary: "search a clinic's directory of attested clinicians (directory CLINIC [QUERY])", run: runDirectory}

func runDirectory(ctx context.Context, args []string) error {
	f := newFlags("directory", "[flags] CLINIC [QUERY]", `
Directory asks a clinic's node, over the network (needs a running
daemon), for the clinicians its clinics attest whose name or department
contains QUERY (case folded; all of them without QUERY). CLINIC is the
clinic node's address (a multiaddr ending in /p2p/PEER_ID, as 'blockmrs
id' prints it there), or the account ID of a clinic known here (its
declared nodes are asked). The answer carries the chains that prove it:
names come from the clinicians' own chains and each role is verified
here, with this repo's trust list, so a lying node can hide clinicians
but not invent or promote one. Add a result as a contact with
'blockmrs contact add ADDRESS ACCOUNT'. With --json it prints what
GET /api/v1/directory answers.`, `
blockmrs directory /ip4/192.0.2.7/tcp/4101/p2p/12D3KooWNode... grey
blockmrs directory 12D3KooWClinic... cardiology`)
	limit := 0
	f.IntVar(&limit, "limit", 0, "at most `N` results (1 to 50; default 50)")
	pos, err := f.parseArgs(args, true, "CLINIC")
	if err != nil {
		return err
	}
	if len(pos) > 2 {
		return usagef("unexpected argument %q (quote a QUERY with spaces)", pos[2])
	}
	query := ""
	if len(pos) == 2 {
		query = pos[1]
	}
	return f.withRepo(ctx, func(repo *keyshare.Repo) error {
		var dirs ops.Directories
		if inv := f.invocation(); inv.inDaemon() {
			dirs = inv.rt.Attest
		}
		out, err := ops.Directory(ctx, repo, dirs, ops.DirectoryRequest{Clinic: pos[0], Query: query, Limit: limit})
		if errors.Is(err, ops.ErrNoNode) {
			return errors.New("the directory is asked over the network: start 'blockmrs daemon' first")
		}
		if err != nil {
			return err
		}
		return f.printTable(out, func(t io.Writer) error {
			fmt.Fprintln(t, "NAME\tROLE\tDEPARTMENT\tCLINIC\tACCOUNT")
			for _, r := range out.Results {
				fmt.Fprintf(t, "%s\t%s %s\t%s\t%s\t%s\n", cell(r.Name), r.Role, roleBadge(r.Proof), cell(r.Department), cell(r.ClinicName), r.Account)
			}
			if len(out.Results) == 0 {
				fmt.Fprintln(t, "(no clinician matches)")
			}
			return nil
		})
	})
}
