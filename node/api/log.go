package api

import (
	"context"
	"net/http"
	"net/url"
	"strconv"

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
	q := r.URL.Query()
	args := ops.LogArgs{Account: q.Get("account")}
	if v := q.Get("before"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			writeError(w, http.StatusBadRequest, "before: %q is not a block sequence number", truncate(v))
			return
		}
		args.Before = n
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			writeError(w, http.StatusBadRequest, "limit: %q is not a number", truncate(v))
			return
		}
		args.Limit = n
	}
	out, err := ops.Log(r.Context(), s.opts.Repo, args)
	s.reply(w, http.StatusOK, out, err)
}

// Log calls GET /api/v1/log for account ("" is the default account).
func (c *Client) Log(ctx context.Context, account string) ([]LogEntry, error) {
	return c.LogPage(ctx, ops.LogArgs{Account: account})
}

// LogPage calls GET /api/v1/log with the page args select.
func (c *Client) LogPage(ctx context.Context, args ops.LogArgs) ([]LogEntry, error) {
	q := url.Values{}
	if args.Account != "" {
		q.Set("account", args.Account)
	}
	if args.Before != 0 {
		q.Set("before", strconv.FormatUint(args.Before, 10))
	}
	if args.Limit != 0 {
		q.Set("limit", strconv.Itoa(args.Limit))
	}
	path := "/api/v1/log"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var v []LogEntry
	return v, c.call(ctx, http.MethodGet, path, nil, &v)
}
