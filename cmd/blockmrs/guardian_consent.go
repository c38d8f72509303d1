package main

import (
	"context"
	"fmt"
	"io"

	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/node/ops"
	"github.com/blockmrs/blockmrs/protocol"
)

// guardian accept and guardian decline: the guardian's answer to a
// ward's appointment (keyshare/guardian_consent.go).

func runGuardianAccept(ctx context.Context, args []string) error {
	return runGuardianAnswer(ctx, args, "accept", `
Guardian accept accepts WARD's appointment of the acting account as
guardian: a signed wardaccept entry on the acting account's chain naming
the appointment. Until then it counts for nothing here: this node does
not act for WARD, refuses access requests relayed for her, does not
fetch the records the appointment's read right wraps for the acting
account (they arrive once it accepts), and does not serve the acting
account's chain to her nodes on that ground. The
accept binds the appointment 'blockmrs guardian ls' shows as pending: if
WARD later gives more rights or a later end, accept again (narrowing
keeps it). With --json it prints what POST /api/v1/guardians/accept
answers.`, `
blockmrs guardian accept Sam`, ops.AcceptWard, "accepted")
}

func runGuardianDecline(ctx context.Context, args []string) error {
	return runGuardianAnswer(ctx, args, "decline", `
Guardian decline declines WARD's appointment of the acting account as
guardian, or resigns it once accepted: a signed warddecline entry on the
acting account's chain. Nothing of the appointment counts here after it
(as before an accept). With --json it prints what POST
/api/v1/guardians/decline answers.`, `
blockmrs guardian decline Sam`, ops.DeclineWard, "declined")
}

func runGuardianAnswer(ctx context.Context, args []string, verb, help, example string,
	answer func(context.Context, *keyshare.Repo, *keyshare.Keys, ops.ConsentRequest) (ops.Consented, error), done string) error {
	f := newFlags("guardian "+verb, "[flags] WARD", help, example)
	f.withAccount()
	pos, err := f.parseArgs(args, false, "WARD")
	if err != nil {
		return err
	}
	return f.withKeysFor(ctx, "ward", pos[0], func(repo *keyshare.Repo, keys *keyshare.Keys, w keyshare.AccountInfo) error {
		c, err := answer(ctx, repo, keys, ops.ConsentRequest{Ward: string(w.ID)})
		if err != nil {
			return err
		}
		return f.printTable(c, func(t io.Writer) error {
			a := c.Appointment
			fmt.Fprintf(t, "%s %s's appointment (may %s)%s in block %s\n", done, clean(label(w)), rightsText(a.May), untilText(a.Until), c.Block)
			return nil
		})
	})
}

// consentText is what guardian ls shows of a guardian's answer.
func consentText(g ops.GuardianRow) string { return string(g.Consent) }

// printOffers writes the pending offers among the wards of me, one line
// each, with what to do (commands naming me: the repo may hold other
// accounts).
func printOffers(t io.Writer, me protocol.AccountID, wards []ops.GuardianRow) {
	for _, g := range wards {
		if !g.Live || g.Consent != keyshare.ConsentPending {
			continue
		}
		who := g.WardName
		if who == "" {
			who = g.Ward.Short()
		}
		// The ward by ID: a name may hold spaces, and a short ID
		// ("…abcd") names no account.
		fmt.Fprintf(t, "%s appointed you guardian (%s)%s: accept or decline ('blockmrs guardian accept %s --account %s' or 'blockmrs guardian decline %s --account %s')\n",
			clean(who), rightsText(g.May), untilText(g.Until), g.Ward, me, g.Ward, me)
	}
}
