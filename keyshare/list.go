package keyshare

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/ipfs/go-cid"

	"github.com/blockmrs/blockmrs/protocol"
)

// Listed is one record in an account's listing: its access state and,
// when the account can decrypt it, the metadata from its envelope.
type Listed struct {
	*Access
	Listing
}

// Listing is what a listing adds to a record's access state.
type Listing struct {
	Title     string        `json:"title,omitempty"`
	Kind      protocol.Kind `json:"kind,omitempty"`
	MediaType string        `json:"media_type,omitempty"`
	FileName  string        `json:"file_name,omitempty"`
	// Readable tells whether the account may decrypt the record now;
	// Status says why not ("revoked", "expired", "no access") or why it
	// is listed anyway ("hidden").
	Readable bool   `json:"readable"`
	Status   string `json:"status"`
	// Error is set when the record could not be opened (missing blocks,
	// bad envelope).
	Error string `json:"error,omitempty"`
}

// MarshalJSON flattens the access state and the listing fields into one
// object (the embedded *Access has a MarshalJSON of its own, which would
// otherwise be promoted and drop the listing fields).
func (l Listed) MarshalJSON() ([]byte, error) {
	var merged map[string]json.RawMessage
	if l.Access != nil {
		b, err := json.Marshal(l.Access)
		if err != nil {
			return nil, err
		}
		if err := json.Unmarshal(b, &merged); err != nil {
			return nil, err
		}
	}
	if merged == nil {
		merged = map[string]json.RawMessage{}
	}
	b, err := json.Marshal(l.Listing)
	if err != nil {
		return nil, err
	}
	var extra map[string]json.RawMessage
	if err := json.Unmarshal(b, &extra); err != nil {
		return nil, err
	}
	for k, v := range extra {
		merged[k] = v
	}
	return json.Marshal(merged)
}

// List returns the records k may read now, newest first, with their
// titles. Records k is the subject of and has hidden are left out unless
// all is set; with all set it also lists records k could read before
// (revoked, expired). A claim naming k that k neither made nor
// acknowledged, that does not count here, and whose key does not open is
// left out: it is someone's forgery, not k's record (verify names it).
func (r *Repo) List(ctx context.Context, k *Keys, all bool) ([]Listed, error) {
	as, err := r.RecordsOf(ctx, k.ID)
	if err != nil {
		return nil, err
	}
	v, err := r.vouchSet(ctx)
	if err != nil {
		return nil, err
	}
	out := []Listed{}
	for _, a := range as {
		if !a.Known || (!all && a.Hidden && a.Subject == k.ID && readDecision(a, k.ID).Allow) {
			continue // hidden: not opened
		}
		l, forged := r.row(ctx, k, a, v)
		switch {
		case forged, l.Status == "no access":
			continue
		case !all && (l.Status == "revoked" || l.Status == "expired" || l.Status == "hidden"):
			continue
		}
		out = append(out, l)
	}
	return out, nil
}

// ListRecord returns record c's row for k as List would give it with all
// set, and also when List leaves it out: status "no access" for a record
// k could never read, and Error set for a claim List takes for a forgery.
// A record no verified chain names is an error.
func (r *Repo) ListRecord(ctx context.Context, k *Keys, c cid.Cid) (Listed, error) {
	a, err := r.AccessFor(ctx, c, k.ID)
	if err != nil {
		return Listed{}, err
	}
	if !a.Known {
		return Listed{}, fmt.Errorf("%s: unknown record (no verified chain holds its entry)", c)
	}
	v, err := r.vouchSet(ctx)
	if err != nil {
		return Listed{}, err
	}
	l, _ := r.row(ctx, k, a, v)
	return l, nil
}

// row makes the listing row of a (a known record) for k: its status and,
// when k may read it now, the metadata of the envelope it opens under.
// forged is set for a claim k neither made, acknowledged nor can count on
// whose key does not open (then l.Error says why).
func (r *Repo) row(ctx context.Context, k *Keys, a *Access, v vouchSet) (l Listed, forged bool) {
	l = Listed{Access: a, Listing: Listing{Status: "readable"}}
	d := readDecision(a, k.ID)
	l.Readable = d.Allow
	if !l.Readable {
		l.Status = map[Rule]string{RuleReadRevoked: "revoked", RuleReadExpired: "expired"}[d.Rule]
		if l.Status == "" {
			l.Status = "no access"
		}
		return l, false
	}
	if a.Hidden && a.Subject == k.ID {
		l.Status = "hidden"
	}
	// Listed under the claim the record opens under (RecordKey), so
	// author and title come from the same claim.
	env, _, opened, err := r.openView(ctx, k, a.Record)
	if err != nil {
		l.Error = err.Error()
		// A claim k neither made, acknowledged nor can count on, whose
		// key does not open: a forgery (verify reports it), not a
		// record of k's.
		return l, viewRank(a, k.ID, v) > 2
	}
	l.Access = opened
	l.Title, l.Kind, l.MediaType, l.FileName = env.Title, env.Kind, env.MediaType, env.FileName
	return l, false
}
