package api

import (
	"net/http"
	"strings"
	"testing"

	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/protocol"
)

// The session endpoints open, list and end sessions of the daemon's
// Sessions, refuse what is malformed, and count wrong passphrases.
func TestSessions(t *testing.T) {
	ctx := t.Context()
	repo, err := keyshare.Open(ctx, t.TempDir(), keyshare.Options{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	defer repo.Close()
	open, err := repo.CreateAccount(ctx, "Pat", protocol.RolePatient, nil)
	if err != nil {
		t.Fatal(err)
	}
	locked, err := repo.CreateAccount(ctx, "Sam", protocol.RolePatient, []byte("right"))
	if err != nil {
		t.Fatal(err)
	}
	sessions := keyshare.NewSessions(repo)
	defer sessions.Close()
	e := startServer(t, Options{Accounts: repo, Sessions: sessions})
	post := func(path, body string) *http.Response { return e.postJSON(t, path, body) }

	var list Sessions
	decode(t, e.do(t, req{path: "/api/v1/sessions"}), http.StatusOK, &list)
	if len(list.Sessions) != 0 {
		t.Fatalf("sessions before any unlock: %v", list)
	}
	var se Session
	decode(t, post("/api/v1/sessions/unlock", `{"account":"`+string(open.ID)+`","passphrase":"","idle_s":60}`), http.StatusOK, &se)
	if se.Account != open.ID || se.IdleSeconds != 60 || !se.Expires.After(se.Opened) {
		t.Fatalf("unlock: %+v", se)
	}
	if k, err := sessions.Keys(open.ID); err != nil || k.ID != open.ID {
		t.Fatalf("the daemon's sessions do not hold the keys: %v", err)
	}
	decode(t, e.do(t, req{path: "/api/v1/sessions"}), http.StatusOK, &list)
	if len(list.Sessions) != 1 || list.Sessions[0].Account != open.ID {
		t.Fatalf("sessions: %+v", list)
	}

	// Malformed requests and a wrong passphrase.
	wantError(t, post("/api/v1/sessions/unlock", `{"account":"nobody","passphrase":""}`), http.StatusBadRequest, "account")
	wantError(t, post("/api/v1/sessions/unlock", `{"account":"`+string(open.ID)+`","passphrase":"","idle_s":-1}`), http.StatusBadRequest, "idle_s")
	wantError(t, post("/api/v1/sessions/unlock", `{"account":"`+string(open.ID)+`","passphrase":"","extra":1}`), http.StatusBadRequest, "unknown field")
	wantError(t, post("/api/v1/sessions/unlock", `{"account":"`+string(locked.ID)+`","passphrase":"wrong"}`), http.StatusForbidden, "wrong passphrase")
	if sessions.Failures(locked.ID) != 1 {
		t.Fatalf("failures %d", sessions.Failures(locked.ID))
	}
	var contact, _ = keyshare.GenerateKeys()
	wantError(t, post("/api/v1/sessions/unlock", `{"account":"`+string(contact.ID)+`","passphrase":""}`), http.StatusBadRequest, "not a local account")

	var n Locked
	decode(t, post("/api/v1/sessions/lock", `{"account":"`+string(open.ID)+`"}`), http.StatusOK, &n)
	if n.Locked != 1 {
		t.Fatalf("lock: %+v", n)
	}
	if _, err := sessions.Keys(open.ID); err == nil {
		t.Fatal("still unlocked after lock")
	}
	decode(t, post("/api/v1/sessions/unlock", `{"account":"`+string(open.ID)+`","passphrase":""}`), http.StatusOK, &se)
	decode(t, post("/api/v1/sessions/lock", `{}`), http.StatusOK, &n)
	if n.Locked != 1 || len(sessions.List()) != 0 {
		t.Fatalf("lock all: %+v", n)
	}
	// Without the token nothing is unlocked.
	resp := e.do(t, req{method: http.MethodPost, path: "/api/v1/sessions/unlock", token: ptr(""), body: strings.NewReader(`{"account":"` + string(open.ID) + `","passphrase":""}`), length: -1, header: map[string]string{"Content-Type": "application/json"}})
	if resp.StatusCode != http.StatusUnauthorized || len(sessions.List()) != 0 {
		t.Fatalf("unlock without the token: %d", resp.StatusCode)
	}
}
