package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// AddrFile names the repo file where a running daemon writes its API's
// base URL. (node.APIAddrFile is the same name; the API package owns it so
// that its client can find the daemon.)
const AddrFile = "api.addr"

// ErrNoDaemon is returned by NewClient when no daemon runs for the repo.
var ErrNoDaemon = errors.New("no daemon is running for this repo (start one with 'blockmrs daemon')")

// Client calls a running daemon's local API with the repo's token.
type Client struct {
	base  string
	token string
	http  *http.Client
}

// NewClient finds the daemon running for the repo in dir from its
// api.addr and api.token files. It returns ErrNoDaemon when there is no
// api.addr. It reads the token; it never creates one.
func NewClient(dir string) (*Client, error) {
	addr, err := os.ReadFile(filepath.Join(dir, AddrFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNoDaemon
	}
	if err != nil {
		return nil, fmt.Errorf("api client: %w", err)
	}
	base := strings.TrimSpace(string(addr))
	u, err := url.Parse(base)
	if err != nil || u.Scheme != "http" || u.User != nil || u.Path != "" || u.RawQuery != "" || u.Fragment != "" ||
		u.Port() == "" || !isLoopbackHost(u.Hostname()) {
		return nil, fmt.Errorf("api client: %s holds %q, not a loopback http://HOST:PORT URL", AddrFile, base)
	}
	tok, err := os.ReadFile(filepath.Join(dir, TokenFile))
	if err != nil {
		return nil, fmt.Errorf("api client: read token: %w", err)
	}
	token := strings.TrimSpace(string(tok))
	if _, err := parseToken(token); err != nil {
		return nil, fmt.Errorf("api client: %s: %w", TokenFile, err)
	}
	return &Client{base: base, token: token, http: &http.Client{Timeout: 30 * time.Second}}, nil
}

// Identity calls GET /api/v1/id.
func (c *Client) Identity(ctx context.Context) (Identity, error) {
	var v Identity
	return v, c.get(ctx, "/api/v1/id", &v)
}

// Peers calls GET /api/v1/peers.
func (c *Client) Peers(ctx context.Context) (Peers, error) {
	var v Peers
	return v, c.get(ctx, "/api/v1/peers", &v)
}

// get performs a GET and decodes the JSON answer into v, or turns the
// API's one-line JSON error into an error.
func (c *Client) get(ctx context.Context, path string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path, nil)
	if err != nil {
		return fmt.Errorf("api %s: %w", path, err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("api %s: daemon not reachable (stale %s after a crash?): %w", path, AddrFile, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxBody))
	if err != nil {
		return fmt.Errorf("api %s: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		var e Error
		if json.Unmarshal(body, &e) == nil && e.Error != "" {
			return fmt.Errorf("api %s: %s", path, e.Error)
		}
		return fmt.Errorf("api %s: HTTP %d", path, resp.StatusCode)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("api %s: bad response: %w", path, err)
	}
	return nil
}

// isLoopbackHost tells whether h names this machine only.
func isLoopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}
