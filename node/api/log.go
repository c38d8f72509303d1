package api

import (
	"context"
	"net/http"

	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/node/ops"
)

// LogEntry is one entry of GET /api/v1/log.
type LogEntry = keyshare.LogEntry

func (s *Server) chainLog(w http.ResponseWriter, r *http.Request) {
	if s.opts.Repo == nil {
		writeError(w, http.StatusNotImplemented, "this server has no repo")
		return
	}
	out, err := ops.Log(r.Context(), s.opts.Repo, ops.LogArgs{Account: r.URL.Query().Get("account")})
	s.reply(w, http.StatusOK, out, err)
}

// Log calls GET /api/v1/log for account ("" is the default account).
func (c *Client) Log(ctx context.Context, account string) ([]LogEntry, error) {
	var v []LogEntry
	return v, c.call(ctx, http.MethodGet, accountQuery("/api/v1/log", account), nil, &v)
}
