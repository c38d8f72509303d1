package api

import (
	"context"
	"net/http"
	"net/url"
	"strconv"

	"github.com/blockmrs/blockmrs/node/ops"
	"github.com/blockmrs/blockmrs/protocol"
)

// The attestation, trust, role and directory endpoints:
//
//	GET  /api/v1/attestations           what the acting account attested, and what attests it
//	POST /api/v1/attestations           attest an account's role (as the acting account)
//	POST /api/v1/attestations/withdraw  withdraw an attestation
//	GET  /api/v1/roles                  the verdict on an account's role (?account=&role=&from=)
//	GET  /api/v1/trust                  the trusted authorities
//	POST /api/v1/trust                  trust an authority
//	POST /api/v1/trust/remove           stop trusting one
//	GET  /api/v1/directory              search a clinic's directory (?clinic=&q=&limit=)
//	POST /api/v1/directory/contact      make a directory result a contact
//
// The types are the operations' (node/ops).
type (
	AttestRequest    = ops.AttestRequest
	Attested         = ops.Attested
	UnattestRequest  = ops.UnattestRequest
	AttestationList  = ops.AttestationList
	RoleCheckRequest = ops.RoleCheckRequest
	RoleChecked      = ops.RoleChecked
	TrustRequest     = ops.TrustRequest
	TrustList        = ops.TrustList
	DirectoryRequest = ops.DirectoryRequest
	DirectoryResults = ops.DirectoryResults

	DirectoryContactRequest = ops.DirectoryContactRequest
)

// AttestService is what the attestation endpoints need of the node's
// network: role proofs and directory queries (*attest.Service).
type AttestService interface {
	ops.Prover
	ops.Directories
}

// Paths of the attestation endpoints.
const (
	attestationsPath = "/api/v1/attestations"
	trustPath        = "/api/v1/trust"
	rolesPath        = "/api/v1/roles"
	directoryPath    = "/api/v1/directory"
)

func (s *Server) prover() ops.Prover {
	if s.opts.Attest == nil {
		return nil
	}
	return s.opts.Attest
}

func (s *Server) directories() ops.Directories {
	if s.opts.Attest == nil {
		return nil
	}
	return s.opts.Attest
}

func (s *Server) listAttestations(w http.ResponseWriter, r *http.Request) {
	asActing(s, w, r, ops.ListAttestations)
}

func (s *Server) attest(w http.ResponseWriter, r *http.Request) {
	withKeys(s, w, r, ops.Attest)
}

func (s *Server) unattest(w http.ResponseWriter, r *http.Request) {
	withKeys(s, w, r, ops.Unattest)
}

func (s *Server) checkRole(w http.ResponseWriter, r *http.Request) {
	if !s.withRepo(w) {
		return
	}
	q := r.URL.Query()
	req := RoleCheckRequest{Account: q.Get("account"), Role: protocol.Role(q.Get("role")), From: q.Get("from")}
	out, err := ops.CheckRole(r.Context(), s.opts.Repo, s.prover(), req)
	s.reply(w, http.StatusOK, out, err)
}

func (s *Server) listTrust(w http.ResponseWriter, r *http.Request) {
	repoOnly(s, w, r, ops.ListTrust)
}

func (s *Server) trust(w http.ResponseWriter, r *http.Request) {
	repoBody(s, w, r, ops.Trust)
}

func (s *Server) distrust(w http.ResponseWriter, r *http.Request) {
	repoBody(s, w, r, ops.Distrust)
}

func (s *Server) directory(w http.ResponseWriter, r *http.Request) {
	if !s.withRepo(w) {
		return
	}
	q := r.URL.Query()
	req := DirectoryRequest{Clinic: q.Get("clinic"), Query: q.Get("q")}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			writeError(w, http.StatusBadRequest, "limit: %q is not a number", truncate(v))
			return
		}
		req.Limit = n
	}
	out, err := ops.Directory(r.Context(), s.opts.Repo, s.directories(), req)
	s.reply(w, http.StatusOK, out, err)
}

func (s *Server) directoryContact(w http.ResponseWriter, r *http.Request) {
	repoBody(s, w, r, ops.DirectoryContact)
}

// DirectoryContact calls POST /api/v1/directory/contact.
func (c *Client) DirectoryContact(ctx context.Context, req DirectoryContactRequest) (Account, error) {
	var v Account
	return v, c.call(ctx, http.MethodPost, directoryPath+"/contact", req, &v)
}

// Attestations calls GET /api/v1/attestations for account ("" for the
// default account).
func (c *Client) Attestations(ctx context.Context, account string) (AttestationList, error) {
	var v AttestationList
	return v, c.call(ctx, http.MethodGet, accountQuery(attestationsPath, account), nil, &v)
}

// Attest calls POST /api/v1/attestations as account ("" for the default
// account).
func (c *Client) Attest(ctx context.Context, account string, req AttestRequest) (Attested, error) {
	var v Attested
	return v, c.call(ctx, http.MethodPost, accountQuery(attestationsPath, account), req, &v)
}

// Unattest calls POST /api/v1/attestations/withdraw as account.
func (c *Client) Unattest(ctx context.Context, account string, req UnattestRequest) (Attested, error) {
	var v Attested
	return v, c.call(ctx, http.MethodPost, accountQuery(attestationsPath+"/withdraw", account), req, &v)
}

// CheckRole calls GET /api/v1/roles.
func (c *Client) CheckRole(ctx context.Context, req RoleCheckRequest) (RoleChecked, error) {
	q := url.Values{"account": {req.Account}}
	if req.Role != "" {
		q.Set("role", string(req.Role))
	}
	if req.From != "" {
		q.Set("from", req.From)
	}
	var v RoleChecked
	return v, c.call(ctx, http.MethodGet, rolesPath+"?"+q.Encode(), nil, &v)
}

// Trust calls GET /api/v1/trust.
func (c *Client) Trust(ctx context.Context) (TrustList, error) {
	var v TrustList
	return v, c.call(ctx, http.MethodGet, trustPath, nil, &v)
}

// TrustAdd calls POST /api/v1/trust.
func (c *Client) TrustAdd(ctx context.Context, req TrustRequest) (TrustList, error) {
	var v TrustList
	return v, c.call(ctx, http.MethodPost, trustPath, req, &v)
}

// TrustRemove calls POST /api/v1/trust/remove.
func (c *Client) TrustRemove(ctx context.Context, req TrustRequest) (TrustList, error) {
	var v TrustList
	return v, c.call(ctx, http.MethodPost, trustPath+"/remove", req, &v)
}

// Directory calls GET /api/v1/directory.
func (c *Client) Directory(ctx context.Context, req DirectoryRequest) (DirectoryResults, error) {
	q := url.Values{"clinic": {req.Clinic}}
	if req.Query != "" {
		q.Set("q", req.Query)
	}
	if req.Limit != 0 {
		q.Set("limit", strconv.Itoa(req.Limit))
	}
	var v DirectoryResults
	return v, c.call(ctx, http.MethodGet, directoryPath+"?"+q.Encode(), nil, &v)
}
