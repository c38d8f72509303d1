package keyshare

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"slices"
	"sort"

	"github.com/ipfs/go-cid"

	"github.com/blockmrs/blockmrs/protocol"
)

// Ending a standing grant with re-key. Ending the grant (EndScope) stops
// every key given under it from counting; re-keying then takes the
// ciphertexts away too: each record of the subject's that the grantee
// lost by the end is re-keyed as Rekey does, in the same background job
// as a revoke with re-key (rekeyjob.go), wrapped for the remaining
// readers only — its author, the subject's other grantees, other
// standing grantees under their own scopes — never for the former
// grantee. Which records are re-keyed is rekeyScopeRecord's decision:
// records the grantee still reads by a grant of their own or under
// another live standing grant are kept as they are, and listed.

// JobKept is a record a standing grant's re-key left as it is, and why.
type JobKept struct {
	Record string `json:"cid"`
	Reason string `json:"reason"`
}

// NewScopeRekeyJob ends k's standing grant scope to account from (unless
// it was ended already: then it is the same re-key run again, to finish
// it) and stores a queued job re-keying every record of k's that from
// lost by that end, for RunRekeyJob to run. The records are checked
// (RekeyCheck: content on this node) before the unscope entry is
// written, so a refusal writes nothing. block is the unscope entry's
// chain block (cid.Undef when the grant was ended before). A grant that
// covered no record gives a job that is done at once.
func (r *Repo) NewScopeRekeyJob(ctx context.Context, k *Keys, from protocol.AccountID, scope string) (job *RekeyJob, block cid.Cid, err error) {
	canonical, err := protocol.CanonicalScope(scope)
	if err != nil {
		return nil, cid.Undef, err
	}
	evs, err := r.scopesOf(ctx, k.ID)
	if err != nil {
		return nil, cid.Undef, err
	}
	ev, found := latestScope(evs, from, canonical)
	if !found {
		return nil, cid.Undef, fmt.Errorf("%w of %s to %s", ErrNoStanding, canonical, from)
	}
	candidates, err := r.scopeCandidates(ctx, k, from, canonical)
	if err != nil {
		return nil, cid.Undef, err
	}
	if len(candidates) > MaxRekeyRecords {
		return nil, cid.Undef, fmt.Errorf("the standing grant covered %d records: at most %d in one re-key", len(candidates), MaxRekeyRecords)
	}
	for _, c := range candidates {
		if _, err := r.RekeyCheck(ctx, k, c, from); err != nil {
			return nil, cid.Undef, err
		}
	}
	block = cid.Undef
	if !ev.End {
		if block, err = r.EndScope(ctx, k, from, canonical); err != nil {
			return nil, cid.Undef, err
		}
	}
	var id [8]byte
	rand.Read(id[:])
	now := r.now().UTC()
	j := &RekeyJob{ID: hex.EncodeToString(id[:]), Account: k.ID, From: from, Scope: canonical, State: JobQueued, Started: now, Updated: now, Records: []JobRecord{}}
	for _, c := range candidates {
		a, err := r.AccessFor(ctx, c, k.ID)
		if err != nil {
			return nil, block, err
		}
		if d := rekeyScopeRecord(a, k.ID, from, canonical); d.Allow {
			j.Records = append(j.Records, JobRecord{Record: c.String(), State: JobRecordPending})
		}
	}
	if j.Kept, err = r.scopeKept(ctx, k, from, canonical); err != nil {
		return nil, block, err
	}
	j.Total = len(j.Records)
	if j.Total == 0 {
		j.State = JobDone
	}
	if err := r.pruneJobs(ctx); err != nil {
		return nil, block, err
	}
	if err := r.putJob(ctx, j); err != nil {
		return nil, block, err
	}
	return j, block, nil
}

// scopeCandidates returns, in CID order, the records of k's that from
// reads under scope or lost under it: those the end of scope may take
// from it (rekeyScopeRecord decides once the end is on the chain).
func (r *Repo) scopeCandidates(ctx context.Context, k *Keys, from protocol.AccountID, scope string) ([]cid.Cid, error) {
	var out []cid.Cid
	err := r.eachOwnRecord(ctx, k, nil, func(c cid.Cid, a *Access) error {
		underScope := func(rd Reader) bool { return rd.Account == from && rd.Scope == scope }
		if slices.ContainsFunc(a.Readers, underScope) || slices.ContainsFunc(a.Revoked, underScope) {
			out = append(out, c)
		}
		return nil
	})
	return out, err
}

// scopeKept returns the records of k's in scope that from still reads
// otherwise (a grant of the record, another live standing grant), with
// rekeyScopeRecord's reason: they are not re-keyed.
func (r *Repo) scopeKept(ctx context.Context, k *Keys, from protocol.AccountID, scope string) ([]JobKept, error) {
	sc, err := protocol.ParseScope(scope)
	if err != nil {
		return nil, err
	}
	var out []JobKept
	err = r.eachOwnRecord(ctx, k, nil, func(c cid.Cid, a *Access) error {
		if _, ok := a.Reader(from); !ok || a.Rekeyed != nil {
			return nil
		}
		env, _, err := r.Envelope(ctx, k, c)
		if err != nil || !sc.Matches(env.Kind, env.FHIR) {
			return nil // her key does not open it, or it is out of the scope
		}
		out = append(out, JobKept{Record: c.String(), Reason: rekeyScopeRecord(a, k.ID, from, scope).Reason})
		return nil
	})
	return out, err
}

// eachOwnRecord calls fn, in CID order, with each record of k's (k its
// subject under the claim that counts for k) and its access state; with
// only given, with those of only's records that are k's.
func (r *Repo) eachOwnRecord(ctx context.Context, k *Keys, only []cid.Cid, fn func(cid.Cid, *Access) error) error {
	recs, err := r.recordsAmong(ctx, k.ID, only)
	if err != nil {
		return err
	}
	ordered := make([]cid.Cid, 0, len(recs))
	for c := range recs {
		ordered = append(ordered, c)
	}
	sort.Slice(ordered, func(i, j int) bool { return ordered[i].KeyString() < ordered[j].KeyString() })
	for _, c := range ordered {
		a, err := r.AccessFor(ctx, c, k.ID)
		if err != nil {
			return err
		}
		if !a.Known || a.Subject != k.ID {
			continue
		}
		if err := fn(c, a); err != nil {
			return err
		}
	}
	return nil
}

// scopeRekeyAllowed checks, as a standing grant's re-key job comes to
// record c, that rekeyScopeRecord still allows it (from may have been
// granted c again since the job was made).
func (r *Repo) scopeRekeyAllowed(ctx context.Context, k *Keys, c cid.Cid, from protocol.AccountID, scope string) error {
	a, err := r.AccessFor(ctx, c, k.ID)
	if err != nil {
		return err
	}
	if d := rekeyScopeRecord(a, k.ID, from, scope); !d.Allow {
		return fmt.Errorf("not re-keyed: %s", d.Reason)
	}
	return nil
}
