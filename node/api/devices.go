package api

import (
	"net/http"

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
	k, ok := s.keysOf(w, r)
	if !ok {
		return
	}
	var req DeclareRequest
	if !decodeJSON(w, r, &req) {
		return
	}
	out, err := ops.Declare(r.Context(), s.opts.Repo, k, req)
	if err != nil {
		s.opError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) withdrawDevice(w http.ResponseWriter, r *http.Request) {
	k, ok := s.keysOf(w, r)
	if !ok {
		return
	}
	var req WithdrawRequest
	if !decodeJSON(w, r, &req) {
		return
	}
	out, err := ops.Withdraw(r.Context(), s.opts.Repo, k, req)
	if err != nil {
		s.opError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}
