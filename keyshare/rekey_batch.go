package keyshare

import (
	"context"
	"fmt"
	"log/slog"
	"slices"

	"github.com/ipfs/go-cid"

	"github.com/blockmrs/blockmrs/protocol"
)

// Committing re-keys. One re-key is one chain block (Rekey); a re-key job
// of stagedRecords records or more commits all of them at once, the way
// a batch add commits (batch.go): each record's entries stay together in
// one block (blockCutter), as few blocks as the limits allow, signed one
// at a time into a staged commit (appendFrom). Such a job is all or
// nothing: a record failing, or the job stopping, before the commit
// leaves the chain and the store as they were.

// release drops p's new version unless claimed (its record entry is on
// the chain) and clears its add marker.
func (p *rekeyPrep) release(ctx context.Context, r *Repo, claimed bool) {
	if !claimed {
		r.dropUnclaimed(ctx, p.added.New)
	}
	r.clearAdding(ctx, p.added.marker)
}

// commitRekeys appends the blocks of preps to k's chain in one commit and
// returns the last block's CID; it releases every prep either way. A
// claim that another job re-keyed since its prep was made fails them
// all: the first re-key stands.
func (r *Repo) commitRekeys(ctx context.Context, k *Keys, preps []*rekeyPrep) (cid.Cid, error) {
	claimed := false
	defer func() {
		for _, p := range preps {
			p.release(ctx, r, claimed)
		}
	}()
	var cut blockCutter
	next := 0
	blocks := func() ([]protocol.Entry, bool, error) {
		for next < len(preps) {
			g := preps[next].entries
			next++
			n := 0
			for _, e := range g {
				enc, err := e.MarshalCBOR()
				if err != nil {
					return nil, false, fmt.Errorf("encode entry: %w", err)
				}
				n += len(enc)
			}
			full, err := cut.add(g, n)
			if err != nil || full != nil {
				return full, err == nil, err
			}
		}
		last := cut.rest()
		return last, last != nil, nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range preps {
		again, err := r.accessAll(ctx, p.old.Record)
		if err != nil {
			return cid.Undef, err
		}
		if slices.ContainsFunc(again, func(o *Access) bool { return o.Entry != nil && *o.Entry == *p.old.Entry && o.Rekeyed != nil }) {
			return cid.Undef, fmt.Errorf("%s was re-keyed by another job meanwhile", p.old.Record)
		}
	}
	last, err := r.appendFrom(ctx, k, len(preps) >= stagedRecords, blocks)
	if err != nil {
		return cid.Undef, err
	}
	claimed = true
	return last, nil
}

// runRekeyBatch runs the pending records of job j as one commit (see the
// file comment), setting each record's state; RunRekeyJob saves the job.
// A record that fails is marked failed and the others stay pending, with
// nothing written (j.Error says so); a failed commit fails them all.
func (r *Repo) runRekeyBatch(ctx context.Context, k *Keys, j *RekeyJob) {
	var preps []*rekeyPrep
	var rows []*JobRecord // the job's row of each prep
	fail := func(jr *JobRecord, err error) {
		for _, p := range preps {
			p.release(ctx, r, false)
		}
		if ctx.Err() != nil {
			return // stopped, not failed: every record still pending
		}
		jr.State, jr.Error = JobRecordFailed, err.Error()
		j.Error = fmt.Sprintf("nothing was re-keyed: record %s failed (%v); a re-key of %d or more records commits all of them or none, so run it again without that record", jr.Record, err, stagedRecords)
	}
	for i := range j.Records {
		jr := &j.Records[i]
		if jr.State != JobRecordPending {
			continue
		}
		if err := ctx.Err(); err != nil {
			fail(jr, err)
			return
		}
		c, err := cid.Decode(jr.Record)
		if err == nil && j.Scope != "" {
			err = r.scopeRekeyAllowed(ctx, k, c, j.From, j.Scope)
		}
		var p *rekeyPrep
		var out Rekeyed
		if err == nil {
			p, out, err = r.prepareRekey(ctx, k, c, j.From)
		}
		switch {
		case err != nil:
			fail(jr, err)
			return
		case p == nil: // re-keyed before
			jr.State, jr.New = JobRecordSkipped, out.New.String()
		default:
			preps, rows = append(preps, p), append(rows, jr)
		}
	}
	if len(preps) == 0 {
		return
	}
	olds := make([]cid.Cid, len(preps))
	for i, p := range preps {
		olds[i] = p.old.Record
	}
	if _, err := r.commitRekeys(ctx, k, preps); err != nil {
		if ctx.Err() == nil {
			j.Error = fmt.Sprintf("nothing was re-keyed: the commit of %d records failed (%v); run the same re-key again", len(preps), err)
			for _, jr := range rows {
				jr.State, jr.Error = JobRecordFailed, err.Error()
			}
		}
		return
	}
	for i, p := range preps {
		jr := rows[i]
		jr.State, jr.New = JobRecordDone, p.out.New.String()
		if a, err := r.AccessFor(ctx, p.out.New, k.ID); err == nil && a.Entry != nil {
			jr.Block = a.Entry.Block
		}
	}
	if _, err := r.dropRekeyed(ctx, olds...); err != nil {
		slog.Warn("keyshare: removing re-keyed records' old copies failed (the daemon retries)", "job", j.ID, "err", err)
	}
}
