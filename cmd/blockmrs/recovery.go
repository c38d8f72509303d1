package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/blockmrs/blockmrs/keyshare"
	bmnode "github.com/blockmrs/blockmrs/node"
	"github.com/blockmrs/blockmrs/node/ops"
	"github.com/blockmrs/blockmrs/protocol"
)

var recoveryCmd = &command{name: "recovery", summary: "recovery contacts, and recovering an account after losing every device", run: runRecovery}

const recoveryHelp = `Usage: blockmrs recovery setup [flags] --contacts A,B,C --threshold K
       blockmrs recovery show [flags]
       blockmrs recovery export [flags] ACCOUNT -o FILE
       blockmrs recovery start [flags] ACCOUNT [--chain FILE] [--via ADDR]...
       blockmrs recovery requests [flags]
       blockmrs recovery approve [flags] ID|REQUEST
       blockmrs recovery deny [flags] ID
       blockmrs recovery respond [flags] ACCOUNT RESPONSE
       blockmrs recovery status [flags] ACCOUNT
       blockmrs recovery finish [flags] ACCOUNT
       blockmrs recovery cancel [flags] ACCOUNT

Recovery contacts are accounts you trust to help you back in after you
lose every device. Setup names them and how many (K) must approve, signed
on your chain; your decryption key is split so that any K of them
together, and no fewer, can give it back (each holds one encrypted share).

After a loss, on a new device: get your chain from a contact ('recovery
export' on their side: it also says where your contacts' nodes are), then
'recovery start' makes a new key and a request, and shows a safety code.
With the daemon running, the node delivers the request to your contacts'
nodes (those their chains declare, and those you name with --via); each sees it in 'recovery requests' with
the same safety code, calls you to compare it, and runs 'recovery approve
ID'; your node fetches the responses by itself ('recovery status').
Offline, give each contact the printed request by a channel where they
know it is you; each runs 'recovery approve REQUEST' and gives you back
the response, which you add with 'recovery respond'. With K responses,
'recovery finish' continues your account under the new key: the same
account ID, your old records readable, your old key retired everywhere.
Run 'blockmrs recovery setup --help' (etc.) for the flags.

Example:
  blockmrs recovery setup --contacts Cam,Dee,Eve --threshold 2
  blockmrs recovery start 12D3KooW... --chain pat.car
  blockmrs recovery approve 0a1b2c...
`

func runRecovery(ctx context.Context, args []string) error {
	return runNested(ctx, "recovery", recoveryHelp, args,
		subcommand{[]string{"setup"}, runRecoverySetup},
		subcommand{[]string{"show"}, runRecoveryShow},
		subcommand{[]string{"export"}, runRecoveryExport},
		subcommand{[]string{"start"}, runRecoveryStart},
		subcommand{[]string{"requests"}, runRecoveryRequests},
		subcommand{[]string{"approve"}, runRecoveryApprove},
		subcommand{[]string{"deny"}, runRecoveryDeny},
		subcommand{[]string{"respond"}, runRecoveryRespond},
		subcommand{[]string{"status"}, runRecoveryStatus},
		subcommand{[]string{"finish"}, runRecoveryFinish},
		subcommand{[]string{"cancel"}, runRecoveryCancel})
}

func runRecoverySetup(ctx context.Context, args []string) error {
	f := newFlags("recovery setup", "[flags] --contacts A,B,C --threshold K", `
Recovery setup names the acting account's recovery contacts (accounts this
repo knows) and how many of them must approve a recovery, signed on its
chain, with the account's decryption keys split among them. A new setup
replaces the last; --off turns recovery off. With --json it prints what
POST /api/v1/recovery answers.`, `
blockmrs recovery setup --contacts Cam,Dee,Eve --threshold 2
blockmrs recovery setup --off`)
	f.withAccount()
	contacts := f.String("contacts", "", "the recovery `CONTACTS`, comma-separated (names or IDs)")
	threshold := f.Int("threshold", 0, "how many contacts (`K`) must approve a recovery")
	off := f.Bool("off", false, "turn recovery off (no contacts)")
	if _, err := f.parseArgs(args, false); err != nil {
		return err
	}
	req := ops.RecoverySetupRequest{Threshold: *threshold}
	switch {
	case *off && (*contacts != "" || *threshold != 0):
		return usagef("--off takes no --contacts or --threshold")
	case !*off && (*contacts == "" || *threshold == 0):
		return usagef("recovery setup needs --contacts and --threshold (or --off)")
	case !*off:
		req.Contacts = strings.Split(*contacts, ",")
	}
	return f.withKeys(ctx, func(repo *keyshare.Repo, keys *keyshare.Keys) error {
		out, err := ops.SetupRecovery(ctx, repo, keys, req)
		if err != nil {
			return err
		}
		if f.json {
			return f.printJSON(out)
		}
		if out.Setup == nil {
			fmt.Fprintf(f.out(), "recovery turned off in block %s\n", out.Block)
			return nil
		}
		fmt.Fprintf(f.out(), "%d of %d recovery contacts can recover %s (block %s)\n", out.Setup.Threshold, len(out.Setup.Contacts), keys.ID, out.Block)
		return nil
	})
}

func runRecoveryShow(ctx context.Context, args []string) error {
	f := newFlags("recovery show", "[flags]", `
Recovery show lists the acting account's recovery contacts and threshold,
and the accounts that name this repo's accounts as their recovery
contacts. With --json it prints what GET /api/v1/recovery answers.`, `
blockmrs recovery show`)
	f.withAccount()
	if _, err := f.parseArgs(args, false); err != nil {
		return err
	}
	return f.withSelected(ctx, func(repo *keyshare.Repo, me keyshare.AccountInfo) error {
		out, err := ops.ShowRecovery(ctx, repo, me.ID)
		if err != nil {
			return err
		}
		names, err := loadNames(ctx, repo)
		if err != nil {
			return err
		}
		return f.printTable(out, func(t io.Writer) error {
			if out.Setup == nil {
				fmt.Fprintln(t, "no recovery contacts")
			} else {
				fmt.Fprintf(t, "threshold\t%d of %d\n", out.Setup.Threshold, len(out.Setup.Contacts))
				for _, c := range out.Setup.Contacts {
					fmt.Fprintf(t, "contact\t%s\n", names.long(c))
				}
			}
			for _, o := range out.ContactOf {
				fmt.Fprintf(t, "contact of\t%s (threshold %d)\n", names.long(o.Account), o.Threshold)
			}
			return nil
		})
	})
}

func runRecoveryExport(ctx context.Context, args []string) error {
	f := newFlags("recovery export", "[flags] ACCOUNT -o FILE", `
Recovery export writes the chain of ACCOUNT, an account that names one of
this repo's accounts as a recovery contact, as a CAR file: what its owner
needs on a new device to start a recovery ('recovery start --chain').
With it go the first block of each recovery contact the account names
that this repo holds (their profiles and the nodes they declared there),
and where this node last reached those nodes (its address book, and its
own addresses when the daemon runs), so the new device finds its
contacts without --via. It holds no keys, no records, no later blocks of
other accounts. With --json it prints what it wrote.`, `
blockmrs recovery export Pat -o pat.car`)
	out := f.String("o", "", "write to `FILE`")
	pos, err := f.parseArgs(args, false, "ACCOUNT")
	if err != nil {
		return err
	}
	if *out == "" {
		return usagef("recovery export needs -o FILE")
	}
	return f.withRepo(ctx, func(repo *keyshare.Repo) error {
		info, err := repo.Resolve(ctx, pos[0], false)
		if err != nil {
			return err
		}
		var self keyshare.KeptAddrs
		if h := daemonHost(ctx); h != nil {
			self.Peer = h.ID().String()
			for _, a := range h.Addrs() {
				self.Addrs = append(self.Addrs, a.String())
			}
		}
		var got keyshare.RecoveryExported
		_, err = f.writeOutput(*out, func(w io.Writer) (err error) {
			got, err = repo.ExportRecovery(ctx, w, info.ID, self)
			return err
		})
		if err != nil {
			return err
		}
		if f.json {
			return f.printJSON(got)
		}
		fmt.Fprintf(f.out(), "wrote the chain of %s, the first blocks of %d of its recovery contacts and the addresses of %d of their nodes to %s\n",
			info.ID, len(got.Contacts), len(got.Peers), *out)
		return nil
	})
}

// withRecoveryRepo opens the repo for recovery start, creating it when
// the folder holds none yet (a new device).
func (f *cmdFlags) withRecoveryRepo(ctx context.Context, fn func(repo *keyshare.Repo) error) (err error) {
	f.bind(ctx)
	if repo := daemonRepo(ctx); repo != nil {
		return fn(repo)
	}
	dir, err := f.repoPath()
	if err != nil {
		return err
	}
	repo, err := bmnode.OpenRepo(ctx, dir, true)
	if errors.Is(err, keyshare.ErrRepoLocked) {
		return &repoLockedError{dir: dir, err: err}
	}
	if err != nil {
		return err
	}
	defer closeRepo(repo, &err)
	return fn(repo)
}

func runRecoveryStart(ctx context.Context, args []string) error {
	f := newFlags("recovery start", "[flags] ACCOUNT [--chain FILE]", `
Recovery start begins recovering ACCOUNT on this repo (created if the
folder holds none): --chain imports the account's chain first (a file
from 'recovery export' on a contact's repo). It makes a new signing key
and decryption key, stored encrypted with $BLOCKMRS_PASSPHRASE when set,
and a request for the recovery contacts, and prints its safety code and
the request. A running node delivers the request to the contacts' nodes
their chains declare (the export from a contact carries where they were
last reached, so none need be named) and to each --via ADDR (a contact's node address,
ending in /p2p/PEER-ID), and fetches their responses; offline, give each
contact the printed request. With --json it prints what POST
/api/v1/recovery/start answers.`, `
blockmrs recovery start 12D3KooW... --chain pat.car --via /ip4/192.0.2.7/tcp/4001/p2p/12D3KooW...`)
	chain := f.String("chain", "", "import the account's chain from `FILE` first")
	var via []string
	f.Func("via", "deliver the request to the contact's node at `ADDR` (repeatable)", func(v string) error {
		via = append(via, v)
		return nil
	})
	pos, err := f.parseArgs(args, false, "ACCOUNT")
	if err != nil {
		return err
	}
	pass, _ := passphraseGiven(ctx)
	return f.withRecoveryRepo(ctx, func(repo *keyshare.Repo) error {
		if *chain != "" {
			in, err := f.openInput(ctx, *chain)
			if err != nil {
				return err
			}
			_, err = ops.ImportContact(ctx, repo, in, ops.MaxContactFile)
			in.Close()
			if err != nil {
				return err
			}
		}
		out, err := ops.StartRecovery(ctx, repo, ops.RecoveryStartRequest{Account: pos[0], Passphrase: string(pass), Via: via})
		if err != nil {
			return err
		}
		if f.json {
			return f.printJSON(out)
		}
		fmt.Fprintf(f.out(), "recovery of %s started: %d of %d contacts must approve.\nSafety code: %s (each contact sees it with your request: tell it to them when they call)\n", out.Account, out.Threshold, len(out.Contacts), out.SafetyCode)
		fmt.Fprintf(f.out(), "A running node delivers the request to your contacts' nodes. Offline, give each this request (they run 'blockmrs recovery approve REQUEST'):\n%s\n", out.Token)
		return nil
	})
}

func runRecoveryRequests(ctx context.Context, args []string) error {
	f := newFlags("recovery requests", "[flags]", `
Recovery requests lists the recovery requests this node received over the
network for accounts that name its accounts as recovery contacts: each
request's ID, the account, its safety code, and which of your accounts
may approve it. Before approving, call the account's owner (by a number
you already know) and compare the safety code their new device shows:
anyone holding the chain can send a request. With --json it prints what
GET /api/v1/recovery/requests answers.`, `
blockmrs recovery requests`)
	if _, err := f.parseArgs(args, false); err != nil {
		return err
	}
	return f.withRepo(ctx, func(repo *keyshare.Repo) error {
		out, err := ops.RecoveryRequests(ctx, repo)
		if err != nil {
			return err
		}
		if f.json {
			return f.printJSON(out)
		}
		if len(out.Requests) == 0 {
			fmt.Fprintln(f.out(), "no recovery requests")
			return nil
		}
		names, err := loadNames(ctx, repo)
		if err != nil {
			return err
		}
		for _, it := range out.Requests {
			state := "waiting for your approval"
			if len(it.Approved) > 0 {
				state = "approved"
			}
			fmt.Fprintf(f.out(), "%s\n  account      %s\n  safety code  %s\n  received     %s (%s)\n",
				it.ID, names.long(it.Account), it.SafetyCode, it.Received.Format(time.RFC3339), state)
			if it.Others > 0 {
				fmt.Fprintf(f.out(), "  WARNING      %d other request(s) for this account are here too: only one can be theirs; ask which code they see, and deny the others\n", it.Others)
			}
		}
		fmt.Fprintf(f.out(), "%s: then 'blockmrs recovery approve ID' or 'blockmrs recovery deny ID'\n", strings.ToUpper(out.Instruction[:1])+out.Instruction[1:])
		return nil
	})
}

func runRecoveryDeny(ctx context.Context, args []string) error {
	f := newFlags("recovery deny", "[flags] ID", `
Recovery deny drops the received recovery request ID (from 'recovery
requests') and any response queued for it; the same request delivered
again is refused. With --json it prints what POST
/api/v1/recovery/requests/deny answers.`, `
blockmrs recovery deny 0a1b2c...`)
	pos, err := f.parseArgs(args, false, "ID")
	if err != nil {
		return err
	}
	return f.withRepo(ctx, func(repo *keyshare.Repo) error {
		out, err := ops.DenyRecoveryRequest(ctx, repo, ops.RecoveryDenyRequest{ID: pos[0]})
		if err != nil {
			return err
		}
		if f.json {
			return f.printJSON(out)
		}
		fmt.Fprintf(f.out(), "recovery request %s denied\n", out.ID)
		return nil
	})
}

func runRecoveryApprove(ctx context.Context, args []string) error {
	f := newFlags("recovery approve", "[flags] ID|REQUEST", `
Recovery approve approves, as the acting account, a recovery request of an
account that names it as a recovery contact: ID, one 'recovery requests'
lists (it came over the network), or REQUEST, the token the owner gave
you. It signs your approval of exactly that new key and re-encrypts your
share to it. For an ID the response waits for the owner's node, which
fetches it; for a token it prints the response to give back. Approve only
when you know it is the owner asking: call them and compare the safety
code. With --json it prints what POST /api/v1/recovery/approve answers.`, `
blockmrs recovery approve 0a1b2c...`)
	f.withAccount()
	pos, err := f.parseArgs(args, false, "ID|REQUEST")
	if err != nil {
		return err
	}
	return f.withKeys(ctx, func(repo *keyshare.Repo, keys *keyshare.Keys) error {
		out, err := ops.ApproveRecovery(ctx, repo, keys, ops.RecoveryApproveRequest{Request: pos[0]})
		if err != nil {
			return err
		}
		if f.json {
			return f.printJSON(out)
		}
		if out.Queued {
			fmt.Fprintf(f.out(), "approved the recovery of %s; its owner's node fetches the response\n", out.Account)
			return nil
		}
		fmt.Fprintf(f.out(), "approved the recovery of %s. Give its owner this response:\n%s\n", out.Account, out.Response)
		return nil
	})
}

func printRecoveryStatus(f *cmdFlags, s *keyshare.RecoveryStatus) error {
	if f.json {
		return f.printJSON(s)
	}
	state := "waiting"
	if s.Ready {
		state = "ready: run 'blockmrs recovery finish " + string(s.Account) + "'"
	}
	fmt.Fprintf(f.out(), "recovery of %s: %d of %d approvals (%s)\nsafety code: %s (tell it to a contact who calls)\n", s.Account, len(s.Approved), s.Threshold, state, s.SafetyCode)
	return nil
}

func runRecoveryRespond(ctx context.Context, args []string) error {
	f := newFlags("recovery respond", "[flags] ACCOUNT RESPONSE", `
Recovery respond adds a contact's RESPONSE (from 'recovery approve') to
the recovery of ACCOUNT started on this repo. With --json it prints what
POST /api/v1/recovery/respond answers.`, `
blockmrs recovery respond 12D3KooW... 0a1b2c...`)
	pos, err := f.parseArgs(args, false, "ACCOUNT", "RESPONSE")
	if err != nil {
		return err
	}
	return f.withRepo(ctx, func(repo *keyshare.Repo) error {
		s, err := ops.AddRecoveryResponse(ctx, repo, ops.RecoveryRespondRequest{Account: pos[0], Response: pos[1]})
		if err != nil {
			return err
		}
		return printRecoveryStatus(f, s)
	})
}

func runRecoveryStatus(ctx context.Context, args []string) error {
	f := newFlags("recovery status", "[flags] ACCOUNT", `
Recovery status reports the recovery of ACCOUNT started on this repo: how
many contacts approved, and the request to give them. With --json it
prints what GET /api/v1/recovery/status answers.`, `
blockmrs recovery status 12D3KooW...`)
	pos, err := f.parseArgs(args, false, "ACCOUNT")
	if err != nil {
		return err
	}
	return f.withRepo(ctx, func(repo *keyshare.Repo) error {
		s, err := ops.RecoveryStatus(ctx, repo, ops.RecoveryAccount{Account: pos[0]})
		if err != nil {
			return err
		}
		return printRecoveryStatus(f, s)
	})
}

func runRecoveryFinish(ctx context.Context, args []string) error {
	f := newFlags("recovery finish", "[flags] ACCOUNT", `
Recovery finish completes the recovery of ACCOUNT once enough contacts
approved: it rebuilds the decryption key from their shares, writes the
succession (signed by the new key, with the approvals) and a profile with
the new decryption key, declares this node a device, and makes the account
local to this repo. Every node that verifies the chain then retires the
old key. The passphrase is the one recovery start used. With --json it
prints what POST /api/v1/recovery/finish answers.`, `
blockmrs recovery finish 12D3KooW...`)
	pos, err := f.parseArgs(args, false, "ACCOUNT")
	if err != nil {
		return err
	}
	pass, _ := passphraseGiven(ctx)
	return f.withRepo(ctx, func(repo *keyshare.Repo) error {
		node, err := thisNode(repo)
		if err != nil {
			return err
		}
		out, err := ops.FinishRecovery(ctx, repo, ops.RecoveryFinishRequest{Account: pos[0], Passphrase: string(pass), Device: node.PeerID})
		if err != nil {
			return err
		}
		if f.json {
			return f.printJSON(out)
		}
		fmt.Fprintf(f.out(), "recovered %s: it continues under a new key from block %d; this node acts for it\n", out.Account, out.Signing.Since)
		return nil
	})
}

func runRecoveryCancel(ctx context.Context, args []string) error {
	f := newFlags("recovery cancel", "[flags] ACCOUNT", `
Recovery cancel forgets the recovery of ACCOUNT started on this repo, and
its new keys. Approvals given for it count for nothing after.`, `
blockmrs recovery cancel 12D3KooW...`)
	pos, err := f.parseArgs(args, false, "ACCOUNT")
	if err != nil {
		return err
	}
	return f.withRepo(ctx, func(repo *keyshare.Repo) error {
		if err := ops.CancelRecovery(ctx, repo, ops.RecoveryAccount{Account: pos[0]}); err != nil {
			return err
		}
		if !f.json {
			fmt.Fprintf(f.out(), "recovery of %s cancelled\n", pos[0])
			return nil
		}
		return f.printJSON(struct {
			Account protocol.AccountID `json:"account"`
		}{protocol.AccountID(pos[0])})
	})
}
