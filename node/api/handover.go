package api

import (
	"context"
	"errors"
	"net/http"

	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/node/ops"
)

// The hand-over endpoints: POST /api/v1/guardians/handover offers a
// ward's account to the grown-up's node (the guardian's node forgets its
// keys once that node stored them); POST /api/v1/devices/takeover joins
// it there and withdraws the offering node with a key rotation. The types
// are the operations' (node/ops).
type (
	HandoverRequest = ops.HandoverRequest
	HandoverOffer   = ops.HandoverOffer
	TakeoverResult  = ops.TakeoverResult
)

func (s *Server) handover(w http.ResponseWriter, r *http.Request) {
	k, ok := s.keysOf(w, r)
	if !ok {
		return
	}
	defer k.Wipe()
	var req HandoverRequest
	if !decodeJSON(w, r, &req) {
		return
	}
	out, err := ops.HandoverStart(r.Context(), s.opts.Repo, s.opts.Sessions, s.opts.Pair, s.opts.Host, k, req)
	if errors.Is(err, keyshare.ErrNoSession) {
		writeError(w, http.StatusLocked, "%v (POST /api/v1/sessions/unlock)", err)
		return
	}
	s.reply(w, http.StatusOK, out, err)
}

func (s *Server) takeover(w http.ResponseWriter, r *http.Request) {
	if s.opts.Repo == nil {
		writeError(w, http.StatusNotImplemented, "this server has no repo")
		return
	}
	var req JoinRequest
	if !decodeJSON(w, r, &req) {
		return
	}
	self := ""
	if s.opts.Host != nil {
		self = s.opts.Host.ID().String()
	}
	out, err := ops.Takeover(r.Context(), s.opts.Repo, s.opts.Sessions, s.opts.Pair, self, req)
	s.reply(w, http.StatusOK, out, err)
}

// Handover calls POST /api/v1/guardians/handover as account, the ward's
// guardian ("" is the default).
func (c *Client) Handover(ctx context.Context, account string, req HandoverRequest) (HandoverOffer, error) {
	var v HandoverOffer
	return v, c.call(ctx, http.MethodPost, accountQuery("/api/v1/guardians/handover", account), req, &v)
}

// Takeover calls POST /api/v1/devices/takeover.
func (c *Client) Takeover(ctx context.Context, req JoinRequest) (TakeoverResult, error) {
	var v TakeoverResult
	return v, c.call(ctx, http.MethodPost, "/api/v1/devices/takeover", req, &v)
}
