package api

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/protocol"
)

// serve starts a server on repo for a test, with its sessions; kick
// stands for the node's requests delivery.
func serve(t *testing.T, repo *keyshare.Repo, kick func()) *env {
	t.Helper()
	sessions := keyshare.NewSessions(repo)
	t.Cleanup(sessions.Close)
	return startServer(t, Options{Repo: repo, Sessions: sessions, RequestsKick: kick})
}

func openRepo(t *testing.T) *keyshare.Repo {
	t.Helper()
	repo, err := keyshare.Open(t.Context(), t.TempDir(), keyshare.Options{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { repo.Close() })
	return repo
}

// exchange imports account id's chain from one repo into another.
func exchange(t *testing.T, from, to *keyshare.Repo, id protocol.AccountID) {
	t.Helper()
	var car bytes.Buffer
	if _, err := from.ExportCAR(t.Context(), &car, id); err != nil {
		t.Fatal(err)
	}
	if _, err := to.ImportCAR(t.Context(), &car); err != nil {
		t.Fatal(err)
	}
}

func (e *env) post(t *testing.T, path, body string) *http.Response {
	t.Helper()
	return e.do(t, req{method: http.MethodPost, path: path, body: strings.NewReader(body), length: int64(len(body)),
		header: map[string]string{"Content-Type": "application/json"}})
}

// events opens e's event stream, reads its opening comment and returns
// its lines; the stream ends at the latest when ctx does.
func (e *env) events(t *testing.T, ctx context.Context) *bufio.Scanner {
	t.Helper()
	hr, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.srv.URL()+"/api/v1/events", nil)
	hr.Header.Set("Authorization", "Bearer "+e.token)
	stream, err := http.DefaultClient.Do(hr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stream.Body.Close() })
	if stream.StatusCode != http.StatusOK || stream.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("events: %d %q", stream.StatusCode, stream.Header.Get("Content-Type"))
	}
	lines := bufio.NewScanner(stream.Body)
	if !lines.Scan() || !strings.HasPrefix(lines.Text(), ":") {
		t.Fatalf("events: first line %q", lines.Text())
	}
	return lines
}

// nextEvent reads the next event (skipping comments) from an event
// stream: its name and data.
func nextEvent(t *testing.T, lines *bufio.Scanner) (name, data string) {
	t.Helper()
	for lines.Scan() {
		line := lines.Text()
		if v, ok := strings.CutPrefix(line, "event: "); ok {
			name = v
		} else if v, ok := strings.CutPrefix(line, "data: "); ok {
			data = v
		} else if line == "" && name != "" {
			return name, data
		}
	}
	t.Fatalf("event stream ended: %v", lines.Err())
	return "", ""
}

func findReader(rs []keyshare.Reader, id protocol.AccountID) (keyshare.Reader, bool) {
	for _, r := range rs {
		if r.Account == id {
			return r, true
		}
	}
	return keyshare.Reader{}, false
}

// Grant, readers and revoke through the API; the event stream tells of
// the grant; a non-subject and a locked account are refused.
func TestGrantsAndEvents(t *testing.T) {
	ctx := t.Context()
	pRepo, cRepo := openRepo(t), openRepo(t)
	pat, err := pRepo.CreateAccount(ctx, "Pat", protocol.RolePatient, nil)
	if err != nil {
		t.Fatal(err)
	}
	sam, err := pRepo.CreateAccount(ctx, "Sam", protocol.RolePatient, []byte("right"))
	if err != nil {
		t.Fatal(err)
	}
	doc, err := cRepo.CreateAccount(ctx, "Dr Jones", protocol.RoleClinician, nil)
	if err != nil {
		t.Fatal(err)
	}
	exchange(t, cRepo, pRepo, doc.ID)
	own, err := pRepo.AddRecord(ctx, pat, keyshare.NewRecord{Title: "x-ray", Kind: protocol.KindNote, MediaType: "text/plain", Body: strings.NewReader("hello")})
	if err != nil {
		t.Fatal(err)
	}
	samsRecord, err := pRepo.AddRecord(ctx, pat, keyshare.NewRecord{Title: "about Sam", Kind: protocol.KindNote, MediaType: "text/plain", Subject: sam.ID, Body: strings.NewReader("hi")})
	if err != nil {
		t.Fatal(err)
	}
	e := serve(t, pRepo, nil)

	// The event stream, opened before the grant.
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	lines := e.events(t, sctx)

	expires := time.Now().Add(30 * 24 * time.Hour).UTC().Truncate(time.Second)
	var g Granted
	decode(t, e.post(t, "/api/v1/grants", `{"records":["`+own.String()+`"],"to":"Dr Jones","expires":"`+expires.Format(time.RFC3339)+`"}`), http.StatusOK, &g)
	if g.Block == "" || g.To != doc.ID || g.ToName != "Dr Jones" || !g.Expires.Equal(expires) {
		t.Fatalf("grant: %+v", g)
	}

	// A chain event for the grant, naming Pat and the record.
	name, data := nextEvent(t, lines)
	if name != "chain" || !strings.Contains(data, string(pat.ID)) || !strings.Contains(data, own.String()) {
		t.Fatalf("event %q %q", name, data)
	}

	var rd Readers
	decode(t, e.do(t, req{path: "/api/v1/records/" + own.String() + "/readers"}), http.StatusOK, &rd)
	if r, ok := findReader(rd.Readers, doc.ID); !ok || r.Role != "grantee" || !r.Expires.Equal(expires) || rd.Subject != pat.ID {
		t.Fatalf("readers after grant: %+v", rd)
	}

	var rv Revoked
	decode(t, e.post(t, "/api/v1/revocations", `{"records":["`+own.String()+`"],"from":"`+string(doc.ID)+`"}`), http.StatusOK, &rv)
	if rv.Block == "" || rv.From != doc.ID {
		t.Fatalf("revoke: %+v", rv)
	}
	decode(t, e.do(t, req{path: "/api/v1/records/" + own.String() + "/readers"}), http.StatusOK, &rd)
	if _, ok := findReader(rd.Readers, doc.ID); ok {
		t.Fatalf("still a reader after revoke: %+v", rd)
	}
	if _, ok := findReader(rd.Revoked, doc.ID); !ok {
		t.Fatalf("not revoked: %+v", rd)
	}

	// Refusals, each a one-line error.
	wantError(t, e.post(t, "/api/v1/grants", `{"records":["`+samsRecord.String()+`"],"to":"Dr Jones"}`), http.StatusForbidden, "only the record's subject")
	wantError(t, e.post(t, "/api/v1/grants?account=Sam", `{"records":["`+samsRecord.String()+`"],"to":"Dr Jones"}`), http.StatusLocked, "locked")
	wantError(t, e.post(t, "/api/v1/grants", `{"records":["nonsense"],"to":"Dr Jones"}`), http.StatusBadRequest, "not a CID")
	wantError(t, e.post(t, "/api/v1/grants", `{"records":["`+own.String()+`"],"to":"nobody"}`), http.StatusNotFound, "to")
	wantError(t, e.post(t, "/api/v1/grants", `{"records":["`+own.String()+`"],"to":"Dr Jones","expires":"2001-01-01T00:00:00Z"}`), http.StatusBadRequest, "not in the future")
	wantError(t, e.post(t, "/api/v1/grants", `{"records":[],"to":"Dr Jones"}`), http.StatusBadRequest, "none given")
	wantError(t, e.do(t, req{path: "/api/v1/records/nonsense/readers"}), http.StatusBadRequest, "not a CID")
	wantError(t, e.post(t, "/api/v1/revocations", `{"records":["`+own.String()+`"],"from":"Dr Jones"}`), http.StatusBadRequest, "no grant to revoke")
	wantError(t, e.post(t, "/api/v1/revocations", `{"records":["`+own.String()+`"],"from":"Pat"}`), http.StatusBadRequest, "not a grantee")

	// The stream ends when the server shuts down (well before its deadline).
	shut, done := context.WithTimeout(ctx, 5*time.Second)
	defer done()
	if err := e.srv.Shutdown(shut); err != nil {
		t.Fatalf("shutdown with an open event stream: %v", err)
	}
	for lines.Scan() {
	}
	if sctx.Err() != nil {
		t.Fatal("the event stream outlived the server")
	}
}

// A client that reads too slowly loses events for one resync.
func TestEventsResync(t *testing.T) {
	var h hub
	sub := h.subscribe()
	for i := range EventBuffer + 5 {
		h.publish("chain", i)
	}
	if len(sub.ch) != EventBuffer || len(sub.lost) != 1 {
		t.Fatalf("queued %d, lost %d", len(sub.ch), len(sub.lost))
	}
	h.unsubscribe(sub)
	h.publish("chain", 0)
	if len(sub.ch) != EventBuffer {
		t.Fatal("an unsubscribed stream still gets events")
	}
}

// A request sent through one server lands in its outbox; delivered to the
// other repo, it is approved (or denied) there through the API.
func TestRequests(t *testing.T) {
	ctx := t.Context()
	pRepo, cRepo := openRepo(t), openRepo(t)
	pat, err := pRepo.CreateAccount(ctx, "Pat", protocol.RolePatient, nil)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := cRepo.CreateAccount(ctx, "Dr Jones", protocol.RoleClinician, nil)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := pRepo.AddRecord(ctx, pat, keyshare.NewRecord{Title: "labs", Kind: protocol.KindNote, MediaType: "text/plain", Body: strings.NewReader("hello")})
	if err != nil {
		t.Fatal(err)
	}
	rec2, err := pRepo.AddRecord(ctx, pat, keyshare.NewRecord{Title: "scan", Kind: protocol.KindNote, MediaType: "text/plain", Body: strings.NewReader("x")})
	if err != nil {
		t.Fatal(err)
	}
	exchange(t, pRepo, cRepo, pat.ID)
	kicks := 0
	pe, ce := serve(t, pRepo, nil), serve(t, cRepo, func() { kicks++ })

	var q1, q2, q3 keyshare.RequestInfo
	decode(t, ce.post(t, "/api/v1/requests", `{"to":"Pat","records":["`+rec.String()+`"],"reason":"follow-up","duration_s":86400}`), http.StatusCreated, &q1)
	decode(t, ce.post(t, "/api/v1/requests", `{"to":"Pat","reason":"all of it"}`), http.StatusCreated, &q2)
	decode(t, ce.post(t, "/api/v1/requests", `{"to":"Pat","reason":"everything, again"}`), http.StatusCreated, &q3)
	if q1.Box != keyshare.Outbox || q1.To != pat.ID || q1.From != doc.ID || q1.Duration != 86400 || len(q1.Records) != 1 {
		t.Fatalf("sent: %+v", q1)
	}
	if kicks != 3 {
		t.Fatalf("delivery kicked %d times for 3 requests", kicks)
	}
	wantError(t, ce.post(t, "/api/v1/requests", `{"to":"Pat","reason":"x","duration_s":-1}`), http.StatusBadRequest, "duration_s")
	wantError(t, ce.post(t, "/api/v1/requests", `{"to":"nobody","reason":"x"}`), http.StatusNotFound, "to")
	var out RequestList
	decode(t, ce.do(t, req{path: "/api/v1/requests"}), http.StatusOK, &out)
	if len(out.Outbox) != 3 || len(out.Inbox) != 0 {
		t.Fatalf("clinician's boxes: %+v", out)
	}

	// Deliver by hand, as the node's requests service would; the
	// patient's event stream tells of each arrival.
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	lines := pe.events(t, sctx)
	pending, err := cRepo.Pending(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range pending {
		if _, err := pRepo.ReceiveRequest(ctx, o.Message, o.Profile, "test"); err != nil {
			t.Fatal(err)
		}
		var ev RequestEvent
		name, data := nextEvent(t, lines)
		if name != "request" || json.Unmarshal([]byte(data), &ev) != nil || ev.ID != o.ID || ev.Box != keyshare.Inbox || ev.State != keyshare.StateNew {
			t.Fatalf("event %q %q for %s", name, data, o.ID)
		}
	}
	var in RequestList
	decode(t, pe.do(t, req{path: "/api/v1/requests?account=Pat"}), http.StatusOK, &in)
	if len(in.Inbox) != 3 || in.Inbox[0].State != keyshare.StateNew {
		t.Fatalf("patient's inbox: %+v", in)
	}

	expires := time.Now().Add(24 * time.Hour).UTC().Truncate(time.Second)
	// A scope outside what the request asks for is refused.
	wantError(t, pe.post(t, "/api/v1/requests/"+q1.ID+"/approve", `{"records":["`+rec2.String()+`"]}`), http.StatusBadRequest, "not among the records")
	var a keyshare.RequestInfo
	decode(t, pe.post(t, "/api/v1/requests/"+q1.ID+"/approve", `{"records":["`+rec.String()+`"],"expires":"`+expires.Format(time.RFC3339)+`"}`), http.StatusOK, &a)
	if a.State != keyshare.StateApproved || a.Grant == "" || !a.Expires.Equal(expires) || a.AnsweredBy != pat.ID || a.ByGuardian {
		t.Fatalf("approved: %+v", a)
	}
	var rd Readers
	decode(t, pe.do(t, req{path: "/api/v1/records/" + rec.String() + "/readers"}), http.StatusOK, &rd)
	if r, ok := findReader(rd.Readers, doc.ID); !ok || !r.Expires.Equal(expires) {
		t.Fatalf("readers after approve: %+v", rd)
	}
	if _, ok := findReader(rd.Readers, doc.ID); !ok {
		t.Fatalf("not a reader of the approved record: %+v", rd)
	}
	decode(t, pe.do(t, req{path: "/api/v1/records/" + rec2.String() + "/readers"}), http.StatusOK, &rd)
	if _, ok := findReader(rd.Readers, doc.ID); ok {
		t.Fatalf("a reader of a record not asked for: %+v", rd)
	}
	var d keyshare.RequestInfo
	decode(t, pe.post(t, "/api/v1/requests/"+q2.ID[len(q2.ID)-8:]+"/deny", `{"reason":"not now"}`), http.StatusOK, &d)
	if d.State != keyshare.StateDenied || d.AnswerReason != "not now" {
		t.Fatalf("denied: %+v", d)
	}
	wantError(t, pe.post(t, "/api/v1/requests/"+q2.ID+"/approve", `{}`), http.StatusConflict, "denied")

	// A request for every record, approved for one of them only.
	decode(t, pe.post(t, "/api/v1/requests/"+q3.ID+"/approve", `{"records":["`+rec2.String()+`"]}`), http.StatusOK, &a)
	if a.State != keyshare.StateApproved {
		t.Fatalf("approved: %+v", a)
	}
	decode(t, pe.do(t, req{path: "/api/v1/records/" + rec2.String() + "/readers"}), http.StatusOK, &rd)
	if _, ok := findReader(rd.Readers, doc.ID); !ok {
		t.Fatalf("not a reader of the one record approved: %+v", rd)
	}
	wantError(t, pe.post(t, "/api/v1/requests/nosuchrequest/deny", `{}`), http.StatusNotFound, "request")
}
