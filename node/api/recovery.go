package api

import (
	"context"
	"net/http"
	"net/url"

	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/node/ops"
)

// Recovery of a lost key: the same types as the recovery command's --json.
type (
	RecoverySetupRequest   = ops.RecoverySetupRequest
	RecoveryShown          = ops.RecoveryShown
	RecoveryStartRequest   = ops.RecoveryStartRequest
	RecoveryStatus         = keyshare.RecoveryStatus
	RecoveryApproveRequest = ops.RecoveryApproveRequest
	RecoveryApproved       = ops.RecoveryApproved
	RecoveryRespondRequest = ops.RecoveryRespondRequest
	RecoveryFinishRequest  = ops.RecoveryFinishRequest
	RecoveryFinished       = ops.RecoveryFinished
	RecoveryInbox          = ops.RecoveryInbox
	RecoveryDenyRequest    = ops.RecoveryDenyRequest
)

// recoveryRoutes are the recovery endpoints (added to the server's routes).
func (s *Server) recoveryRoutes() map[string]map[string]http.HandlerFunc {
	return map[string]map[string]http.HandlerFunc{
		"/api/v1/recovery":                   {http.MethodGet: s.showRecovery, http.MethodPost: s.setupRecovery},
		"/api/v1/recovery/approve":           {http.MethodPost: s.approveRecovery},
		"/api/v1/recovery/requests":          {http.MethodGet: s.recoveryRequests},
		"/api/v1/recovery/requests/deny":     {http.MethodPost: s.denyRecoveryRequest},
		"/api/v1/recovery/start":             {http.MethodPost: s.startRecovery},
		"/api/v1/recovery/{account}":         {http.MethodGet: s.recoveryStatus},
		"/api/v1/recovery/{account}/respond": {http.MethodPost: s.respondRecovery},
		"/api/v1/recovery/{account}/finish":  {http.MethodPost: s.finishRecovery},
		"/api/v1/recovery/{account}/cancel":  {http.MethodPost: s.cancelRecovery},
	}
}

func (s *Server) showRecovery(w http.ResponseWriter, r *http.Request) {
	asActing(s, w, r, ops.ShowRecovery)
}

func (s *Server) setupRecovery(w http.ResponseWriter, r *http.Request) {
	withKeys(s, w, r, ops.SetupRecovery)
}

func (s *Server) approveRecovery(w http.ResponseWriter, r *http.Request) {
	withKeys(s, w, r, ops.ApproveRecovery)
}

func (s *Server) recoveryRequests(w http.ResponseWriter, r *http.Request) {
	repoOnly(s, w, r, ops.RecoveryRequests)
}

func (s *Server) denyRecoveryRequest(w http.ResponseWriter, r *http.Request) {
	repoBody(s, w, r, ops.DenyRecoveryRequest)
}

func (s *Server) startRecovery(w http.ResponseWriter, r *http.Request) {
	repoBody(s, w, r, ops.StartRecovery)
}

func (s *Server) recoveryStatus(w http.ResponseWriter, r *http.Request) {
	if !s.withRepo(w) {
		return
	}
	out, err := ops.RecoveryStatus(r.Context(), s.opts.Repo, ops.RecoveryAccount{Account: r.PathValue("account")})
	s.reply(w, http.StatusOK, out, err)
}

func (s *Server) respondRecovery(w http.ResponseWriter, r *http.Request) {
	if !s.withRepo(w) {
		return
	}
	var req struct {
		Response string `json:"response"`
	}
	if !decodeJSON(w, r, &req) {
		return
	}
	out, err := ops.AddRecoveryResponse(r.Context(), s.opts.Repo, ops.RecoveryRespondRequest{Account: r.PathValue("account"), Response: req.Response})
	s.reply(w, http.StatusOK, out, err)
}

func (s *Server) finishRecovery(w http.ResponseWriter, r *http.Request) {
	if !s.withRepo(w) {
		return
	}
	var req struct {
		Passphrase string `json:"passphrase,omitempty"`
	}
	if !decodeJSON(w, r, &req) {
		return
	}
	device := ""
	if s.opts.Host != nil {
		device = s.opts.Host.ID().String()
	}
	out, err := ops.FinishRecovery(r.Context(), s.opts.Repo, ops.RecoveryFinishRequest{Account: r.PathValue("account"), Passphrase: req.Passphrase, Device: device})
	s.reply(w, http.StatusOK, out, err)
}

func (s *Server) cancelRecovery(w http.ResponseWriter, r *http.Request) {
	if !s.withRepo(w) {
		return
	}
	account := r.PathValue("account")
	err := ops.CancelRecovery(r.Context(), s.opts.Repo, ops.RecoveryAccount{Account: account})
	s.reply(w, http.StatusOK, ops.RecoveryAccount{Account: account}, err)
}

func recoveryPath(account, rest string) string {
	return "/api/v1/recovery/" + url.PathEscape(account) + rest
}

// Recovery calls GET /api/v1/recovery as account ("" is the default).
func (c *Client) Recovery(ctx context.Context, account string) (RecoveryShown, error) {
	var v RecoveryShown
	return v, c.call(ctx, http.MethodGet, accountQuery("/api/v1/recovery", account), nil, &v)
}

// SetupRecovery calls POST /api/v1/recovery as account.
func (c *Client) SetupRecovery(ctx context.Context, account string, req RecoverySetupRequest) (RecoveryShown, error) {
	var v RecoveryShown
	return v, c.call(ctx, http.MethodPost, accountQuery("/api/v1/recovery", account), req, &v)
}

// ApproveRecovery calls POST /api/v1/recovery/approve as account.
func (c *Client) ApproveRecovery(ctx context.Context, account string, req RecoveryApproveRequest) (RecoveryApproved, error) {
	var v RecoveryApproved
	return v, c.call(ctx, http.MethodPost, accountQuery("/api/v1/recovery/approve", account), req, &v)
}

// StartRecovery calls POST /api/v1/recovery/start.
func (c *Client) StartRecovery(ctx context.Context, req RecoveryStartRequest) (RecoveryStatus, error) {
	var v RecoveryStatus
	return v, c.call(ctx, http.MethodPost, "/api/v1/recovery/start", req, &v)
}

// RecoveryStatus calls GET /api/v1/recovery/{account}.
func (c *Client) RecoveryStatus(ctx context.Context, account string) (RecoveryStatus, error) {
	var v RecoveryStatus
	return v, c.call(ctx, http.MethodGet, recoveryPath(account, ""), nil, &v)
}

// RespondRecovery calls POST /api/v1/recovery/{account}/respond.
func (c *Client) RespondRecovery(ctx context.Context, account, response string) (RecoveryStatus, error) {
	var v RecoveryStatus
	return v, c.call(ctx, http.MethodPost, recoveryPath(account, "/respond"), map[string]string{"response": response}, &v)
}

// FinishRecovery calls POST /api/v1/recovery/{account}/finish.
func (c *Client) FinishRecovery(ctx context.Context, account, passphrase string) (RecoveryFinished, error) {
	var v RecoveryFinished
	return v, c.call(ctx, http.MethodPost, recoveryPath(account, "/finish"), map[string]string{"passphrase": passphrase}, &v)
}

// CancelRecovery calls POST /api/v1/recovery/{account}/cancel.
func (c *Client) CancelRecovery(ctx context.Context, account string) error {
	return c.call(ctx, http.MethodPost, recoveryPath(account, "/cancel"), map[string]string{}, nil)
}

// RecoveryRequests calls GET /api/v1/recovery/requests.
func (c *Client) RecoveryRequests(ctx context.Context) (RecoveryInbox, error) {
	var v RecoveryInbox
	return v, c.call(ctx, http.MethodGet, "/api/v1/recovery/requests", nil, &v)
}

// DenyRecoveryRequest calls POST /api/v1/recovery/requests/deny.
func (c *Client) DenyRecoveryRequest(ctx context.Context, id string) (RecoveryDenyRequest, error) {
	var v RecoveryDenyRequest
	return v, c.call(ctx, http.MethodPost, "/api/v1/recovery/requests/deny", RecoveryDenyRequest{ID: id}, &v)
}
