package api

import (
	"context"
	"net/http"

	"github.com/blockmrs/blockmrs/node/ops"
)

// The standing-grant endpoints: POST /api/v1/scopes gives an account a
// scope of the acting account's records, POST /api/v1/scopes/end ends
// it; GET /api/v1/grants lists them with the record grants. The types
// are the operations' (node/ops).
type (
	ScopeGrantRequest = ops.ScopeGrantRequest
	ScopeGranted      = ops.ScopeGranted
	ScopeEndRequest   = ops.ScopeEndRequest
	ScopeEnded        = ops.ScopeEnded
)

func (s *Server) grantScope(w http.ResponseWriter, r *http.Request) {
	withKeys(s, w, r, ops.GrantScope)
}

func (s *Server) endScope(w http.ResponseWriter, r *http.Request) {
	k, ok := s.keysOf(w, r)
	if !ok {
		return
	}
	var req ScopeEndRequest
	if !decodeJSON(w, r, &req) {
		k.Wipe()
		return
	}
	if req.Rekey {
		s.startScopeRekey(w, r, k, req)
		return
	}
	defer k.Wipe()
	out, err := ops.EndScope(r.Context(), s.opts.Repo, k, req)
	s.reply(w, http.StatusOK, out, err)
}

// GrantScope calls POST /api/v1/scopes as account ("" for the default
// account).
func (c *Client) GrantScope(ctx context.Context, account string, req ScopeGrantRequest) (ScopeGranted, error) {
	var v ScopeGranted
	return v, c.call(ctx, http.MethodPost, accountQuery("/api/v1/scopes", account), req, &v)
}

// EndScope calls POST /api/v1/scopes/end as account ("" for the default
// account).
func (c *Client) EndScope(ctx context.Context, account string, req ScopeEndRequest) (ScopeEnded, error) {
	var v ScopeEnded
	return v, c.call(ctx, http.MethodPost, accountQuery("/api/v1/scopes/end", account), req, &v)
}
