// Package web is the node's own web app (DESIGN decision 13): a static
// page, its script modules and one style sheet, embedded in the binary and served
// by the local API server (node/api) on its loopback address, plus the
// one-time login links and cookie sessions that let a browser in.
//
// The app has no build step and loads nothing from elsewhere: no CDN, no
// web fonts, no inline script or style. Every response from this package
// carries Headers (a strict Content-Security-Policy among them), so user
// content shown by the app can never run script in the app's origin; the
// script writes data with textContent only.
//
// Getting in: the browser cannot read the repo's api.token, so a token
// holder (`blockmrs open`) asks for a login link (Logins.NewCode). GET
// /login?code=CODE trades an unused, unexpired code for a session cookie
// (HttpOnly, SameSite=Strict, Path=/) naming a random 32-byte session
// held in memory with an idle expiry; then it redirects to /. The API
// server accepts that cookie as it accepts the bearer token, and requires
// CSRFHeader on every state-changing request that carries only the cookie
// (see node/api's package doc for the order of its checks).
package web

import (
	"embed"
	"io/fs"
	"net/http"
	"path"
)

// CSP is the Content-Security-Policy of every page and asset.
const CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; " +
	"connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'"

// CSRFHeader must be sent, with the value "1", on every request other than
// GET or HEAD that is authenticated by the session cookie alone. A page on
// another origin cannot add a custom header to a request without a CORS
// preflight, which the API never grants.
const CSRFHeader = "X-BlockMRS-CSRF"

// Headers sets the security headers every page and asset carries, and
// every API response too.
func Headers(h http.Header) {
	h.Set("Content-Security-Policy", CSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cache-Control", "no-store")
}

//go:embed app
var appFS embed.FS

// assets maps each served path to its file in app/ and its content
// type: "/" is index.html, and every script and style sheet in app/ is
// served under its own name (a page of the app is one more module).
var assets = func() map[string]struct{ file, ctype string } {
	m := map[string]struct{ file, ctype string }{"/": {"index.html", "text/html; charset=utf-8"}}
	files, err := fs.ReadDir(appFS, "app")
	if err != nil { // cannot happen: embedded
		panic(err)
	}
	for _, f := range files {
		switch path.Ext(f.Name()) {
		case ".js":
			m["/"+f.Name()] = struct{ file, ctype string }{f.Name(), "text/javascript; charset=utf-8"}
		case ".css":
			m["/"+f.Name()] = struct{ file, ctype string }{f.Name(), "text/css; charset=utf-8"}
		}
	}
	return m
}()

// IsApp reports whether path is one of the app's pages or assets, or the
// login path: the paths Handler serves.
func IsApp(p string) bool {
	_, ok := assets[p]
	return ok || p == LoginPath
}

// Handler serves the app's assets (GET and HEAD) and, through l, the
// login path. It expects the API server's Host and Origin checks to have
// run already.
func Handler(l *Logins) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		Headers(w.Header())
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			Page(w, http.StatusMethodNotAllowed, "Method not allowed", "This page only answers GET.")
			return
		}
		if r.URL.Path == LoginPath {
			if r.Method != http.MethodGet { // a HEAD must not use up a code
				w.Header().Set("Allow", "GET")
				Page(w, http.StatusMethodNotAllowed, "Method not allowed", "Open the login link in a browser.")
				return
			}
			l.serveLogin(w, r)
			return
		}
		a, ok := assets[r.URL.Path]
		if !ok {
			Page(w, http.StatusNotFound, "Not found", "There is no such page. The app is at /.")
			return
		}
		data, err := fs.ReadFile(appFS, path.Join("app", a.file))
		if err != nil { // cannot happen: embedded
			Page(w, http.StatusInternalServerError, "Missing asset", "This build lacks "+a.file+".")
			return
		}
		w.Header().Set("Content-Type", a.ctype)
		w.WriteHeader(http.StatusOK)
		if r.Method != http.MethodHead {
			w.Write(data)
		}
	})
}
