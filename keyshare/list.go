package keyshare

import (
	"context"
	"encoding/json"
	"runtime"
	"sync"
	"sync/atomic"

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
// otherwise be promoted and drop the listing fields): the access state's
// fields as Access.MarshalJSON writes them, then the listing's. It is
// encoded in one pass, since a list of 10,000 records encodes 10,000 of
// them.
func (l Listed) MarshalJSON() ([]byte, error) {
	if l.Access == nil {
		return json.Marshal(l.Listing)
	}
	type plain Access
	return json.Marshal(struct {
		Record string `json:"cid"`
		*plain
		Listing
	}{l.Record.String(), (*plain)(l.Access), l.Listing})
}

// List returns the records k may read now, newest first, with their
// titles. Records k is the subject of and has hidden are left out unless
// all is set; with all set it also lists records k could read before
// (revoked, expired). A claim naming k that k neither made nor
// acknowledged, that does not count here, and whose key does not open is
// left out: it is someone's forgery, not k's record (verify names it).
// The readable records are opened on every core (each opening not in
// k's session cache costs three X25519 operations).
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
	rows := []Listed{}
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
		rows = append(rows, l)
	}
	// Listed under the claim the record opens under (RecordKey), so
	// author and title come from the same claim.
	forged := make([]bool, len(rows))
	forEach(len(rows), func(i int) {
		l := &rows[i]
		if !l.Readable {
			return
		}
		env, _, opened, err := r.openView(ctx, k, l.Record)
		switch {
		case err == nil:
			l.Access = opened
			l.Title, l.Kind, l.MediaType, l.FileName = env.Title, env.Kind, env.MediaType, env.FileName
		case !vouched(l.Access):
			// A claim k neither made, acknowledged nor can count on,
			// whose key does not open: a forgery (verify reports it),
			// not a record of k's.
			forged[i] = true
		default:
			l.Error = err.Error()
		}
	})
	out := rows[:0]
	for i, l := range rows {
		if !forged[i] {
			out = append(out, l)
		}
	}
	return out, nil
}

// forEach calls fn(0) … fn(n-1), on up to GOMAXPROCS goroutines when n is
// large enough to be worth it, and returns when all have returned.
func forEach(n int, fn func(i int)) {
	workers := min(runtime.GOMAXPROCS(0), n/16)
	if workers < 2 {
		for i := range n {
			fn(i)
		}
		return
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < n; i = int(next.Add(1)) - 1 {
				fn(i)
			}
		})
	}
	wg.Wait()
}
