package api

import (
	"context"
	"net/http"
	"net/url"

	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/node/ops"
	"github.com/blockmrs/blockmrs/protocol"
)

// The sharing endpoints: who may read a record, grants, revocations and
// access requests. The types are the operations' (node/ops).
type (
	Readers        = ops.Readers
	GrantRequest   = ops.GrantRequest
	Granted        = ops.Granted
	RevokeRequest  = ops.RevokeRequest
	Revoked        = ops.Revoked
	RequestList    = ops.RequestList
	SendRequest    = ops.SendRequest
	ApproveRequest = ops.ApproveRequest
	DenyRequest    = ops.DenyRequest
)

func (s *Server) readers(w http.ResponseWriter, r *http.Request) {
	me, ok := s.acting(w, r)
	if !ok {
		return
	}
	out, err := ops.RecordReaders(r.Context(), s.opts.Repo, me.ID, r.PathValue("cid"))
	s.reply(w, http.StatusOK, out, err)
}

func (s *Server) listGrants(w http.ResponseWriter, r *http.Request) {
	k, ok := s.keysOf(w, r)
	if !ok {
		return
	}
	out, err := ops.Grants(r.Context(), s.opts.Repo, k, ops.ListGrants{With: r.URL.Query().Get("with")})
	s.reply(w, http.StatusOK, out, err)
}

func (s *Server) grant(w http.ResponseWriter, r *http.Request) {
	withKeys(s, w, r, ops.Grant)
}

func (s *Server) revoke(w http.ResponseWriter, r *http.Request) {
	k, ok := s.keysOf(w, r)
	if !ok {
		return
	}
	var req RevokeRequest
	if !decodeJSON(w, r, &req) {
		return
	}
	if req.Rekey {
		s.startRekey(w, r, k, req)
		return
	}
	out, err := ops.Revoke(r.Context(), s.opts.Repo, k, req)
	s.reply(w, http.StatusOK, out, err)
}

func (s *Server) listRequests(w http.ResponseWriter, r *http.Request) {
	if s.opts.Repo == nil {
		writeError(w, http.StatusNotImplemented, "this server has no repo")
		return
	}
	var account protocol.AccountID
	if r.URL.Query().Get("account") != "" {
		me, ok := s.acting(w, r)
		if !ok {
			return
		}
		account = me.ID
	}
	out, err := ops.Requests(r.Context(), s.opts.Repo, account)
	s.reply(w, http.StatusOK, out, err)
}

func (s *Server) sendRequest(w http.ResponseWriter, r *http.Request) {
	k, ok := s.keysOf(w, r)
	if !ok {
		return
	}
	var req SendRequest
	if !decodeJSON(w, r, &req) {
		return
	}
	out, err := ops.Send(r.Context(), s.opts.Repo, k, req)
	if err != nil {
		s.opError(w, err)
		return
	}
	if s.opts.RequestsKick != nil {
		s.opts.RequestsKick()
	}
	writeJSON(w, http.StatusCreated, out)
}

// asAsked makes an answer to inbox request {id} act, unless the request
// names an account, as the account the request asks (as the approve and
// deny commands do).
func (s *Server) asAsked(r *http.Request) {
	if s.opts.Repo == nil || r.URL.Query().Get("account") != "" {
		return
	}
	q, err := s.opts.Repo.FindRequest(r.Context(), keyshare.Inbox, r.PathValue("id"))
	if err != nil {
		return // the operation reports it
	}
	v := r.URL.Query()
	v.Set("account", string(q.To))
	r.URL.RawQuery = v.Encode()
}

func (s *Server) approveRequest(w http.ResponseWriter, r *http.Request) {
	var req ApproveRequest
	s.answerRequest(w, r, &req, func(k *keyshare.Keys) (any, error) {
		return ops.Approve(r.Context(), s.opts.Repo, k, r.PathValue("id"), req)
	})
}

func (s *Server) denyRequest(w http.ResponseWriter, r *http.Request) {
	var req DenyRequest
	s.answerRequest(w, r, &req, func(k *keyshare.Keys) (any, error) {
		return ops.Deny(r.Context(), s.opts.Repo, k, r.PathValue("id"), req)
	})
}

// answerRequest runs an answer to request {id} as the account it was
// asked of: the body decoded into req, then answer with that account's
// keys; a sent answer wakes the request delivery.
func (s *Server) answerRequest(w http.ResponseWriter, r *http.Request, req any, answer func(*keyshare.Keys) (any, error)) {
	s.asAsked(r)
	k, ok := s.keysOf(w, r)
	if !ok {
		return
	}
	if !decodeJSON(w, r, req) {
		return
	}
	out, err := answer(k)
	if err != nil {
		s.opError(w, err)
		return
	}
	if s.opts.RequestsKick != nil {
		s.opts.RequestsKick()
	}
	writeJSON(w, http.StatusOK, out)
}

// Grants calls GET /api/v1/grants as account ("" for the default
// account), with req.With as the with parameter.
func (c *Client) Grants(ctx context.Context, account string, req ops.ListGrants) (ops.GrantList, error) {
	q := url.Values{}
	if account != "" {
		q.Set("account", account)
	}
	if req.With != "" {
		q.Set("with", req.With)
	}
	path := "/api/v1/grants"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var v ops.GrantList
	return v, c.call(ctx, http.MethodGet, path, nil, &v)
}
