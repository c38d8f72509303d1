package api

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/blockmrs/blockmrs/node/web"
)

// loginCookie gets a login link with the token, follows it and returns
// the session cookie ("name=value") and the link.
func (e *env) loginCookie(t *testing.T) (cookie, link string) {
	t.Helper()
	c := e.client(t)
	ll, err := c.LoginLink(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(ll.URL, e.srv.URL()+"/login?code=") {
		t.Fatalf("link %q", ll.URL)
	}
	u, _ := url.Parse(ll.URL)
	hr, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, ll.URL, nil)
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noFollow.Do(hr)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
		t.Fatalf("login: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	sc := resp.Header.Get("Set-Cookie")
	for _, want := range []string{"HttpOnly", "SameSite=Strict", "Path=/"} {
		if !strings.Contains(sc, want) {
			t.Fatalf("Set-Cookie %q lacks %s", sc, want)
		}
	}
	cookie, _, _ = strings.Cut(sc, ";")
	return cookie, u.RequestURI()
}

// The app is served without a token, with the strict headers, and behind
// the Host and Origin checks.
func TestWebAppServed(t *testing.T) {
	e := newEnv(t)
	for path, ctype := range map[string]string{"/": "text/html", "/main.js": "text/javascript", "/records.js": "text/javascript", "/app.css": "text/css"} {
		resp := e.do(t, req{path: path, token: ptr("")})
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), ctype) || len(body) == 0 {
			t.Fatalf("%s: %d %q", path, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		for k, v := range map[string]string{"Content-Security-Policy": web.CSP, "X-Content-Type-Options": "nosniff",
			"Referrer-Policy": "no-referrer", "Cache-Control": "no-store"} {
			if got := resp.Header.Get(k); got != v {
				t.Errorf("%s: %s %q, want %q", path, k, got, v)
			}
		}
	}
	if got := e.do(t, req{path: "/api/v1/health"}).Header.Get("Content-Security-Policy"); got != web.CSP {
		t.Errorf("API response CSP %q", got)
	}
	_, port, _ := strings.Cut(e.srv.Addr(), ":")
	wantError(t, e.do(t, req{path: "/", host: "evil.example:" + port}), http.StatusForbidden, "Host")
	wantError(t, e.do(t, req{path: "/", header: map[string]string{"Origin": "http://evil.example"}}), http.StatusForbidden, "cross-origin")
	wantError(t, e.do(t, req{path: "/login?code=x", header: map[string]string{"Sec-Fetch-Site": "cross-site"}}), http.StatusForbidden, "cross-site")
	resp := e.do(t, req{method: http.MethodPost, path: "/", token: ptr("")})
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("POST /: %d", resp.StatusCode)
	}
}

// A login link works once; its cookie opens the API like the token, but
// state-changing requests also need the CSRF header, and the token-only
// endpoints stay shut.
func TestWebLogin(t *testing.T) {
	e := newEnv(t)
	cookie, link := e.loginCookie(t)
	// A HEAD is refused and uses up nothing.
	ll, err := e.client(t).LoginLink(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(ll.URL)
	if resp := e.do(t, req{method: http.MethodHead, path: u.RequestURI(), token: ptr("")}); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("HEAD /login: %d", resp.StatusCode)
	}
	if resp := e.do(t, req{path: u.RequestURI(), token: ptr("")}); resp.Request.URL.Path != "/" {
		t.Fatalf("the code did not survive a HEAD: landed on %s", resp.Request.URL.Path)
	}
	withCookie := func(h map[string]string) map[string]string {
		if h == nil {
			h = map[string]string{}
		}
		h["Cookie"] = cookie
		return h
	}

	// Used again: a page saying so.
	resp := e.do(t, req{path: link, token: ptr("")})
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), "already used") ||
		!strings.Contains(string(body), "blockmrs open") || resp.Header.Get("Set-Cookie") != "" {
		t.Fatalf("reused link: %d %s", resp.StatusCode, body)
	}
	resp = e.do(t, req{path: "/login?code=nonsense", token: ptr("")})
	body, _ = io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), "not valid") {
		t.Fatalf("bad code: %d %s", resp.StatusCode, body)
	}

	var id Identity
	decode(t, e.do(t, req{path: "/api/v1/id", token: ptr(""), header: withCookie(nil)}), http.StatusOK, &id)
	if len(id.Accounts) == 0 || id.Accounts[0].Name != "Pat" {
		t.Fatalf("id with the cookie: %+v", id)
	}
	wantError(t, e.do(t, req{path: "/api/v1/id", token: ptr(""), header: map[string]string{"Cookie": "blockmrs_session_1=x"}}), http.StatusUnauthorized, "token")

	post := func(path string, h map[string]string) *http.Response {
		return e.do(t, req{method: http.MethodPost, path: path, token: ptr(""), header: withCookie(h), body: strings.NewReader("{}"), length: 2})
	}
	wantError(t, post("/api/v1/sessions/lock", nil), http.StatusForbidden, web.CSRFHeader)
	// With the header the request goes through (this env holds no
	// sessions: 501, not a refusal).
	wantError(t, post("/api/v1/sessions/lock", map[string]string{web.CSRFHeader: "1"}), http.StatusNotImplemented, "no sessions")
	wantError(t, post(execPath, map[string]string{web.CSRFHeader: "1"}), http.StatusForbidden, "needs the API token")
	wantError(t, post(loginLinksPath, map[string]string{web.CSRFHeader: "1"}), http.StatusForbidden, "needs the API token")
	// The cookie does not lift the Origin check.
	wantError(t, e.do(t, req{path: "/api/v1/id", token: ptr(""), header: withCookie(map[string]string{"Origin": "http://evil.example"})}), http.StatusForbidden, "cross-origin")
	// Without a token or cookie, the login-links endpoint is shut.
	wantError(t, e.do(t, req{method: http.MethodPost, path: loginLinksPath, token: ptr("")}), http.StatusUnauthorized, "token")
}
