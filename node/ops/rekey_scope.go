package ops

import (
	"context"
	"errors"
	"fmt"

	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/protocol"
	"github.com/blockmrs/blockmrs/store"
)

// StartScopeRekey ends k's standing grant of req.Scope to req.From and
// stores a job re-keying every record of k's req.From lost by that end
// (keyshare.Repo.NewScopeRekeyJob; req.Rekey need not be set); RunRekey
// runs it. Records req.From still reads otherwise (granted one by one,
// another live standing grant) are kept and listed in the job's Kept.
// Run on a grant ended already it is the same re-key again: it finishes
// what is left. Every record is checked before the grant is ended: a
// refusal writes nothing.
func StartScopeRekey(ctx context.Context, repo *keyshare.Repo, k *keyshare.Keys, req ScopeEndRequest) (Job, error) {
	scope, err := protocol.CanonicalScope(req.Scope)
	if err != nil {
		return Job{}, invalidf("scope: %v", err)
	}
	from, err := resolveOther(ctx, repo, "from", req.From)
	if err != nil {
		return Job{}, err
	}
	j, _, err := repo.NewScopeRekeyJob(ctx, k, from.ID, scope)
	switch {
	case errors.Is(err, keyshare.ErrNoStanding):
		return Job{}, fmt.Errorf("%s has no standing grant %s from this account (see 'blockmrs grants'): %w", from.ID.Short(), scope, ErrNotFound)
	case errors.Is(err, store.ErrMissing):
		return Job{}, &invalidCause{what: "records", err: err, hint: "wait until it has arrived"}
	case errors.Is(err, keyshare.ErrNotSubject):
		return Job{}, &refusal{err}
	case err != nil:
		return Job{}, fmt.Errorf("re-key %s: %w", scope, err)
	}
	return *j, nil
}
