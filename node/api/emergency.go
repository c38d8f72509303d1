package api

import (
	"context"
	"net/http"

	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/node/ops"
)

// The emergency endpoints: GET /api/v1/emergency shows the acting
// account's packs, the uses reported to it and what this node holds and
// decided as custodian; POST /api/v1/emergency sets up a pack; POST
// /api/v1/emergency/open is a clinician's break-glass request; POST
// /api/v1/emergency/end ends the acting account's pack. The types are the
// operations' (node/ops).
type (
	EmergencySetupRequest = ops.EmergencySetupRequest
	EmergencyPack         = ops.EmergencyPack
	EmergencyShown        = ops.EmergencyShown
	EmergencyOpenRequest  = ops.EmergencyOpenRequest
	EmergencyOpened       = ops.EmergencyOpened
	EmergencyEnded        = ops.EmergencyEnded
)

func (s *Server) emergencyShow(w http.ResponseWriter, r *http.Request) {
	asActing(s, w, r, ops.EmergencyShow)
}

func (s *Server) emergencySetup(w http.ResponseWriter, r *http.Request) {
	withKeys(s, w, r, ops.EmergencySetup)
}

func (s *Server) emergencyOpen(w http.ResponseWriter, r *http.Request) {
	if s.opts.Emergency == nil {
		writeError(w, http.StatusNotImplemented, "this server cannot reach custodians (no emergency service)")
		return
	}
	keysBody(s, w, r, http.StatusOK, func(ctx context.Context, k *keyshare.Keys, req EmergencyOpenRequest) (EmergencyOpened, error) {
		return ops.EmergencyOpen(ctx, s.opts.Emergency, k, req)
	})
}

func (s *Server) emergencyEnd(w http.ResponseWriter, r *http.Request) {
	keysOnly(s, w, r, func(ctx context.Context, k *keyshare.Keys) (EmergencyEnded, error) {
		return ops.EmergencyEnd(ctx, s.opts.Repo, k)
	})
}

// Emergency calls GET /api/v1/emergency as account ("" for the default
// account).
func (c *Client) Emergency(ctx context.Context, account string) (EmergencyShown, error) {
	var v EmergencyShown
	return v, c.call(ctx, http.MethodGet, accountQuery("/api/v1/emergency", account), nil, &v)
}

// EmergencySetup calls POST /api/v1/emergency as account.
func (c *Client) EmergencySetup(ctx context.Context, account string, req EmergencySetupRequest) (EmergencyPack, error) {
	var v EmergencyPack
	return v, c.call(ctx, http.MethodPost, accountQuery("/api/v1/emergency", account), req, &v)
}

// EmergencyOpen calls POST /api/v1/emergency/open as account.
func (c *Client) EmergencyOpen(ctx context.Context, account string, req EmergencyOpenRequest) (EmergencyOpened, error) {
	var v EmergencyOpened
	return v, c.call(ctx, http.MethodPost, accountQuery("/api/v1/emergency/open", account), req, &v)
}

// EmergencyEnd calls POST /api/v1/emergency/end as account.
func (c *Client) EmergencyEnd(ctx context.Context, account string) (EmergencyEnded, error) {
	var v EmergencyEnded
	return v, c.call(ctx, http.MethodPost, accountQuery("/api/v1/emergency/end", account), struct{}{}, &v)
}
