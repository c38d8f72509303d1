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

// Access requests: the inbox (asked of this repo's accounts) and the
// outbox (asked by them), send, approve and deny (keyshare/requests.go).

// RequestList is the result of Requests.
type RequestList struct {
	// Inbox holds requests asked of local accounts, newest first.
	Inbox []keyshare.RequestInfo `json:"inbox"`
	// Outbox holds requests local accounts sent, newest first.
	Outbox []keyshare.RequestInfo `json:"outbox"`
	// Roles holds, by account, the verdict on the declared role of each
	// inbox requester that declares clinician, clinic or authority:
	// verified, or only declared (keyshare.Repo.RoleOf).
	Roles map[protocol.AccountID]keyshare.RoleProof `json:"roles,omitempty"`
}

// Requests lists the inbox and the outbox; with account set (a local
// account's ID), only that account's requests.
func Requests(ctx context.Context, repo *keyshare.Repo, account protocol.AccountID) (RequestList, error) {
	inbox, outbox, err := repo.Requests(ctx)
	if err != nil {
		return RequestList{}, fmt.Errorf("list requests: %w", err)
	}
	out := RequestList{Inbox: []keyshare.RequestInfo{}, Outbox: []keyshare.RequestInfo{}}
	for _, q := range inbox {
		// A guardian that may answer for the asked account sees its
		// requests too.
		if account == "" || q.To == account || repo.MayActFor(ctx, account, q.To, protocol.RightApprove) == nil {
			out.Inbox = append(out.Inbox, q)
		}
	}
	for _, q := range outbox {
		if account == "" || q.From == account {
			out.Outbox = append(out.Outbox, q)
		}
	}
	for _, q := range out.Inbox {
		if !attestable(q.FromRole) {
			continue
		}
		if _, done := out.Roles[q.From]; done {
			continue
		}
		p, err := repo.RoleOfRequester(ctx, q.From, q.FromRole)
		if err != nil {
			return RequestList{}, fmt.Errorf("list requests: %w", err)
		}
		if out.Roles == nil {
			out.Roles = map[protocol.AccountID]keyshare.RoleProof{}
		}
		out.Roles[q.From] = p
	}
	return out, nil
}

// attestable tells whether a role is one attestations verify.
func attestable(r protocol.Role) bool {
	return r == protocol.RoleClinician || r == protocol.RoleClinic || r == protocol.RoleAuthority
}

// MaxRequestDuration bounds the access a request asks for.
const MaxRequestDuration = 100 * 366 * 24 * time.Hour

// SendRequest asks another account for access.
type SendRequest struct {
	// To is the account asked (ID, name or ID suffix of a contact).
	To string `json:"to"`
	// Records asked for; none means every record To may grant.
	Records []string `json:"records,omitempty"`
	// Reason is shown to the account asked (at most protocol.MaxReasonLen
	// bytes).
	Reason string `json:"reason"`
	// DurationSeconds is how long access is asked for; 0 asks no end.
	DurationSeconds int64 `json:"duration_s,omitempty"`
}

// Send queues a signed request from k in the outbox
// (keyshare.Repo.NewRequest); the node delivers it.
func Send(ctx context.Context, repo *keyshare.Repo, k *keyshare.Keys, req SendRequest) (keyshare.RequestInfo, error) {
	to, err := resolveOther(ctx, repo, "to", req.To)
	if err != nil {
		return keyshare.RequestInfo{}, err
	}
	if to.ID == k.ID {
		return keyshare.RequestInfo{}, invalidf("to: cannot ask the acting account itself")
	}
	if len(req.Reason) > protocol.MaxReasonLen {
		return keyshare.RequestInfo{}, invalidf("reason: over %d bytes", protocol.MaxReasonLen)
	}
	if req.DurationSeconds < 0 || req.DurationSeconds > int64(MaxRequestDuration/time.Second) {
		return keyshare.RequestInfo{}, invalidf("duration_s: want 0 (no end) to %d", int64(MaxRequestDuration/time.Second))
	}
	var cids []cid.Cid
	for _, s := range req.Records {
		c, err := cid.Decode(s)
		if err != nil {
			return keyshare.RequestInfo{}, invalidf("records: %q is not a CID", truncate(s))
		}
		cids = append(cids, c)
	}
	info, err := repo.NewRequest(ctx, k, to.ID, cids, req.Reason, time.Duration(req.DurationSeconds)*time.Second)
	if err != nil {
		return keyshare.RequestInfo{}, fmt.Errorf("request: %w", err)
	}
	auditChange(ctx, repo, keyshare.AuditRequest, to.ID, k.ID, cids, "sent request "+info.ID)
	return info, nil
}

// ApproveRequest answers an inbox request with a grant.
type ApproveRequest struct {
	// Records, when set, narrows the grant to these of the records the
	// request asks for (or, for a request of every record, of those the
	// acting account may grant).
	Records []string `json:"records,omitempty"`
	// Expires, when set, ends the grant at that time (RFC 3339); else it
	// ends after the duration the request asked for, from now, if any.
	Expires time.Time `json:"expires,omitzero"`
}

// DenyRequest answers an inbox request with a refusal.
type DenyRequest struct {
	// Reason is shown to the requester (at most protocol.MaxReasonLen
	// bytes).
	Reason string `json:"reason,omitempty"`
}

// findInbox finds inbox request sel (an ID or unique suffix) asked of k.
func findInbox(ctx context.Context, repo *keyshare.Repo, k *keyshare.Keys, sel string) (keyshare.RequestInfo, error) {
	q, err := repo.FindRequest(ctx, keyshare.Inbox, sel)
	if err != nil {
		return keyshare.RequestInfo{}, fmt.Errorf("request %s: %w: %w", truncate(sel), ErrNotFound, err)
	}
	if q.To != k.ID {
		if err := repo.MayActFor(ctx, k.ID, q.To, protocol.RightApprove); err != nil {
			return keyshare.RequestInfo{}, fmt.Errorf("%w: request %s asks %s, not the acting account (nor a ward it may answer for: %v)", ErrForbidden, q.ID, q.To.Short(), err)
		}
	}
	return q, nil
}

// Approve grants inbox request id as k (keyshare.Repo.Approve).
func Approve(ctx context.Context, repo *keyshare.Repo, k *keyshare.Keys, id string, req ApproveRequest) (keyshare.RequestInfo, error) {
	if !req.Expires.IsZero() && !req.Expires.After(time.Now()) {
		return keyshare.RequestInfo{}, invalidf("expires: %s is not in the future", req.Expires.Format(time.RFC3339))
	}
	q, err := findInbox(ctx, repo, k, id)
	if err != nil {
		return keyshare.RequestInfo{}, err
	}
	var scope []cid.Cid
	if len(req.Records) > 0 {
		if q.To != k.ID {
			scope, err = wardRecordsOf(req.Records)
		} else {
			scope, err = subjectOf(ctx, repo, k, req.Records, "grant")
		}
		if err != nil {
			return keyshare.RequestInfo{}, err
		}
		if len(q.Records) > 0 {
			asked := map[string]bool{}
			for _, s := range q.Records {
				if c, err := cid.Decode(s); err == nil {
					asked[c.KeyString()] = true
				}
			}
			for _, c := range scope {
				if !asked[c.KeyString()] {
					return keyshare.RequestInfo{}, invalidf("records: %s is not among the records request %s asks for", c, q.ID)
				}
			}
		}
	}
	info, err := repo.ApproveScope(ctx, k, q.ID, scope, req.Expires)
	if err != nil {
		return keyshare.RequestInfo{}, answerError("approve", q, err)
	}
	auditChange(ctx, repo, keyshare.AuditApprove, k.ID, q.From, requestRecords(info.Records), "approved request "+q.ID+", grant in chain block "+info.Grant)
	return info, nil
}

// Deny refuses inbox request id as k (keyshare.Repo.Deny).
func Deny(ctx context.Context, repo *keyshare.Repo, k *keyshare.Keys, id string, req DenyRequest) (keyshare.RequestInfo, error) {
	if len(req.Reason) > protocol.MaxReasonLen {
		return keyshare.RequestInfo{}, invalidf("reason: over %d bytes", protocol.MaxReasonLen)
	}
	q, err := findInbox(ctx, repo, k, id)
	if err != nil {
		return keyshare.RequestInfo{}, err
	}
	info, err := repo.Deny(ctx, k, q.ID, req.Reason)
	if err != nil {
		return keyshare.RequestInfo{}, answerError("deny", q, err)
	}
	auditChange(ctx, repo, keyshare.AuditDeny, k.ID, q.From, requestRecords(q.Records), "denied request "+q.ID)
	return info, nil
}

// answerError reports a refused answer: one already answered is a
// conflict.
func answerError(verb string, q keyshare.RequestInfo, err error) error {
	if q.State != keyshare.StateNew && !errors.Is(err, context.Canceled) {
		return &conflictError{msg: fmt.Sprintf("%s %s: it is %s already (%v)", verb, q.ID, q.State, err)}
	}
	return fmt.Errorf("%s %s: %w", verb, q.ID, err)
}
