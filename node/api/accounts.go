package api

import (
	"context"
	"errors"
	"net/http"

	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/node/ops"
)

// The account and contact endpoints: each decodes its request, calls the
// operation in node/ops that the command line calls too, and encodes the
// same result.

func (s *Server) listAccounts(w http.ResponseWriter, r *http.Request) {
	out, err := ops.Accounts(r.Context(), s.opts.Accounts)
	s.reply(w, http.StatusOK, out, err)
}

func (s *Server) createAccount(w http.ResponseWriter, r *http.Request) {
	if s.opts.Repo == nil {
		writeError(w, http.StatusNotImplemented, "this server cannot create accounts")
		return
	}
	var req NewAccount
	if !decodeJSON(w, r, &req) {
		return
	}
	// One at a time, so that two requests cannot both pass the check
	// that the name is free.
	s.createMu.Lock()
	out, err := ops.CreateAccount(r.Context(), s.opts.Repo, ops.ThisDevice(s.opts.Host.ID().String()), req)
	s.createMu.Unlock()
	s.reply(w, http.StatusCreated, out, err)
}

// DefaultRequest is the body of POST /api/v1/accounts/default.
type DefaultRequest = ops.DefaultRequest

func (s *Server) setDefault(w http.ResponseWriter, r *http.Request) {
	if s.opts.Repo == nil {
		writeError(w, http.StatusNotImplemented, "this server has no repo")
		return
	}
	var req DefaultRequest
	if !decodeJSON(w, r, &req) {
		return
	}
	out, err := ops.SetDefault(r.Context(), s.opts.Repo, req)
	s.reply(w, http.StatusOK, out, err)
}

// SetDefault calls POST /api/v1/accounts/default.
func (c *Client) SetDefault(ctx context.Context, req DefaultRequest) (AccountList, error) {
	var v AccountList
	return v, c.call(ctx, http.MethodPost, "/api/v1/accounts/default", req, &v)
}

func (s *Server) listContacts(w http.ResponseWriter, r *http.Request) {
	out, err := ops.Contacts(r.Context(), s.opts.Accounts)
	s.reply(w, http.StatusOK, out, err)
}

func (s *Server) addContact(w http.ResponseWriter, r *http.Request) {
	if s.opts.Profiles == nil {
		writeError(w, http.StatusNotImplemented, "this server cannot add contacts from the network")
		return
	}
	var req AddContactRequest
	if !decodeJSON(w, r, &req) {
		return
	}
	out, err := ops.AddContact(r.Context(), s.opts.Accounts, s.opts.Profiles, req)
	if err != nil {
		if !errors.Is(err, ops.ErrInvalid) && !errors.Is(err, ops.ErrNoNode) && r.Context().Err() == nil {
			// The other node refused, was not reachable or sent a
			// profile that failed verification.
			writeError(w, http.StatusBadGateway, "%v", err)
			return
		}
		s.opError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// reply answers an operation's result: out as JSON with status, or its
// error by opError.
func (s *Server) reply(w http.ResponseWriter, status int, out any, err error) {
	if err != nil {
		s.opError(w, err)
		return
	}
	writeJSON(w, status, out)
}

// opError answers an operation's error: 400 for bad input, 404 for a
// missing thing, 403 for what the access rules refuse, 409 for a
// conflict, 423 for a locked account's keys, 501 for what needs a part of the node this server lacks, 503
// when the request ended; else 500, logged.
func (s *Server) opError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, ops.ErrInvalid):
		writeError(w, http.StatusBadRequest, "%v", err)
	case errors.Is(err, ops.ErrNotFound):
		writeError(w, http.StatusNotFound, "%v", err)
	case errors.Is(err, ops.ErrForbidden), errors.Is(err, keyshare.ErrNoAccess):
		writeError(w, http.StatusForbidden, "%v", err)
	case errors.Is(err, ops.ErrExists):
		writeError(w, http.StatusConflict, "%v", err)
	case errors.Is(err, keyshare.ErrNoSession):
		writeError(w, http.StatusLocked, "%v (POST /api/v1/sessions/unlock)", err)
	case errors.Is(err, ops.ErrNoNode):
		writeError(w, http.StatusNotImplemented, "%v", err)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		writeError(w, http.StatusServiceUnavailable, "%v", err)
	default:
		s.log.Error("api: operation failed", "err", err)
		writeError(w, http.StatusInternalServerError, "%v", err)
	}
}
