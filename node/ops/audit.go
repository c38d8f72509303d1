package ops

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/node/audit"
	"github.com/blockmrs/blockmrs/protocol"
	"github.com/blockmrs/blockmrs/protocol/fhir"
)

// MaxAuditList bounds the entries one audit listing returns (the newest).
const MaxAuditList = 10000

// AuditQuery selects audit entries: by default the events about the
// acting account (who accessed its records, and what was done for it).
type AuditQuery struct {
	// Record keeps the events naming this record CID.
	Record string `json:"record,omitempty"`
	// Since keeps the events at or after this date (YYYY-MM-DD, UTC) or
	// time (RFC 3339).
	Since string `json:"since,omitempty"`
	// All lists every event of the node, about any account.
	All bool `json:"all,omitempty"`
	// Limit keeps the newest Limit events (0: up to MaxAuditList).
	Limit int `json:"limit,omitempty"`
}

// AuditTrail is an audit listing.
type AuditTrail struct {
	// Account is the account the events are about ("" with All).
	Account protocol.AccountID `json:"account,omitempty"`
	// Node is the peer ID of the node whose log this is.
	Node string `json:"node"`
	// Entries are the events, oldest first.
	Entries []audit.Entry `json:"entries"`
}

// ErrNoAuditLog is returned when the repo was opened without its audit
// log (node.OpenRepo attaches it).
var ErrNoAuditLog = errors.New("this repo was opened without its audit log")

func auditLog(repo *keyshare.Repo) (*audit.Log, error) {
	l := audit.Of(repo)
	if l == nil {
		return nil, ErrNoAuditLog
	}
	return l, nil
}

// filter checks q and turns it into the log's filter.
func (q AuditQuery) filter(me protocol.AccountID) (audit.Filter, error) {
	var f audit.Filter
	if q.Record != "" {
		c, err := ParseRecordCID(q.Record)
		if err != nil {
			return f, err
		}
		f.Record = c
	}
	if q.Since != "" {
		t, err := parseSince(q.Since)
		if err != nil {
			return f, err
		}
		f.Since = t
	}
	if q.Limit < 0 || q.Limit > MaxAuditList {
		return f, invalidf("limit %d: want 0 to %d", q.Limit, MaxAuditList)
	}
	f.Limit = q.Limit
	if f.Limit == 0 {
		f.Limit = MaxAuditList
	}
	if !q.All {
		f.Subjects = []protocol.AccountID{me}
	}
	return f, nil
}

func parseSince(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse("2006-01-02", s); err == nil {
		return t, nil
	}
	if len(s) > 40 {
		s = s[:40] + "…"
	}
	return time.Time{}, invalidf("since %q: want a date (2026-12-01) or a time (2026-12-01T09:00:00Z)", s)
}

// Audit lists the audit events q selects about account me (any account
// with q.All), oldest first.
func Audit(ctx context.Context, repo *keyshare.Repo, me protocol.AccountID, q AuditQuery) (AuditTrail, error) {
	l, err := auditLog(repo)
	if err != nil {
		return AuditTrail{}, err
	}
	f, err := q.filter(me)
	if err != nil {
		return AuditTrail{}, err
	}
	entries, err := l.List(ctx, f)
	if err != nil {
		return AuditTrail{}, err
	}
	out := AuditTrail{Node: l.NodeID(), Entries: entries}
	if !q.All {
		out.Account = me
	}
	if out.Entries == nil {
		out.Entries = []audit.Entry{}
	}
	return out, nil
}

// AuditFHIR returns the events Audit lists as a FHIR R4 Bundle
// (collection) of AuditEvents, timestamped now.
func AuditFHIR(ctx context.Context, repo *keyshare.Repo, me protocol.AccountID, q AuditQuery, now time.Time) ([]byte, error) {
	trail, err := Audit(ctx, repo, me, q)
	if err != nil {
		return nil, err
	}
	ins := make([]fhir.AuditInput, len(trail.Entries))
	for i, e := range trail.Entries {
		ins[i] = fhir.AuditInput{ID: "audit-" + strconv.FormatUint(e.Seq, 10), Recorded: e.Time, Kind: string(e.Kind),
			Account: string(e.Account), Peer: e.Peer, Patient: string(e.Subject), Records: e.Records,
			Rule: e.Rule, Reason: e.Reason, Observer: trail.Node, ReportedBy: e.ReportedBy}
	}
	return fhir.AuditBundle(ins, now)
}

// AuditCheck is what VerifyAudit found.
type AuditCheck = audit.Report

// VerifyAudit checks the node's audit log (audit.Log.Verify): the report
// lists every sign of tampering; the error is only for a log that could
// not be read.
func VerifyAudit(ctx context.Context, repo *keyshare.Repo) (AuditCheck, error) {
	l, err := auditLog(repo)
	if err != nil {
		return AuditCheck{}, err
	}
	rep, err := l.Verify(ctx)
	if err != nil && !errors.Is(err, audit.ErrTampered) {
		return rep, fmt.Errorf("audit log: %w", err)
	}
	return rep, nil
}

// auditChange records that account subject changed who may read its
// records (or asked another for access): party is the grantee, former
// reader or requester. A failure to record it is logged by the log, not
// returned: the act is done.
func auditChange(ctx context.Context, repo *keyshare.Repo, kind keyshare.AuditKind, subject, party protocol.AccountID, records []cid.Cid, reason string) {
	if len(records) > protocol.MaxAuditRecords {
		reason += fmt.Sprintf(" (%d records; the first %d named)", len(records), protocol.MaxAuditRecords)
		records = records[:protocol.MaxAuditRecords]
	}
	_ = repo.Audit(ctx, keyshare.AuditEvent{Kind: kind, Account: party, Subject: subject, Records: records, Reason: reason})
}

// requestRecords parses a request's record CIDs (those that parse).
func requestRecords(ss []string) []cid.Cid {
	var out []cid.Cid
	for _, s := range ss {
		if c, err := cid.Decode(s); err == nil {
			out = append(out, c)
		}
	}
	return out
}
