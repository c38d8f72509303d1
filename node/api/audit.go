package api

import (
	"context"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/blockmrs/blockmrs/node/audit"
	"github.com/blockmrs/blockmrs/node/ops"
)

// The audit endpoints: GET /api/v1/audit lists the node's audit events
// about the acting account ("who accessed my records"), GET
// /api/v1/audit/fhir exports them as a FHIR R4 Bundle of AuditEvents, GET
// /api/v1/audit/verify checks the log. They need no keys: the log is the
// node's, not the account's secret (the API's token guards it). New
// entries are announced on the event stream:
//
//	event: audit    data: {"seq":12,"kind":"serve","subject":"12D3…","records":["bafy…"]}
type (
	AuditQuery = ops.AuditQuery
	AuditTrail = ops.AuditTrail
	AuditCheck = ops.AuditCheck
	AuditEntry = audit.Entry
)

// AuditEvent is the data of an "audit" event: an entry was appended to
// the node's audit log.
type AuditEvent struct {
	Seq     uint64   `json:"seq"`
	Kind    string   `json:"kind"`
	Subject string   `json:"subject,omitempty"`
	Records []string `json:"records,omitempty"`
}

// watchAudit publishes an "audit" event for each new entry of the repo's
// audit log; the function it returns stops it.
func (s *Server) watchAudit() func() {
	l := audit.Of(s.opts.Repo)
	if l == nil {
		return func() {}
	}
	return l.Watch(func(e audit.Entry) {
		s.events.publish("audit", AuditEvent{Seq: e.Seq, Kind: string(e.Kind), Subject: string(e.Subject), Records: e.Records})
	})
}

// auditQuery reads the query parameters of the audit endpoints.
func auditQuery(w http.ResponseWriter, r *http.Request) (AuditQuery, bool) {
	q := r.URL.Query()
	all, ok := queryBool(w, r, "all")
	if !ok {
		return AuditQuery{}, false
	}
	aq := AuditQuery{Record: q.Get("record"), Since: q.Get("since"), All: all}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			writeError(w, http.StatusBadRequest, "limit: %q is not a number", truncate(v))
			return AuditQuery{}, false
		}
		aq.Limit = n
	}
	return aq, true
}

func (s *Server) auditTrail(w http.ResponseWriter, r *http.Request) {
	me, ok := s.acting(w, r)
	if !ok {
		return
	}
	q, ok := auditQuery(w, r)
	if !ok {
		return
	}
	out, err := ops.Audit(r.Context(), s.opts.Repo, me.ID, q)
	s.reply(w, http.StatusOK, out, err)
}

func (s *Server) auditFHIR(w http.ResponseWriter, r *http.Request) {
	me, ok := s.acting(w, r)
	if !ok {
		return
	}
	q, ok := auditQuery(w, r)
	if !ok {
		return
	}
	doc, err := ops.AuditFHIR(r.Context(), s.opts.Repo, me.ID, q, time.Now())
	if err != nil {
		s.opError(w, err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/fhir+json")
	h.Set("Content-Disposition", `attachment; filename="audit-events.json"`)
	w.WriteHeader(http.StatusOK)
	w.Write(doc)
}

func (s *Server) auditVerify(w http.ResponseWriter, r *http.Request) {
	repoOnly(s, w, r, ops.VerifyAudit)
}

func auditParams(account string, q AuditQuery) map[string]string {
	m := map[string]string{"account": account, "record": q.Record, "since": q.Since}
	if q.All {
		m["all"] = "true"
	}
	if q.Limit != 0 {
		m["limit"] = strconv.Itoa(q.Limit)
	}
	return m
}

// Audit calls GET /api/v1/audit as account ("" for the default one).
func (c *Client) Audit(ctx context.Context, account string, q AuditQuery) (AuditTrail, error) {
	var v AuditTrail
	return v, c.call(ctx, http.MethodGet, withQuery("/api/v1/audit", auditParams(account, q)), nil, &v)
}

// AuditFHIR calls GET /api/v1/audit/fhir as account and copies the
// Bundle to w.
func (c *Client) AuditFHIR(ctx context.Context, account string, q AuditQuery, w io.Writer) error {
	return c.download(ctx, withQuery("/api/v1/audit/fhir", auditParams(account, q)), w)
}

// VerifyAudit calls GET /api/v1/audit/verify.
func (c *Client) VerifyAudit(ctx context.Context) (AuditCheck, error) {
	var v AuditCheck
	return v, c.call(ctx, http.MethodGet, "/api/v1/audit/verify", nil, &v)
}
