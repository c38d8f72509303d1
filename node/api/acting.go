package api

import (
	"errors"
	"net/http"

	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/protocol"
)

// acting resolves the account an endpoint acts as: the "account" query
// parameter (a local account's ID, name or ID suffix), else the repo's
// default account. On failure it writes the error (400, 404, 501) and
// returns false.
func (s *Server) acting(w http.ResponseWriter, r *http.Request) (keyshare.AccountInfo, bool) {
	if s.opts.Repo == nil {
		writeError(w, http.StatusNotImplemented, "this server has no repo")
		return keyshare.AccountInfo{}, false
	}
	info, err := s.opts.Repo.Resolve(r.Context(), r.URL.Query().Get("account"), true)
	if err != nil {
		status := http.StatusBadRequest
		if errors.Is(err, keyshare.ErrUnknownAccount) {
			status = http.StatusNotFound
		}
		writeError(w, status, "account: %v", err)
		return keyshare.AccountInfo{}, false
	}
	return info, true
}

// keysOf returns the keys of the acting account (see acting) from its
// unlocked session. An account whose keys are stored without a
// passphrase needs no session. A locked account is 423 Locked, saying to
// unlock it first; keys are never taken from the request.
func (s *Server) keysOf(w http.ResponseWriter, r *http.Request) (*keyshare.Keys, bool) {
	info, ok := s.acting(w, r)
	if !ok {
		return nil, false
	}
	if !info.Encrypted {
		k, err := s.opts.Repo.Unlock(r.Context(), info.ID, nil)
		if err != nil {
			s.opError(w, err)
			return nil, false
		}
		return k, true
	}
	if s.opts.Sessions == nil {
		writeError(w, http.StatusNotImplemented, "this server holds no sessions")
		return nil, false
	}
	k, err := s.opts.Sessions.Keys(info.ID)
	if errors.Is(err, keyshare.ErrNoSession) {
		writeError(w, http.StatusLocked, "%s is locked: unlock it first (POST /api/v1/sessions/unlock)", accountLabel(info))
		return nil, false
	}
	if err != nil {
		s.opError(w, err)
		return nil, false
	}
	return k, true
}

func accountLabel(a keyshare.AccountInfo) string {
	return a.Name + " (" + protocol.AccountID(a.ID).Short() + ")"
}
