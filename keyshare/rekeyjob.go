package keyshare

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/ipfs/go-datastore"

	"github.com/blockmrs/blockmrs/protocol"
)

// Re-key jobs. Re-keying decrypts and re-encrypts a record, so many
// records take a while: a job runs them one after the other and keeps its
// progress in the repo (/keyshare/jobs/<id>), where the API and the
// command line read it while it runs. Each record is re-keyed in one
// chain block, so at any moment a record is either re-keyed or not. A
// job does not outlive its process: when the node stops mid-job (a
// restart, a crash, an interrupted command), the next Open marks the job
// interrupted, listing what is left; running the same re-key again
// finishes it, skipping the records re-keyed already (Rekey sees their
// rekey entry).

// MaxRekeyRecords bounds the records of one re-key job.
const MaxRekeyRecords = 10000

// maxJobsKept bounds the finished jobs a repo keeps (the oldest go).
const maxJobsKept = 100

const jobsPrefix = "/keyshare/jobs/"

// JobState is where a job is.
type JobState string

// Job states.
const (
	JobQueued      JobState = "queued"      // made, not started
	JobRunning     JobState = "running"     // re-keying
	JobDone        JobState = "done"        // every record re-keyed (or found re-keyed)
	JobFailed      JobState = "failed"      // finished, some records failed (see their errors)
	JobInterrupted JobState = "interrupted" // stopped before the end: see Error; run it again
)

// Record states in a job.
const (
	JobRecordPending = "pending" // not re-keyed yet
	JobRecordDone    = "done"    // re-keyed by this job
	JobRecordSkipped = "skipped" // re-keyed before (New is that version)
	JobRecordFailed  = "failed"  // see Error
)

// RekeyJob is a re-key of records run in the background: revoke From and
// re-key each record, as Account.
type RekeyJob struct {
	ID      string             `json:"id"`
	Account protocol.AccountID `json:"account"`
	// From is the account revoked first (empty: only re-key).
	From protocol.AccountID `json:"from,omitempty"`
	// Scope is set on the re-key of a standing grant's records
	// (NewScopeRekeyJob): the standing grant of From that was ended.
	Scope string   `json:"scope,omitempty"`
	State JobState `json:"state"`
	// Total counts the records; Done those re-keyed or found re-keyed,
	// Failed those that failed. Total - Done - Failed are left.
	Total   int         `json:"total"`
	Done    int         `json:"done"`
	Failed  int         `json:"failed"`
	Records []JobRecord `json:"records"`
	// Kept lists, on a standing grant's re-key, the records of its scope
	// From still reads otherwise, left as they are (rekeyScopeRecord).
	Kept    []JobKept `json:"kept,omitempty"`
	Started time.Time `json:"started"`
	Updated time.Time `json:"updated"`
	// Error says why an interrupted job stopped and what to do.
	Error string `json:"error,omitempty"`
}

// JobRecord is one record of a job.
type JobRecord struct {
	Record string `json:"cid"`
	// State is pending, done, skipped or failed.
	State string `json:"state"`
	// New is the record's new version, Block the chain block holding
	// it (not set when skipped).
	New   string `json:"new,omitempty"`
	Block string `json:"block,omitempty"`
	Error string `json:"error,omitempty"`
}

// Finished tells whether the job is over (done, failed or interrupted).
func (j *RekeyJob) Finished() bool {
	return j.State == JobDone || j.State == JobFailed || j.State == JobInterrupted
}

// Left returns the records not re-keyed yet (pending).
func (j *RekeyJob) Left() []string {
	var out []string
	for _, jr := range j.Records {
		if jr.State == JobRecordPending {
			out = append(out, jr.Record)
		}
	}
	return out
}

func keyJob(id string) datastore.Key { return datastore.NewKey(jobsPrefix + id) }

// ErrNoJob is returned for a job this repo does not have.
var ErrNoJob = errors.New("no such job")

// NewRekeyJob checks every record with RekeyCheck (k must be their
// subject, from a grantee of each or revoked already, their content
// here) and stores a queued job for them, to be run by RunRekeyJob. One
// bad record refuses the job: nothing is stored.
func (r *Repo) NewRekeyJob(ctx context.Context, k *Keys, from protocol.AccountID, records []cid.Cid) (*RekeyJob, error) {
	switch {
	case len(records) == 0:
		return nil, errors.New("no records given")
	case len(records) > MaxRekeyRecords:
		return nil, fmt.Errorf("%d records: at most %d in one re-key", len(records), MaxRekeyRecords)
	}
	var id [8]byte
	rand.Read(id[:])
	now := r.now().UTC()
	j := &RekeyJob{ID: hex.EncodeToString(id[:]), Account: k.ID, From: from, State: JobQueued, Started: now, Updated: now, Records: []JobRecord{}}
	seen := map[cid.Cid]bool{}
	for _, c := range records {
		if seen[c] {
			continue
		}
		seen[c] = true
		if _, err := r.RekeyCheck(ctx, k, c, from); err != nil {
			return nil, err
		}
		j.Records = append(j.Records, JobRecord{Record: c.String(), State: JobRecordPending})
	}
	j.Total = len(j.Records)
	if err := r.pruneJobs(ctx); err != nil {
		return nil, err
	}
	if err := r.putJob(ctx, j); err != nil {
		return nil, err
	}
	return j, nil
}

// RunRekeyJob runs job id as k until every record is re-keyed or failed,
// storing its progress after each record and calling progress (may be
// nil) with it. When ctx ends first the job is left interrupted, saying
// what is left. A job with stagedRecords or more records left is one
// commit instead, all or nothing (runRekeyBatch): its progress is stored
// as it starts and ends. It returns the job as it ended.
func (r *Repo) RunRekeyJob(ctx context.Context, k *Keys, id string, progress func(RekeyJob)) (*RekeyJob, error) {
	j, err := r.RekeyJob(ctx, id)
	if err != nil {
		return nil, err
	}
	if j.Account != k.ID {
		return nil, fmt.Errorf("job %s: %w", id, ErrNoJob)
	}
	if j.Finished() {
		return j, nil
	}
	j.State = JobRunning
	save := func() {
		j.Updated = r.now().UTC()
		// A stopped ctx must not keep the job from recording that it stopped.
		if err := r.putJob(context.WithoutCancel(ctx), j); err != nil {
			slog.Warn("keyshare: saving a re-key job's progress failed", "job", j.ID, "err", err)
		}
		if progress != nil {
			progress(j.copy())
		}
	}
	save()
	batched := len(j.Left()) >= stagedRecords
	if batched {
		r.runRekeyBatch(ctx, k, j) // one commit (rekey_batch.go)
	}
	for i := range j.Records {
		if batched {
			break
		}
		jr := &j.Records[i]
		if jr.State != JobRecordPending {
			continue
		}
		if err := ctx.Err(); err != nil {
			break
		}
		c, err := cid.Decode(jr.Record)
		if err == nil && j.Scope != "" {
			err = r.scopeRekeyAllowed(ctx, k, c, j.From, j.Scope)
		}
		if err == nil {
			var rk Rekeyed
			rk, err = r.Rekey(ctx, k, c, j.From)
			switch {
			case err == nil && rk.Skipped:
				jr.State, jr.New = JobRecordSkipped, rk.New.String()
			case err == nil:
				jr.State, jr.New, jr.Block = JobRecordDone, rk.New.String(), rk.Block.String()
			}
		}
		if err != nil {
			if ctx.Err() != nil {
				break // stopped, not failed: still pending
			}
			jr.State, jr.Error = JobRecordFailed, err.Error()
		}
		j.count()
		save()
	}
	j.count()
	switch {
	case len(j.Left()) > 0:
		j.State = JobInterrupted
		if j.Error == "" { // runRekeyBatch says why its commit did not happen
			j.Error = fmt.Sprintf("stopped with %d of %d record(s) left; run the same re-key again to finish (records re-keyed already are skipped)", len(j.Left()), j.Total)
		}
	case j.Failed > 0:
		j.State = JobFailed
	default:
		j.State = JobDone
	}
	save()
	return j, nil
}

// count recounts Done and Failed.
func (j *RekeyJob) count() {
	j.Done, j.Failed = 0, 0
	for _, jr := range j.Records {
		switch jr.State {
		case JobRecordDone, JobRecordSkipped:
			j.Done++
		case JobRecordFailed:
			j.Failed++
		}
	}
}

func (j *RekeyJob) copy() RekeyJob {
	c := *j
	c.Records = append([]JobRecord(nil), j.Records...)
	return c
}

// RekeyJob returns job id.
func (r *Repo) RekeyJob(ctx context.Context, id string) (*RekeyJob, error) {
	if id == "" || len(id) > 64 {
		return nil, fmt.Errorf("job %q: %w", id, ErrNoJob)
	}
	j := &RekeyJob{}
	found, err := getJSON(ctx, r.ds, keyJob(id), j)
	if err != nil {
		return nil, fmt.Errorf("read job %s: %w", id, err)
	}
	if !found {
		return nil, fmt.Errorf("job %s: %w", id, ErrNoJob)
	}
	return j, nil
}

// RekeyJobs returns the jobs of account id (every account's when empty),
// newest first.
func (r *Repo) RekeyJobs(ctx context.Context, id protocol.AccountID) ([]RekeyJob, error) {
	keys, err := listKeys(ctx, r.ds, jobsPrefix)
	if err != nil {
		return nil, err
	}
	out := []RekeyJob{}
	for _, k := range keys {
		var j RekeyJob
		if _, err := getJSON(ctx, r.ds, k, &j); err != nil {
			return nil, err
		}
		if id == "" || j.Account == id {
			out = append(out, j)
		}
	}
	sort.SliceStable(out, func(i, k int) bool { return out[i].Started.After(out[k].Started) })
	return out, nil
}

func (r *Repo) putJob(ctx context.Context, j *RekeyJob) error {
	if err := putJSON(ctx, r.ds, keyJob(j.ID), j); err != nil {
		return fmt.Errorf("save job %s: %w", j.ID, err)
	}
	return nil
}

// pruneJobs deletes the oldest finished jobs beyond maxJobsKept.
func (r *Repo) pruneJobs(ctx context.Context) error {
	jobs, err := r.RekeyJobs(ctx, "")
	if err != nil {
		return err
	}
	kept := 0
	for _, j := range jobs {
		if !j.Finished() {
			continue
		}
		if kept++; kept >= maxJobsKept {
			if err := r.ds.Delete(ctx, keyJob(j.ID)); err != nil {
				return err
			}
		}
	}
	return nil
}

// interruptJobs runs at Open: a job stored as queued or running did not
// finish when its process ended (no job runs before Open returns). It is
// marked interrupted, with what is left.
func (r *Repo) interruptJobs(ctx context.Context) error {
	jobs, err := r.RekeyJobs(ctx, "")
	if err != nil {
		return err
	}
	for i := range jobs {
		j := &jobs[i]
		if j.Finished() {
			continue
		}
		j.count()
		j.State = JobInterrupted
		j.Error = fmt.Sprintf("the node stopped while the job ran, with %d of %d record(s) left; run the same re-key again to finish (records re-keyed already are skipped)", len(j.Left()), j.Total)
		j.Updated = r.now().UTC()
		if err := r.putJob(ctx, j); err != nil {
			return err
		}
	}
	return nil
}
