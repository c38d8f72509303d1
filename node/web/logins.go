package web

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"html"
	"net/http"
	"sync"
	"time"

	"github.com/blockmrs/blockmrs/keyshare"
)

// LoginPath is where a login link points: GET /login?code=CODE.
const LoginPath = "/login"

// Limits of login links and cookie sessions.
const (
	// CodeTTL is how long a login link stays valid.
	CodeTTL = 2 * time.Minute
	// SessionIdle ends a cookie session unused for this long.
	SessionIdle = keyshare.DefaultIdle
	// MaxCodes and MaxSessions bound what is held; past them the oldest
	// goes first.
	MaxCodes    = 64
	MaxSessions = 64

	// codeBytes and sessionBytes are the random lengths before encoding.
	codeBytes    = 32
	sessionBytes = 32
	// codeMemory is how long a used or expired code is remembered, so
	// that its next use is answered "already used" or "expired" rather
	// than "not valid".
	codeMemory = 30 * time.Minute
)

// digest names a code or session in the maps: a lookup by digest reveals
// nothing about the secret through timing.
type digest [sha256.Size]byte

func digestOf(s string) digest { return sha256.Sum256([]byte(s)) }

type code struct {
	issued time.Time
	used   bool
}

type session struct {
	created, lastUse time.Time
}

// Logins holds the one-time login codes and the cookie sessions made from
// them, in memory only: a daemon restart logs every browser out. The zero
// value is not usable; call NewLogins.
type Logins struct {
	// Now is the clock (tests set it); nil means time.Now.
	Now func() time.Time

	cookie string // cookie name, per port: cookies are not port-scoped

	mu       sync.Mutex
	codes    map[digest]*code
	sessions map[digest]*session
}

// NewLogins returns empty Logins whose cookie is named for the API's port
// (two daemons on one host must not overwrite each other's cookie).
func NewLogins(port int) *Logins {
	return &Logins{
		cookie:   fmt.Sprintf("blockmrs_session_%d", port),
		codes:    map[digest]*code{},
		sessions: map[digest]*session{},
	}
}

// CookieName is the session cookie's name.
func (l *Logins) CookieName() string { return l.cookie }

func (l *Logins) now() time.Time {
	if l.Now != nil {
		return l.Now()
	}
	return time.Now()
}

func random(n int) string {
	b := make([]byte, n)
	rand.Read(b) // never fails (crypto/rand)
	return base64.RawURLEncoding.EncodeToString(b)
}

// NewCode makes a fresh single-use login code, valid for CodeTTL.
func (l *Logins) NewCode() (string, time.Time) {
	c := random(codeBytes)
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.expireLocked(now)
	if len(l.codes) >= MaxCodes {
		l.dropOldestCodeLocked()
	}
	l.codes[digestOf(c)] = &code{issued: now}
	return c, now.Add(CodeTTL)
}

// CodeStatus says whether a login code was accepted, or why not.
type CodeStatus int

// The answers of Redeem.
const (
	CodeOK CodeStatus = iota
	CodeUnknown
	CodeExpired
	CodeUsed
)

// Redeem uses up c and, if it was valid, returns a new session's ID (the
// cookie's value) with CodeOK; else "" and why not.
func (l *Logins) Redeem(c string) (string, CodeStatus) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.expireLocked(now)
	e, ok := l.codes[digestOf(c)]
	switch {
	case !ok || c == "":
		return "", CodeUnknown
	case e.used:
		return "", CodeUsed
	case now.Sub(e.issued) > CodeTTL:
		e.used = true
		return "", CodeExpired
	}
	e.used = true
	if len(l.sessions) >= MaxSessions {
		l.dropOldestSessionLocked()
	}
	id := random(sessionBytes)
	l.sessions[digestOf(id)] = &session{created: now, lastUse: now}
	return id, CodeOK
}

// Check reports whether id names a live session, and counts this as its
// use (the idle time starts again).
func (l *Logins) Check(id string) bool {
	if id == "" {
		return false
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.expireLocked(now)
	s, ok := l.sessions[digestOf(id)]
	if !ok {
		return false
	}
	s.lastUse = now
	return true
}

// FromRequest returns the session cookie's value in r, "" if none.
func (l *Logins) FromRequest(r *http.Request) string {
	c, err := r.Cookie(l.cookie)
	if err != nil {
		return ""
	}
	return c.Value
}

// Sessions counts the live cookie sessions.
func (l *Logins) Sessions() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.expireLocked(l.now())
	return len(l.sessions)
}

func (l *Logins) expireLocked(now time.Time) {
	for k, c := range l.codes {
		if now.Sub(c.issued) > codeMemory {
			delete(l.codes, k)
		}
	}
	for k, s := range l.sessions {
		if now.Sub(s.lastUse) > SessionIdle {
			delete(l.sessions, k)
		}
	}
}

func (l *Logins) dropOldestCodeLocked() {
	var oldest digest
	var t time.Time
	for k, c := range l.codes {
		if t.IsZero() || c.issued.Before(t) {
			oldest, t = k, c.issued
		}
	}
	delete(l.codes, oldest)
}

func (l *Logins) dropOldestSessionLocked() {
	var oldest digest
	var t time.Time
	for k, s := range l.sessions {
		if t.IsZero() || s.lastUse.Before(t) {
			oldest, t = k, s.lastUse
		}
	}
	delete(l.sessions, oldest)
}

// serveLogin answers GET /login?code=CODE.
func (l *Logins) serveLogin(w http.ResponseWriter, r *http.Request) {
	id, why := l.Redeem(r.URL.Query().Get("code"))
	again := "Run 'blockmrs open' on this computer for a new link; each link works once, within 2 minutes."
	switch why {
	case CodeUsed:
		Page(w, http.StatusForbidden, "This login link was already used", "A login link lets one browser in, once. "+again)
		return
	case CodeExpired:
		Page(w, http.StatusForbidden, "This login link has expired", again)
		return
	case CodeUnknown:
		Page(w, http.StatusForbidden, "This login link is not valid", "It may be mistyped, or from before the daemon restarted. "+again)
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name:     l.cookie,
		Value:    id,
		Path:     "/",
		HttpOnly: true,
		SameSite: http.SameSiteStrictMode,
	})
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// Page writes a plain HTML page with a title and one paragraph, both
// escaped.
func Page(w http.ResponseWriter, status int, title, text string) {
	Headers(w.Header())
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	t, p := html.EscapeString(title), html.EscapeString(text)
	fmt.Fprintf(w, `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>%s · BlockMRS</title><link rel="icon" href="data:,"><link rel="stylesheet" href="/app.css"></head>
<body><main><h1>%s</h1><p id="message">%s</p><p><a href="/">Back to the app</a></p></main></body></html>
`, t, t, p)
}
