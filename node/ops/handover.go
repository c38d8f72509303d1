package ops

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/libp2p/go-libp2p/core/host"

	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/node/pair"
	"github.com/blockmrs/blockmrs/protocol"
)

// The hand-over of a minor's account to the grown-up's own node: the
// guardian's node offers the ward's keys by a pairing code (HandoverStart,
// node/pair) and forgets them once the grown-up's node stored them; that
// node joins and takes the account over (Takeover): it withdraws the
// guardian's node and rotates both keys, as device rm does.

// HandoverRequest hands a ward's account over.
type HandoverRequest struct {
	// Ward is the minor's account (ID, name or ID suffix), one made in
	// this repo by CreateMinor with the acting account as guardian.
	Ward string `json:"ward"`
}

// HandoverOffer is the result of HandoverStart: the pairing offer of the
// ward's account, for the grown-up's node.
type HandoverOffer struct {
	PairOffer
	// WardName is the ward's display name.
	WardName string `json:"ward_name"`
	// Join is the command to run on the grown-up's node.
	Join string `json:"join"`
}

// HandoverStart offers ward req.Ward's account to the grown-up's node on
// the running node (svc, h; nil is ErrNoNode), as guardian g, when the
// access policy allows it (keyshare.Handover: a ward of g whose keys this
// repo holds and that declares this node its device). Once a node joined
// with the code and stored the account, this repo forgets the ward's
// keys (keyshare.Repo.ForgetKeys) and its open session, if any, ends; the
// chain stays, with g's appointment as it says. The ward's keys come from
// its session when they are encrypted (keyshare.ErrNoSession when it is
// locked).
func HandoverStart(ctx context.Context, repo *keyshare.Repo, sessions *keyshare.Sessions, svc *pair.Service, h host.Host, g *keyshare.Keys, req HandoverRequest) (HandoverOffer, error) {
	if svc == nil || h == nil {
		return HandoverOffer{}, fmt.Errorf("hand over: %w", ErrNoNode)
	}
	ward, err := resolveOther(ctx, repo, "ward", req.Ward)
	if err != nil {
		return HandoverOffer{}, err
	}
	facts, err := repo.HandoverFacts(ctx, g.ID, ward.ID, h.ID().String())
	if err != nil {
		return HandoverOffer{}, fmt.Errorf("hand over %s: %w", ward.ID.Short(), err)
	}
	if d := keyshare.Handover(facts); !d.Allow {
		return HandoverOffer{}, fmt.Errorf("hand over %s: %w: %s", ward.ID.Short(), ErrForbidden, d.Reason)
	}
	var wk *keyshare.Keys
	if ward.Encrypted {
		if sessions == nil {
			return HandoverOffer{}, fmt.Errorf("hand over %s: the ward's keys are encrypted and this node holds no sessions: %w", ward.ID.Short(), keyshare.ErrNoSession)
		}
		if wk, err = sessions.Keys(ward.ID); err != nil {
			return HandoverOffer{}, fmt.Errorf("hand over %s: unlock the ward's account first ('blockmrs unlock --account %s'): %w", ward.ID.Short(), ward.ID, err)
		}
	} else if wk, err = repo.Unlock(ctx, ward.ID, nil); err != nil {
		return HandoverOffer{}, fmt.Errorf("hand over %s: %w", ward.ID.Short(), err)
	}
	defer wk.Wipe()
	if len(h.Addrs()) == 0 {
		return HandoverOffer{}, fmt.Errorf("hand over: the node listens on no address: %w", ErrNoNode)
	}
	id := ward.ID
	forget := func(ctx context.Context, j pair.Joined) {
		if j.Account != id {
			return
		}
		if sessions != nil {
			sessions.Lock(id)
		}
		if err := repo.ForgetKeys(ctx, id); err != nil {
			slog.Error("hand-over: the account joined the new node, but forgetting its keys here failed", "account", id, "err", err)
			return
		}
		slog.Info("hand-over: the account's keys left this repo", "account", id, "to", j.PeerID)
	}
	o, err := svc.OfferThen(wk, forget)
	if err != nil {
		return HandoverOffer{}, fmt.Errorf("hand over %s: %w", ward.ID.Short(), err)
	}
	po := offerOf(o, h)
	return HandoverOffer{PairOffer: po, WardName: ward.Name, Join: "blockmrs device join --takeover '" + po.Code + "'"}, nil
}

// HandoverDone reports whether a hand-over of ward id completed here: the
// repo no longer holds its keys.
func HandoverDone(ctx context.Context, repo *keyshare.Repo, id protocol.AccountID) (bool, error) {
	info, err := repo.Account(ctx, id)
	if err != nil {
		return false, err
	}
	return !info.Local, nil
}

// TakeoverResult is the result of Takeover.
type TakeoverResult struct {
	JoinResult
	// Removed is the withdrawal of the node that offered the account,
	// with the key rotation.
	Removed DeviceRemoved `json:"removed"`
}

// Takeover joins this node (peer ID self) to the account the node at
// req.Code offers, as PairJoin does, then takes it over: it withdraws the
// offering node from the account and rotates the account's age and
// signing keys in the same block (RemoveDevice, with req.Passphrase, under
// which the keys are now stored here), so that blocks the offering node
// signs with the keys it held are refused and records written from now on
// are closed to it. A failed rotation after the join leaves the account
// joined here: the error says to run 'blockmrs device rm'.
func Takeover(ctx context.Context, repo *keyshare.Repo, sessions *keyshare.Sessions, svc *pair.Service, self string, req JoinRequest) (TakeoverResult, error) {
	if repo == nil {
		return TakeoverResult{}, fmt.Errorf("take an account over: %w", ErrNoNode)
	}
	joined, err := PairJoin(ctx, svc, req)
	if err != nil {
		return TakeoverResult{}, err
	}
	out := TakeoverResult{JoinResult: joined}
	id := joined.Account.ID
	pass := []byte(req.Passphrase)
	defer clear(pass)
	k, err := repo.Unlock(ctx, id, pass)
	if err != nil {
		return out, fmt.Errorf("joined %s, but its keys did not open to take it over (run 'blockmrs device rm %s'): %w", id.Short(), joined.From, err)
	}
	defer k.Wipe()
	rm, err := RemoveDevice(ctx, repo, sessions, k, self, RemoveDeviceRequest{PeerID: joined.From, Passphrase: req.Passphrase})
	if errors.Is(err, ErrNotFound) {
		return out, fmt.Errorf("joined %s, but the node that offered it is not its declared device, so nothing was withdrawn: %w", id.Short(), err)
	}
	if err != nil {
		return out, fmt.Errorf("joined %s, but withdrawing the node that offered it failed (run 'blockmrs device rm %s'): %w", id.Short(), joined.From, err)
	}
	out.Removed = rm
	if info, err := repo.Account(ctx, id); err == nil {
		out.Account = AccountOf(info)
	}
	return out, nil
}
