package keyshare

import (
	"context"

	"github.com/blockmrs/blockmrs/protocol"
)

// Listed is one record in an account's listing: its access state and,
// when the account can decrypt it, the metadata from its envelope.
type Listed struct {
	*Access
	Title     string        `json:"title,omitempty"`
	Kind      protocol.Kind `json:"kind,omitempty"`
	MediaType string        `json:"media_type,omitempty"`
	FileName  string        `json:"file_name,omitempty"`
	// Readable tells whether k may decrypt the record now; Status says
	// why not ("revoked", "expired", "no access") or why it is listed
	// anyway ("hidden").
	Readable bool   `json:"readable"`
	Status   string `json:"status"`
	// Error is set when the record could not be opened (missing blocks,
	// bad envelope).
	Error string `json:"error,omitempty"`
}

// List returns the records k may read now, newest first, with their
// titles. Hidden records are left out unless all is set; with all set it
// also lists records k could read before (revoked, expired).
func (r *Repo) List(ctx context.Context, k *Keys, all bool) ([]Listed, error) {
	as, err := r.RecordsOf(ctx, k.ID)
	if err != nil {
		return nil, err
	}
	out := []Listed{}
	for _, a := range as {
		if !a.Known {
			continue
		}
		l := Listed{Access: a, Status: "readable"}
		_, l.Readable = a.Reader(k.ID)
		if !l.Readable {
			l.Status = "no access"
			for _, rv := range a.Revoked {
				if rv.Account == k.ID {
					l.Status = "revoked"
				}
			}
			for _, ex := range a.Expired {
				if ex.Account == k.ID {
					l.Status = "expired"
				}
			}
			if !all || l.Status == "no access" {
				continue
			}
		} else if a.Hidden {
			l.Status = "hidden"
			if !all {
				continue
			}
		}
		if l.Readable {
			env, _, err := r.Envelope(ctx, k, a.Record)
			if err != nil {
				l.Error = err.Error()
			} else {
				l.Title, l.Kind, l.MediaType, l.FileName = env.Title, env.Kind, env.MediaType, env.FileName
			}
		}
		out = append(out, l)
	}
	return out, nil
}
