package api

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/blockmrs/blockmrs/protocol"
)

// AddrFile names the repo file where a running daemon writes its API's
// base URL. (node.APIAddrFile is the same name; the API package owns it so
// that its client can find the daemon.)
const AddrFile = "api.addr"

// ErrNoDaemon is returned by NewClient when no daemon runs for the repo.
var ErrNoDaemon = errors.New("no daemon is running for this repo (start one with 'blockmrs daemon')")

// ErrDaemonStopped is returned by Exec when the connection to the daemon
// ended while the command ran in it (the daemon was killed or crashed):
// the command may or may not have taken effect.
var ErrDaemonStopped = errors.New("the daemon stopped while the command ran: it may or may not have taken effect")

// Client calls a running daemon's local API with the repo's token. Before
// it sends the token the first time, it asks the server to prove that it
// holds the token too (GET /api/v1/proof with a fresh nonce), so a stale
// api.addr whose port another process took never gets the token.
type Client struct {
	base  string
	token string
	http  *http.Client // JSON calls, with a timeout
	long  *http.Client // exec, no timeout: the request context ends it

	mu       sync.Mutex
	verified bool
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
	return &Client{base: base, token: token, http: &http.Client{Timeout: 30 * time.Second}, long: &http.Client{}}, nil
}

// ErrNotOurDaemon is returned when the server at api.addr cannot prove it
// holds the repo's token: the token was not sent.
var ErrNotOurDaemon = errors.New("the server at api.addr is not this repo's daemon (it cannot prove it holds api.token); the token was not sent")

// checkServer makes the server prove it holds the token, once per Client.
func (c *Client) checkServer(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.verified {
		return nil
	}
	nonce := newNonce()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+proofPath+"?nonce="+nonce, nil)
	if err != nil {
		return fmt.Errorf("api: %w", err)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("api: daemon not reachable (stale %s after a crash?): %w", AddrFile, err)
	}
	defer resp.Body.Close()
	var p Proof
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxBody))
	if err != nil || resp.StatusCode != http.StatusOK || json.Unmarshal(body, &p) != nil {
		return ErrNotOurDaemon
	}
	got, err := hex.DecodeString(p.Proof)
	if err != nil || !hmac.Equal(got, proofMAC(c.token, c.base, nonce)) {
		return ErrNotOurDaemon
	}
	c.verified = true
	return nil
}

// Identity calls GET /api/v1/id; account "" means the default one.
func (c *Client) Identity(ctx context.Context, account ...protocol.AccountID) (Identity, error) {
	var v Identity
	path := "/api/v1/id"
	if len(account) > 0 && account[0] != "" {
		path += "?account=" + url.QueryEscape(string(account[0]))
	}
	return v, c.call(ctx, http.MethodGet, path, nil, &v)
}

// Accounts calls GET /api/v1/accounts.
func (c *Client) Accounts(ctx context.Context) (AccountList, error) {
	var v AccountList
	return v, c.call(ctx, http.MethodGet, "/api/v1/accounts", nil, &v)
}

// CreateAccount calls POST /api/v1/accounts.
func (c *Client) CreateAccount(ctx context.Context, req NewAccount) (Account, error) {
	var v Account
	return v, c.call(ctx, http.MethodPost, "/api/v1/accounts", req, &v)
}

// Contacts calls GET /api/v1/contacts.
func (c *Client) Contacts(ctx context.Context) (AccountList, error) {
	var v AccountList
	return v, c.call(ctx, http.MethodGet, "/api/v1/contacts", nil, &v)
}

// AddContact calls POST /api/v1/contacts.
func (c *Client) AddContact(ctx context.Context, req AddContactRequest) (ContactAdded, error) {
	var v ContactAdded
	return v, c.call(ctx, http.MethodPost, "/api/v1/contacts", req, &v)
}

// ImportContact calls POST /api/v1/contacts/import with a profile file
// (a CAR, as 'blockmrs id --export' writes it).
func (c *Client) ImportContact(ctx context.Context, car io.Reader) (ContactAdded, error) {
	var v ContactAdded
	return v, c.call(ctx, http.MethodPost, contactImportPath, rawBody{car, "application/vnd.ipld.car"}, &v)
}

// rawBody is a request body sent as it is, not as JSON.
type rawBody struct {
	r           io.Reader
	contentType string
}

// call sends a request (with body, when not nil, as JSON, or as it is
// for a rawBody) and decodes the JSON answer into v, or turns the API's
// one-line JSON error into an error.
func (c *Client) call(ctx context.Context, method, path string, body, v any) error {
	if err := c.checkServer(ctx); err != nil {
		return err
	}
	var rd io.Reader
	contentType := "application/json"
	if raw, ok := body.(rawBody); ok {
		rd, contentType = raw.r, raw.contentType
	} else if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("api %s: %w", path, err)
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return fmt.Errorf("api %s: %w", path, err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if body != nil {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("api %s: daemon not reachable (stale %s after a crash?): %w", path, AddrFile, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxBody))
	if err != nil {
		return fmt.Errorf("api %s: %w", path, err)
	}
	if resp.StatusCode/100 != 2 {
		var e Error
		if json.Unmarshal(data, &e) == nil && e.Error != "" {
			return fmt.Errorf("api %s: %s", path, e.Error)
		}
		return fmt.Errorf("api %s: HTTP %d", path, resp.StatusCode)
	}
	if err := json.Unmarshal(data, v); err != nil {
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

// PassphraseNeededError is returned by Exec when the command stopped
// because it needs a passphrase the request did not carry (the request
// said TTY): ask for it with Prompt and send the request again.
type PassphraseNeededError struct {
	// Prompt is what to show, "Passphrase for NAME (…ID): ".
	Prompt string
	// StdinUsed says the command had begun reading stdin, so sending the
	// request again would not give it the same input.
	StdinUsed bool
}

func (e *PassphraseNeededError) Error() string {
	return "the daemon needs the passphrase: " + strings.TrimSpace(e.Prompt)
}

// Exec runs a command in the daemon (POST /api/v1/exec): req.Args with
// relative paths resolved against req.Cwd, stdin streamed from stdin when
// it is not nil, the command's output copied to stdout and stderr as it
// comes. It returns the command's exit status. Cancelling ctx cancels the
// command in the daemon. An error means the command's status is unknown
// (the daemon could not be reached, refused the request or broke the
// stream), except *PassphraseNeededError, which comes with the status.
func (c *Client) Exec(ctx context.Context, req ExecRequest, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	if err := c.checkServer(ctx); err != nil {
		return 1, err
	}
	h := ExecHeader{Args: req.Args, Cwd: req.Cwd, Stdin: stdin != nil, TTY: req.TTY, StdoutTTY: req.StdoutTTY}
	if req.Passphrase != nil {
		p := string(req.Passphrase)
		h.Passphrase = &p
	}
	line, err := json.Marshal(h)
	if err != nil {
		return 1, fmt.Errorf("api exec: %w", err)
	}
	line = append(line, '\n')
	var body io.Reader = bytes.NewReader(line)
	gate := &stdinGate{r: stdin, open: make(chan struct{}), done: make(chan struct{})}
	defer close(gate.done)
	if stdin != nil {
		body = io.MultiReader(body, gate)
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+execPath, body)
	if err != nil {
		return 1, fmt.Errorf("api exec: %w", err)
	}
	hreq.ContentLength = int64(len(line))
	if stdin != nil {
		hreq.ContentLength = -1 // chunked
	}
	hreq.Header.Set("Authorization", "Bearer "+c.token)
	hreq.Header.Set("Content-Type", "application/x-ndjson")
	resp, err := c.long.Do(hreq)
	if err != nil {
		if ctx.Err() != nil {
			return 1, ctx.Err()
		}
		if op := (*net.OpError)(nil); errors.As(err, &op) && op.Op == "dial" {
			return 1, fmt.Errorf("api exec: daemon not reachable: %w", err)
		}
		// The request may have reached the daemon before it went.
		return 1, stopped(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		data, _ := io.ReadAll(io.LimitReader(resp.Body, MaxBody))
		var e Error
		if json.Unmarshal(data, &e) == nil && e.Error != "" {
			return 1, fmt.Errorf("api exec: %s", e.Error)
		}
		return 1, fmt.Errorf("api exec: HTTP %d", resp.StatusCode)
	}
	var need *PassphraseNeededError
	br := bufio.NewReader(resp.Body)
	for {
		kind, payload, err := readFrame(br)
		if err != nil && ctx.Err() == nil && connectionEnded(err) {
			return 1, stopped(err)
		}
		if err == nil {
			switch kind {
			case FrameStdout:
				_, err = stdout.Write(payload)
			case FrameStderr:
				_, err = stderr.Write(payload)
			case FramePassphrase:
				need = &PassphraseNeededError{Prompt: string(payload)}
			case FrameStdin:
				if stdin == nil {
					err = errors.New("the daemon asked for stdin that was not offered")
					break
				}
				gate.once.Do(func() { close(gate.open) })
			case FrameExit:
				code, n := binary.Uvarint(payload)
				if n <= 0 || n != len(payload) || code > 255 {
					err = fmt.Errorf("bad exit status frame %x", payload)
					break
				}
				if need != nil {
					select {
					case <-gate.open:
						need.StdinUsed = true
					default:
					}
					return int(code), need
				}
				return int(code), nil
			default:
				err = fmt.Errorf("unknown frame kind %d", kind)
			}
		}
		if err != nil {
			if ctx.Err() != nil {
				return 1, ctx.Err()
			}
			return 1, fmt.Errorf("api exec: %w", err)
		}
	}
}

// connectionEnded reports whether a read error from the exec stream means
// the connection went away (EOF before the exit status, a reset), not a
// malformed frame.
func connectionEnded(err error) bool {
	var ne net.Error
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) || errors.As(err, &ne)
}

func stopped(err error) error {
	slog.Debug("api exec: connection to the daemon ended", "err", err)
	return ErrDaemonStopped
}

// stdinGate holds the client's stdin back until the daemon asks for it
// (FrameStdin), and ends it when Exec returns.
type stdinGate struct {
	r    io.Reader
	open chan struct{}
	once sync.Once
	done chan struct{}
}

func (g *stdinGate) Read(p []byte) (int, error) {
	select {
	case <-g.open:
	case <-g.done:
		return 0, io.EOF
	}
	select {
	case <-g.done:
		return 0, io.EOF
	default:
	}
	return g.r.Read(p)
}

// readFrame reads one frame of an exec stream. The payload is valid until
// the next call.
func readFrame(br *bufio.Reader) (kind byte, payload []byte, err error) {
	kind, err = br.ReadByte()
	if err != nil {
		return 0, nil, err
	}
	n, err := binary.ReadUvarint(br)
	if err != nil {
		return 0, nil, io.ErrUnexpectedEOF
	}
	if n > MaxFrame {
		return 0, nil, fmt.Errorf("frame of %d bytes is over the %d-byte limit", n, MaxFrame)
	}
	payload = make([]byte, n)
	if _, err := io.ReadFull(br, payload); err != nil {
		return 0, nil, io.ErrUnexpectedEOF
	}
	return kind, payload, nil
}
