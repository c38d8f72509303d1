package api

import (
	"context"
	"errors"
	"net/http"

	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/node/ops"
)

// The session endpoints: the daemon holds an account's keys unlocked for
// an idle time (keyshare.Sessions), so commands and the web app acting as
// it pay no scrypt unlock per request.

// The session types are the operations' (node/ops).
type (
	Session       = ops.Session
	Sessions      = ops.SessionList
	UnlockRequest = ops.UnlockRequest
	LockRequest   = ops.LockRequest
	Locked        = ops.Locked
)

func (s *Server) sessions(w http.ResponseWriter) *keyshare.Sessions {
	if s.opts.Sessions == nil {
		writeError(w, http.StatusNotImplemented, "this server holds no sessions")
	}
	return s.opts.Sessions
}

func (s *Server) listSessions(w http.ResponseWriter, r *http.Request) {
	ss := s.sessions(w)
	if ss == nil {
		return
	}
	writeJSON(w, http.StatusOK, ops.Sessions(ss))
}

func (s *Server) unlock(w http.ResponseWriter, r *http.Request) {
	ss := s.sessions(w)
	if ss == nil {
		return
	}
	var req UnlockRequest
	if !decodeJSON(w, r, &req) {
		return
	}
	se, err := ops.Unlock(r.Context(), ss, req)
	switch {
	case errors.Is(err, keyshare.ErrWrongPassphrase):
		writeError(w, http.StatusForbidden, "unlock %s: wrong passphrase (each wrong one makes the next attempt wait longer)", req.Account)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		writeError(w, http.StatusServiceUnavailable, "unlock %s: cancelled while waiting out earlier wrong passphrases", req.Account)
	case err != nil:
		writeError(w, http.StatusBadRequest, "%v", err)
	default:
		writeJSON(w, http.StatusOK, se)
	}
}

func (s *Server) lock(w http.ResponseWriter, r *http.Request) {
	ss := s.sessions(w)
	if ss == nil {
		return
	}
	var req LockRequest
	if !decodeJSON(w, r, &req) {
		return
	}
	writeJSON(w, http.StatusOK, ops.Lock(ss, req))
}
