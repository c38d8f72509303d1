package ops

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	qrcode "github.com/skip2/go-qrcode"

	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/node/pair"
	"github.com/blockmrs/blockmrs/protocol"
)

// Devices paired by a code (node/pair) and removed with a key rotation.

// PairOffer is the result of PairStart and, while an offer is pending,
// part of PairState: what the new device needs.
type PairOffer struct {
	// Account is the account whose keys the offer gives.
	Account protocol.AccountID `json:"account"`
	// Secret is the one-time secret, grouped for reading out
	// (7KQ2-M9XF-3TRA): 60 bits, valid once, for Expires.
	Secret string `json:"secret"`
	// Address is this node's address, ending in /p2p/PEER_ID.
	Address string `json:"address"`
	// Code is what 'blockmrs device join' takes, "ADDRESS SECRET", and
	// what the QR code holds.
	Code string `json:"code"`
	// Expires is when the offer ends.
	Expires time.Time `json:"expires"`
}

// PairState is the result of PairStatus and PairCancel.
type PairState struct {
	// Pending is true while an offer waits for a device.
	Pending bool `json:"pending"`
	// Joining is true while a device that gave the right code is sent the
	// account: Joined or Ended follows.
	Joining bool `json:"joining,omitempty"`
	// Offer is the pending offer.
	Offer *PairOffer `json:"offer,omitempty"`
	// Joined is the device that used the last offer, if one did.
	Joined *pair.Joined `json:"joined,omitempty"`
	// Ended says why the last offer ended without a device.
	Ended string `json:"ended,omitempty"`
	// Cancelled is true when PairCancel ended a pending offer.
	Cancelled bool `json:"cancelled,omitempty"`
}

// PairQRLevel is the error correction of pairing QR codes (as share
// codes').
const PairQRLevel = ShareQRLevel

// PairStart makes a pairing offer for k's account on the running node
// (replacing a pending one). svc or h nil is ErrNoNode.
func PairStart(svc *pair.Service, h host.Host, k *keyshare.Keys) (PairOffer, error) {
	if svc == nil || h == nil {
		return PairOffer{}, fmt.Errorf("pair a device: %w", ErrNoNode)
	}
	if len(h.Addrs()) == 0 {
		return PairOffer{}, fmt.Errorf("pair a device: the node listens on no address: %w", ErrNoNode)
	}
	o, err := svc.Offer(k)
	if err != nil {
		return PairOffer{}, fmt.Errorf("pair a device: %w", err)
	}
	return offerOf(o, h), nil
}

func offerOf(o pair.Offer, h host.Host) PairOffer {
	addr := shareAddr(h.Addrs(), h.ID().String())
	return PairOffer{Account: o.Account, Secret: o.Secret, Address: addr, Code: addr + " " + o.Secret, Expires: o.Expires}
}

// PairStatus reports the node's pairing offer.
func PairStatus(svc *pair.Service, h host.Host) (PairState, error) {
	if svc == nil || h == nil {
		return PairState{}, fmt.Errorf("pairing: %w", ErrNoNode)
	}
	st := svc.Status()
	out := PairState{Pending: st.Pending, Joining: st.Joining, Joined: st.Joined, Ended: st.Ended}
	if st.Offer != nil && len(h.Addrs()) > 0 {
		o := offerOf(*st.Offer, h)
		out.Offer = &o
	}
	return out, nil
}

// PairCancel ends the node's pending offer.
func PairCancel(svc *pair.Service, h host.Host) (PairState, error) {
	if svc == nil || h == nil {
		return PairState{}, fmt.Errorf("pairing: %w", ErrNoNode)
	}
	cancelled := svc.Cancel()
	out, err := PairStatus(svc, h)
	out.Cancelled = cancelled
	return out, err
}

// PairQR makes the QR code of an offer's pairing code.
func PairQR(o PairOffer) (*qrcode.QRCode, error) {
	code, err := qrcode.New(o.Code, PairQRLevel)
	if err != nil {
		return nil, fmt.Errorf("pairing code: QR code: %w", err)
	}
	return code, nil
}

// ParsePairCode splits a pairing code, "ADDRESS SECRET" (the address
// ending in /p2p/PEER_ID), as PairOffer.Code has it.
func ParsePairCode(code string) (peer.AddrInfo, string, error) {
	code = strings.TrimSpace(code)
	if len(code) > 2048 {
		return peer.AddrInfo{}, "", invalidf("pairing code: over 2048 bytes")
	}
	addr, secret, ok := strings.Cut(code, " ")
	if !ok || !strings.HasPrefix(addr, "/") {
		return peer.AddrInfo{}, "", invalidf("pairing code: want \"ADDRESS SECRET\" as 'blockmrs device pair' shows it (the address starts with /ip4/ or /ip6/ and ends in /p2p/PEER_ID)")
	}
	a, err := ma.NewMultiaddr(addr)
	if err != nil {
		return peer.AddrInfo{}, "", invalidf("pairing code: address %q: %v", truncate(addr), err)
	}
	info, err := peer.AddrInfoFromP2pAddr(a)
	if err != nil {
		return peer.AddrInfo{}, "", invalidf("pairing code: address %q must end in /p2p/PEER_ID", truncate(addr))
	}
	s, err := protocol.ParsePairSecret(secret)
	if err != nil {
		return peer.AddrInfo{}, "", invalidf("pairing code: %v", err)
	}
	return *info, s, nil
}

// JoinRequest joins this node to an account another device offers.
type JoinRequest struct {
	// Code is the pairing code the other device shows, "ADDRESS SECRET".
	Code string `json:"code"`
	// Name labels this node on the account's chain (phone, laptop).
	Name string `json:"name,omitempty"`
	// Passphrase encrypts the account's keys on this node ("" stores
	// them unencrypted).
	Passphrase string `json:"passphrase,omitempty"`
}

// JoinResult is the result of PairJoin.
type JoinResult struct {
	// Account is the account this node now acts for.
	Account Account `json:"account"`
	// From is the peer ID of the device that gave the keys.
	From string `json:"from"`
}

// PairJoin joins this node to the account the device at req.Code offers
// (node/pair: the code's secret proven over both peer IDs, the keys and
// chain received, the keys stored under req.Passphrase). A refusal by
// the other device is ErrForbidden with its reason; nothing is stored
// then.
func PairJoin(ctx context.Context, svc *pair.Service, req JoinRequest) (JoinResult, error) {
	if svc == nil {
		return JoinResult{}, fmt.Errorf("join an account: %w", ErrNoNode)
	}
	addr, secret, err := ParsePairCode(req.Code)
	if err != nil {
		return JoinResult{}, err
	}
	if len(req.Name) > protocol.MaxNameLen {
		return JoinResult{}, invalidf("name: over %d bytes", protocol.MaxNameLen)
	}
	if len(req.Passphrase) > MaxPassphrase {
		return JoinResult{}, invalidf("passphrase: over %d bytes", MaxPassphrase)
	}
	pass := []byte(req.Passphrase)
	defer clear(pass)
	info, err := svc.Join(ctx, addr, secret, req.Name, pass)
	if errors.Is(err, pair.ErrRefused) {
		return JoinResult{}, fmt.Errorf("join an account: %w: %w (nothing was stored)", ErrForbidden, err)
	}
	if err != nil {
		return JoinResult{}, fmt.Errorf("join an account: %w", err)
	}
	return JoinResult{Account: AccountOf(info), From: addr.ID.String()}, nil
}

// RemoveDeviceRequest removes a device of the acting account.
type RemoveDeviceRequest struct {
	// PeerID is the device's node.
	PeerID string `json:"peer_id"`
	// KeepKey withdraws the device without rotating the account's keys.
	KeepKey bool `json:"keep_key,omitempty"`
	// Passphrase is the account's passphrase, which rotating the signing
	// key needs when the keys are encrypted (the new key file is
	// encrypted with it). Without it only the age key rotates.
	Passphrase string `json:"passphrase,omitempty"`
}

// DeviceRemoved is the result of RemoveDevice.
type DeviceRemoved struct {
	// Account is the acting account.
	Account protocol.AccountID `json:"account"`
	// PeerID is the removed device's node.
	PeerID string `json:"peer_id"`
	// Block is the chain block that withdraws it.
	Block string `json:"block"`
	// Rotated is the chain block holding the new profile entry (the new
	// age recipient); "" when the key did not rotate (see Note).
	Rotated string `json:"rotated,omitempty"`
	// Recipient is the account's new age recipient.
	Recipient string `json:"recipient,omitempty"`
	// Retired counts the earlier age identities the keys keep to open
	// older records.
	Retired int `json:"retired"`
	// Signing is true when the signing key rotated too (a succession in
	// the block that withdraws the device).
	Signing bool `json:"signing"`
	// Note, when set, says why a key did not rotate.
	Note string `json:"note,omitempty"`
}

// NoteSelf is DeviceRemoved.Note when the device removed is this node.
const NoteSelf = "this node was removed, and the key not rotated: this node would know the new key. Rotate it by removing this node from another device of the account"

// NoteNoPassphrase is DeviceRemoved.Note when the signing key could not
// rotate.
const NoteNoPassphrase = "the signing key did not rotate (the account's keys are encrypted and no passphrase was given): the removed device can still sign as the account; remove it again with the passphrase to rotate it"

// NoteKept is DeviceRemoved.Note when the caller asked for no rotation.
const NoteKept = "the key was not rotated, as asked: the removed device can still open records written for the account"

// RemoveDevice withdraws device req.PeerID from k's account and rotates
// the account's age identity (keyshare.Repo.RotateAge), so that records
// written after the new profile reaches their authors are closed to the
// removed device. self is this node's peer ID: when the device removed is
// this node, or req.KeepKey is set, the key does not rotate (Note says so), for
// this node would know the new key. An open session of the account
// (sessions, may be nil) gets the rotated keys.
func RemoveDevice(ctx context.Context, repo *keyshare.Repo, sessions *keyshare.Sessions, k *keyshare.Keys, self string, req RemoveDeviceRequest) (DeviceRemoved, error) {
	raw, err := protocol.ParsePeerID(req.PeerID)
	if err != nil {
		return DeviceRemoved{}, invalidf("peer_id %q: %v", truncate(req.PeerID), err)
	}
	peerID := (&protocol.Device{Peer: raw}).PeerID()
	info, err := repo.Account(ctx, k.ID)
	if err != nil {
		return DeviceRemoved{}, err
	}
	if !declared(info, peerID, false) {
		return DeviceRemoved{}, fmt.Errorf("device %s is not declared for %s: %w", peerID, k.ID, ErrNotFound)
	}
	if len(req.Passphrase) > MaxPassphrase {
		return DeviceRemoved{}, invalidf("passphrase: over %d bytes", MaxPassphrase)
	}
	if peerID == self || req.KeepKey {
		set, err := Withdraw(ctx, repo, k, WithdrawRequest{PeerID: peerID})
		if err != nil {
			return DeviceRemoved{}, err
		}
		note := NoteKept
		if peerID == self {
			note = NoteSelf
		}
		return DeviceRemoved{Account: k.ID, PeerID: peerID, Block: set.Block, Retired: len(k.Old), Note: note}, nil
	}
	var rot keyshare.Rotated
	var block, note string
	if !info.Encrypted || req.Passphrase != "" {
		pass := []byte(req.Passphrase)
		defer clear(pass)
		if info.Encrypted {
			// The succession writes the new key file under pass: check it
			// opens the current one first, so a typo cannot lock the keys.
			if _, err := repo.Unlock(ctx, k.ID, pass); err != nil {
				if errors.Is(err, keyshare.ErrWrongPassphrase) {
					return DeviceRemoved{}, fmt.Errorf("remove device %s: %w: %w", peerID, ErrForbidden, err)
				}
				return DeviceRemoved{}, fmt.Errorf("remove device %s: %w", peerID, err)
			}
		}
		withdraw := protocol.NewEntry(&protocol.Device{Peer: raw, Remove: true})
		if rot, err = repo.RotateAll(ctx, k, pass, []protocol.Entry{withdraw}); err != nil {
			if errors.Is(err, keyshare.ErrWrongPassphrase) {
				return DeviceRemoved{}, fmt.Errorf("remove device %s: %w: %w", peerID, ErrForbidden, err)
			}
			return DeviceRemoved{}, fmt.Errorf("remove device %s: %w", peerID, err)
		}
		block = rot.Block.String()
	} else {
		set, err := Withdraw(ctx, repo, k, WithdrawRequest{PeerID: peerID})
		if err != nil {
			return DeviceRemoved{}, err
		}
		if rot, err = repo.RotateAge(ctx, k); err != nil {
			return DeviceRemoved{}, fmt.Errorf("device %s withdrawn in block %s, but the key did not rotate: %w", peerID, set.Block, err)
		}
		block, note = set.Block, NoteNoPassphrase
	}
	if sessions != nil {
		sessions.Replace(rot.Keys)
	}
	out := DeviceRemoved{Account: k.ID, PeerID: peerID, Block: block, Rotated: rot.Block.String(), Recipient: rot.Recipient, Retired: len(rot.Keys.Old), Signing: rot.Signing, Note: note}
	rot.Keys.Wipe()
	return out, nil
}
