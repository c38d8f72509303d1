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

// guardian handover (the guardian's node offers a minor's account) and
// device join --takeover (the grown-up's node joins it and withdraws the
// guardian's node, rotating the keys).

func runGuardianHandover(ctx context.Context, args []string) error {
	f := newFlags("guardian handover", "[flags] WARD", `
Guardian handover hands WARD, a minor's account made in this repo with
'blockmrs guardian create' and the acting account as guardian (which
must have accepted WARD's latest appointment: create does; after a
resignation, or a removal and a new appointment, accept again), over to
the grown-up's own node. It shows a pairing code and its QR code, as
'blockmrs device pair' does, for WARD's account; on the grown-up's node,
'blockmrs device join --takeover CODE' joins it, stores WARD's keys under
a passphrase of the grown-up's, withdraws this node from the account and
rotates its signing and decryption keys. Once the grown-up's node stored
the keys, this repo forgets them: WARD is no longer an account of this
repo, only a contact, and the guardian appointment stays as it says
(with --until, the acting account's rights end then). What this node
already held stays readable here (see SECURITY.md, "Handing over a minor's
account"). It needs the running daemon; Ctrl-C cancels the offer.
With --json it prints the offer, as POST /api/v1/guardians/handover
answers, and does not wait.`, `
blockmrs guardian handover Kim`)
	f.withAccount()
	noQR := f.Bool("no-qr", false, "print the code without the QR code")
	pos, err := f.parseArgs(args, false, "WARD")
	if err != nil {
		return err
	}
	// withKeys moves the command into the daemon when one runs.
	return f.withKeys(ctx, func(repo *keyshare.Repo, keys *keyshare.Keys) error {
		svc, h := daemonPair(ctx), daemonHost(ctx)
		if svc == nil || h == nil {
			return errPairNeedsDaemon
		}
		offer, err := ops.HandoverStart(ctx, repo, daemonSessions(ctx), svc, h, keys, ops.HandoverRequest{Ward: pos[0]})
		if err != nil {
			return err
		}
		if f.json {
			return f.printJSON(offer)
		}
		out := f.out()
		joined, cancelled, err := showOfferAndWait(ctx, out, svc, offer.PairOffer, *noQR,
			fmt.Sprintf("hand-over code for %s (%s), secret %s, valid until %s:", clean(offer.WardName), offer.Account, offer.Secret, offer.Expires.Local().Format(time.TimeOnly)),
			"on the grown-up's node: "+offer.Join,
			"waiting for it (Ctrl-C cancels)...")
		if cancelled {
			return errors.New("hand-over cancelled: the keys stay here")
		}
		if err != nil {
			return fmt.Errorf("hand-over: %w (the keys stay here)", err)
		}
		done, err := ops.HandoverDone(ctx, repo, offer.Account)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "%s joined node %s\n", clean(offer.WardName), joined.PeerID)
		if !done {
			return fmt.Errorf("hand-over: the new node stored the account, but this repo still holds its keys (see the daemon's log)")
		}
		fmt.Fprintf(out, "this repo no longer holds %s's keys; the new node withdraws this node and rotates them\n", clean(offer.WardName))
		return nil
	})
}

// deviceTakeover is device join --takeover: join, then withdraw the
// offering node with a key rotation.
func deviceTakeover(ctx context.Context, f *cmdFlags, repo *keyshare.Repo, req ops.JoinRequest) error {
	self := ""
	if h := daemonHost(ctx); h != nil {
		self = h.ID().String()
	}
	res, err := ops.Takeover(ctx, repo, daemonSessions(ctx), daemonPair(ctx), self, req)
	if err != nil {
		return err
	}
	return f.printTable(res, func(t io.Writer) error {
		keys := "unencrypted"
		if res.Account.Encrypted {
			keys = "encrypted with a passphrase"
		}
		fmt.Fprintf(t, "took over\t%s (%s)\n", clean(res.Account.Name), res.Account.ID)
		fmt.Fprintf(t, "from\t%s (withdrawn in block %s)\n", res.From, res.Removed.Block)
		fmt.Fprintf(t, "keys\t%s\n", keys)
		if res.Removed.Signing {
			fmt.Fprintf(t, "rotated\tsigning and decryption keys: the node that offered the account can no longer sign for it, nor open records written from now on\n")
		}
		if res.Removed.Note != "" {
			fmt.Fprintf(t, "note\t%s\n", strings.TrimSpace(res.Removed.Note))
		}
		return nil
	})
}
