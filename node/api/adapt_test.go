package api

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/protocol"
)

// adapted are the endpoints whose handlers are the adapters of adapt.go,
// by the adapter: what each answers before its operation runs.
var adapted = struct {
	keyed, keyedNoBody, acting, repoBody, repoOnly []string
}{
	keyed: []string{"/api/v1/attestations", "/api/v1/attestations/withdraw", "/api/v1/guardians",
		"/api/v1/guardians/remove", "/api/v1/guardians/grant", "/api/v1/guardians/revoke", "/api/v1/guardians/minor",
		"/api/v1/emergency", "/api/v1/recovery", "/api/v1/recovery/approve", "/api/v1/devices", "/api/v1/devices/remove",
		"/api/v1/devices/remove-and-rotate", "/api/v1/scopes", "/api/v1/scopes/end", "/api/v1/grants", "/api/v1/labs",
		"/api/v1/guardians/handover"},
	keyedNoBody: []string{"/api/v1/emergency/end", "/api/v1/devices/pair"},
	acting:      []string{"/api/v1/attestations", "/api/v1/guardians", "/api/v1/emergency", "/api/v1/recovery"},
	repoBody: []string{"/api/v1/trust", "/api/v1/trust/remove", "/api/v1/directory/contact", "/api/v1/recovery/start", "/api/v1/devices/join",
		"/api/v1/devices/takeover", "/api/v1/recovery/requests/deny"},
	repoOnly: []string{"/api/v1/trust", "/api/v1/audit/verify", "/api/v1/recovery/requests"},
}

// The adapters answer as the handlers they replaced: 501 without a repo;
// 404 for an unknown acting account; 423 for a locked one before the body
// is read (a bad body of a locked account is still 423); 400 for a bad
// body; and the keys of a session serve request after request (each
// request wipes its own copy, not the session's).
func TestAdapters(t *testing.T) {
	ctx := t.Context()
	post := func(e *env, path, body string) *http.Response { return e.postJSON(t, path, body) }
	get := func(e *env, path string) *http.Response { return e.do(t, req{path: path}) }

	repo, err := keyshare.Open(ctx, t.TempDir(), keyshare.Options{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	defer repo.Close()
	sam, err := repo.CreateAccount(ctx, "Sam", protocol.RolePatient, []byte("sam's passphrase"))
	if err != nil {
		t.Fatal(err)
	}
	// A server that lists accounts but has no repo.
	bare := startServer(t, Options{Accounts: repo})
	for _, p := range append(append(adapted.keyed, adapted.keyedNoBody...), adapted.repoBody...) {
		wantError(t, post(bare, p, `{}`), http.StatusNotImplemented, "no repo")
	}
	for _, p := range append(adapted.acting, adapted.repoOnly...) {
		wantError(t, get(bare, p), http.StatusNotImplemented, "no repo")
	}

	sessions := keyshare.NewSessions(repo)
	defer sessions.Close()
	e := startServer(t, Options{Repo: repo, Sessions: sessions})
	as := "?account=" + string(sam.ID)

	for _, p := range append(adapted.keyed, adapted.keyedNoBody...) {
		wantError(t, post(e, p+"?account=nobody", `{}`), http.StatusNotFound, "account")
		wantError(t, post(e, p+as, `{"no such field":1}`), http.StatusLocked, "Sam")
	}
	for _, p := range adapted.acting {
		wantError(t, get(e, p+"?account=nobody"), http.StatusNotFound, "account")
		if resp := get(e, p+as); resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s of a locked account: %d, want 200 (it needs no keys)", p, resp.StatusCode)
		}
	}
	for _, p := range adapted.repoBody {
		wantError(t, post(e, p, `{"no such field":1}`), http.StatusBadRequest, "unknown field")
	}
	for _, p := range adapted.repoOnly {
		// The operation answers (the audit log's check: 501, for this repo
		// keeps none), not the adapter.
		var body Error
		resp := get(e, p)
		if resp.StatusCode != http.StatusOK {
			decode(t, resp, resp.StatusCode, &body)
		}
		if strings.Contains(body.Error, "no repo") {
			t.Errorf("GET %s: %d %s", p, resp.StatusCode, body.Error)
		}
	}

	// Unlocked: a bad body is 400, and two signed operations in a row
	// both succeed on the session's keys.
	if _, err := sessions.Unlock(ctx, sam.ID, []byte("sam's passphrase"), 0); err != nil {
		t.Fatal(err)
	}
	for _, p := range adapted.keyed {
		wantError(t, post(e, p+as, `{"no such field":1}`), http.StatusBadRequest, "unknown field")
	}
	for _, h := range []string{newHost(t).ID().String(), newHost(t).ID().String()} {
		var set NodeSet
		decode(t, post(e, "/api/v1/devices"+as, `{"peer_id":"`+h+`","name":"backup","replica":true}`), http.StatusOK, &set)
	}

	// keysBody wipes the copy it handed to the operation.
	var seen *keyshare.Keys
	r := httptest.NewRequestWithContext(ctx, http.MethodPost, "/x"+as, strings.NewReader(`{}`))
	w := httptest.NewRecorder()
	keysBody(e.srv, w, r, http.StatusOK, func(_ context.Context, k *keyshare.Keys, _ struct{}) (struct{}, error) {
		if k.Age == nil {
			t.Error("the operation got wiped keys")
		}
		seen = k
		return struct{}{}, nil
	})
	if w.Code != http.StatusOK || seen == nil || seen.Age != nil {
		t.Fatalf("keysBody: status %d, keys after the operation %+v", w.Code, seen)
	}
	if k, err := sessions.Keys(sam.ID); err != nil || k.Age == nil {
		t.Fatalf("the session's keys after keysBody: %v", err)
	}

	// An operation that finds another account's keys locked (a ward's,
	// say) answers 423 with the way out, as the acting account's does.
	w = httptest.NewRecorder()
	e.srv.reply(w, http.StatusOK, nil, fmt.Errorf("the ward Kim: %w", keyshare.ErrNoSession))
	if w.Code != http.StatusLocked || !strings.Contains(w.Body.String(), "sessions/unlock") {
		t.Fatalf("an operation's ErrNoSession: %d %s, want 423 naming the unlock endpoint", w.Code, w.Body)
	}
}
