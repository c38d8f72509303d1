package keyshare

import (
	"context"
	"encoding/json"

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
	vouched := func(a *Access) bool { return viewRank(a, k.ID, v) <= 2 }
	out := []Listed{}
	for _, a := range as {
		if !a.Known {
			continue
		}
		l := Listed{Access: a, Listing: Listing{Status: "readable"}}
		d := readDecision(a, k.ID)
		l.Readable = d.Allow
		if !l.Readable {
			l.Status = map[Rule]string{RuleReadRevoked: "revoked", RuleReadExpired: "expired"}[d.Rule]
			if l.Status == "" {
				l.Status = "no access"
			}
			if !all || l.Status == "no access" {
				continue
			}
		} else if a.Hidden && a.Subject == k.ID {
			l.Status = "hidden"
			if !all {
				continue
			}
		}
		if l.Readable {
			// Listed under the claim the record opens under (RecordKey),
			// so author and title come from the same claim.
			env, _, opened, err := r.openView(ctx, k, a.Record)
			if err != nil {
				if !vouched(a) {
					// A claim k neither made, acknowledged nor can
					// count on, whose key does not open: a forgery
					// (verify reports it), not a record of k's.
					continue
				}
				l.Error = err.Error()
			} else {
				l.Access = opened
				l.Title, l.Kind, l.MediaType, l.FileName = env.Title, env.Kind, env.MediaType, env.FileName
			}
		}
		out = append(out, l)
	}
	return out, nil
}
