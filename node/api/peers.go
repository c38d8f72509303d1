package api

import (
	"context"
	"net/http"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/blockmrs/blockmrs/node/ops"
)

// ForgetRequest is the body of POST /api/v1/peers/forget.
type ForgetRequest struct {
	// Peer is the peer ID to drop from the address book.
	Peer string `json:"peer"`
}

// PeerForgotten is the answer of POST /api/v1/peers/forget.
type PeerForgotten = ops.PeerForgotten

func (s *Server) peers(w http.ResponseWriter, r *http.Request) {
	out, err := ops.ListPeers(r.Context(), s.opts.Host, s.opts.Repo)
	s.reply(w, http.StatusOK, out, err)
}

func (s *Server) forgetPeer(w http.ResponseWriter, r *http.Request) {
	if s.opts.Repo == nil {
		s.reply(w, http.StatusOK, nil, ops.ErrNoNode)
		return
	}
	var req ForgetRequest
	if !decodeJSON(w, r, &req) {
		return
	}
	var forget func(context.Context, peer.ID) (bool, error)
	if s.opts.Book != nil {
		forget = s.opts.Book.Forget
	}
	out, err := ops.ForgetPeer(r.Context(), s.opts.Repo, forget, req.Peer)
	s.reply(w, http.StatusOK, out, err)
}

// Peers calls GET /api/v1/peers.
func (c *Client) Peers(ctx context.Context) (Peers, error) {
	var v Peers
	return v, c.call(ctx, http.MethodGet, "/api/v1/peers", nil, &v)
}

// ForgetPeer calls POST /api/v1/peers/forget.
func (c *Client) ForgetPeer(ctx context.Context, id string) (PeerForgotten, error) {
	var v PeerForgotten
	return v, c.call(ctx, http.MethodPost, "/api/v1/peers/forget", ForgetRequest{Peer: id}, &v)
}
