package api

import (
	"context"
	"net/http"

	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/protocol"
)

// The adapters below are the one shape most handlers have: find what the
// operation needs (the acting account, its keys, the JSON body), call the
// operation, answer its result or its error (s.reply). A handler that
// needs only that is one line; one that needs more (query parameters,
// a lock, another status) calls keysBody with a closure.
//
// Every adapter answers exactly as the handler it replaces did: 501
// without a repo, 400/404 for a bad acting account, 423 when the
// account is locked, 400 for a bad body, then the operation's answer.

// withRepo answers 501 when the server has no repo.
func (s *Server) withRepo(w http.ResponseWriter) bool {
	if s.opts.Repo == nil {
		writeError(w, http.StatusNotImplemented, "this server has no repo")
		return false
	}
	return true
}

// keysBody answers a request done with the acting account's keys on a
// JSON body of type Req: the keys first (423 when the account is
// locked), then the body, then op, whose result is answered with status.
// The keys are wiped when op returns: an operation that keeps them past
// its return (a job) keeps its own copy.
func keysBody[Req, Out any](s *Server, w http.ResponseWriter, r *http.Request, status int, op func(ctx context.Context, k *keyshare.Keys, req Req) (Out, error)) {
	k, ok := s.keysOf(w, r)
	if !ok {
		return
	}
	defer k.Wipe()
	var req Req
	if !decodeJSON(w, r, &req) {
		return
	}
	out, err := op(r.Context(), k, req)
	s.reply(w, status, out, err)
}

// withKeys answers a request for the repo operation op done with the
// acting account's keys on a JSON body (keysBody, 200 OK): the shape of
// ops.Attest, ops.AppointGuardian, ops.EmergencySetup and their kind.
func withKeys[Req, Out any](s *Server, w http.ResponseWriter, r *http.Request, op func(ctx context.Context, repo *keyshare.Repo, k *keyshare.Keys, req Req) (Out, error)) {
	keysBody(s, w, r, http.StatusOK, func(ctx context.Context, k *keyshare.Keys, req Req) (Out, error) {
		return op(ctx, s.opts.Repo, k, req)
	})
}

// keysOnly answers a request done with the acting account's keys that
// has no body to read (200 OK); the keys are wiped when op returns.
func keysOnly[Out any](s *Server, w http.ResponseWriter, r *http.Request, op func(ctx context.Context, k *keyshare.Keys) (Out, error)) {
	k, ok := s.keysOf(w, r)
	if !ok {
		return
	}
	defer k.Wipe()
	out, err := op(r.Context(), k)
	s.reply(w, http.StatusOK, out, err)
}

// asActing answers a request that reads what the repo holds about the
// acting account (no keys needed, 200 OK): the shape of ops.Guardians,
// ops.EmergencyShow, ops.ShowRecovery.
func asActing[Out any](s *Server, w http.ResponseWriter, r *http.Request, op func(ctx context.Context, repo *keyshare.Repo, me protocol.AccountID) (Out, error)) {
	me, ok := s.acting(w, r)
	if !ok {
		return
	}
	out, err := op(r.Context(), s.opts.Repo, me.ID)
	s.reply(w, http.StatusOK, out, err)
}

// repoBody answers a request for the repo operation op on a JSON body
// that acts for no account (no keys, 200 OK; 501 without a repo).
func repoBody[Req, Out any](s *Server, w http.ResponseWriter, r *http.Request, op func(ctx context.Context, repo *keyshare.Repo, req Req) (Out, error)) {
	if !s.withRepo(w) {
		return
	}
	var req Req
	if !decodeJSON(w, r, &req) {
		return
	}
	out, err := op(r.Context(), s.opts.Repo, req)
	s.reply(w, http.StatusOK, out, err)
}

// repoOnly answers a request for the repo operation op that has neither
// an acting account nor a body (200 OK; 501 without a repo).
func repoOnly[Out any](s *Server, w http.ResponseWriter, r *http.Request, op func(ctx context.Context, repo *keyshare.Repo) (Out, error)) {
	if !s.withRepo(w) {
		return
	}
	out, err := op(r.Context(), s.opts.Repo)
	s.reply(w, http.StatusOK, out, err)
}
