package api

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/node/config"
	"github.com/blockmrs/blockmrs/node/internal/fsutil"
	"github.com/blockmrs/blockmrs/node/p2p"
	"github.com/blockmrs/blockmrs/protocol"
)

func newHost(t testing.TB) host.Host {
	t.Helper()
	key, err := p2p.LoadOrCreateKey(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	c := config.Default()
	c.Listen = []string{"/ip4/127.0.0.1/tcp/0"}
	h, err := p2p.NewHost(t.Context(), c, key)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// env is a running API over a real repo (one local account, one contact)
// and a real libp2p host.
type env struct {
	srv     *Server
	token   string
	host    host.Host
	local   protocol.AccountID
	contact protocol.AccountID
}

func newEnv(t *testing.T) *env {
	t.Helper()
	ctx := t.Context()
	repo, err := keyshare.Open(ctx, t.TempDir(), keyshare.Options{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { repo.Close() })
	k, err := repo.CreateAccount(ctx, "Pat", protocol.RolePatient, nil)
	if err != nil {
		t.Fatal(err)
	}
	other, err := keyshare.Open(ctx, t.TempDir(), keyshare.Options{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	ck, err := other.CreateAccount(ctx, "Dr Who", protocol.RoleClinician, nil)
	if err != nil {
		t.Fatal(err)
	}
	var car bytes.Buffer
	if _, err := other.ExportCAR(ctx, &car, ck.ID); err != nil {
		t.Fatal(err)
	}
	other.Close()
	if _, err := repo.ImportCAR(ctx, &car); err != nil {
		t.Fatal(err)
	}
	return startEnv(t, repo, k.ID, ck.ID)
}

func startEnv(t *testing.T, accts Accounts, local, contact protocol.AccountID) *env {
	t.Helper()
	e := startServer(t, Options{Accounts: accts})
	e.local, e.contact = local, contact
	return e
}

// startServer serves opts for the test on a free loopback port (Addr,
// Token and Host filled in when unset) and shuts it down when the test
// ends, failing it if Shutdown or Serve do.
func startServer(t testing.TB, opts Options) *env {
	t.Helper()
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:0"
	}
	if opts.Token == "" {
		tok, err := LoadOrCreateToken(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		opts.Token = tok
	}
	if opts.Host == nil {
		opts.Host = newHost(t)
	}
	srv, err := Listen(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve() }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return &env{srv: srv, token: opts.Token, host: opts.Host}
}

// postJSON posts body as JSON.
func (e *env) postJSON(t *testing.T, path, body string) *http.Response {
	t.Helper()
	return e.do(t, req{method: http.MethodPost, path: path, body: strings.NewReader(body), length: int64(len(body)), header: map[string]string{"Content-Type": "application/json"}})
}

// req describes a request; zero fields mean "as a well-behaved client".
type req struct {
	method, path string
	host         string // Host header; "" means the server's address
	token        *string
	header       map[string]string
	body         io.Reader
	length       int64 // Content-Length when body is set; -1 for chunked
}

func (e *env) do(t *testing.T, r req) *http.Response {
	t.Helper()
	if r.method == "" {
		r.method = http.MethodGet
	}
	hr, err := http.NewRequestWithContext(t.Context(), r.method, e.srv.URL()+r.path, r.body)
	if err != nil {
		t.Fatal(err)
	}
	if r.body != nil {
		hr.ContentLength = r.length
	}
	if r.host != "" {
		hr.Host = r.host
	}
	tok := e.token
	if r.token != nil {
		tok = *r.token
	}
	if tok != "" {
		hr.Header.Set("Authorization", "Bearer "+tok)
	}
	for k, v := range r.header {
		hr.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(hr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// decode reads a JSON response of status want into v.
func decode(t *testing.T, resp *http.Response, want int, v any) {
	t.Helper()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != want {
		t.Fatalf("%s %s: status %d, want %d: %s", resp.Request.Method, resp.Request.URL.Path, resp.StatusCode, want, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q", ct)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("decode %s: %v", body, err)
	}
}

// wantError checks an error response: status, a one-line JSON error
// mentioning substr.
func wantError(t *testing.T, resp *http.Response, status int, substr string) {
	t.Helper()
	var e Error
	decode(t, resp, status, &e)
	if e.Error == "" || strings.Contains(e.Error, "\n") || !strings.Contains(e.Error, substr) {
		t.Fatalf("error %q, want one line mentioning %q", e.Error, substr)
	}
}

func ptr(s string) *string { return &s }

func TestToken(t *testing.T) {
	e := newEnv(t)
	for name, tok := range map[string]*string{
		"none":       ptr(""),
		"wrong":      ptr(strings.Repeat("0", 64)),
		"prefix":     ptr(e.token[:63]),
		"longer":     ptr(e.token + "0"),
		"upper case": ptr(strings.ToUpper(e.token)),
	} {
		resp := e.do(t, req{path: "/api/v1/health", token: tok})
		wantError(t, resp, http.StatusUnauthorized, "token")
		if resp.Header.Get("WWW-Authenticate") == "" {
			t.Errorf("%s: no WWW-Authenticate", name)
		}
	}
	// Another scheme with the right token is not a bearer token.
	resp := e.do(t, req{path: "/api/v1/health", token: ptr(""), header: map[string]string{"Authorization": "Basic " + e.token}})
	wantError(t, resp, http.StatusUnauthorized, "token")
	// Unknown paths need the token too: a stranger learns nothing.
	wantError(t, e.do(t, req{path: "/nope", token: ptr("")}), http.StatusUnauthorized, "token")
	// The scheme is case-insensitive (RFC 9110).
	resp = e.do(t, req{path: "/api/v1/health", token: ptr(""), header: map[string]string{"Authorization": "bearer " + e.token}})
	var h Health
	decode(t, resp, http.StatusOK, &h)
}

func TestHostAndOrigin(t *testing.T) {
	e := newEnv(t)
	_, port, _ := strings.Cut(e.srv.Addr(), ":")
	for _, bad := range []string{"evil.example:" + port, "evil.example", "127.0.0.1:1", "localhost", "127.0.0.1.nip.io:" + port, "0.0.0.0:" + port} {
		wantError(t, e.do(t, req{path: "/api/v1/id", host: bad}), http.StatusForbidden, "Host")
	}
	for _, good := range []string{"127.0.0.1:" + port, "localhost:" + port, "LOCALHOST:" + port, "[::1]:" + port} {
		var h Health
		decode(t, e.do(t, req{path: "/api/v1/health", host: good}), http.StatusOK, &h)
	}
	for _, bad := range []string{"http://evil.example", "null", "https://127.0.0.1:" + port, "http://127.0.0.1:1", "http://localhost"} {
		wantError(t, e.do(t, req{path: "/api/v1/id", header: map[string]string{"Origin": bad}}), http.StatusForbidden, "cross-origin")
	}
	for _, good := range []string{"http://127.0.0.1:" + port, "http://localhost:" + port, "http://[::1]:" + port} {
		var h Health
		decode(t, e.do(t, req{path: "/api/v1/health", header: map[string]string{"Origin": good}}), http.StatusOK, &h)
	}
	wantError(t, e.do(t, req{path: "/api/v1/id", header: map[string]string{"Sec-Fetch-Site": "cross-site"}}), http.StatusForbidden, "cross-site")
	var h Health
	decode(t, e.do(t, req{path: "/api/v1/health", header: map[string]string{"Sec-Fetch-Site": "same-origin"}}), http.StatusOK, &h)
	// Host and Origin are checked before the token: no token, foreign Host.
	wantError(t, e.do(t, req{path: "/api/v1/id", host: "evil.example:" + port, token: ptr("")}), http.StatusForbidden, "Host")
}

func TestRoutingErrors(t *testing.T) {
	e := newEnv(t)
	wantError(t, e.do(t, req{path: "/api/v1/nope"}), http.StatusNotFound, "/api/v1/nope")
	wantError(t, e.do(t, req{path: "/api/v1/id/"}), http.StatusNotFound, "no such endpoint")
	wantError(t, e.do(t, req{path: "/apps.js"}), http.StatusNotFound, "no such endpoint")
	resp := e.do(t, req{method: http.MethodPost, path: "/api/v1/id", body: strings.NewReader("{}"), length: 2})
	wantError(t, resp, http.StatusMethodNotAllowed, "POST")
	if got := resp.Header.Get("Allow"); got != "GET, HEAD" {
		t.Fatalf("Allow %q", got)
	}
	wantError(t, e.do(t, req{method: http.MethodDelete, path: "/api/v1/peers"}), http.StatusMethodNotAllowed, "DELETE")
	if resp := e.do(t, req{method: http.MethodHead, path: "/api/v1/health"}); resp.StatusCode != http.StatusOK {
		t.Fatalf("HEAD: %d", resp.StatusCode)
	}
}

func TestBodyLimit(t *testing.T) {
	e := newEnv(t)
	big := bytes.Repeat([]byte(" "), MaxBody+1)
	// Declared too large: refused before reading.
	wantError(t, e.do(t, req{path: "/api/v1/health", body: bytes.NewReader(big), length: int64(len(big))}), http.StatusRequestEntityTooLarge, "limit")

	// Chunked (no length): caught while a JSON body is read.
	e.srv.routes["/api/v1/test-echo"] = map[string]http.HandlerFunc{http.MethodPost: func(w http.ResponseWriter, r *http.Request) {
		var v map[string]any
		if decodeJSON(w, r, &v) {
			writeJSON(w, http.StatusOK, v)
		}
	}}
	body := append([]byte(`{"a":"`), bytes.Repeat([]byte("x"), MaxBody)...)
	body = append(body, `"}`...)
	wantError(t, e.do(t, req{method: http.MethodPost, path: "/api/v1/test-echo", body: bytes.NewReader(body), length: -1}), http.StatusRequestEntityTooLarge, "limit")
	padded := append([]byte(`{"a":1}`), big...) // valid JSON, then too much white space
	wantError(t, e.do(t, req{method: http.MethodPost, path: "/api/v1/test-echo", body: bytes.NewReader(padded), length: -1}), http.StatusRequestEntityTooLarge, "limit")

	for in, want := range map[string]string{
		`{"a":`:      "bad JSON",
		``:           "empty body",
		`{"a":1} {}`: "trailing data",
		`[1]`:        "bad JSON",
	} {
		wantError(t, e.do(t, req{method: http.MethodPost, path: "/api/v1/test-echo", body: strings.NewReader(in), length: int64(len(in))}), http.StatusBadRequest, want)
	}
	wantError(t, e.do(t, req{method: http.MethodPost, path: "/api/v1/test-echo", body: strings.NewReader("{}"), length: 2,
		header: map[string]string{"Content-Type": "text/plain"}}), http.StatusUnsupportedMediaType, "application/json")
	var v map[string]any
	decode(t, e.do(t, req{method: http.MethodPost, path: "/api/v1/test-echo", body: strings.NewReader(`{"a":1}`), length: 7}), http.StatusOK, &v)
	if v["a"] != 1.0 {
		t.Fatalf("echo %v", v)
	}
}

func TestID(t *testing.T) {
	e := newEnv(t)
	var id Identity
	resp := e.do(t, req{path: "/api/v1/id"})
	if resp.Header.Get("Cache-Control") != "no-store" || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Fatalf("headers %v", resp.Header)
	}
	decode(t, resp, http.StatusOK, &id)
	if id.PeerID != e.host.ID().String() {
		t.Fatalf("peer ID %s, want %s", id.PeerID, e.host.ID())
	}
	if want := addrStrings(e.host.Network().ListenAddresses()); !slices.Equal(id.Listen, want) || len(want) == 0 {
		t.Fatalf("listen %v, want %v", id.Listen, want)
	}
	if len(id.Addrs) == 0 {
		t.Fatal("no addrs")
	}
	for _, a := range id.Addrs {
		ai, err := peer.AddrInfoFromString(a)
		if err != nil || ai.ID != e.host.ID() {
			t.Fatalf("addr %s: %v", a, err)
		}
	}
	if len(id.Accounts) != 2 {
		t.Fatalf("accounts %+v", id.Accounts)
	}
	if a := id.Accounts[0]; a.ID != e.local || !a.Local || !a.Default || a.Name != "Pat" || a.Role != protocol.RolePatient || !strings.HasPrefix(a.Head, "bafy") {
		t.Fatalf("local account %+v", a)
	}
	if a := id.Accounts[1]; a.ID != e.contact || a.Local || a.Name != "Dr Who" {
		t.Fatalf("contact %+v", a)
	}
}

// failingAccounts makes /api/v1/id fail.
type failingAccounts struct{}

func (failingAccounts) Accounts(context.Context) ([]keyshare.AccountInfo, error) {
	return nil, errors.New("disk on fire\nsecond line")
}

func TestIDServerError(t *testing.T) {
	e := startEnv(t, failingAccounts{}, "", "")
	wantError(t, e.do(t, req{path: "/api/v1/id"}), http.StatusInternalServerError, "disk on fire second line")
}

func TestPeersAndHealth(t *testing.T) {
	e := newEnv(t)
	var ps Peers
	decode(t, e.do(t, req{path: "/api/v1/peers"}), http.StatusOK, &ps)
	if ps.Peers == nil || len(ps.Peers) != 0 {
		t.Fatalf("peers before connecting: %+v", ps)
	}
	other := newHost(t)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	if err := other.Connect(ctx, peer.AddrInfo{ID: e.host.ID(), Addrs: e.host.Addrs()}); err != nil {
		t.Fatal(err)
	}
	decode(t, e.do(t, req{path: "/api/v1/peers"}), http.StatusOK, &ps)
	if len(ps.Peers) != 1 || ps.Peers[0].ID != other.ID().String() || len(ps.Peers[0].Addrs) == 0 ||
		!strings.HasPrefix(ps.Peers[0].Addrs[0], "/ip4/127.0.0.1/tcp/") {
		t.Fatalf("peers %+v, want %s", ps, other.ID())
	}
	var h Health
	decode(t, e.do(t, req{path: "/api/v1/health"}), http.StatusOK, &h)
	if h.Status != "ok" || h.Uptime < 0 {
		t.Fatalf("health %+v", h)
	}
}

// The OpenAPI description is served as embedded and lists exactly the
// routes the server has.
func TestOpenAPI(t *testing.T) {
	e := newEnv(t)
	resp := e.do(t, req{path: "/api/v1/openapi.yaml"})
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/yaml" || !bytes.Equal(body, OpenAPI) {
		t.Fatalf("openapi: %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if !bytes.HasPrefix(OpenAPI, []byte("openapi: 3.1.0\n")) {
		t.Fatal("not OpenAPI 3.1")
	}
	documented := map[string][]string{}
	pathRE := regexp.MustCompile(`^  (/\S+):$`)
	methodRE := regexp.MustCompile(`^    (get|put|post|delete|patch|head):$`)
	var cur string
	inPaths := false
	sc := bufio.NewScanner(bytes.NewReader(OpenAPI))
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, " ") && line != "" {
			inPaths = line == "paths:"
			continue
		}
		if !inPaths {
			continue
		}
		if m := pathRE.FindStringSubmatch(line); m != nil {
			cur = m[1]
			documented[cur] = nil
		} else if m := methodRE.FindStringSubmatch(line); m != nil {
			documented[cur] = append(documented[cur], strings.ToUpper(m[1]))
		}
	}
	served := map[string][]string{}
	for p, ms := range e.srv.routes {
		for m := range ms {
			served[p] = append(served[p], m)
		}
		slices.Sort(served[p])
	}
	for p := range documented {
		slices.Sort(documented[p])
	}
	if len(documented) != len(served) {
		t.Fatalf("documented %v, served %v", documented, served)
	}
	for p, ms := range served {
		if !slices.Equal(documented[p], ms) {
			t.Fatalf("%s: documented %v, served %v", p, documented[p], ms)
		}
	}
	// Every field of the response types is documented.
	for _, field := range []string{"peer_id", "listen", "addrs", "accounts", "uptime_s", "recipient", "local", "default", "encrypted", "head", "seq", "stopped",
		"account", "share_code", "devices", "peer_id", "replica", "passphrase", "added", "updated", "unchanged", "new_chain_blocks"} {
		if !bytes.Contains(OpenAPI, []byte("        "+field+":")) {
			t.Errorf("openapi.yaml does not describe %q", field)
		}
	}
}

func TestListenRefuses(t *testing.T) {
	h := newHost(t)
	tok, _ := LoadOrCreateToken(t.TempDir())
	for _, addr := range []string{"0.0.0.0:0", ":0", "[::]:0", "192.0.2.1:4102", "example.com:4102"} {
		_, err := Listen(t.Context(), Options{Addr: addr, Token: tok, Host: h, Accounts: failingAccounts{}})
		if err == nil || !strings.Contains(err.Error(), "refusing to listen") {
			t.Errorf("%s: %v", addr, err)
		}
	}
	if _, err := Listen(t.Context(), Options{Addr: "127.0.0.1:0", Token: "short", Host: h, Accounts: failingAccounts{}}); err == nil {
		t.Error("short token accepted")
	}
	// A port in use is an error too, naming it.
	s, err := Listen(t.Context(), Options{Addr: "127.0.0.1:0", Token: tok, Host: h, Accounts: failingAccounts{}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown(t.Context())
	if _, err := Listen(t.Context(), Options{Addr: s.Addr(), Token: tok, Host: h, Accounts: failingAccounts{}}); err == nil || !strings.Contains(err.Error(), s.Addr()) {
		t.Errorf("port in use: %v", err)
	}
}

func TestLoadOrCreateToken(t *testing.T) {
	dir := t.TempDir()
	tok, err := LoadOrCreateToken(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(tok) {
		t.Fatalf("token %q", tok)
	}
	path := filepath.Join(dir, TokenFile)
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("token file %v %v", st, err)
	}
	again, err := LoadOrCreateToken(dir)
	if err != nil || again != tok {
		t.Fatalf("reload %q %v", again, err)
	}
	if other, _ := LoadOrCreateToken(t.TempDir()); other == tok {
		t.Fatal("two repos, one token")
	}
	os.Chmod(path, 0o640)
	if _, err := LoadOrCreateToken(dir); !errors.Is(err, fsutil.ErrSecretMode) {
		t.Fatalf("group-readable token: %v", err)
	}
	os.WriteFile(path, []byte("not hex\n"), 0o600)
	if _, err := LoadOrCreateToken(dir); err == nil {
		t.Fatal("bad token file accepted")
	}
}

// Account carries exactly what keyshare.AccountInfo marshals, so a field
// added there fails here until the API (and openapi.yaml) carries it.
func TestAccountMatchesKeyshare(t *testing.T) {
	ctx := t.Context()
	repo, err := keyshare.Open(ctx, t.TempDir(), keyshare.Options{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	defer repo.Close()
	if _, err := repo.CreateAccount(ctx, "Pat", protocol.RolePatient, nil); err != nil {
		t.Fatal(err)
	}
	infos, err := repo.Accounts(ctx)
	if err != nil || len(infos) != 1 {
		t.Fatal(infos, err)
	}
	info := infos[0]
	info.Stopped = "test"
	info.Encrypted = true // set every optional field
	var want, got map[string]any
	b1, _ := json.Marshal(info)
	b2, _ := json.Marshal(accountOf(info))
	json.Unmarshal(b1, &want)
	json.Unmarshal(b2, &got)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("api.Account %s\nkeyshare.AccountInfo %s", b2, b1)
	}
	for k := range want {
		if !bytes.Contains(OpenAPI, []byte("        "+k+":")) {
			t.Errorf("openapi.yaml does not describe account field %q", k)
		}
	}
}
