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
	pairing "github.com/blockmrs/blockmrs/node/pair"
)

// device pair, device join and device rm (with a key rotation): devices
// added by a pairing code and removed for good.

// daemonPair returns the running node's pairing service when ctx's
// command runs inside the daemon, else nil.
func daemonPair(ctx context.Context) *pairing.Service {
	if inv := invocationOf(ctx); inv.inDaemon() {
		return inv.rt.Pair
	}
	return nil
}

var errPairNeedsDaemon = errors.New("pairing needs the running daemon ('blockmrs daemon'): the other device connects to it over the network")

func runDevicePair(ctx context.Context, args []string) error {
	f := newFlags("device pair", "[flags]", `
Device pair offers the acting account to a new device (a phone, a second
laptop): it shows a pairing code and its QR code, then waits until the
new device joins with 'blockmrs device join CODE', or the code expires.
The code holds this node's address and a one-time secret (60 bits, 12
characters, valid for 10 minutes; 3 wrong tries spend it). When the new
device proves the secret, this node declares it a device on the
account's chain and sends it the account's keys and chain over the
encrypted, authenticated connection. Anyone who reads the code in time
can join: show it only to the new device. Ctrl-C cancels the offer.
With --json it prints the offer, as POST /api/v1/devices/pair answers,
and does not wait.`, `
blockmrs device pair
blockmrs device pair --account "Sam (minor)"`)
	f.withAccount()
	noQR := f.Bool("no-qr", false, "print the code without the QR code")
	if _, err := f.parseArgs(args, false); err != nil {
		return err
	}
	// withKeys moves the command into the daemon when one runs.
	return f.withKeys(ctx, func(_ *keyshare.Repo, keys *keyshare.Keys) error {
		svc, h := daemonPair(ctx), daemonHost(ctx)
		if svc == nil || h == nil {
			return errPairNeedsDaemon
		}
		offer, err := ops.PairStart(svc, h, keys)
		if err != nil {
			return err
		}
		if f.json {
			return f.printJSON(offer)
		}
		out := f.out()
		joined, cancelled, err := showOfferAndWait(ctx, out, svc, offer, *noQR,
			fmt.Sprintf("pairing code for %s (secret %s), valid until %s:", offer.Account, offer.Secret, offer.Expires.Local().Format(time.TimeOnly)),
			"on the new device: blockmrs device join '"+offer.Code+"'",
			"waiting for the new device (Ctrl-C cancels)...")
		if cancelled {
			return errors.New("pairing cancelled")
		}
		if err != nil {
			return fmt.Errorf("pairing: %w", err)
		}
		name := ""
		if joined.Name != "" {
			name = " (" + clean(joined.Name) + ")"
		}
		fmt.Fprintf(out, "device %s%s joined %s; declared in block %s\n", joined.PeerID, name, joined.Account, joined.Block)
		return nil
	})
}

// showOfferAndWait prints a pairing offer (its QR code unless noQR, then
// head, the code, and the lines after it) and waits until the offer ends.
// When ctx ends first it cancels the offer: cancelled is true.
func showOfferAndWait(ctx context.Context, out io.Writer, svc *pairing.Service, offer ops.PairOffer, noQR bool, head string, after ...string) (joined pairing.Joined, cancelled bool, err error) {
	if !noQR {
		q, err := ops.PairQR(offer)
		if err != nil {
			return pairing.Joined{}, false, err
		}
		fmt.Fprint(out, q.ToSmallString(false))
	}
	fmt.Fprintln(out, head)
	fmt.Fprintf(out, "  %s\n", offer.Code)
	for _, l := range after {
		fmt.Fprintln(out, l)
	}
	joined, err = svc.Wait(ctx)
	if ctx.Err() != nil {
		svc.Cancel()
		return pairing.Joined{}, true, ctx.Err()
	}
	return joined, false, err
}

func runDeviceJoin(ctx context.Context, args []string) error {
	f := newFlags("device join", "[flags] CODE", `
Device join, on a new device, joins this node to the account another
device offers with 'blockmrs device pair': CODE is the code it shows,
"ADDRESS SECRET" (quoted, or as two arguments). This node connects to the
address, proves the secret bound to both nodes' peer IDs, checks that the
other node knows it too, and stores the account's chain and keys,
encrypted with $BLOCKMRS_PASSPHRASE (set but empty, or --no-passphrase:
unencrypted). This node then acts for the account: it reads and writes
its records and syncs with its other devices. A wrong, expired or used
code stores nothing. It needs this device's daemon running.
With --takeover (for a code 'blockmrs guardian handover' shows: a minor's
account handed over to the grown-up's node) it then withdraws the node
that offered the account and rotates the account's signing and
decryption keys, as 'blockmrs device rm' does; with --json it prints
what POST /api/v1/devices/takeover answers.`, `
BLOCKMRS_PASSPHRASE=... blockmrs device join '/ip4/192.168.1.20/tcp/4001/p2p/12D3KooW... 7KQ2-M9XF-3TRA'
BLOCKMRS_PASSPHRASE=... blockmrs device join --takeover '/ip4/192.168.1.20/tcp/4001/p2p/12D3KooW... 7KQ2-M9XF-3TRA'
blockmrs device join --name phone /ip4/192.168.1.20/tcp/4001/p2p/12D3KooW... 7KQ2-M9XF-3TRA`)
	name := f.String("name", "", "this device's `NAME` on the account's chain (phone, laptop)")
	noPass := f.Bool("no-passphrase", false, "store the account's keys unencrypted on this device")
	takeover := f.Bool("takeover", false, "take the account over: withdraw the node that offered it and rotate the keys (guardian handover)")
	pos, err := f.parseArgs(args, true, "CODE")
	if err != nil {
		return err
	}
	if len(pos) > 2 {
		return usagef("CODE is \"ADDRESS SECRET\": at most two arguments")
	}
	// withRepo moves the command into the daemon when one runs.
	return f.withRepo(ctx, func(repo *keyshare.Repo) error {
		svc := daemonPair(ctx)
		if svc == nil {
			return errPairNeedsDaemon
		}
		var pass []byte
		if !*noPass {
			p, ok := passphraseGiven(ctx)
			if !ok {
				return fmt.Errorf("no passphrase for the account's keys on this device: set $%s (empty for none) or use --no-passphrase", envPassphrase)
			}
			pass = p
		}
		req := ops.JoinRequest{Code: strings.Join(pos, " "), Name: *name, Passphrase: string(pass)}
		if *takeover {
			return deviceTakeover(ctx, f, repo, req)
		}
		res, err := ops.PairJoin(ctx, svc, req)
		if err != nil {
			return err
		}
		return f.printTable(res, func(t io.Writer) error {
			keys := "unencrypted"
			if res.Account.Encrypted {
				keys = "encrypted with a passphrase"
			}
			fmt.Fprintf(t, "joined\t%s (%s)\n", clean(res.Account.Name), res.Account.ID)
			fmt.Fprintf(t, "from\t%s\n", res.From)
			fmt.Fprintf(t, "keys\t%s\n", keys)
			return nil
		})
	})
}

// runDeviceRm removes a device and rotates the account's key.
func runDeviceRm(ctx context.Context, args []string) error {
	f := newFlags("device rm", "[flags] PEERID", `
Device rm removes a device (a lost phone, a laptop given away): it signs,
on the acting account's chain, that the node no longer acts for the
account, so every node that syncs the chain stops serving it; in the same
block the chain continues under a fresh signing key (the old one is
retired: blocks the removed device signs are refused) and a new profile
entry names a new age recipient, for which authors and grantors wrap
future records. The old age key stays on this node to open older
records; the account's other devices copy the new keys from this one
when they next connect. Encrypted keys need the passphrase for the
signing key ($BLOCKMRS_PASSPHRASE, or the one the daemon asks for);
without it only the age key rotates. The removed device keeps whatever it
already held (see SECURITY.md, "Devices: pairing and removal"). Removing this node
itself, or --keep-key, only withdraws the declaration.`, `
blockmrs device rm 12D3KooW...`)
	f.withAccount()
	keep := f.Bool("keep-key", false, "withdraw the device without rotating the account's key")
	pos, err := f.parseArgs(args, false, "PEERID")
	if err != nil {
		return err
	}
	return f.withKeys(ctx, func(repo *keyshare.Repo, keys *keyshare.Keys) error {
		self := ""
		if h := daemonHost(ctx); h != nil {
			self = h.ID().String()
		} else if d, err := thisNode(repo); err == nil {
			self = d.PeerID
		}
		req := ops.RemoveDeviceRequest{PeerID: pos[0], KeepKey: *keep}
		if p, ok := passphraseGiven(ctx); ok {
			req.Passphrase = string(p) // the succession's new key file is encrypted with it
		}
		out, err := ops.RemoveDevice(ctx, repo, daemonSessions(ctx), keys, self, req)
		if err != nil {
			return err
		}
		if f.json {
			return f.printJSON(out)
		}
		fmt.Fprintf(f.out(), "withdrew device %s in block %s\n", out.PeerID, out.Block)
		switch {
		case out.Signing:
			fmt.Fprintf(f.out(), "rotated the account's signing and decryption keys in block %s: blocks the removed device signs are refused, and records written from now on are closed to it (it keeps what it already held)\n", out.Rotated)
		case out.Rotated != "":
			fmt.Fprintf(f.out(), "rotated the account's decryption key in block %s: records written from now on are closed to the removed device (it keeps what it already held)\n", out.Rotated)
		}
		if out.Note != "" {
			fmt.Fprintf(f.out(), "note: %s\n", out.Note)
		}
		return nil
	})
}
