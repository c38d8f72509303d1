package ops

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/protocol"
)

// Recovery of a lost key (keyshare/recovery.go): recovery contacts and a
// threshold on the account's chain; after every device is lost, a new
// repo starts a recovery, contacts approve it, and it finishes once
// enough did.

// RecoverySetupRequest names the acting account's recovery contacts.
type RecoverySetupRequest struct {
	// Contacts are the recovery contacts (names, IDs or ID suffixes of
	// accounts this repo knows); none, with Threshold 0, turns recovery off.
	Contacts []string `json:"contacts"`
	// Threshold is how many of them must approve a recovery.
	Threshold int `json:"threshold"`
}

// RecoveryShown is the result of SetupRecovery and ShowRecovery.
type RecoveryShown struct {
	// Account is the acting account.
	Account protocol.AccountID `json:"account"`
	// Setup is its live recovery setup; absent when recovery is off.
	Setup *keyshare.RecoveryInfo `json:"setup,omitempty"`
	// ContactOf lists the accounts that name one of this repo's accounts
	// as a recovery contact.
	ContactOf []keyshare.RecoveryInfo `json:"contact_of"`
	// Block is the chain block written, for SetupRecovery.
	Block string `json:"block,omitempty"`
}

// SetupRecovery writes the acting account's recovery setup.
func SetupRecovery(ctx context.Context, repo *keyshare.Repo, k *keyshare.Keys, req RecoverySetupRequest) (RecoveryShown, error) {
	var ids []protocol.AccountID
	for _, sel := range req.Contacts {
		sel = strings.TrimSpace(sel)
		if sel == "" {
			continue
		}
		info, err := repo.Resolve(ctx, sel, false)
		if err != nil {
			return RecoveryShown{}, invalidWith("recovery contact "+truncate(sel), err, "add the contact first")
		}
		ids = append(ids, info.ID)
	}
	c, err := repo.SetupRecovery(ctx, k, ids, req.Threshold)
	if err != nil {
		return RecoveryShown{}, invalidWith("recovery setup", err, "")
	}
	out, err := ShowRecovery(ctx, repo, k.ID)
	out.Block = c.String()
	return out, err
}

// invalidWith wraps err as refused input, with a hint when not empty.
func invalidWith(what string, err error, hint string) error {
	if errors.Is(err, ErrInvalid) {
		return err
	}
	return &invalidCause{what: what, err: err, hint: hint}
}

// ShowRecovery reports account id's recovery setup and the accounts that
// name this repo's accounts as recovery contacts.
func ShowRecovery(ctx context.Context, repo *keyshare.Repo, id protocol.AccountID) (RecoveryShown, error) {
	setup, err := repo.Recovery(ctx, id)
	if err != nil {
		return RecoveryShown{}, err
	}
	of, err := repo.RecoveryContactOf(ctx)
	if err != nil {
		return RecoveryShown{}, err
	}
	if of == nil {
		of = []keyshare.RecoveryInfo{}
	}
	return RecoveryShown{Account: id, Setup: setup, ContactOf: of}, nil
}

// RecoveryStartRequest starts the recovery of an account on this repo.
type RecoveryStartRequest struct {
	// Account is the account to recover (its ID, or a name this repo
	// knows); its chain must be here (add it as a contact from one of its
	// contacts' nodes first).
	Account string `json:"account"`
	// Passphrase encrypts the new keys; empty stores them unencrypted.
	Passphrase string `json:"passphrase,omitempty"`
	// Via are addresses (multiaddrs ending in /p2p/PEER-ID) of contacts'
	// nodes the running node delivers the request to, besides the nodes
	// the contacts' chains declare.
	Via []string `json:"via,omitempty"`
}

// RecoveryAccount names the account a recovery step is about.
type RecoveryAccount struct {
	// Account is the account being recovered.
	Account string `json:"account"`
}

// resolveAny finds a known account for a recovery step.
func resolveAny(ctx context.Context, repo *keyshare.Repo, sel string) (protocol.AccountID, error) {
	if strings.TrimSpace(sel) == "" {
		return "", invalidf("no account given: name the account to recover")
	}
	info, err := repo.Resolve(ctx, sel, false)
	if err != nil {
		if errors.Is(err, keyshare.ErrUnknownAccount) {
			return "", fmt.Errorf("%w: %v", ErrNotFound, err)
		}
		return "", invalidWith("account", err, "")
	}
	return info.ID, nil
}

// recoveryError maps a keyshare refusal to ErrForbidden.
func recoveryError(err error) error {
	if errors.Is(err, keyshare.ErrRecovery) {
		return fmt.Errorf("%w: %v", ErrForbidden, err)
	}
	return err
}

// StartRecovery makes new keys for an account this repo holds the chain
// of and a request for its recovery contacts (RecoveryStatus.Token).
func StartRecovery(ctx context.Context, repo *keyshare.Repo, req RecoveryStartRequest) (*keyshare.RecoveryStatus, error) {
	id, err := resolveAny(ctx, repo, req.Account)
	if err != nil {
		return nil, err
	}
	if len(req.Via) > protocol.MaxRecoveryContacts {
		return nil, invalidf("via: %d contact nodes, at most %d", len(req.Via), protocol.MaxRecoveryContacts)
	}
	var via []string
	for _, v := range req.Via {
		v = strings.TrimSpace(v)
		if v == "" {
			continue
		}
		if _, err := peer.AddrInfoFromString(v); err != nil {
			return nil, invalidf("via %q: not an address ending in /p2p/PEER-ID (a contact's node address, from its 'id' command)", truncate(v))
		}
		via = append(via, v)
	}
	s, err := repo.StartRecoveryVia(ctx, id, []byte(req.Passphrase), via)
	return s, recoveryError(err)
}

// RecoveryStatus reports the recovery of an account this repo started.
func RecoveryStatus(ctx context.Context, repo *keyshare.Repo, req RecoveryAccount) (*keyshare.RecoveryStatus, error) {
	id, err := resolveAny(ctx, repo, req.Account)
	if err != nil {
		return nil, err
	}
	s, err := repo.RecoveryStatus(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotFound, err)
	}
	return s, nil
}

// CancelRecovery forgets a recovery this repo started.
func CancelRecovery(ctx context.Context, repo *keyshare.Repo, req RecoveryAccount) error {
	id, err := resolveAny(ctx, repo, req.Account)
	if err != nil {
		return err
	}
	if err := repo.CancelRecovery(ctx, id); err != nil {
		return fmt.Errorf("%w: %v", ErrNotFound, err)
	}
	return nil
}

// RecoveryApproveRequest is a contact's approval of a recovery request.
type RecoveryApproveRequest struct {
	// Request is the request's inbox ID (from RecoveryRequests, when it
	// came over the network) or the token the recovering owner gave (hex).
	Request string `json:"request"`
}

// RecoveryApproved is the result of ApproveRecovery.
type RecoveryApproved struct {
	// Account is the account whose recovery was approved.
	Account protocol.AccountID `json:"account"`
	// Contact is the approving account.
	Contact protocol.AccountID `json:"contact"`
	// Response is the approval with the contact's re-encrypted share
	// (hex), to give back to the recovering owner.
	Response string `json:"response"`
	// Queued tells that the request came over the network: the response
	// waits in the inbox for the recovering node, which fetches it.
	Queued bool `json:"queued,omitempty"`
}

// maxTokenHex bounds a hex token (a request or a response).
const maxTokenHex = 2 * protocol.MaxRecoveryResponse

func decodeToken(what, s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if s == "" || len(s) > maxTokenHex {
		return nil, invalidf("%s: give the hex token, at most %d characters", what, maxTokenHex)
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		return nil, invalidf("%s: not a hex token (copy it whole)", what)
	}
	return b, nil
}

// ApproveRecovery approves, as k, a recovery request of an account that
// names k as a recovery contact.
func ApproveRecovery(ctx context.Context, repo *keyshare.Repo, k *keyshare.Keys, req RecoveryApproveRequest) (RecoveryApproved, error) {
	raw, kept, err := repo.KeptRecoveryRequest(ctx, strings.TrimSpace(req.Request))
	if err != nil {
		return RecoveryApproved{}, err
	}
	if !kept && len(strings.TrimSpace(req.Request)) == 2*32 {
		return RecoveryApproved{}, fmt.Errorf("%w: no recovery request %s in this node's inbox (see 'recovery requests'), and too short for a token", ErrNotFound, truncate(req.Request))
	}
	if !kept {
		if raw, err = decodeToken("recovery request", req.Request); err != nil {
			return RecoveryApproved{}, err
		}
	}
	q, err := protocol.DecodeRecoveryRequest(raw)
	if err != nil {
		return RecoveryApproved{}, invalidWith("recovery request", err, "")
	}
	var resp []byte
	if kept {
		resp, err = repo.ApproveKeptRecovery(ctx, k, strings.TrimSpace(req.Request))
	} else {
		resp, err = repo.ApproveRecovery(ctx, k, raw)
	}
	if err != nil {
		if errors.Is(err, keyshare.ErrUnknownAccount) {
			return RecoveryApproved{}, fmt.Errorf("%w: %v", ErrNotFound, err)
		}
		return RecoveryApproved{}, recoveryError(err)
	}
	return RecoveryApproved{Account: protocol.AccountIDFromKey(q.Account), Contact: k.ID, Response: hex.EncodeToString(resp), Queued: kept}, nil
}

// RecoveryCheckInstruction is what a contact must do before approving a
// request that came over the network.
const RecoveryCheckInstruction = "call them and compare this code before approving: a new key proves nothing, anyone holding the chain can ask"

// RecoveryInbox is the result of RecoveryRequests.
type RecoveryInbox struct {
	// Requests are the recovery requests this node received, oldest first.
	Requests []keyshare.RecoveryInboxItem `json:"requests"`
	// Instruction says how to check a request before approving it.
	Instruction string `json:"instruction"`
}

// RecoveryRequests lists the recovery requests this node received for
// accounts that name its accounts as recovery contacts.
func RecoveryRequests(ctx context.Context, repo *keyshare.Repo) (RecoveryInbox, error) {
	l, err := repo.RecoveryRequests(ctx)
	return RecoveryInbox{Requests: l, Instruction: RecoveryCheckInstruction}, err
}

// RecoveryDenyRequest names a received recovery request to drop.
type RecoveryDenyRequest struct {
	// ID is the request's inbox ID (hex).
	ID string `json:"id"`
}

// DenyRecoveryRequest drops a received recovery request; the same request
// delivered again is refused.
func DenyRecoveryRequest(ctx context.Context, repo *keyshare.Repo, req RecoveryDenyRequest) (RecoveryDenyRequest, error) {
	id := strings.TrimSpace(req.ID)
	if b, err := hex.DecodeString(id); err != nil || len(b) != 32 {
		return req, invalidf("recovery request ID: give the 64 hex characters 'recovery requests' shows")
	}
	if err := repo.DenyRecoveryRequest(ctx, id); err != nil {
		return req, fmt.Errorf("%w: %v", ErrNotFound, err)
	}
	return RecoveryDenyRequest{ID: strings.ToLower(id)}, nil
}

// RecoveryRespondRequest gives a recovering repo a contact's response.
type RecoveryRespondRequest struct {
	// Account is the account being recovered.
	Account string `json:"account"`
	// Response is the contact's response token (hex).
	Response string `json:"response"`
}

// AddRecoveryResponse adds a contact's response to a recovery this repo
// started.
func AddRecoveryResponse(ctx context.Context, repo *keyshare.Repo, req RecoveryRespondRequest) (*keyshare.RecoveryStatus, error) {
	id, err := resolveAny(ctx, repo, req.Account)
	if err != nil {
		return nil, err
	}
	raw, err := decodeToken("recovery response", req.Response)
	if err != nil {
		return nil, err
	}
	s, err := repo.AddRecoveryResponse(ctx, id, raw)
	if err != nil && !errors.Is(err, keyshare.ErrRecovery) {
		return nil, invalidWith("recovery response", err, "")
	}
	return s, recoveryError(err)
}

// RecoveryFinishRequest finishes a recovery.
type RecoveryFinishRequest struct {
	// Account is the account being recovered.
	Account string `json:"account"`
	// Passphrase is the one given to StartRecovery.
	Passphrase string `json:"passphrase,omitempty"`
	// Device is this node's peer ID, declared as a device of the
	// recovered account in the recovery block; empty declares none.
	Device string `json:"device,omitempty"`
}

// RecoveryFinished is the result of FinishRecovery.
type RecoveryFinished struct {
	// Account is the recovered account, now local to this repo.
	Account protocol.AccountID `json:"account"`
	// Signing is which key signs its chain now.
	Signing keyshare.SigningInfo `json:"signing"`
}

// FinishRecovery completes a recovery that enough contacts approved.
func FinishRecovery(ctx context.Context, repo *keyshare.Repo, req RecoveryFinishRequest) (RecoveryFinished, error) {
	id, err := resolveAny(ctx, repo, req.Account)
	if err != nil {
		return RecoveryFinished{}, err
	}
	var nodes []keyshare.DeviceInfo
	if req.Device != "" {
		if _, err := protocol.ParsePeerID(req.Device); err != nil {
			return RecoveryFinished{}, invalidWith("device", err, "")
		}
		nodes = append(nodes, keyshare.DeviceInfo{PeerID: req.Device, Name: "recovered"})
	}
	k, err := repo.FinishRecovery(ctx, id, []byte(req.Passphrase), nodes...)
	if err != nil {
		if errors.Is(err, keyshare.ErrWrongPassphrase) || errors.Is(err, keyshare.ErrPassphraseNeeded) {
			return RecoveryFinished{}, invalidWith("recovery", err, "give the passphrase given to recovery start")
		}
		return RecoveryFinished{}, recoveryError(err)
	}
	info, err := repo.Signing(ctx, id, k)
	return RecoveryFinished{Account: id, Signing: info}, err
}
