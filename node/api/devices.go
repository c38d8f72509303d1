package api

import (
	"context"
	"net/http"
	"net/url"

	"github.com/blockmrs/blockmrs/node/ops"
)

// The device endpoints: the nodes an account declares as its devices
// and replicas. The types are the operations' (node/ops).
type (
	NodeList        = ops.NodeList
	DeclareRequest  = ops.DeclareRequest
	WithdrawRequest = ops.WithdrawRequest
	NodeSet         = ops.NodeSet
)

func (s *Server) listDevices(w http.ResponseWriter, r *http.Request) {
	me, ok := s.acting(w, r)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, ops.ListDevices(me))
}

func (s *Server) declareDevice(w http.ResponseWriter, r *http.Request) {
	withKeys(s, w, r, ops.Declare)
}

func (s *Server) withdrawDevice(w http.ResponseWriter, r *http.Request) {
	withKeys(s, w, r, ops.Withdraw)
}

// accountQuery is path with ?account=account, unless account is empty.
func accountQuery(path, account string) string {
	if account == "" {
		return path
	}
	return path + "?" + url.Values{"account": {account}}.Encode()
}

// Devices calls GET /api/v1/devices as account ("" is the default).
func (c *Client) Devices(ctx context.Context, account string) (NodeList, error) {
	var v NodeList
	return v, c.call(ctx, http.MethodGet, accountQuery("/api/v1/devices", account), nil, &v)
}

// DeclareDevice calls POST /api/v1/devices as account.
func (c *Client) DeclareDevice(ctx context.Context, account string, req DeclareRequest) (NodeSet, error) {
	var v NodeSet
	return v, c.call(ctx, http.MethodPost, accountQuery("/api/v1/devices", account), req, &v)
}

// WithdrawDevice calls POST /api/v1/devices/remove as account.
func (c *Client) WithdrawDevice(ctx context.Context, account string, req WithdrawRequest) (NodeSet, error) {
	var v NodeSet
	return v, c.call(ctx, http.MethodPost, accountQuery("/api/v1/devices/remove", account), req, &v)
}
