package api

import (
	"context"
	"net/http"

	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/node/ops"
)

// The pairing endpoints: a pairing offer of this node (its code and QR
// code), joining another device's account, and removing a device with a
// key rotation. The types are the operations' (node/ops).
type (
	PairOffer           = ops.PairOffer
	PairState           = ops.PairState
	JoinRequest         = ops.JoinRequest
	JoinResult          = ops.JoinResult
	RemoveDeviceRequest = ops.RemoveDeviceRequest
	DeviceRemoved       = ops.DeviceRemoved
)

// PairQRModule is the size in pixels of one module of the pairing QR
// code image.
const PairQRModule = ShareQRModule

func (s *Server) pairStart(w http.ResponseWriter, r *http.Request) {
	keysOnly(s, w, r, func(_ context.Context, k *keyshare.Keys) (PairOffer, error) {
		return ops.PairStart(s.opts.Pair, s.opts.Host, k)
	})
}

func (s *Server) pairStatus(w http.ResponseWriter, r *http.Request) {
	out, err := ops.PairStatus(s.opts.Pair, s.opts.Host)
	s.reply(w, http.StatusOK, out, err)
}

func (s *Server) pairCancel(w http.ResponseWriter, r *http.Request) {
	out, err := ops.PairCancel(s.opts.Pair, s.opts.Host)
	s.reply(w, http.StatusOK, out, err)
}

// pairQR answers the pending offer's pairing code as a PNG QR code; 404
// when no offer is pending.
func (s *Server) pairQR(w http.ResponseWriter, r *http.Request) {
	st, err := ops.PairStatus(s.opts.Pair, s.opts.Host)
	if err != nil {
		s.opError(w, err)
		return
	}
	if st.Offer == nil {
		writeError(w, http.StatusNotFound, "no pairing offer is pending on this node: start one with POST /api/v1/devices/pair")
		return
	}
	q, err := ops.PairQR(*st.Offer)
	if err != nil {
		s.opError(w, err)
		return
	}
	png, err := q.PNG(-PairQRModule)
	if err != nil {
		s.opError(w, err)
		return
	}
	w.Header().Set("Content-Type", "image/png")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	w.Write(png)
}

func (s *Server) pairJoin(w http.ResponseWriter, r *http.Request) {
	repoBody(s, w, r, func(ctx context.Context, _ *keyshare.Repo, req JoinRequest) (JoinResult, error) {
		return ops.PairJoin(ctx, s.opts.Pair, req)
	})
}

func (s *Server) removeDevice(w http.ResponseWriter, r *http.Request) {
	self := ""
	if s.opts.Host != nil {
		self = s.opts.Host.ID().String()
	}
	keysBody(s, w, r, http.StatusOK, func(ctx context.Context, k *keyshare.Keys, req RemoveDeviceRequest) (DeviceRemoved, error) {
		return ops.RemoveDevice(ctx, s.opts.Repo, s.opts.Sessions, k, self, req)
	})
}

// PairStart calls POST /api/v1/devices/pair as account ("" is the
// default).
func (c *Client) PairStart(ctx context.Context, account string) (PairOffer, error) {
	var v PairOffer
	return v, c.call(ctx, http.MethodPost, accountQuery("/api/v1/devices/pair", account), struct{}{}, &v)
}

// PairStatus calls GET /api/v1/devices/pair.
func (c *Client) PairStatus(ctx context.Context) (PairState, error) {
	var v PairState
	return v, c.call(ctx, http.MethodGet, "/api/v1/devices/pair", nil, &v)
}

// PairCancel calls POST /api/v1/devices/pair/cancel.
func (c *Client) PairCancel(ctx context.Context) (PairState, error) {
	var v PairState
	return v, c.call(ctx, http.MethodPost, "/api/v1/devices/pair/cancel", struct{}{}, &v)
}

// Join calls POST /api/v1/devices/join.
func (c *Client) Join(ctx context.Context, req JoinRequest) (JoinResult, error) {
	var v JoinResult
	return v, c.call(ctx, http.MethodPost, "/api/v1/devices/join", req, &v)
}

// RemoveDevice calls POST /api/v1/devices/remove-and-rotate as account.
func (c *Client) RemoveDevice(ctx context.Context, account string, req RemoveDeviceRequest) (DeviceRemoved, error) {
	var v DeviceRemoved
	return v, c.call(ctx, http.MethodPost, accountQuery("/api/v1/devices/remove-and-rotate", account), req, &v)
}
