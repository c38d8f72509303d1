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
	"github.com/blockmrs/blockmrs/protocol"
)

var attestCmd = &command{name: "attest", summary: "attest an account's role (attest ACCOUNT --role), withdraw (attest rm), list (attest ls), check a role (attest check)", run: runAttest}

const attestHelp = `Usage: blockmrs attest [flags] ACCOUNT --role clinician|clinic|authority [--department D] [--emergency] [--until DATE]
       blockmrs attest rm [flags] ACCOUNT
       blockmrs attest ls [flags]
       blockmrs attest check [flags] ACCOUNT [--role ROLE] [--from ADDRESS]

An attestation is signed on the attester's own chain: an authority attests
clinics (and subordinate authorities), a clinic attests its clinicians.
A role is shown as verified only when live attestations lead from an
authority this repo trusts ('blockmrs trust') down to the account;
'attest rm' withdraws an attestation, and it stops counting on every
node that holds the attester's chain from then on.
Run 'blockmrs attest --help' for the flags of attest ACCOUNT.

Example:
  blockmrs attest 12D3KooWDrGrey... --role clinician --department Cardiology --emergency --until 2027-12-31
  blockmrs attest rm 12D3KooWDrGrey...
  blockmrs attest ls
  blockmrs attest check 12D3KooWDrGrey... --from /ip4/192.0.2.7/tcp/4101/p2p/12D3KooWNode...
`

func runAttest(ctx context.Context, args []string) error {
	if len(args) > 0 {
		switch args[0] {
		case "rm", "remove", "ls", "list", "check":
			return runNested(ctx, "attest", attestHelp, args,
				subcommand{[]string{"rm", "remove"}, runAttestRm},
				subcommand{[]string{"ls", "list"}, runAttestLs},
				subcommand{[]string{"check"}, runAttestCheck})
		}
	}
	if len(args) == 0 {
		return showHelp(attestHelp)
	}
	return runAttestAdd(ctx, args)
}

func runAttestAdd(ctx context.Context, args []string) error {
	f := newFlags("attest", "[flags] ACCOUNT --role ROLE", `
Attest signs, on the acting account's chain, that ACCOUNT holds --role:
a clinic attests its clinicians (--department where they work,
--emergency to let them use emergency access), an authority attests
clinics and subordinate authorities. The account must be known here
and declare that role. --until ends the attestation (a duration such as
365d, or a date). Attesting the same account again replaces the older
attestation. With --json it prints what POST /api/v1/attestations answers.`, `
blockmrs attest 12D3KooWDrGrey... --role clinician --department Cardiology --until 365d
blockmrs attest 12D3KooWClinic... --role clinic`)
	f.withAccount()
	var role, dept, until string
	var emergency bool
	f.StringVar(&role, "role", "", "the attested `ROLE`: clinician, clinic or authority")
	f.StringVar(&dept, "department", "", "the clinician's `DEPARTMENT`")
	f.BoolVar(&emergency, "emergency", false, "the clinician may use emergency access")
	f.StringVar(&until, "until", "", "end the attestation at `DATE` (RFC 3339 or 2006-01-02) or after a duration (365d)")
	pos, err := f.parseArgs(args, false, "ACCOUNT")
	if err != nil {
		return err
	}
	if role == "" {
		return usagef("missing --role clinician|clinic|authority")
	}
	end, err := parseExpiry(until, time.Now())
	if err != nil {
		return usagef("--until: %s", strings.TrimPrefix(err.Error(), "--expires "))
	}
	return f.withKeysFor(ctx, "account", pos[0], func(repo *keyshare.Repo, keys *keyshare.Keys, other keyshare.AccountInfo) error {
		out, err := ops.Attest(ctx, repo, keys, ops.AttestRequest{Account: string(other.ID), Role: protocol.Role(role), Department: dept, Emergency: emergency, Until: end})
		if err != nil {
			return err
		}
		if f.json {
			return f.printJSON(out)
		}
		fmt.Fprintf(f.out(), "attested %s as %s%s in block %s\n", clean(label(other)), out.Role, attestTerms(out.Department, out.Emergency, out.Until), out.Block)
		return nil
	})
}

// attestTerms says an attestation's department, emergency flag and end.
func attestTerms(dept string, emergency bool, until time.Time) string {
	var s string
	if dept != "" {
		s += ", " + clean(dept)
	}
	if emergency {
		s += ", emergency access"
	}
	if !until.IsZero() {
		s += ", until " + formatTime(until)
	}
	return s
}

func runAttestRm(ctx context.Context, args []string) error {
	f := newFlags("attest rm", "[flags] ACCOUNT", `
Attest rm withdraws the acting account's attestation of ACCOUNT, by an
entry on its chain: from then on, on every node that holds the chain this
far, the attestation counts for nothing. With --json it prints what
POST /api/v1/attestations/withdraw answers.`, `
blockmrs attest rm 12D3KooWDrGrey...`)
	f.withAccount()
	pos, err := f.parseArgs(args, false, "ACCOUNT")
	if err != nil {
		return err
	}
	return f.withKeysFor(ctx, "account", pos[0], func(repo *keyshare.Repo, keys *keyshare.Keys, other keyshare.AccountInfo) error {
		out, err := ops.Unattest(ctx, repo, keys, ops.UnattestRequest{Account: string(other.ID)})
		if err != nil {
			return err
		}
		if f.json {
			return f.printJSON(out)
		}
		fmt.Fprintf(f.out(), "withdrew the attestation of %s in block %s\n", clean(label(other)), out.Block)
		return nil
	})
}

func runAttestLs(ctx context.Context, args []string) error {
	f := newFlags("attest ls", "[flags]", `
Attest ls lists the attestations on the acting account's chain (withdrawn
and expired ones marked), those other chains known here make of it, and
the verdict on the role it declares. With --json it prints what
GET /api/v1/attestations answers.`, `
blockmrs attest ls`)
	f.withAccount()
	if _, err := f.parseArgs(args, false); err != nil {
		return err
	}
	return f.withSelected(ctx, func(repo *keyshare.Repo, me keyshare.AccountInfo) error {
		list, err := ops.ListAttestations(ctx, repo, me.ID)
		if err != nil {
			return err
		}
		return f.printTable(list, func(t io.Writer) error {
			fmt.Fprintf(t, "role\t%s\t%s\n", me.Role, roleBadge(list.Role))
			fmt.Fprintln(t, "\nGIVEN\tACCOUNT\tNAME\tROLE\tTERMS\tSTATE")
			for _, a := range list.Given {
				fmt.Fprintf(t, "given\t%s\t%s\t%s\t%s\t%s\n", a.Account, cell(a.Name), a.Role, strings.TrimPrefix(attestTerms(a.Department, a.Emergency, a.Until), ", "), attestState(a))
			}
			for _, a := range list.Received {
				fmt.Fprintf(t, "received from\t%s\t%s\t%s\t%s\t%s\n", a.Attester, cell(a.Name), a.Role, strings.TrimPrefix(attestTerms(a.Department, a.Emergency, a.Until), ", "), attestState(a))
			}
			return nil
		})
	})
}

func attestState(a keyshare.Attestation) string {
	switch {
	case a.Withdrawn != nil:
		return "withdrawn"
	case !a.Live:
		return "expired"
	}
	return "live"
}

// roleBadge says, in a word or two, whether a role is verified and why
// not: what every list that shows a role shows beside it.
func roleBadge(p keyshare.RoleProof) string {
	switch {
	case p.Verified:
		return "verified"
	case p.Rule == keyshare.RuleRoleNotAttests:
		return ""
	case p.Rule == keyshare.RuleRoleDeclared:
		return "declared (not verified)"
	}
	return "not verified (" + strings.TrimPrefix(string(p.Rule), "role/") + ")"
}

func runAttestCheck(ctx context.Context, args []string) error {
	f := newFlags("attest check", "[flags] ACCOUNT", `
Attest check says whether ACCOUNT's role (--role, default the one it
declares) is verified with this repo's trust list, and why: the path of
attestations from a trusted authority, or what broke it. With --from
ADDRESS (a node that knows the account: its own, or its clinic's), the
running daemon first fetches the account's role proof from that node
over /blockmrs/attestations/1 — how a node verifies an account it never
met. With --json it prints what GET /api/v1/roles answers.`, `
blockmrs attest check 12D3KooWDrGrey...
blockmrs attest check 12D3KooWDrGrey... --from /ip4/192.0.2.7/tcp/4101/p2p/12D3KooWNode...`)
	var role, from string
	f.StringVar(&role, "role", "", "the `ROLE` in question (default: the declared one)")
	f.StringVar(&from, "from", "", "fetch the role proof from the node at `ADDRESS` first (needs the daemon)")
	pos, err := f.parseArgs(args, false, "ACCOUNT")
	if err != nil {
		return err
	}
	return f.withRepo(ctx, func(repo *keyshare.Repo) error {
		var prover ops.Prover
		if inv := f.invocation(); inv.inDaemon() {
			prover = inv.rt.Attest
		}
		out, err := ops.CheckRole(ctx, repo, prover, ops.RoleCheckRequest{Account: pos[0], Role: protocol.Role(role), From: from})
		if errors.Is(err, ops.ErrNoNode) {
			return errors.New("fetching a role proof from another node needs a running daemon (start 'blockmrs daemon')")
		}
		if err != nil {
			return err
		}
		if f.json {
			return f.printJSON(out)
		}
		p := out.Proof
		state := "verified"
		if !p.Verified {
			state = "NOT verified"
		}
		fmt.Fprintf(f.out(), "%s (%s): %s %s\n", cell(out.Name), p.Account, p.Role, state)
		fmt.Fprintf(f.out(), "rule %s: %s\n", p.Rule, clean(p.Why))
		if len(p.Path) > 0 {
			names, err := loadNames(ctx, repo)
			if err != nil {
				return err
			}
			parts := make([]string, len(p.Path))
			for i, id := range p.Path {
				parts[i] = cell(names.of(id))
			}
			fmt.Fprintf(f.out(), "path: %s\n", strings.Join(parts, " → "))
		}
		if p.Verified {
			fmt.Fprintf(f.out(), "%s\n", strings.TrimPrefix(attestTerms(p.Department, p.Emergency, p.Until), ", "))
		}
		return nil
	})
}
