package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/node/ops"
	"github.com/blockmrs/blockmrs/protocol"
)

var guardianCmd = &command{name: "guardian", summary: "appoint, remove and list guardians; act for a ward; create a minor's account", run: runGuardian}

const guardianHelp = `Usage: blockmrs guardian add [flags] ACCOUNT [--may read,grant,revoke,approve] [--until DATE]
       blockmrs guardian rm [flags] ACCOUNT
       blockmrs guardian ls [flags]
       blockmrs guardian accept [flags] WARD
       blockmrs guardian decline [flags] WARD
       blockmrs guardian grant [flags] --ward WARD CID... --to ACCOUNT
       blockmrs guardian revoke [flags] --ward WARD CID... --from ACCOUNT
       blockmrs guardian create [flags] NAME [--until DATE]
       blockmrs guardian handover [flags] WARD

A guardian acts for another account (its ward: a child, an elderly
parent) from its own account and node, within the rights and period the
ward gave. Guardian add appoints one on the acting account's chain;
guardian rm removes it (no act it makes after this node's copy of its
chain counts, on any node); guardian ls lists both sides, "my guardians"
and "I am guardian of". An appointment counts for the guardian only
once it accepts it (guardian accept; guardian decline refuses or
resigns): until then its node does not act for the ward, refuses
requests relayed for her and does not serve its chain to her. Guardian grant and revoke share or unshare a
ward's records as its guardian (the act is on the guardian's chain and
names the ward; every node that verifies the ward's chain shows who did
it). Requests addressed to a ward reach its guardians' nodes; answer them
with 'blockmrs approve' and 'blockmrs deny'. Guardian create makes a
minor's account in this repo with the acting account as its guardian;
guardian handover later hands it over to the grown-up's own node
('blockmrs device join --takeover CODE' there).
Run 'blockmrs guardian add --help' (etc.) for the flags.

Example:
  blockmrs guardian add "Mum" --may read,approve --until 2030-06-01
  blockmrs guardian ls
  blockmrs guardian accept Sam
  blockmrs guardian grant --ward Kim bafkrei... --to "Dr Grey"
  blockmrs guardian create Kim --until 2038-04-01
  blockmrs guardian handover Kim
`

func runGuardian(ctx context.Context, args []string) error {
	return runNested(ctx, "guardian", guardianHelp, args,
		subcommand{[]string{"add"}, runGuardianAdd},
		subcommand{[]string{"rm", "remove"}, runGuardianRm},
		subcommand{[]string{"ls", "list"}, runGuardianLs},
		subcommand{[]string{"accept"}, runGuardianAccept},
		subcommand{[]string{"decline"}, runGuardianDecline},
		subcommand{[]string{"grant"}, runGuardianGrant},
		subcommand{[]string{"revoke"}, runGuardianRevoke},
		subcommand{[]string{"create"}, runGuardianCreate},
		subcommand{[]string{"handover"}, runGuardianHandover})
}

// mayFlag splits --may into rights ("" keeps the default, all).
func mayFlag(s string) ([]string, error) {
	if s == "" {
		return nil, nil
	}
	if _, err := protocol.ParseRights(s); err != nil {
		return nil, usagef("--may %q: %v", truncate(s, 60), err)
	}
	return strings.Split(s, ","), nil
}

func runGuardianAdd(ctx context.Context, args []string) error {
	f := newFlags("guardian add", "[flags] ACCOUNT", `
Guardian add appoints ACCOUNT (a contact) as a guardian of the acting
account. --may lists what it may do: read (its records are wrapped for
the guardian, as a standing grant of patient/*.rs), grant and revoke
(share and unshare them with others), approve (answer access requests
addressed to this account); grant and approve need read. The default is
all four. --until ends the appointment: acts in the guardian's chain
blocks dated from then on do not count (block dates are the guardian's
clock: see SECURITY.md). Appointing a guardian again replaces its rights.
With --json it prints what POST /api/v1/guardians answers.`, `
blockmrs guardian add Mum
blockmrs guardian add "Dr Jones" --may read,approve --until 365d`)
	f.withAccount()
	mayS := f.String("may", "", "the rights, a comma-separated list of read, grant, revoke, approve (default: all)")
	untilS := f.String("until", "", "end the appointment after a `DURATION` (720h, 30d) or at an RFC 3339 time or date")
	pos, err := f.parseArgs(args, false, "ACCOUNT")
	if err != nil {
		return err
	}
	may, err := mayFlag(*mayS)
	if err != nil {
		return err
	}
	until, err := parseExpiry(*untilS, time.Now())
	if err != nil {
		return err
	}
	return f.withKeysFor(ctx, "guardian", pos[0], func(repo *keyshare.Repo, keys *keyshare.Keys, g keyshare.AccountInfo) error {
		a, err := ops.AppointGuardian(ctx, repo, keys, ops.AppointRequest{Guardian: string(g.ID), May: may, Until: until})
		if err != nil {
			return err
		}
		return f.printTable(a, func(t io.Writer) error {
			fmt.Fprintf(t, "appointed %s guardian (may %s)%s in block %s\n", clean(label(g)), rightsText(a.May), untilText(a.Until), a.Block)
			return nil
		})
	})
}

func runGuardianRm(ctx context.Context, args []string) error {
	f := newFlags("guardian rm", "[flags] ACCOUNT", `
Guardian rm removes a guardian of the acting account: an entry on its
chain that cuts the guardian's chain where this node holds it, so that no
act in a later block of the guardian's counts, on any node, whatever
date it bears; acts before it stand. The guardian's read right ends with
it. Sync with the guardian's node first so that its recent acts are
kept. With --json it prints what POST /api/v1/guardians/remove answers.`, `
blockmrs guardian rm Mum`)
	f.withAccount()
	pos, err := f.parseArgs(args, false, "ACCOUNT")
	if err != nil {
		return err
	}
	return f.withKeysFor(ctx, "guardian", pos[0], func(repo *keyshare.Repo, keys *keyshare.Keys, g keyshare.AccountInfo) error {
		r, err := ops.RemoveGuardian(ctx, repo, keys, string(g.ID))
		if err != nil {
			return err
		}
		return f.printTable(r, func(t io.Writer) error {
			fmt.Fprintf(t, "removed guardian %s in block %s: none of its later acts counts\n", clean(label(g)), r.Block)
			return nil
		})
	})
}

func runGuardianLs(ctx context.Context, args []string) error {
	f := newFlags("guardian ls", "[flags]", `
Guardian ls lists the acting account's guardians ("my guardians") and
the accounts it is guardian of ("I am guardian of"), removed and expired
appointments included (STATE says which), and the guardian's answer to
each (CONSENT: pending, accepted, declined). Offers waiting for the
acting account's answer come first, with what to do. With --json it
prints what GET /api/v1/guardians answers.`, `
blockmrs guardian ls
blockmrs guardian ls --account Kim --json`)
	f.withAccount()
	if _, err := f.parseArgs(args, false); err != nil {
		return err
	}
	return f.withSelected(ctx, func(repo *keyshare.Repo, me keyshare.AccountInfo) error {
		l, err := ops.Guardians(ctx, repo, me.ID)
		if err != nil {
			return err
		}
		return f.printTable(l, func(t io.Writer) error {
			printOffers(t, me.ID, l.Wards)
			fmt.Fprintln(t, "MY GUARDIANS\tID\tMAY\tUNTIL\tSTATE\tCONSENT")
			for _, g := range l.Guardians {
				fmt.Fprintf(t, "%s\t%s\t%s\t%s\t%s\t%s\n", cell(g.GuardianName), g.Guardian, rightsText(g.May), formatTime(g.Until), stateText(g), consentText(g))
			}
			fmt.Fprintln(t)
			fmt.Fprintln(t, "I AM GUARDIAN OF\tID\tMAY\tUNTIL\tSTATE\tCONSENT")
			for _, g := range l.Wards {
				fmt.Fprintf(t, "%s\t%s\t%s\t%s\t%s\t%s\n", cell(g.WardName), g.Ward, rightsText(g.May), formatTime(g.Until), stateText(g), consentText(g))
			}
			return nil
		})
	})
}

func runGuardianGrant(ctx context.Context, args []string) error {
	f := newFlags("guardian grant", "[flags] --ward WARD CID... --to ACCOUNT", `
Guardian grant shares records of WARD (an account that appointed the
acting account guardian with the grant right) with ACCOUNT: a wardgrant
entry on the acting account's chain, naming the ward, with each record's
key wrapped for ACCOUNT. It is refused when the appointment does not
give the right, has ended or was removed. --expires as for 'blockmrs
grant'. With --json it prints what POST /api/v1/guardians/grant answers.`, `
blockmrs guardian grant --ward Kim bafkrei... --to "Dr Grey" --expires 30d`)
	f.withAccount()
	ward := f.String("ward", "", "the `WARD` acted for (NAME, ID or ID suffix)")
	to := f.String("to", "", "the `ACCOUNT` to share with")
	expiresFlag := f.String("expires", "", "end the grant after a `DURATION` (720h, 30d) or at an RFC 3339 time or date")
	pos, cids, err := f.parseCIDArgs(args, true)
	if err != nil {
		return err
	}
	if *ward == "" || *to == "" {
		return usagef("missing --ward WARD or --to ACCOUNT")
	}
	expires, err := parseExpiry(*expiresFlag, time.Now())
	if err != nil {
		return err
	}
	return f.withKeys(ctx, func(repo *keyshare.Repo, keys *keyshare.Keys) error {
		a, err := ops.GrantForWard(ctx, repo, keys, ops.WardGrantRequest{Ward: *ward, Records: cidStrings(cids), To: *to, Expires: expires})
		if err != nil {
			return err
		}
		a.Records = pos
		return f.printTable(a, func(t io.Writer) error {
			fmt.Fprintf(t, "as guardian of %s, granted %d record(s) to %s%s in block %s\n", clean(a.WardName), len(cids), clean(a.AccountName), untilText(a.Expires), a.Block)
			return nil
		})
	})
}

func runGuardianRevoke(ctx context.Context, args []string) error {
	f := newFlags("guardian revoke", "[flags] --ward WARD CID... --from ACCOUNT", `
Guardian revoke revokes records of WARD from ACCOUNT as WARD's guardian
(the revoke right): a wardrevoke entry on the acting account's chain.
Nodes stop serving the records to ACCOUNT; a key already delivered
cannot be taken back. With --json it prints what POST
/api/v1/guardians/revoke answers.`, `
blockmrs guardian revoke --ward Kim bafkrei... --from "Dr Grey"`)
	f.withAccount()
	ward := f.String("ward", "", "the `WARD` acted for (NAME, ID or ID suffix)")
	from := f.String("from", "", "the `ACCOUNT` to revoke from")
	pos, cids, err := f.parseCIDArgs(args, true)
	if err != nil {
		return err
	}
	if *ward == "" || *from == "" {
		return usagef("missing --ward WARD or --from ACCOUNT")
	}
	return f.withKeys(ctx, func(repo *keyshare.Repo, keys *keyshare.Keys) error {
		a, err := ops.RevokeForWard(ctx, repo, keys, ops.WardRevokeRequest{Ward: *ward, Records: cidStrings(cids), From: *from})
		if err != nil {
			return err
		}
		a.Records = pos
		return f.printTable(a, func(t io.Writer) error {
			fmt.Fprintf(t, "as guardian of %s, revoked %d record(s) from %s in block %s\n", clean(a.WardName), len(cids), clean(a.AccountName), a.Block)
			return nil
		})
	})
}

func runGuardianCreate(ctx context.Context, args []string) error {
	f := newFlags("guardian create", "[flags] NAME", `
Guardian create makes a patient account NAME for a minor in this repo,
acting through this node, and has it appoint the acting account its
guardian (--may, default all rights; --until, for instance the minor's
coming of age). The minor's keys are stored in this repo encrypted with
a passphrase of their own, as 'blockmrs init' does: $BLOCKMRS_PASSPHRASE
when set (set but empty means none), else asked twice on the terminal
(empty means none); --no-passphrase stores them unencrypted. Through a
running daemon the passphrase comes from $BLOCKMRS_PASSPHRASE or
--no-passphrase only. This node then unlocks the minor's account like any
other ('blockmrs unlock --account NAME', a session). The keys move to the
grown-up's repo, and rotate, when the account is handed over ('blockmrs
guardian handover', which needs the minor's account unlocked when its
keys are encrypted). With --json it prints what POST
/api/v1/guardians/minor answers.`, `
blockmrs guardian create Kim --until 2038-04-01
BLOCKMRS_PASSPHRASE=... blockmrs guardian create Kim
blockmrs guardian create Lea --no-passphrase`)
	f.withAccount()
	mayS := f.String("may", "", "the guardian's rights (default: all)")
	untilS := f.String("until", "", "end the guardian's rights after a `DURATION` or at an RFC 3339 time or date")
	noPass := f.Bool("no-passphrase", false, "store the minor's keys unencrypted, without asking for a passphrase")
	pos, err := f.parseArgs(args, false, "NAME")
	if err != nil {
		return err
	}
	may, err := mayFlag(*mayS)
	if err != nil {
		return err
	}
	until, err := parseExpiry(*untilS, time.Now())
	if err != nil {
		return err
	}
	return f.withKeys(ctx, func(repo *keyshare.Repo, keys *keyshare.Keys) error {
		if err := ops.CheckNameFree(ctx, repo, pos[0]); err != nil {
			return err // before a passphrase is asked for
		}
		pass, err := minorPassphrase(ctx, *noPass)
		if err != nil {
			return err
		}
		defer clear(pass)
		node, err := thisNode(repo)
		if err != nil {
			return err
		}
		a, err := ops.CreateMinor(ctx, repo, keys, node, ops.MinorRequest{Name: pos[0], Passphrase: string(pass), May: may, Until: until})
		if err != nil {
			return err
		}
		return f.printTable(a, func(t io.Writer) error {
			fmt.Fprintf(t, "created %s (%s) with %s as guardian (may %s)%s\n", clean(a.WardName), a.Ward, clean(a.GuardianName), rightsText(a.May), untilText(a.Until))
			return nil
		})
	})
}

// minorPassphrase decides the passphrase of a minor's new keys: none with
// --no-passphrase; inside the daemon the one the client sent
// ($BLOCKMRS_PASSPHRASE), since the daemon cannot ask twice; else as init
// (newPassphrase).
func minorPassphrase(ctx context.Context, none bool) ([]byte, error) {
	if none {
		return nil, nil
	}
	if invocationOf(ctx).inDaemon() {
		p, ok := passphraseGiven(ctx)
		if !ok {
			return nil, errMinorPassphraseSource
		}
		return bytes.Clone(p), nil
	}
	return newPassphrase(ctx, false)
}

var errMinorPassphraseSource = fmt.Errorf("no passphrase for the minor's keys: set $%s (empty for none) or use --no-passphrase", envPassphrase)

func rightsText(rs []protocol.GuardianRight) string { return protocol.JoinRights(rs, ",") }

func untilText(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return " until " + formatTime(t)
}

func stateText(g ops.GuardianRow) string {
	switch {
	case g.Live:
		return "live"
	case g.Ended != nil:
		return "removed"
	}
	return "expired"
}
