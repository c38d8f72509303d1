package main

import (
	"context"
	"fmt"
	"io"

	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/node/ops"
)

var revokeCmd = &command{name: "revoke", summary: "stop sharing records with an account (--rekey: and re-key them)", run: runRevoke}

func runRevoke(ctx context.Context, args []string) error {
	f := newFlags("revoke", "[flags] CID... --from ACCOUNT [--rekey] | --scope SCOPE --from ACCOUNT [--rekey]", `
Revoke ends an account's grant to records with a signed revoke entry on
the acting account's chain; only a record's subject may revoke. Once the
account imports the new chain it can no longer open the records, and no
node will serve them to it. Revoking cannot make anyone forget a key or
content already delivered. Flags may come before or after the CIDs.

With --rekey each record is also re-keyed: its content is stored again
under a new record key, as a new record of yours that supersedes it, and
wrapped for everyone who could still read it (its author, and your other
grantees until their grant's expiry). Every node that holds your chain
then refuses the old CID to everyone and drops its copy once it has the
new version. That protects you against a revoked party that never fetched
the ciphertext (its old key opens nothing it can still get) and keeps
future versions from it; it cannot take back what was already delivered.
A progress line is printed per record. If it stops half way (the daemon
stops, the command is interrupted), run the same command again: records
re-keyed already are skipped. 'blockmrs jobs' shows re-keys, also those
started in the web app. With --json it prints the finished job, as GET
/api/v1/jobs/{id} answers.

With --scope instead of CIDs it ends a standing grant ('blockmrs grant
--scope'): one signed entry after which no record is given to the account
under that scope, and every record the scope covered (whoever wrapped its
key) stops opening for it and is served to it by no node that has the
new chain. Records granted to it one by one stay granted.

With --scope and --rekey it also re-keys, as above, every record of
yours the account lost by that end, for the remaining readers only (the
authors, your other grantees, other standing grantees under their own
scopes): the account's node is refused the old CIDs and never gets the
new ones. Records it still reads otherwise (granted one by one, or under
another standing grant of yours) are kept and listed: revoke them by CID
with --rekey to re-key them too. If it stops half way, run the same
command again: the grant is ended already, and records re-keyed already
are skipped.`, `
blockmrs revoke bafybeib... --from "Dr Jones"
blockmrs revoke --from "Dr Jones" --rekey bafybeib... bafkrei...
blockmrs revoke --scope 'patient/Observation.rs?category=laboratory' --from "Dr Grey"
blockmrs revoke --scope 'patient/Observation.rs?category=laboratory' --from "Dr Grey" --rekey`)
	f.withAccount()
	from := f.String("from", "", "the `ACCOUNT` whose grant ends (NAME, ID or ID suffix)")
	rekey := f.Bool("rekey", false, "also re-key each record for the remaining readers (see above)")
	scope := f.String("scope", "", "end the standing grant of this `SCOPE` instead of revoking CIDs")
	pos, err := f.parse(args)
	if err != nil {
		return err
	}
	if *scope != "" {
		return runRevokeScope(ctx, f, *scope, *from, pos, *rekey)
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
		req := ops.RevokeRequest{Records: cidStrings(cids), From: string(grantee.ID)}
		if *rekey {
			return runRekey(ctx, f, repo, keys, grantee, req)
		}
		rv, err := ops.Revoke(ctx, repo, keys, req)
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

// runRekey runs a revoke with re-key as a job in this command (inside the
// daemon when one runs), printing a line per record as it finishes.
func runRekey(ctx context.Context, f *cmdFlags, repo *keyshare.Repo, keys *keyshare.Keys, grantee keyshare.AccountInfo, req ops.RevokeRequest) error {
	j, err := ops.StartRekey(ctx, repo, keys, req)
	if err != nil {
		return err
	}
	if !f.json {
		fmt.Fprintf(f.out(), "re-keying %d record(s), revoking %s (job %s)\n", j.Total, clean(label(grantee)), j.ID)
	}
	return runJob(ctx, f, repo, keys, grantee, j)
}

// runJob runs re-key job j to its end, printing a line per record as it
// finishes, then the outcome.
func runJob(ctx context.Context, f *cmdFlags, repo *keyshare.Repo, keys *keyshare.Keys, grantee keyshare.AccountInfo, j ops.Job) error {
	out := f.out()
	shown := map[string]bool{}
	end, err := ops.RunRekey(ctx, repo, keys, j.ID, func(p ops.Job) {
		if !f.json {
			printProgress(out, p, shown)
		}
	})
	if err != nil {
		return err
	}
	if f.json {
		return f.printJSON(end)
	}
	if end.State == keyshare.JobDone {
		fmt.Fprintf(out, "revoked %s and re-keyed %d record(s): no node that has your chain serves the old versions any more\n", clean(label(grantee)), end.Done)
		fmt.Fprintln(out, "note: what the revoked account fetched before cannot be taken back")
	}
	return rekeyOutcome(end)
}

// printProgress prints a line for each record of job p that finished and
// is not in shown yet, and adds it there.
func printProgress(w io.Writer, p ops.Job, shown map[string]bool) {
	for _, jr := range p.Records {
		if jr.State == keyshare.JobRecordPending || shown[jr.Record] {
			continue
		}
		shown[jr.Record] = true
		fmt.Fprintf(w, "[%d/%d] %s\n", len(shown), p.Total, recordLine(jr))
	}
}

// recordLine says what became of one record of a re-key job.
func recordLine(jr keyshare.JobRecord) string {
	switch jr.State {
	case keyshare.JobRecordDone:
		return jr.Record + " re-keyed as " + jr.New
	case keyshare.JobRecordSkipped:
		return jr.Record + " was re-keyed already, as " + jr.New
	case keyshare.JobRecordFailed:
		return jr.Record + " failed: " + oneLine(jr.Error)
	}
	return jr.Record + " " + jr.State
}

// rekeyOutcome is the error a finished job gives the command: none when
// every record was re-keyed, else one line saying what is left.
func rekeyOutcome(j ops.Job) error {
	switch j.State {
	case keyshare.JobDone:
		return nil
	case keyshare.JobInterrupted:
		return fmt.Errorf("re-key stopped: %s", j.Error)
	}
	return fmt.Errorf("re-key: %d of %d record(s) failed (see the lines above); the others are re-keyed", j.Failed, j.Total)
}
