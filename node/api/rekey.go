package api

import (
	"context"
	"net/http"
	"net/url"

	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/node/ops"
)

// Revoke and re-key: POST /api/v1/revocations with "rekey": true starts a
// job (202 Accepted, the job as it starts); GET /api/v1/jobs/{id} gives
// its progress, GET /api/v1/jobs the acting account's jobs. A job runs in
// the daemon with a copy of the account's keys; it stops, left
// interrupted with what is left, when the daemon stops or the account's
// session is locked (checked after each record).
type (
	Job     = ops.Job
	JobList = ops.JobList
)

// startRekey answers a revoke with re-key.
func (s *Server) startRekey(w http.ResponseWriter, r *http.Request, k *keyshare.Keys, req RevokeRequest) {
	j, err := ops.StartRekey(r.Context(), s.opts.Repo, k, req)
	s.runJob(w, k, j, err)
}

// startScopeRekey answers the end of a standing grant with re-key.
func (s *Server) startScopeRekey(w http.ResponseWriter, r *http.Request, k *keyshare.Keys, req ScopeEndRequest) {
	j, err := ops.StartScopeRekey(r.Context(), s.opts.Repo, k, req)
	s.runJob(w, k, j, err)
}

// runJob answers a re-key job started (or err), and runs it in the
// background with k, the job's own copy of the keys.
func (s *Server) runJob(w http.ResponseWriter, k *keyshare.Keys, j ops.Job, err error) {
	if err != nil {
		k.Wipe()
		s.opError(w, err)
		return
	}
	ctx, cancel := context.WithCancel(s.stopping)
	s.jobs.Add(1)
	go func() {
		defer s.jobs.Done()
		defer cancel()
		defer k.Wipe() // the job's own copy of the keys
		_, err := ops.RunRekey(ctx, s.opts.Repo, k, j.ID, func(ops.Job) {
			if s.opts.Sessions == nil {
				return
			}
			if info, err := s.opts.Repo.Account(ctx, k.ID); err == nil && info.Encrypted {
				if _, err := s.opts.Sessions.Background(k.ID); err != nil {
					cancel() // locked: stop signing as that account
				}
			}
		})
		if err != nil {
			s.log.Warn("api: re-key job failed", "job", j.ID, "err", err)
		}
	}()
	writeJSON(w, http.StatusAccepted, j)
}

func (s *Server) listJobs(w http.ResponseWriter, r *http.Request) {
	me, ok := s.acting(w, r)
	if !ok {
		return
	}
	out, err := ops.Jobs(r.Context(), s.opts.Repo, me)
	s.reply(w, http.StatusOK, out, err)
}

func (s *Server) getJob(w http.ResponseWriter, r *http.Request) {
	me, ok := s.acting(w, r)
	if !ok {
		return
	}
	out, err := ops.JobOf(r.Context(), s.opts.Repo, me, r.PathValue("id"))
	s.reply(w, http.StatusOK, out, err)
}

// StartRekey calls POST /api/v1/revocations with rekey set, as account
// ("" for the default account): the job as it starts.
func (c *Client) StartRekey(ctx context.Context, account string, req RevokeRequest) (Job, error) {
	req.Rekey = true
	var v Job
	return v, c.call(ctx, http.MethodPost, accountQuery("/api/v1/revocations", account), req, &v)
}

// StartScopeRekey calls POST /api/v1/scopes/end with rekey set, as
// account ("" for the default account): the job as it starts.
func (c *Client) StartScopeRekey(ctx context.Context, account string, req ScopeEndRequest) (Job, error) {
	req.Rekey = true
	var v Job
	return v, c.call(ctx, http.MethodPost, accountQuery("/api/v1/scopes/end", account), req, &v)
}

// Job calls GET /api/v1/jobs/{id} as account.
func (c *Client) Job(ctx context.Context, account, id string) (Job, error) {
	var v Job
	return v, c.call(ctx, http.MethodGet, accountQuery("/api/v1/jobs/"+url.PathEscape(id), account), nil, &v)
}

// Jobs calls GET /api/v1/jobs as account.
func (c *Client) Jobs(ctx context.Context, account string) (JobList, error) {
	var v JobList
	return v, c.call(ctx, http.MethodGet, accountQuery("/api/v1/jobs", account), nil, &v)
}
