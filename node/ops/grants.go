package ops

import (
	"context"
	"fmt"
	"time"

	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/protocol"
)

// ListGrants is the argument of Grants.
type ListGrants struct {
	// With, when set, keeps only the grants to or from that account (ID,
	// name or ID suffix of a known account).
	With string `json:"with,omitempty"`
}

// GrantRow is one live grant of one record.
type GrantRow struct {
	// Record is the record's CID, Title its title.
	Record string `json:"cid"`
	Title  string `json:"title"`
	// Subject is the account that granted (the record's subject), To the
	// grantee.
	Subject protocol.AccountID `json:"subject"`
	To      protocol.AccountID `json:"to"`
	// Expires is the grant's end, if it has one.
	Expires time.Time `json:"expires,omitzero"`
	// Via is the chain entry holding the grant.
	Via keyshare.EntryRef `json:"via"`
	// Scope is set when the grantee reads the record under a standing
	// grant (see Standing); the row then ends with that grant.
	Scope string `json:"scope,omitempty"`
}

// GrantList is the result of Grants.
type GrantList struct {
	// Grants are the live grants, newest record first: those the acting
	// account gave (it is the subject) and those given to it.
	Grants []GrantRow `json:"grants"`
	// Standing are the live standing grants the acting account gave and
	// was given: scopes of a patient's records, present and future.
	Standing []StandingRow `json:"standing"`
}

// Grants lists the live grants of the records keys' account can read:
// what it shared (as the records' subject) and what was shared with it,
// per account with req.With, and the live standing grants it gave and
// was given. Revoked and expired grants are in a record's readers
// (RecordReaders), not here.
func Grants(ctx context.Context, repo *keyshare.Repo, keys *keyshare.Keys, req ListGrants) (GrantList, error) {
	var with protocol.AccountID
	if len(req.With) > MaxQuery {
		return GrantList{}, invalidf("with: longer than %d bytes", MaxQuery)
	}
	if req.With != "" {
		info, err := resolveOther(ctx, repo, "with", req.With)
		if err != nil {
			return GrantList{}, err
		}
		with = info.ID
	}
	list, err := repo.List(ctx, keys, false)
	if err != nil {
		return GrantList{}, fmt.Errorf("list records: %w", err)
	}
	out := GrantList{Grants: []GrantRow{}}
	for _, l := range list {
		for _, rd := range l.Readers {
			if rd.Role != "grantee" || (l.Subject != keys.ID && rd.Account != keys.ID) {
				continue
			}
			if with != "" && rd.Account != with && l.Subject != with {
				continue
			}
			out.Grants = append(out.Grants, GrantRow{Record: l.Record.String(), Title: l.Title, Subject: l.Subject,
				To: rd.Account, Expires: rd.Expires, Via: rd.Via, Scope: rd.Scope})
		}
	}
	if out.Standing, err = standingRows(ctx, repo, keys.ID, with, list); err != nil {
		return GrantList{}, err
	}
	return out, nil
}
