package api

import (
	"encoding/hex"
	"net/http"
	"testing"

	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/protocol"
)

// account opens a new repo with one account named name (no passphrase).
func account(t *testing.T, name string) (*keyshare.Repo, *keyshare.Keys) {
	t.Helper()
	r := openRepo(t)
	k, err := r.CreateAccount(t.Context(), name, protocol.RolePatient, nil)
	if err != nil {
		t.Fatal(err)
	}
	return r, k
}

// The recovery inbox endpoints: a request received over the network is
// listed with the safety code the recovering repo shows and the
// instruction; approving it by inbox ID queues the response; denying it
// drops it (a second deny is 404).
func TestRecoveryInboxEndpoints(t *testing.T) {
	ctx := t.Context()
	cam, camKeys := account(t, "Cam")
	pat, patKeys := account(t, "Pat")
	fresh := openRepo(t)
	exchange(t, cam, pat, camKeys.ID)
	if _, err := pat.SetupRecovery(ctx, patKeys, []protocol.AccountID{camKeys.ID}, 1); err != nil {
		t.Fatal(err)
	}
	exchange(t, pat, cam, patKeys.ID)
	exchange(t, pat, fresh, patKeys.ID)
	started, err := fresh.StartRecovery(ctx, patKeys.ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	e := startServer(t, Options{Repo: cam})
	var inbox RecoveryInbox
	decode(t, e.do(t, req{path: "/api/v1/recovery/requests"}), http.StatusOK, &inbox)
	if len(inbox.Requests) != 0 || inbox.Instruction == "" {
		t.Fatalf("empty inbox: %+v", inbox)
	}
	tok, err := hex.DecodeString(started.Token)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cam.ReceiveRecoveryRequest(ctx, tok, "peer"); err != nil {
		t.Fatal(err)
	}
	decode(t, e.do(t, req{path: "/api/v1/recovery/requests"}), http.StatusOK, &inbox)
	if len(inbox.Requests) != 1 || inbox.Requests[0].ID != started.Request || inbox.Requests[0].SafetyCode != started.SafetyCode {
		t.Fatalf("inbox: %+v; the recovering repo shows %s, code %s", inbox, started.Request, started.SafetyCode)
	}
	var approved RecoveryApproved
	decode(t, e.postJSON(t, "/api/v1/recovery/approve?account="+string(camKeys.ID), `{"request":"`+started.Request+`"}`), http.StatusOK, &approved)
	if !approved.Queued || approved.Account != patKeys.ID {
		t.Fatalf("approve by inbox ID: %+v", approved)
	}
	if resps, _ := cam.RecoveryResponsesFor(ctx, protocol.RecoveryRequestID(tok)); len(resps) != 1 {
		t.Fatalf("%d responses queued, want 1", len(resps))
	}
	var denied RecoveryDenyRequest
	decode(t, e.postJSON(t, "/api/v1/recovery/requests/deny", `{"id":"`+started.Request+`"}`), http.StatusOK, &denied)
	decode(t, e.do(t, req{path: "/api/v1/recovery/requests"}), http.StatusOK, &inbox)
	if denied.ID != started.Request || len(inbox.Requests) != 0 {
		t.Fatalf("after deny: %+v, inbox %+v", denied, inbox)
	}
	wantError(t, e.postJSON(t, "/api/v1/recovery/requests/deny", `{"id":"`+started.Request+`"}`), http.StatusNotFound, "no recovery request")
}
