package api

import (
	"context"
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
	keysBody(s, w, r, http.StatusOK, func(ctx context.Context, k *keyshare.Keys, req HandoverRequest) (HandoverOffer, error) {
		return ops.HandoverStart(ctx, s.opts.Repo, s.opts.Sessions, s.opts.Pair, s.opts.Host, k, req)
	})
}

func (s *Server) takeover(w http.ResponseWriter, r *http.Request) {
	self := ""
	if s.opts.Host != nil {
		self = s.opts.Host.ID().String()
	}
	repoBody(s, w, r, func(ctx context.Context, repo *keyshare.Repo, req JoinRequest) (TakeoverResult, error) {
		return ops.Takeover(ctx, repo, s.opts.Sessions, s.opts.Pair, self, req)
	})
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
