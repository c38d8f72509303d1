package api

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/blockmrs/blockmrs/node/web"
)

// The login-link endpoint: a token holder (blockmrs open) gets a one-time
// link that lets a browser into the web app (see node/web).

const loginLinksPath = "/api/v1/login-links"

// tokenOnly lists the endpoints the web app's session cookie does not
// open: they need the API token itself.
var tokenOnly = map[string]bool{
	execPath:       true,
	loginLinksPath: true,
}

// LoginLink is the answer to POST /api/v1/login-links.
type LoginLink struct {
	// URL is the link to open: http://HOST:PORT/login?code=CODE. It works
	// once.
	URL string `json:"url"`
	// Expires is when the link stops working (RFC 3339).
	Expires time.Time `json:"expires"`
}

func (s *Server) newLoginLink(w http.ResponseWriter, r *http.Request) {
	code, expires := s.logins.NewCode()
	writeJSON(w, http.StatusCreated, LoginLink{URL: s.URL() + web.LoginPath + "?code=" + code, Expires: expires.UTC()})
}

// LoginLink calls POST /api/v1/login-links: a fresh one-time link into
// the web app.
func (c *Client) LoginLink(ctx context.Context) (LoginLink, error) {
	var v LoginLink
	if err := c.checkServer(ctx); err != nil {
		return v, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+loginLinksPath, nil)
	if err != nil {
		return v, fmt.Errorf("api %s: %w", loginLinksPath, err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := c.http.Do(req)
	if err != nil {
		return v, fmt.Errorf("api %s: daemon not reachable (stale %s after a crash?): %w", loginLinksPath, AddrFile, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxBody))
	if err != nil {
		return v, fmt.Errorf("api %s: %w", loginLinksPath, err)
	}
	if resp.StatusCode != http.StatusCreated {
		var e Error
		if json.Unmarshal(body, &e) == nil && e.Error != "" {
			return v, fmt.Errorf("api %s: %s", loginLinksPath, e.Error)
		}
		return v, fmt.Errorf("api %s: HTTP %d", loginLinksPath, resp.StatusCode)
	}
	if err := json.Unmarshal(body, &v); err != nil || v.URL == "" {
		return v, fmt.Errorf("api %s: bad response", loginLinksPath)
	}
	return v, nil
}
