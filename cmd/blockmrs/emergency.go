package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/node/ops"
)

// Emergency access on the command line (ops.EmergencySetup, …; --json
// prints what /api/v1/emergency answers).

var emergencyCmd = &command{name: "emergency", summary: "emergency access: a summary k-of-n custodians open for an attested emergency clinician (emergency setup|show|open|end)", run: runEmergency}

const emergencyHelp = `Usage: blockmrs emergency setup [flags] --custodians A,B,C --threshold 2
       blockmrs emergency show [flags]
       blockmrs emergency open [flags] PATIENT --reason TEXT
       blockmrs emergency end [flags]

Emergency access lets an emergency team read a summary the patient chose
while she cannot approve anything and her node is off. Setup seals the
summary (the International Patient Summary of her FHIR records, or
--records) and splits its key among custodians she picks (guardians, her
GP, clinic accounts): --threshold of them are needed, at least 2, so no
custodian alone can open it. The daemon delivers the pack to the
custodians' nodes. A clinician whose role is attested, for emergencies, by
a clinic attested by an authority the custodians trust runs 'emergency
open' with a reason; every custodian's node records the request and tells
the patient's nodes, and 'emergency show' lists every use. 'emergency end'
withdraws the pack (what was opened cannot be taken back).
Run 'blockmrs emergency setup --help' for the flags.

Example:
  blockmrs emergency setup --custodians Gina,StMarys,DrHart --threshold 2 --until 365d
  blockmrs emergency open 12D3KooW... --reason "unconscious after a road accident"
  blockmrs emergency show
`

func runEmergency(ctx context.Context, args []string) error {
	return runNested(ctx, "emergency", emergencyHelp, args,
		subcommand{[]string{"setup"}, runEmergencySetup},
		subcommand{[]string{"show", "ls"}, runEmergencyShow},
		subcommand{[]string{"open"}, runEmergencyOpen},
		subcommand{[]string{"end"}, runEmergencyEnd})
}

func runEmergencySetup(ctx context.Context, args []string) error {
	f := newFlags("emergency setup", "[flags] --custodians A,B,C --threshold K", `
Emergency setup seals the acting account's emergency summary and splits
its key among the custodians, K of whom are needed to open it (2 or more),
in one signed entry on the chain that ends the live pack, if any. The
custodians must be contacts whose chains declare their nodes: the running
daemon delivers the pack to those nodes.`, `
blockmrs emergency setup --custodians Gina,StMarys,DrHart --threshold 2
blockmrs emergency setup --custodians Gina,StMarys --threshold 2 --records bafkrei...,bafkrei... --until 2027-06-01`)
	f.withAccount()
	custodians := f.String("custodians", "", "the custodians: a comma-separated `ACCOUNT,...` list (ID, name or ID suffix)")
	threshold := f.Int("threshold", 2, "how many custodians' shares open the summary (`K`, at least 2)")
	records := f.String("records", "", "put these FHIR records in the summary instead of the patient summary (`CID,...`)")
	until := f.String("until", "", "the pack's expiry: a `DATE` (2027-06-01, RFC 3339) or a duration (365d); default a year")
	window := f.String("window", "", "how long a first use keeps the pack open to other clinicians (`DURATION`, default 24h)")
	notify := f.String("notify", "", "extra nodes custodians tell of every use, besides this node, the account's and its live guardians' declared nodes (those that accepted): `PEERID,...`")
	if _, err := f.parseArgs(args, false); err != nil {
		return err
	}
	if *custodians == "" {
		return usagef("missing --custodians A,B (at least two)")
	}
	expiry, err := parseExpiry(*until, time.Now())
	if err != nil {
		return err
	}
	req := ops.EmergencySetupRequest{Custodians: splitList(*custodians), Threshold: *threshold, Records: splitList(*records),
		Until: expiry, Window: *window, Notify: splitList(*notify)}
	return f.withKeys(ctx, func(repo *keyshare.Repo, keys *keyshare.Keys) error {
		p, err := ops.EmergencySetup(ctx, repo, keys, req)
		if err != nil {
			return err
		}
		if f.json {
			return f.printJSON(p)
		}
		fmt.Fprintf(f.out(), "emergency pack %s: %q, %d of %d custodians needed, until %s, in block %s\n",
			p.ID, p.Title, p.Threshold, len(p.Custodians), formatTime(p.Until), p.Block)
		for _, c := range p.Custodians {
			fmt.Fprintf(f.out(), "  custodian %s\n", accountName(ctx, repo, c))
		}
		if !f.invocation().inDaemon() {
			fmt.Fprintln(f.errOut(), "note: the daemon is not running: custodians get the pack when it runs ('blockmrs daemon')")
		}
		return nil
	})
}

func runEmergencyShow(ctx context.Context, args []string) error {
	f := newFlags("emergency show", "[flags]", `
Emergency show lists the acting account's emergency packs and every
request for them that custodians decided and reported (the reason the
clinician gave, who, when, and whether the share was given), then the
packs this node holds as a custodian and the requests it decided.
Under each pack, per custodian: whether its node took the pack (for an
ended pack, its end) — delivered, waiting (retried while the daemon runs,
also after a restart), or not needed (ended before it reached it). A
custodian's node holds one pack per patient, the newest: an ended or
replaced pack is dropped there once the end reaches it.`, `
blockmrs emergency show`)
	f.withAccount()
	if _, err := f.parseArgs(args, false); err != nil {
		return err
	}
	return f.withSelected(ctx, func(repo *keyshare.Repo, me keyshare.AccountInfo) error {
		out, err := ops.EmergencyShow(ctx, repo, me.ID)
		if err != nil {
			return err
		}
		if f.json {
			return f.printJSON(out)
		}
		w := f.out()
		given := 0
		for _, u := range out.Uses {
			if u.Given {
				given++
			}
		}
		if given > 0 {
			fmt.Fprintf(w, "!! EMERGENCY ACCESS: %d custodian share(s) of your emergency pack were given\n", given)
		}
		for _, u := range out.Uses {
			fmt.Fprintf(w, "!! %s  %s asked %s: %q — %s (%s)\n", formatTime(u.Time), accountName(ctx, repo, u.Clinician),
				accountName(ctx, repo, u.Custodian), clean(u.Reason), givenWord(u.Given), u.Rule)
		}
		if len(out.Packs) == 0 {
			fmt.Fprintln(w, "no emergency pack (blockmrs emergency setup)")
		}
		for _, p := range out.Packs {
			fmt.Fprintf(w, "pack %s  %q  %d of %d  until %s  %s\n", p.ID, p.Title, p.Threshold, len(p.Custodians), formatTime(p.Until), packState(p))
			for _, d := range p.Delivery {
				what := "pack"
				if p.Ended {
					what = "end"
				}
				fmt.Fprintf(w, "  %s to %s: %s\n", what, accountName(ctx, repo, d.Custodian), d.State)
			}
		}
		for _, p := range out.Held {
			fmt.Fprintf(w, "custodian of %s's pack %s until %s  %s\n", accountName(ctx, repo, p.Patient), p.ID, formatTime(p.Until), packState(p))
		}
		for _, u := range out.Reported {
			fmt.Fprintf(w, "!! reported %s  %s asked %s for %s's pack: %q — %s (%s)\n", formatTime(u.Time), accountName(ctx, repo, u.Clinician),
				accountName(ctx, repo, u.Custodian), accountName(ctx, repo, u.Patient), clean(u.Reason), givenWord(u.Given), u.Rule)
		}
		for _, u := range out.Decided {
			fmt.Fprintf(w, "decided %s  %s for %s: %q — %s (%s)\n", formatTime(u.Time), accountName(ctx, repo, u.Clinician),
				accountName(ctx, repo, u.Patient), clean(u.Reason), givenWord(u.Given), u.Rule)
		}
		return nil
	})
}

func runEmergencyOpen(ctx context.Context, args []string) error {
	f := newFlags("emergency open", "[flags] PATIENT --reason TEXT", `
Emergency open is a clinician's break-glass request: it signs a request
with the reason and sends it, with the clinician's role proof, to the
custodians' nodes (--via first, then connected peers, then the nodes the
pack names). Each custodian records it and tells the patient. With enough
shares the summary opens: printed, or written to --out. Needs the daemon.`, `
blockmrs emergency open 12D3KooW... --reason "unconscious after a road accident"
blockmrs emergency open 12D3KooW... --reason "..." --via 12D3KooW... --out summary.json`)
	f.withAccount()
	reason := f.String("reason", "", "why (`TEXT`, required): every custodian records it and the patient sees it")
	via := f.String("via", "", "custodians' nodes to ask first (`ADDRESS,...`: /ip4/.../p2p/PEERID, or peer IDs)")
	outFile := f.String("out", "", "write the summary to `FILE` instead of standard output")
	pos, err := f.parseArgs(args, false, "PATIENT")
	if err != nil {
		return err
	}
	if strings.TrimSpace(*reason) == "" {
		return usagef("missing --reason TEXT: it is recorded by every custodian and shown to the patient")
	}
	return f.withKeys(ctx, func(repo *keyshare.Repo, keys *keyshare.Keys) error {
		inv := f.invocation()
		var opener ops.EmergencyOpener
		if inv.inDaemon() && inv.rt.Emergency != nil {
			opener = inv.rt.Emergency
		}
		patient := pos[0]
		if a, err := repo.Resolve(ctx, patient, false); err == nil {
			patient = string(a.ID)
		}
		out, err := ops.EmergencyOpen(ctx, opener, keys, ops.EmergencyOpenRequest{Patient: patient, Reason: *reason, Via: splitList(*via)})
		if errors.Is(err, ops.ErrNoNode) {
			return errors.New("emergency open needs the running daemon (start 'blockmrs daemon')")
		}
		if err != nil {
			return err
		}
		if f.json {
			return f.printJSON(out)
		}
		content := []byte(out.Summary)
		if out.Summary == nil {
			content = []byte(out.Text)
		}
		fmt.Fprintf(f.errOut(), "opened %q of %s with the shares of %d custodian(s); every custodian recorded it and tells the patient\n",
			out.Pack.Title, patient, len(out.From))
		if *outFile != "" {
			_, err := f.writeOutput(*outFile, func(w io.Writer) error { _, err := w.Write(content); return err })
			return err
		}
		_, err = f.out().Write(append(content, '\n'))
		return err
	})
}

func runEmergencyEnd(ctx context.Context, args []string) error {
	f := newFlags("emergency end", "[flags]", `
Emergency end withdraws the acting account's live emergency pack, signed
on its chain; the daemon tells the custodians, which refuse every later
request. A summary already opened cannot be taken back: set up a new pack
(a new key) after a use.`, `
blockmrs emergency end`)
	f.withAccount()
	if _, err := f.parseArgs(args, false); err != nil {
		return err
	}
	return f.withKeys(ctx, func(repo *keyshare.Repo, keys *keyshare.Keys) error {
		out, err := ops.EmergencyEnd(ctx, repo, keys)
		if errors.Is(err, ops.ErrNotFound) {
			return errors.New("no live emergency pack to end")
		}
		if err != nil {
			return err
		}
		if f.json {
			return f.printJSON(out)
		}
		for _, p := range out.Ended {
			fmt.Fprintf(f.out(), "ended emergency pack %s (%q)\n", p.ID, p.Title)
		}
		return nil
	})
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func givenWord(given bool) string {
	if given {
		return "share given"
	}
	return "refused"
}

func packState(p ops.EmergencyPack) string {
	switch {
	case p.Ended:
		return "ended"
	case p.Expired:
		return "expired"
	case p.FirstUse != nil:
		return "used " + formatTime(*p.FirstUse)
	}
	return "live"
}

// accountName is an account's name and ID, or its ID when unknown.
func accountName(ctx context.Context, repo *keyshare.Repo, id any) string {
	s := fmt.Sprint(id)
	if s == "" {
		return "?"
	}
	if a, err := repo.Resolve(ctx, s, false); err == nil && a.Name != "" {
		return clean(a.Name) + " (" + s + ")"
	}
	return s
}
