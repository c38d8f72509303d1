package api

import (
	"context"
	"net/http"
	"net/url"

	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/node/ops"
)

// The lab endpoints: GET /api/v1/labs/panel lists the lab panel's
// fields; POST /api/v1/labs writes a lab panel (one FHIR
// Observation record per value) for a patient; GET /api/v1/labs reads the
// lab values the acting account can read. The types are the operations'
// (node/ops).

// labsPath is the lab values collection.
const labsPath = "/api/v1/labs"

type (
	LabFieldList = ops.LabFieldList
	LabPanel     = ops.LabPanel
	LabValue     = ops.LabValue
	LabsWritten  = ops.LabsWritten
	LabTable     = ops.LabTable
)

func (s *Server) labFields(w http.ResponseWriter, r *http.Request) {
	s.reply(w, http.StatusOK, ops.LabFields(), nil)
}

func (s *Server) addLabs(w http.ResponseWriter, r *http.Request) {
	keysBody(s, w, r, http.StatusCreated, func(ctx context.Context, k *keyshare.Keys, req LabPanel) (ops.LabsWritten, error) {
		return ops.AddLabs(ctx, s.opts.Repo, k, req)
	})
}

func (s *Server) listLabs(w http.ResponseWriter, r *http.Request) {
	keys, ok := s.keysOf(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	out, err := ops.Labs(r.Context(), s.opts.Repo, keys, ops.ListLabs{Code: q.Get("code"), For: q.Get("for"), Record: q.Get("record")})
	s.reply(w, http.StatusOK, out, err)
}

// LabFields calls GET /api/v1/labs/panel.
func (c *Client) LabFields(ctx context.Context) (LabFieldList, error) {
	var v LabFieldList
	return v, c.call(ctx, http.MethodGet, labsPath+"/panel", nil, &v)
}

// AddLabs calls POST /api/v1/labs acting as account ("" for the default
// one).
func (c *Client) AddLabs(ctx context.Context, account string, req LabPanel) (LabsWritten, error) {
	var v LabsWritten
	return v, c.call(ctx, http.MethodPost, accountQuery(labsPath, account), req, &v)
}

// Labs calls GET /api/v1/labs acting as account ("" for the default one).
func (c *Client) Labs(ctx context.Context, account string, req ops.ListLabs) (LabTable, error) {
	q := url.Values{}
	if account != "" {
		q.Set("account", account)
	}
	for k, v := range map[string]string{"code": req.Code, "for": req.For, "record": req.Record} {
		if v != "" {
			q.Set(k, v)
		}
	}
	path := labsPath
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var v LabTable
	return v, c.call(ctx, http.MethodGet, path, nil, &v)
}
