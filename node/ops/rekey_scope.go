package ops

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/ipfs/go-cid"

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
	j, block, err := repo.NewScopeRekeyJob(ctx, k, from.ID, scope)
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
	records := make([]cid.Cid, 0, len(j.Records))
	for _, r := range j.Records {
		if c, err := cid.Decode(r.Record); err == nil {
			records = append(records, c)
		}
	}
	where := "with re-key (job " + j.ID + ")"
	if block.Defined() {
		where += " in chain block " + block.String()
	}
	auditScopeEnd(ctx, repo, k.ID, from.ID, scope, records, where)
	return *j, nil
}

// scopeCovered lists the records of k's that from reads under its
// standing grant of scope now, as far as this repo sees.
func scopeCovered(ctx context.Context, repo *keyshare.Repo, k *keyshare.Keys, from protocol.AccountID, scope string) ([]cid.Cid, error) {
	list, err := repo.List(ctx, k, false)
	if err != nil {
		return nil, fmt.Errorf("list records: %w", err)
	}
	var out []cid.Cid
	for _, l := range list {
		if l.Subject != k.ID {
			continue
		}
		if slices.ContainsFunc(l.Readers, func(rd keyshare.Reader) bool { return rd.Account == from && rd.Scope == scope }) {
			out = append(out, l.Record)
		}
	}
	return out, nil
}

// auditScopeEnd records that subject ended party's standing grant of
// scope, which covered records (how many is in the reason, and the
// records themselves up to protocol.MaxAuditRecords): an AuditRevoke,
// the event a revocation of records writes.
func auditScopeEnd(ctx context.Context, repo *keyshare.Repo, subject, party protocol.AccountID, scope string, records []cid.Cid, where string) {
	auditChange(ctx, repo, keyshare.AuditRevoke, subject, party, records,
		fmt.Sprintf("ended standing grant %s covering %d record(s), %s", scope, len(records), where))
}
