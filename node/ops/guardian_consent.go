package ops

import (
	"context"
	"errors"
	"fmt"

	"github.com/ipfs/go-cid"

	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/protocol"
)

// Guardian consent: the guardian answers a ward's appointment
// (keyshare/guardian_consent.go). Until it accepts, its node does not act
// for the ward, refuses requests relayed for her, and does not serve its
// chain to her nodes on that ground.

// ConsentRequest is the body of POST /api/v1/guardians/accept and
// /api/v1/guardians/decline.
type ConsentRequest struct {
	// Ward is the account whose appointment is answered (ID, name or ID
	// suffix).
	Ward string `json:"ward"`
}

// Consented is the result of AcceptWard and DeclineWard.
type Consented struct {
	// Block is the guardian's chain block holding the answer.
	Block string `json:"block"`
	// Appointment is the answered appointment, its consent updated.
	Appointment GuardianRow `json:"appointment"`
}

// AcceptWard accepts req.Ward's appointment of k as guardian
// (keyshare.Repo.AcceptWard).
func AcceptWard(ctx context.Context, repo *keyshare.Repo, k *keyshare.Keys, req ConsentRequest) (Consented, error) {
	return answerWard(ctx, repo, k, req, "accept", repo.AcceptWard)
}

// DeclineWard declines (or, once accepted, resigns) req.Ward's
// appointment of k as guardian (keyshare.Repo.DeclineWard).
func DeclineWard(ctx context.Context, repo *keyshare.Repo, k *keyshare.Keys, req ConsentRequest) (Consented, error) {
	return answerWard(ctx, repo, k, req, "decline", repo.DeclineWard)
}

func answerWard(ctx context.Context, repo *keyshare.Repo, k *keyshare.Keys, req ConsentRequest, verb string,
	answer func(context.Context, *keyshare.Keys, protocol.AccountID) (cid.Cid, keyshare.Guardianship, error)) (Consented, error) {
	ward, err := resolveOther(ctx, repo, "ward", req.Ward)
	if err != nil {
		return Consented{}, err
	}
	block, g, err := answer(ctx, k, ward.ID)
	switch {
	case errors.Is(err, keyshare.ErrNotGuardian):
		return Consented{}, fmt.Errorf("%s %s: %w: %w", verb, ward.ID.Short(), ErrNotFound, err)
	case errors.Is(err, keyshare.ErrConsent):
		return Consented{}, &conflictError{msg: fmt.Sprintf("%s %s: %v", verb, ward.ID.Short(), err)}
	case err != nil:
		return Consented{}, fmt.Errorf("%s %s: %w", verb, ward.ID.Short(), err)
	}
	me, _ := repo.Account(ctx, k.ID)
	return Consented{Block: block.String(), Appointment: GuardianRow{Guardianship: g, WardName: ward.Name, GuardianName: me.Name}}, nil
}
