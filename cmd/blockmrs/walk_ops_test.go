package main

// One walk through every operation, each done through both faces, the
// command line (--json) and the API (HTTP with the repo's token), against
// two real daemons: a patient with a passphrase and a clinician. Reads
// must give the same JSON; a change done once through each face must give
// answers of the same shape, and the reads after it must agree again.

import (
	"bytes"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/node/api"
	"github.com/blockmrs/blockmrs/node/ops"
)

// apiFace calls one daemon's API as a third-party client would: plain
// HTTP with the repo's token.
type apiFace struct {
	t     *testing.T
	base  string
	token string
}

func newAPIFace(t *testing.T, n *node, d *apiDaemon) *apiFace {
	t.Helper()
	tok, err := os.ReadFile(filepath.Join(n.dir, api.TokenFile))
	if err != nil {
		t.Fatal(err)
	}
	return &apiFace{t: t, base: d.api, token: strings.TrimSpace(string(tok))}
}

// call sends a request (a JSON body unless body is an io.Reader) and
// requires status want; it returns the response body.
func (a *apiFace) call(method, path string, body any, want int) []byte {
	a.t.Helper()
	var rd io.Reader
	ctype := "application/json"
	switch b := body.(type) {
	case nil:
	case io.Reader:
		rd, ctype = b, "application/octet-stream"
	default:
		data, err := json.Marshal(b)
		if err != nil {
			a.t.Fatal(err)
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(a.t.Context(), method, a.base+path, rd)
	if err != nil {
		a.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+a.token)
	if rd != nil {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		a.t.Fatal(err)
	}
	if resp.StatusCode != want {
		a.t.Fatalf("%s %s: %d, want %d: %s", method, path, resp.StatusCode, want, data)
	}
	return data
}

// get is GET path, 200, decoded into any.
func (a *apiFace) get(path string) any {
	a.t.Helper()
	return decodeAny(a.t, path, a.call(http.MethodGet, path, nil, http.StatusOK))
}

// post is POST path with body, status want, the answer decoded into v.
func (a *apiFace) post(path string, body any, want int, v any) {
	a.t.Helper()
	data := a.call(http.MethodPost, path, body, want)
	if err := json.Unmarshal(data, v); err != nil {
		a.t.Fatalf("POST %s: %v: %s", path, err, data)
	}
}

func decodeAny(t *testing.T, what string, data []byte) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatalf("%s: not JSON: %v: %s", what, err, data)
	}
	return v
}

// sameShape fails unless the command's answer and the API's (a value that
// encodes to JSON) are objects with the same fields, equal but for those
// named in differ (which two separate changes must differ in, such as
// the block holding each).
func sameShape(t *testing.T, what, cli string, fromAPI any, differ ...string) {
	t.Helper()
	data, err := json.Marshal(fromAPI)
	if err != nil {
		t.Fatal(err)
	}
	var a, b map[string]any
	if err := json.Unmarshal([]byte(cli), &a); err != nil {
		t.Fatalf("%s: command output %q: %v", what, cli, err)
	}
	if err := json.Unmarshal(data, &b); err != nil {
		t.Fatalf("%s: API answer %s: %v", what, data, err)
	}
	if ka, kb := slices.Sorted(maps.Keys(a)), slices.Sorted(maps.Keys(b)); !slices.Equal(ka, kb) {
		t.Fatalf("%s: command line has fields %v, API %v", what, ka, kb)
	}
	for k := range a {
		if !slices.Contains(differ, k) && !reflect.DeepEqual(a[k], b[k]) {
			t.Fatalf("%s: field %q: command line %v, API %v", what, k, a[k], b[k])
		}
	}
}

// sameSettled is sameJSON for answers that move while the nodes talk
// (requests being delivered, peers connecting): it asks both faces again
// until they agree, for at most 30 s.
func sameSettled(t *testing.T, what string, cli func() string, fromAPI func() any) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, a := cli(), fromAPI()
		data, _ := json.Marshal(a)
		var x, y any
		json.Unmarshal([]byte(c), &x)
		json.Unmarshal(data, &y)
		if reflect.DeepEqual(x, y) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s differs:\ncommand line %s\nAPI          %s", what, strings.TrimSpace(c), data)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestWalkOpsThroughCLIAndAPI(t *testing.T) {
	const pass = "correct horse battery staple"
	p := newNode(t, pass)
	patID := p.initAccount("--name", "Pat", "--role", "patient")
	d := newNode(t, "")
	docID := d.initAccount("--name", "Dr Grey", "--role", "clinician", "--no-passphrase")
	pa := newAPIFace(t, p, startAPIDaemon(t, p))
	da := newAPIFace(t, d, startAPIDaemon(t, d))

	// Sessions: the command line unlocks and locks, the API too; both
	// list the same sessions.
	var cliSession ops.Session
	strictJSON(t, p.ok("unlock", "--json"), &cliSession)
	if string(cliSession.Account) != patID {
		t.Fatalf("unlock --json: %+v", cliSession)
	}
	sameJSON(t, "sessions", p.ok("sessions", "--json"), pa.get("/api/v1/sessions"))
	cliLocked := p.ok("lock", "--json")
	sameJSON(t, "sessions after lock", p.ok("sessions", "--json"), pa.get("/api/v1/sessions"))
	var apiSession ops.Session
	pa.post("/api/v1/sessions/unlock", ops.UnlockRequest{Account: cliSession.Account, Passphrase: pass}, http.StatusOK, &apiSession)
	sameShape(t, "unlock", p.ok("unlock", "--json"), apiSession, "opened", "expires")
	sameJSON(t, "sessions after unlock", p.ok("sessions", "--json"), pa.get("/api/v1/sessions"))
	var apiLocked ops.Locked
	pa.post("/api/v1/sessions/lock", ops.LockRequest{Account: cliSession.Account}, http.StatusOK, &apiLocked)
	sameJSON(t, "lock", cliLocked, apiLocked)
	pa.post("/api/v1/sessions/unlock", ops.UnlockRequest{Account: cliSession.Account, Passphrase: pass}, http.StatusOK, &apiSession)

	// id and accounts.
	sameJSON(t, "patient id", p.ok("id", "--json"), pa.get("/api/v1/id"))
	sameJSON(t, "clinician id", d.ok("id", "--json"), da.get("/api/v1/id"))
	sameJSON(t, "accounts", p.ok("accounts", "--json"), pa.get("/api/v1/accounts"))

	// Contacts: the clinician adds the patient through the command line,
	// the patient the clinician through the API.
	share := func(a *apiFace) string {
		var id ops.Identity
		data, _ := json.Marshal(a.get("/api/v1/id"))
		json.Unmarshal(data, &id)
		return id.ShareCode
	}
	addr, acct, _ := strings.Cut(share(pa), " ")
	cliAdded := d.ok("contact", "add", addr, acct, "--json")
	var apiAdded ops.ContactAdded
	pa.post("/api/v1/contacts", ops.AddContactArgs{ShareCode: share(da)}, http.StatusOK, &apiAdded)
	if len(apiAdded.Added) != 1 || string(apiAdded.Added[0].ID) != docID {
		t.Fatalf("API contact add: %+v", apiAdded)
	}
	sameShape(t, "contact add", cliAdded, apiAdded, "added", "new_chain_blocks")
	sameJSON(t, "patient's contacts", p.ok("contact", "ls", "--json"), pa.get("/api/v1/contacts"))
	sameJSON(t, "clinician's contacts", d.ok("contact", "ls", "--json"), da.get("/api/v1/contacts"))

	// Records: one added through each face; the lists agree, filtered
	// too.
	file := writeTemp(t, "blood.txt", []byte("Hb 13.2 g/dL\n"))
	var cliRec, apiRec ops.AddedRecord
	cliOut := p.ok("add", "--title", "Blood test", "--kind", "note", file, "--json")
	strictJSON(t, cliOut, &cliRec)
	pa.post("/api/v1/records?"+url.Values{"title": {"X-ray"}, "kind": {"note"}, "file_name": {"xray.txt"}}.Encode(),
		strings.NewReader("no fracture\n"), http.StatusCreated, &apiRec)
	sameShape(t, "add", cliOut, apiRec, "cid", "title")
	blood, xray := cliRec.CID, apiRec.CID
	sameJSON(t, "ls", p.ok("ls", "--json"), pa.get("/api/v1/records"))
	sameJSON(t, "ls --kind --q", p.ok("ls", "--kind", "note", "--q", "BLOOD", "--json"), pa.get("/api/v1/records?kind=note&q=BLOOD"))
	sameJSON(t, "verify", p.ok("verify", blood, "--json"), pa.get("/api/v1/records/"+blood+"/verify"))

	// Grants and revocations, one through each face; readers agree.
	cliGrant := p.ok("grant", blood, "--to", "Dr Grey", "--expires", "30d", "--json")
	var apiGrant ops.Granted
	pa.post("/api/v1/grants", ops.GrantRequest{Records: []string{xray}, To: docID, Expires: time.Now().Add(30 * 24 * time.Hour)}, http.StatusOK, &apiGrant)
	sameShape(t, "grant", cliGrant, apiGrant, "block", "records", "expires")
	sameJSON(t, "readers", p.ok("readers", blood, "--json"), pa.get("/api/v1/records/"+blood+"/readers"))
	cliRevoke := p.ok("revoke", blood, "--from", "Dr Grey", "--json")
	var apiRevoke ops.Revoked
	pa.post("/api/v1/revocations", ops.RevokeRequest{Records: []string{xray}, From: docID}, http.StatusOK, &apiRevoke)
	sameShape(t, "revoke", cliRevoke, apiRevoke, "block", "records")
	sameJSON(t, "readers after revoke", p.ok("readers", xray, "--json"), pa.get("/api/v1/records/"+xray+"/readers"))

	// Hide through the command line, unhide through the API.
	cliHide := p.ok("hide", xray, "--json")
	sameJSON(t, "ls --all after hide", p.ok("ls", "--all", "--json"), pa.get("/api/v1/records?all=true"))
	var apiUnhide ops.Hidden
	pa.post("/api/v1/records/"+xray+"/unhide", nil, http.StatusOK, &apiUnhide)
	sameShape(t, "hide and unhide", cliHide, apiUnhide, "block", "hidden")
	sameJSON(t, "ls after unhide", p.ok("ls", "--json"), pa.get("/api/v1/records"))

	// Requests between the two daemons: one sent through each face, one
	// approved through each.
	cliSent := d.ok("request", "Pat", "--reason", "follow-up", "--duration", "7d", "--json")
	var apiSent keyshare.RequestInfo
	da.post("/api/v1/requests", ops.SendRequest{To: patID, Reason: "second opinion", DurationSeconds: 7 * 24 * 3600, Records: []string{blood}}, http.StatusCreated, &apiSent)
	sameShape(t, "request", cliSent, apiSent, "id", "reason", "records", "created", "state", "updated")
	var first keyshare.RequestInfo
	strictJSON(t, cliSent, &first)
	var inbox struct {
		Inbox []keyshare.RequestInfo `json:"inbox"`
	}
	waitUntil(t, 30*time.Second, "both requests reach the patient", func() bool {
		inbox.Inbox = nil
		json.Unmarshal(pa.call(http.MethodGet, "/api/v1/requests", nil, http.StatusOK), &inbox)
		return len(inbox.Inbox) == 2
	})
	sameSettled(t, "patient's requests", func() string { return p.ok("requests", "--json") }, func() any { return pa.get("/api/v1/requests") })
	cliApproved := p.ok("approve", first.ID, "--json")
	var apiApproved keyshare.RequestInfo
	pa.post("/api/v1/requests/"+apiSent.ID+"/approve", ops.ApproveRequest{}, http.StatusOK, &apiApproved)
	sameShape(t, "approve", cliApproved, apiApproved, "id", "reason", "records", "created", "updated", "grant", "answered", "expires", "answer_delivered")
	waitUntil(t, 30*time.Second, "the answers reach the clinician", func() bool {
		var out struct {
			Outbox []keyshare.RequestInfo `json:"outbox"`
		}
		json.Unmarshal(da.call(http.MethodGet, "/api/v1/requests", nil, http.StatusOK), &out)
		return len(out.Outbox) == 2 && out.Outbox[0].State == keyshare.StateApproved && out.Outbox[1].State == keyshare.StateApproved
	})
	sameSettled(t, "clinician's requests", func() string { return d.ok("requests", "--json") }, func() any { return da.get("/api/v1/requests") })
	sameSettled(t, "patient's answered requests", func() string { return p.ok("requests", "--json") }, func() any { return pa.get("/api/v1/requests") })
	// A third one, denied through the API, a fourth through the command line.
	var third, fourth keyshare.RequestInfo
	da.post("/api/v1/requests", ops.SendRequest{To: patID, Reason: "research"}, http.StatusCreated, &third)
	strictJSON(t, d.ok("request", "Pat", "--reason", "more research", "--json"), &fourth)
	waitUntil(t, 30*time.Second, "two more requests reach the patient", func() bool {
		inbox.Inbox = nil
		json.Unmarshal(pa.call(http.MethodGet, "/api/v1/requests", nil, http.StatusOK), &inbox)
		return len(inbox.Inbox) == 4
	})
	var apiDenied keyshare.RequestInfo
	pa.post("/api/v1/requests/"+third.ID+"/deny", ops.DenyRequest{Reason: "not now"}, http.StatusOK, &apiDenied)
	cliDenied := p.ok("deny", fourth.ID, "--reason", "not now", "--json")
	sameShape(t, "deny", cliDenied, apiDenied, "id", "reason", "created", "updated", "answered", "answer_delivered")
	sameSettled(t, "patient's requests after deny", func() string { return p.ok("requests", "--json") }, func() any { return pa.get("/api/v1/requests") })

	// Devices and replicas: one declared and withdrawn through each face.
	const backup = "12D3KooWHHzSeKaY8xuZVzkLbKFfvNgPPeKhFBGrMbNzbm5akpqu"
	const backup2 = "12D3KooWGzxzKZYveHXtpG6AsrUJBcWxHBFS2HsEoGTxrMLvKXtf"
	cliDeclared := p.ok("replica", "add", backup, "--name", "home backup", "--json")
	var apiDeclared ops.NodeSet
	pa.post("/api/v1/devices", ops.DeclareRequest{PeerID: backup2, Replica: true}, http.StatusOK, &apiDeclared)
	sameShape(t, "replica add", cliDeclared, apiDeclared, "peer_id", "block")
	sameJSON(t, "device ls", p.ok("device", "ls", "--json"), pa.get("/api/v1/devices"))
	sameJSON(t, "replica ls", p.ok("replica", "ls", "--json"), pa.get("/api/v1/devices"))
	cliWithdrawn := p.ok("replica", "rm", backup, "--json")
	var apiWithdrawn ops.NodeSet
	pa.post("/api/v1/devices/remove", ops.WithdrawRequest{PeerID: backup2, Replica: true}, http.StatusOK, &apiWithdrawn)
	sameShape(t, "replica rm", cliWithdrawn, apiWithdrawn, "peer_id", "block")
	sameJSON(t, "devices after rm", p.ok("device", "ls", "--json"), pa.get("/api/v1/devices"))

	// The log: whole, a page, the page before it, a contact's chain.
	sameJSON(t, "log", p.ok("log", "--json"), pa.get("/api/v1/log"))
	var page []keyshare.LogEntry
	pageOut := p.ok("log", "--limit", "3", "--json")
	strictJSON(t, pageOut, &page)
	if len(page) < 3 || page[0].Seq == 0 {
		t.Fatalf("log --limit 3: %d entries from seq %d", len(page), page[0].Seq)
	}
	sameJSON(t, "log --limit", pageOut, pa.get("/api/v1/log?limit=3"))
	before := strconv.FormatUint(page[0].Seq, 10)
	sameJSON(t, "log --before --limit", p.ok("log", "--before", before, "--limit", "3", "--json"), pa.get("/api/v1/log?limit=3&before="+before))
	sameJSON(t, "log of a contact", p.ok("log", "Dr Grey", "--json"), pa.get("/api/v1/log?account="+docID))
	// The grant and the revocation name what they did.
	var entries []keyshare.LogEntry
	strictJSON(t, p.ok("log", "--json"), &entries)
	var grants, revokes int
	for _, e := range entries {
		if e.Type == "grant" && string(e.Party) == docID && e.Expires != nil {
			grants++
		}
		if e.Type == "revoke" && string(e.Party) == docID && len(e.Records) == 1 {
			revokes++
		}
	}
	if grants < 2 || revokes != 2 {
		t.Fatalf("log: %d grants with an expiry to Dr Grey (want 2 and those of the approvals), %d revocations", grants, revokes)
	}

	// Peers: the two daemons are connected.
	sameSettled(t, "peers", func() string { return p.ok("peers", "--json") }, func() any { return pa.get("/api/v1/peers") })

	// The default account: a second one made through the API, made the
	// default through the command line, and back through the API.
	var kim ops.Account
	pa.post("/api/v1/accounts", ops.NewAccount{Name: "Kim", Role: "patient"}, http.StatusCreated, &kim)
	cliDefault := p.ok("accounts", "--set-default", "Kim", "--json")
	sameJSON(t, "accounts after --set-default", cliDefault, pa.get("/api/v1/accounts"))
	var apiDefault ops.AccountList
	pa.post("/api/v1/accounts/default", ops.DefaultRequest{Account: "Pat"}, http.StatusOK, &apiDefault)
	sameJSON(t, "accounts after the API's default", p.ok("accounts", "--json"), apiDefault)
	if apiDefault.Accounts[0].ID != kim.ID && apiDefault.Accounts[1].ID != kim.ID {
		t.Fatalf("Kim missing: %+v", apiDefault)
	}
	for _, a := range apiDefault.Accounts {
		if a.Default != (string(a.ID) == patID) {
			t.Fatalf("after making Pat the default: %+v", apiDefault)
		}
	}
	sameJSON(t, "id after the default changed", p.ok("id", "--json"), pa.get("/api/v1/id"))
}
