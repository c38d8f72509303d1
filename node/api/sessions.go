package api

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/protocol"
)

// The session endpoints: the daemon holds an account's keys unlocked for
// an idle time (keyshare.Sessions), so commands and the web app acting as
// it pay no scrypt unlock per request.

// Session is one open session, as the API carries it.
type Session struct {
	// Account is the unlocked account.
	Account protocol.AccountID `json:"account"`
	// IdleSeconds is how long the session stays open without use.
	IdleSeconds int64 `json:"idle_s"`
	// Opened and Expires are RFC 3339 times; Expires moves on with use.
	Opened  time.Time `json:"opened"`
	Expires time.Time `json:"expires"`
}

func sessionOf(s keyshare.Session) Session {
	return Session{Account: s.Account, IdleSeconds: int64(s.Idle / time.Second), Opened: s.Opened.UTC(), Expires: s.Expires.UTC()}
}

// Sessions is the body of GET /api/v1/sessions.
type Sessions struct {
	Sessions []Session `json:"sessions"`
}

// UnlockRequest is the body of POST /api/v1/sessions/unlock.
type UnlockRequest struct {
	// Account is a local account's ID.
	Account protocol.AccountID `json:"account"`
	// Passphrase is the account's passphrase ("" for keys stored without
	// one).
	Passphrase string `json:"passphrase"`
	// IdleSeconds is the idle time (0: 15 minutes; at most 24 hours).
	IdleSeconds int64 `json:"idle_s,omitempty"`
}

// LockRequest is the body of POST /api/v1/sessions/lock.
type LockRequest struct {
	// Account is the account to lock; "" locks every session.
	Account protocol.AccountID `json:"account,omitempty"`
}

// Locked is the answer to POST /api/v1/sessions/lock.
type Locked struct {
	// Locked counts the sessions that were open and are now ended.
	Locked int `json:"locked"`
}

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
	out := Sessions{Sessions: []Session{}}
	for _, se := range ss.List() {
		out.Sessions = append(out.Sessions, sessionOf(se))
	}
	writeJSON(w, http.StatusOK, out)
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
	if _, err := protocol.ParseAccountID(string(req.Account)); err != nil {
		writeError(w, http.StatusBadRequest, "account: %v", err)
		return
	}
	if req.IdleSeconds < 0 || req.IdleSeconds > int64(keyshare.MaxIdle/time.Second) {
		writeError(w, http.StatusBadRequest, "idle_s must be 0 (15 minutes) to %d", int64(keyshare.MaxIdle/time.Second))
		return
	}
	pass := []byte(req.Passphrase)
	defer clear(pass)
	se, err := ss.Unlock(r.Context(), req.Account, pass, time.Duration(req.IdleSeconds)*time.Second)
	switch {
	case errors.Is(err, keyshare.ErrWrongPassphrase):
		writeError(w, http.StatusForbidden, "unlock %s: wrong passphrase (each wrong one makes the next attempt wait longer)", req.Account)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		writeError(w, http.StatusServiceUnavailable, "unlock %s: cancelled while waiting out earlier wrong passphrases", req.Account)
	case err != nil:
		writeError(w, http.StatusBadRequest, "%v", err)
	default:
		writeJSON(w, http.StatusOK, sessionOf(se))
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
	out := Locked{}
	if req.Account == "" {
		out.Locked = ss.LockAll()
	} else if ss.Lock(req.Account) {
		out.Locked = 1
	}
	writeJSON(w, http.StatusOK, out)
}
