package keyshare

import (
	"context"
	"fmt"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/blockmrs/blockmrs/protocol"
)

// AuditKind names what an audit event records.
type AuditKind string

// The kinds of audit events.
const (
	AuditRead      AuditKind = "read"      // a local account opened a record
	AuditServe     AuditKind = "serve"     // the node sent a record's blocks to a peer
	AuditGrant     AuditKind = "grant"     // a local account granted access
	AuditRevoke    AuditKind = "revoke"    // a local account revoked access
	AuditRequest   AuditKind = "request"   // an access request was sent or arrived
	AuditApprove   AuditKind = "approve"   // a local account approved a request
	AuditDeny      AuditKind = "deny"      // a local account denied a request
	AuditEmergency AuditKind = "emergency" // emergency access was used
	AuditGuardian  AuditKind = "guardian"  // a guardian acted for the subject
)

// AuditEvent is one thing a node did for someone, as its audit log
// (node/audit) records it.
type AuditEvent struct {
	Time time.Time `json:"time"`
	Kind AuditKind `json:"kind"`
	// Account is who was served or who acted.
	Account protocol.AccountID `json:"account,omitempty"`
	// Peer is the node served or acted for (a peer ID), if any.
	Peer string `json:"peer,omitempty"`
	// Subject is the patient the event is about.
	Subject protocol.AccountID `json:"subject,omitempty"`
	Records []cid.Cid          `json:"records,omitempty"`
	// Rule is the access-policy rule, grant or claim that allowed it.
	Rule Rule `json:"rule,omitempty"`
	// Reason says why, for people (the reason given for an emergency
	// access, the grant entry that allowed a read).
	Reason string `json:"reason,omitempty"`
	// ReportedBy is the peer ID of the node that reported the event, when
	// another node did; empty for the node's own events.
	ReportedBy string `json:"reported_by,omitempty"`
}

// AuditSink receives a repo's audit events (node/audit's Log is one).
// Audit must record ev before it returns or fail; Served is on the block
// exchange's hot path and must not block for long: it queues, and the
// sink resolves the block into records later (ServedRecords).
type AuditSink interface {
	Audit(ctx context.Context, ev AuditEvent) error
	Served(peerID string, block cid.Cid)
	Close() error
}

// SetAuditSink makes s receive the repo's audit events from now on, and
// close with the repo. A nil s stops auditing.
func (r *Repo) SetAuditSink(s AuditSink) {
	if s == nil {
		r.auditSink.Store(nil)
		return
	}
	r.auditSink.Store(&s)
}

// AuditSinkOf returns the repo's audit sink, nil if none is set.
func (r *Repo) AuditSinkOf() AuditSink {
	if p := r.auditSink.Load(); p != nil {
		return *p
	}
	return nil
}

// Audit records ev in the repo's audit log, if it has one; without a
// sink it does nothing. Time defaults to now.
func (r *Repo) Audit(ctx context.Context, ev AuditEvent) error {
	s := r.AuditSinkOf()
	if s == nil {
		return nil
	}
	if ev.Time.IsZero() {
		ev.Time = r.now()
	}
	return s.Audit(ctx, ev)
}

// AuditServed tells the audit sink that block was sent to peerID (after
// MayServe allowed it). It never blocks for long.
func (r *Repo) AuditServed(peerID string, block cid.Cid) {
	if s := r.AuditSinkOf(); s != nil {
		s.Served(peerID, block)
	}
}

// closeAuditSink closes the sink, if any (Close calls it).
func (r *Repo) closeAuditSink() error {
	p := r.auditSink.Swap(nil)
	if p == nil {
		return nil
	}
	return (*p).Close()
}

// ServedRecord is one record a served block belongs to, and on whose
// behalf the peer got it.
type ServedRecord struct {
	Record  cid.Cid
	Subject protocol.AccountID
	// Account is the peer's account that may read the record (or whose
	// replica the peer is); Rule and Reason are the policy's decision for
	// it.
	Account protocol.AccountID
	Rule    Rule
	Reason  string
}

// ServedRecords resolves a block the node served to peerID into the
// records it belongs to, with the account and rule each was served
// under, by the same policy MayServe applies (serveRecordBlock). A chain
// block, or a block of no record, gives none. Roots are the record roots
// the block is part of.
func (r *Repo) ServedRecords(ctx context.Context, peerID string, block cid.Cid) ([]ServedRecord, error) {
	roles, err := r.declaredBy(ctx, peerID)
	if err != nil || !roles.known() {
		return nil, err
	}
	o, err := r.Owner(ctx, block)
	if err != nil || !o.Known() || o.Chain != "" {
		return nil, err
	}
	v, err := r.vouchSet(ctx)
	if err != nil {
		return nil, err
	}
	var out []ServedRecord
	for _, root := range o.Records {
		as, err := r.accessAll(ctx, root)
		if err != nil {
			return nil, err
		}
		if s, ok := servedUnder(roles, countingClaims(as, v)); ok {
			out = append(out, s)
		}
	}
	return out, nil
}

// servedUnder finds the claim and account a record's block was served
// under: the first that serveRecordBlock's loop allows.
func servedUnder(peer peerRoles, counting []*Access) (ServedRecord, bool) {
	for _, a := range counting {
		for _, id := range peer.replicating {
			if a.Subject == id || a.Author == id {
				return ServedRecord{Record: a.Record, Subject: a.Subject, Account: id, Rule: RuleServeReplica,
					Reason: "kept by a declared replica of " + string(id)}, true
			}
		}
		for _, id := range peer.acting {
			if d := readDecision(a, id); d.Allow {
				return ServedRecord{Record: a.Record, Subject: a.Subject, Account: id, Rule: d.Rule, Reason: d.Reason}, true
			}
		}
	}
	return ServedRecord{}, false
}

// auditRead records that account id opened the record of claim a.
func (r *Repo) auditRead(ctx context.Context, id protocol.AccountID, a *Access) error {
	d := readDecision(a, id)
	err := r.Audit(ctx, AuditEvent{Kind: AuditRead, Account: id, Subject: a.Subject, Records: []cid.Cid{a.Record}, Rule: d.Rule, Reason: d.Reason})
	if err != nil {
		return fmt.Errorf("%s: audit log: %w", a.Record, err)
	}
	return nil
}
