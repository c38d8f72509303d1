package ops

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/ipfs/go-cid"

	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/store"
)

// Revoke and re-key: revoke an account from records and re-key each
// (keyshare.Repo.Rekey), as a job that runs in the background and
// reports its progress.

// Job is a re-key job and its progress (keyshare.RekeyJob).
type Job = keyshare.RekeyJob

// JobList is the result of Jobs.
type JobList struct {
	// Jobs are the acting account's re-key jobs, newest first.
	Jobs []Job `json:"jobs"`
}

// StartRekey checks a revoke with re-key (req.Rekey need not be set): the
// acting account must be the subject of every record, req.From a grantee
// of each (or revoked from it already), and each record's content on this
// node. It stores the job, queued, and returns it; RunRekey runs it. One
// bad record refuses the whole job and nothing is stored.
func StartRekey(ctx context.Context, repo *keyshare.Repo, k *keyshare.Keys, req RevokeRequest) (Job, error) {
	from, err := resolveOther(ctx, repo, "from", req.From)
	if err != nil {
		return Job{}, err
	}
	if len(req.Records) > keyshare.MaxRekeyRecords {
		return Job{}, invalidf("records: %d given, at most %d in one re-key", len(req.Records), keyshare.MaxRekeyRecords)
	}
	cids, as, err := subjectAccess(ctx, repo, k, req.Records, "re-key")
	if err != nil {
		return Job{}, err
	}
	for _, a := range as {
		rd, ok := a.Reader(from.ID)
		revoked := slices.ContainsFunc(a.Revoked, func(r keyshare.Reader) bool { return r.Account == from.ID })
		switch {
		case ok && rd.Role != "grantee":
			return Job{}, invalidf("%s: %s is the record's %s, not a grantee: only grantees are revoked", a.Record, from.ID, rd.Role)
		case !ok && !revoked:
			return Job{}, invalidf("%s: %s has no grant to revoke", a.Record, from.ID)
		case a.Rekeyed != nil && !revoked:
			return Job{}, invalidf("%s was re-keyed already as %s: revoke from that version", a.Record, a.Rekeyed.New)
		}
	}
	j, err := repo.NewRekeyJob(ctx, k, from.ID, cids)
	switch {
	case errors.Is(err, store.ErrMissing):
		return Job{}, &invalidCause{what: "records", err: err, hint: "wait until it has arrived"}
	case errors.Is(err, keyshare.ErrNotSubject):
		return Job{}, &refusal{err}
	case err != nil:
		return Job{}, fmt.Errorf("re-key: %w", err)
	}
	return *j, nil
}

// RunRekey runs job id as k to its end (or until ctx ends: then it is
// left interrupted), calling progress (may be nil) after each record.
//
// The records this run revoked from the job's account and re-keyed are
// recorded in the audit log as one revoke (a standing grant's re-key
// recorded its end when it started: StartScopeRekey).
func RunRekey(ctx context.Context, repo *keyshare.Repo, k *keyshare.Keys, id string, progress func(Job)) (Job, error) {
	pending := map[string]bool{}
	if before, err := repo.RekeyJob(ctx, id); err == nil && before.Account == k.ID {
		for _, r := range before.Records {
			pending[r.Record] = r.State == keyshare.JobRecordPending
		}
	}
	j, err := repo.RunRekeyJob(ctx, k, id, progress)
	if errors.Is(err, keyshare.ErrNoJob) {
		return Job{}, fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	if err != nil {
		return Job{}, err
	}
	if j.From != "" && j.Scope == "" {
		var revoked []cid.Cid
		for _, r := range j.Records {
			if c, err := cid.Decode(r.Record); err == nil && pending[r.Record] && r.State == keyshare.JobRecordDone {
				revoked = append(revoked, c)
			}
		}
		if len(revoked) > 0 {
			auditChange(ctx, repo, keyshare.AuditRevoke, k.ID, j.From, revoked,
				fmt.Sprintf("revoked with re-key: %d record(s) stored again under new keys (job %s)", len(revoked), j.ID))
		}
	}
	return *j, nil
}

// JobOf returns job id of k's account; another account's job is not
// found.
func JobOf(ctx context.Context, repo *keyshare.Repo, account keyshare.AccountInfo, id string) (Job, error) {
	j, err := repo.RekeyJob(ctx, id)
	if errors.Is(err, keyshare.ErrNoJob) || (err == nil && j.Account != account.ID) {
		return Job{}, fmt.Errorf("job %q: %w", truncate(id), ErrNotFound)
	}
	if err != nil {
		return Job{}, err
	}
	return *j, nil
}

// Jobs lists the re-key jobs of account, newest first.
func Jobs(ctx context.Context, repo *keyshare.Repo, account keyshare.AccountInfo) (JobList, error) {
	js, err := repo.RekeyJobs(ctx, account.ID)
	if err != nil {
		return JobList{}, fmt.Errorf("list jobs: %w", err)
	}
	return JobList{Jobs: js}, nil
}
