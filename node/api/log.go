package api

import (
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
	if err != nil {
		s.opError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}
