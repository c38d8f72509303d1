package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/node/ops"
	"github.com/blockmrs/blockmrs/protocol"
)

var requestCmd = &command{name: "request", summary: "ask another account for access to its records", run: runRequest}

func runRequest(ctx context.Context, args []string) error {
	f := newFlags("request", "[flags] ACCOUNT", `
Request asks another account (a patient who is a contact: see 'blockmrs
contact add') for access to records: those given to --records, or all the
records it may grant. The request is signed by the acting account and
queued in this repo's outbox; the daemon delivers it to the nodes the
account's chain declares, when they are online (with it goes the acting
account's profile, so the patient can grant to it). The patient answers
with 'blockmrs approve' or 'blockmrs deny'; 'blockmrs requests' shows the
state.`, `
blockmrs request Pat --reason "follow-up of the January results" --duration 30d
blockmrs request Pat --records bafkrei...,bafkrei...`)
	f.withAccount()
	records := f.String("records", "", "ask for these records only: a comma-separated `CID,...` list (default: all)")
	reason := f.String("reason", "", "why access is asked for, shown to the patient (`TEXT`)")
	durationFlag := f.String("duration", "", "how long access is asked for: a `DURATION` (720h, 30d); default: no end asked for")
	pos, err := f.parseArgs(args, false, "ACCOUNT")
	if err != nil {
		return err
	}
	var cids []cid.Cid
	if *records != "" {
		if cids, err = parseCIDs(strings.Split(*records, ",")); err != nil {
			return err
		}
	}
	duration, err := parseRequestDuration(*durationFlag)
	if err != nil {
		return err
	}
	if len(*reason) > protocol.MaxReasonLen {
		return usagef("--reason: over %d bytes", protocol.MaxReasonLen)
	}
	return f.withRepo(ctx, func(repo *keyshare.Repo) error {
		to, err := repo.Resolve(ctx, pos[0], false)
		if err != nil {
			return fmt.Errorf("account: %w", err)
		}
		_, keys, err := f.unlockSelected(ctx, repo)
		if err != nil {
			return err
		}
		info, err := ops.Send(ctx, repo, keys, ops.SendRequest{To: string(to.ID), Records: cidStrings(cids), Reason: *reason,
			DurationSeconds: int64(duration / time.Second)})
		if err != nil {
			return err
		}
		return f.printTable(info, func(t io.Writer) error {
			what := "all records"
			if n := len(info.Records); n > 0 {
				what = fmt.Sprintf("%d record(s)", n)
			}
			fmt.Fprintf(t, "request %s to %s for %s queued\n", info.ID, clean(label(to)), what)
			if devs, err := repo.DevicesOf(ctx, to.ID); err == nil && len(devs) == 0 {
				fmt.Fprintf(t, "note: %s declares no node yet; the request waits until its chain does\n", clean(label(to)))
			}
			return nil
		})
	})
}

// parseRequestDuration parses --duration: empty (none), a positive Go
// duration, or whole days ("30d"). A bad value is a usage error.
func parseRequestDuration(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil && strings.HasSuffix(s, "d") {
		if n, nerr := strconv.Atoi(strings.TrimSuffix(s, "d")); nerr == nil && n > 0 && n < 100*366 {
			d, err = time.Duration(n)*24*time.Hour, nil
		}
	}
	if err != nil || d <= 0 {
		return 0, usagef("--duration %q: want a positive duration (720h, 30d)", truncate(s, 60))
	}
	return d, nil
}
