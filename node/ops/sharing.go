package ops

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/protocol"
)

// Sharing: who may read a record, grants and revocations.

// Readers is the result of RecordReaders: who can read a record now,
// whose grant was revoked and whose expired (keyshare.Access).
type Readers struct {
	// Record is the record's CID.
	Record string `json:"cid"`
	// Subject is the account the record is about (the one who grants).
	Subject protocol.AccountID `json:"subject"`
	// Readers can decrypt the record now (author, subject, grantees).
	Readers []keyshare.Reader `json:"readers"`
	// Revoked lists the accounts whose grant the subject revoked.
	Revoked []keyshare.Reader `json:"revoked"`
	// Expired lists the accounts whose grant expired.
	Expired []keyshare.Reader `json:"expired"`
}

// RecordReaders reports who can read record c, as account id sees it.
func RecordReaders(ctx context.Context, repo *keyshare.Repo, id protocol.AccountID, c string) (Readers, error) {
	rc, err := cid.Decode(c)
	if err != nil {
		return Readers{}, invalidf("cid %q: not a CID", truncate(c))
	}
	a, err := repo.AccessFor(ctx, rc, id)
	if err != nil {
		return Readers{}, fmt.Errorf("record %s: %w", rc, err)
	}
	if !a.Known {
		return Readers{}, fmt.Errorf("record %s: no verified chain holds it: %w", rc, ErrNotFound)
	}
	return Readers{Record: rc.String(), Subject: a.Subject, Readers: nonNil(a.Readers), Revoked: nonNil(a.Revoked), Expired: nonNil(a.Expired)}, nil
}

func nonNil(rs []keyshare.Reader) []keyshare.Reader {
	if rs == nil {
		return []keyshare.Reader{}
	}
	return rs
}

// GrantRequest shares records with an account.
type GrantRequest struct {
	// Records are the CIDs to share; the acting account must be their
	// subject.
	Records []string `json:"records"`
	// To is the grantee: an account the repo knows (ID, name or ID suffix).
	To string `json:"to"`
	// Expires, when set, ends the grant at that time (RFC 3339).
	Expires time.Time `json:"expires,omitzero"`
}

// Granted is the result of Grant.
type Granted struct {
	// Block is the chain block holding the grant entries.
	Block string `json:"block"`
	// To and ToName name the grantee.
	To     protocol.AccountID `json:"to"`
	ToName string             `json:"to_name"`
	// Records are the records shared, as given.
	Records []string `json:"records"`
	// Expires is the grant's end, if any.
	Expires time.Time `json:"expires,omitzero"`
}

// RevokeRequest ends an account's grant to records.
type RevokeRequest struct {
	// Records are the CIDs whose grant ends; the acting account must be
	// their subject.
	Records []string `json:"records"`
	// From is the account whose grant ends (ID, name or ID suffix).
	From string `json:"from"`
	// Rekey also re-keys each record (see StartRekey): it runs as a job.
	Rekey bool `json:"rekey,omitempty"`
}

// Revoked is the result of Revoke.
type Revoked struct {
	// Block is the chain block holding the revoke entries.
	Block string `json:"block"`
	// From and FromName name the account whose grant ended.
	From     protocol.AccountID `json:"from"`
	FromName string             `json:"from_name"`
	// Records are the records revoked, as given.
	Records []string `json:"records"`
}

// subjectOf parses records and checks that k is the subject of each.
func subjectOf(ctx context.Context, repo *keyshare.Repo, k *keyshare.Keys, records []string, verb string) ([]cid.Cid, error) {
	cids, _, err := subjectAccess(ctx, repo, k, records, verb)
	return cids, err
}

// subjectAccess is subjectOf also returning each record's access state.
func subjectAccess(ctx context.Context, repo *keyshare.Repo, k *keyshare.Keys, records []string, verb string) ([]cid.Cid, []*keyshare.Access, error) {
	if len(records) == 0 {
		return nil, nil, invalidf("records: none given")
	}
	out := make([]cid.Cid, 0, len(records))
	as := make([]*keyshare.Access, 0, len(records))
	for _, s := range records {
		c, err := cid.Decode(s)
		if err != nil {
			return nil, nil, invalidf("records: %q is not a CID", truncate(s))
		}
		a, err := repo.AccessFor(ctx, c, k.ID)
		if err != nil {
			return nil, nil, fmt.Errorf("record %s: %w", c, err)
		}
		if !a.Known {
			return nil, nil, fmt.Errorf("record %s: no verified chain holds it: %w", c, ErrNotFound)
		}
		if a.Subject != k.ID {
			return nil, nil, fmt.Errorf("%w: only the record's subject (%s) may %s %s", ErrForbidden, a.Subject.Short(), verb, c)
		}
		out = append(out, c)
		as = append(as, a)
	}
	return out, as, nil
}

func resolveOther(ctx context.Context, repo *keyshare.Repo, field, sel string) (keyshare.AccountInfo, error) {
	if sel == "" {
		return keyshare.AccountInfo{}, invalidf("%s: empty", field)
	}
	info, err := repo.Resolve(ctx, sel, false)
	if errors.Is(err, keyshare.ErrUnknownAccount) {
		return keyshare.AccountInfo{}, fmt.Errorf("%s: %w: %w", field, ErrNotFound, err)
	}
	if err != nil {
		return keyshare.AccountInfo{}, invalidf("%s: %v", field, err)
	}
	return info, nil
}

// Grant shares req.Records with req.To as k (keyshare.Repo.Grant).
func Grant(ctx context.Context, repo *keyshare.Repo, k *keyshare.Keys, req GrantRequest) (Granted, error) {
	to, err := resolveOther(ctx, repo, "to", req.To)
	if err != nil {
		return Granted{}, err
	}
	if to.ID == k.ID {
		return Granted{}, invalidf("to: cannot grant to the acting account itself")
	}
	if !req.Expires.IsZero() && !req.Expires.After(time.Now()) {
		return Granted{}, invalidf("expires: %s is not in the future", req.Expires.Format(time.RFC3339))
	}
	cids, err := subjectOf(ctx, repo, k, req.Records, "grant")
	if err != nil {
		return Granted{}, err
	}
	block, err := repo.Grant(ctx, k, cids, to.ID, req.Expires)
	if err != nil {
		return Granted{}, err
	}
	auditChange(ctx, repo, keyshare.AuditGrant, k.ID, to.ID, cids, "granted in chain block "+block.String())
	return Granted{Block: block.String(), To: to.ID, ToName: to.Name, Records: req.Records, Expires: req.Expires}, nil
}

// Revoke ends req.From's grant to req.Records as k (keyshare.Repo.Revoke).
func Revoke(ctx context.Context, repo *keyshare.Repo, k *keyshare.Keys, req RevokeRequest) (Revoked, error) {
	if req.Rekey {
		return Revoked{}, invalidf("rekey: a revoke with re-key runs as a job (StartRekey)")
	}
	from, err := resolveOther(ctx, repo, "from", req.From)
	if err != nil {
		return Revoked{}, err
	}
	cids, as, err := subjectAccess(ctx, repo, k, req.Records, "revoke")
	if err != nil {
		return Revoked{}, err
	}
	for _, a := range as {
		rd, ok := a.Reader(from.ID)
		switch {
		case ok && rd.Role != "grantee":
			return Revoked{}, invalidf("%s: %s is the record's %s, not a grantee", a.Record, from.ID, rd.Role)
		case !ok:
			return Revoked{}, invalidf("%s: %s has no grant to revoke", a.Record, from.ID)
		}
	}
	block, err := repo.Revoke(ctx, k, cids, from.ID)
	if err != nil {
		return Revoked{}, err
	}
	auditChange(ctx, repo, keyshare.AuditRevoke, k.ID, from.ID, cids, "revoked in chain block "+block.String())
	return Revoked{Block: block.String(), From: from.ID, FromName: from.Name, Records: req.Records}, nil
}
