package api

import (
	"context"
	"net/http"

	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/node/ops"
)

// The guardian endpoints: GET /api/v1/guardians lists both sides of the
// acting account's links, POST /api/v1/guardians appoints one, POST
// /api/v1/guardians/remove removes one, POST /api/v1/guardians/grant and
// /api/v1/guardians/revoke act for a ward, POST /api/v1/guardians/minor
// creates a minor's account with the acting account as guardian, POST
// /api/v1/guardians/accept and /api/v1/guardians/decline answer a
// ward's appointment of the acting account. The
// types are the operations' (node/ops).
type (
	GuardianList      = ops.GuardianList
	GuardianRow       = ops.GuardianRow
	AppointRequest    = ops.AppointRequest
	Appointed         = ops.Appointed
	Removed           = ops.Removed
	WardGrantRequest  = ops.WardGrantRequest
	WardRevokeRequest = ops.WardRevokeRequest
	WardActed         = ops.WardActed
	MinorRequest      = ops.MinorRequest
	ConsentRequest    = ops.ConsentRequest
	Consented         = ops.Consented
)

// RemoveRequest is the body of POST /api/v1/guardians/remove.
type RemoveRequest struct {
	// Guardian is the guardian removed (ID, name or ID suffix).
	Guardian string `json:"guardian"`
}

func (s *Server) listGuardians(w http.ResponseWriter, r *http.Request) {
	asActing(s, w, r, ops.Guardians)
}

func (s *Server) appointGuardian(w http.ResponseWriter, r *http.Request) {
	withKeys(s, w, r, ops.AppointGuardian)
}

func (s *Server) removeGuardian(w http.ResponseWriter, r *http.Request) {
	withKeys(s, w, r, func(ctx context.Context, repo *keyshare.Repo, k *keyshare.Keys, req RemoveRequest) (Removed, error) {
		return ops.RemoveGuardian(ctx, repo, k, req.Guardian)
	})
}

func (s *Server) grantForWard(w http.ResponseWriter, r *http.Request) {
	withKeys(s, w, r, ops.GrantForWard)
}

func (s *Server) revokeForWard(w http.ResponseWriter, r *http.Request) {
	withKeys(s, w, r, ops.RevokeForWard)
}

func (s *Server) acceptWard(w http.ResponseWriter, r *http.Request) {
	withKeys(s, w, r, ops.AcceptWard)
}

func (s *Server) declineWard(w http.ResponseWriter, r *http.Request) {
	withKeys(s, w, r, ops.DeclineWard)
}

func (s *Server) createMinor(w http.ResponseWriter, r *http.Request) {
	keysBody(s, w, r, http.StatusCreated, func(ctx context.Context, k *keyshare.Keys, req MinorRequest) (Appointed, error) {
		s.createMu.Lock() // as createAccount: one name check at a time
		defer s.createMu.Unlock()
		return ops.CreateMinor(ctx, s.opts.Repo, k, ops.ThisDevice(s.opts.Host.ID().String()), req)
	})
}

// Guardians calls GET /api/v1/guardians as account ("" for the default
// account).
func (c *Client) Guardians(ctx context.Context, account string) (GuardianList, error) {
	var v GuardianList
	return v, c.call(ctx, http.MethodGet, accountQuery("/api/v1/guardians", account), nil, &v)
}

// AppointGuardian calls POST /api/v1/guardians as account.
func (c *Client) AppointGuardian(ctx context.Context, account string, req AppointRequest) (Appointed, error) {
	var v Appointed
	return v, c.call(ctx, http.MethodPost, accountQuery("/api/v1/guardians", account), req, &v)
}

// RemoveGuardian calls POST /api/v1/guardians/remove as account.
func (c *Client) RemoveGuardian(ctx context.Context, account, guardian string) (Removed, error) {
	var v Removed
	return v, c.call(ctx, http.MethodPost, accountQuery("/api/v1/guardians/remove", account), RemoveRequest{Guardian: guardian}, &v)
}

// GrantForWard calls POST /api/v1/guardians/grant as account, the ward's
// guardian.
func (c *Client) GrantForWard(ctx context.Context, account string, req WardGrantRequest) (WardActed, error) {
	var v WardActed
	return v, c.call(ctx, http.MethodPost, accountQuery("/api/v1/guardians/grant", account), req, &v)
}

// RevokeForWard calls POST /api/v1/guardians/revoke as account, the
// ward's guardian.
func (c *Client) RevokeForWard(ctx context.Context, account string, req WardRevokeRequest) (WardActed, error) {
	var v WardActed
	return v, c.call(ctx, http.MethodPost, accountQuery("/api/v1/guardians/revoke", account), req, &v)
}

// CreateMinor calls POST /api/v1/guardians/minor as account, the minor's
// guardian to be.
func (c *Client) CreateMinor(ctx context.Context, account string, req MinorRequest) (Appointed, error) {
	var v Appointed
	return v, c.call(ctx, http.MethodPost, accountQuery("/api/v1/guardians/minor", account), req, &v)
}

// AcceptWard calls POST /api/v1/guardians/accept as account, the
// guardian appointed.
func (c *Client) AcceptWard(ctx context.Context, account, ward string) (Consented, error) {
	var v Consented
	return v, c.call(ctx, http.MethodPost, accountQuery("/api/v1/guardians/accept", account), ConsentRequest{Ward: ward}, &v)
}

// DeclineWard calls POST /api/v1/guardians/decline as account, the
// guardian appointed.
func (c *Client) DeclineWard(ctx context.Context, account, ward string) (Consented, error) {
	var v Consented
	return v, c.call(ctx, http.MethodPost, accountQuery("/api/v1/guardians/decline", account), ConsentRequest{Ward: ward}, &v)
}
