package api

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/node/audit"
	"github.com/blockmrs/blockmrs/protocol"
)

// The audit endpoints over a repo with its log: the events about the
// acting account, by record and date, the FHIR Bundle, the check, the
// live "audit" event; malformed queries are 400, a repo without a log
// 501.
func TestAuditEndpoints(t *testing.T) {
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
	l, err := audit.Attach(repo, repo.Dir(), audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	e := startServer(t, Options{Repo: repo})

	// The live stream first, so it sees the entries.
	hr, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.srv.URL()+"/api/v1/events", nil)
	hr.Header.Set("Authorization", "Bearer "+e.token)
	stream, err := http.DefaultClient.Do(hr)
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Body.Close()
	events := bufio.NewReader(stream.Body)
	if _, err := events.ReadString('\n'); err != nil { // ": blockmrs events"
		t.Fatal(err)
	}

	rec := cid.MustParse("bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy")
	other := protocol.AccountID("12D3KooWHHzSeKaY8xuZVzkLbKFfvNgPPeKhFBGrMbNzbm5akpqu")
	if _, err := l.Append(context.Background(), audit.Event{Kind: keyshare.AuditServe, Account: other, Peer: string(other), Subject: k.ID,
		Records: []cid.Cid{rec}, Rule: keyshare.RuleReadGrantee, Reason: "holds a live grant"}); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Append(context.Background(), audit.Event{Kind: keyshare.AuditGrant, Account: other, Subject: other}); err != nil {
		t.Fatal(err)
	}
	for {
		line, err := events.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if line == "event: audit\n" {
			data, _ := events.ReadString('\n')
			if !strings.Contains(data, `"kind":"serve"`) || !strings.Contains(data, rec.String()) {
				t.Fatalf("audit event data %q", data)
			}
			break
		}
	}

	var trail AuditTrail
	decode(t, e.do(t, req{path: "/api/v1/audit"}), http.StatusOK, &trail)
	if trail.Account != k.ID || len(trail.Entries) != 1 || trail.Entries[0].Kind != keyshare.AuditServe || trail.Entries[0].Peer != string(other) {
		t.Fatalf("the account's audit: %+v", trail)
	}
	decode(t, e.do(t, req{path: "/api/v1/audit?all=true"}), http.StatusOK, &trail)
	if len(trail.Entries) != 2 {
		t.Fatalf("all=true: %d entries", len(trail.Entries))
	}
	decode(t, e.do(t, req{path: "/api/v1/audit?record=" + rec.String() + "&since=2020-01-01"}), http.StatusOK, &trail)
	if len(trail.Entries) != 1 {
		t.Fatalf("by record and since: %+v", trail)
	}
	decode(t, e.do(t, req{path: "/api/v1/audit?since=" + time.Now().Add(48*time.Hour).Format("2006-01-02")}), http.StatusOK, &trail)
	if len(trail.Entries) != 0 {
		t.Fatalf("since a later day: %+v", trail)
	}
	wantError(t, e.do(t, req{path: "/api/v1/audit?since=yesterday"}), http.StatusBadRequest, "since")
	wantError(t, e.do(t, req{path: "/api/v1/audit?record=nope"}), http.StatusBadRequest, "CID")
	wantError(t, e.do(t, req{path: "/api/v1/audit?limit=-1"}), http.StatusBadRequest, "limit")
	wantError(t, e.do(t, req{path: "/api/v1/audit?all=maybe"}), http.StatusBadRequest, "all")

	resp := e.do(t, req{path: "/api/v1/audit/fhir"})
	var bundle struct {
		ResourceType string `json:"resourceType"`
		Entry        []struct {
			Resource struct {
				ResourceType string `json:"resourceType"`
			} `json:"resource"`
		} `json:"entry"`
	}
	if resp.Header.Get("Content-Type") != "application/fhir+json" {
		t.Fatalf("FHIR export's type %q", resp.Header.Get("Content-Type"))
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("FHIR export: status %d", resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(&bundle); err != nil {
		t.Fatal(err)
	}
	if bundle.ResourceType != "Bundle" || len(bundle.Entry) != 1 || bundle.Entry[0].Resource.ResourceType != "AuditEvent" {
		t.Fatalf("FHIR export: %+v", bundle)
	}

	var check AuditCheck
	decode(t, e.do(t, req{path: "/api/v1/audit/verify"}), http.StatusOK, &check)
	if check.Entries != 2 || len(check.Problems) != 0 {
		t.Fatalf("the check: %+v", check)
	}
	// A repo opened without its log.
	bare, err := keyshare.Open(ctx, t.TempDir(), keyshare.Options{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bare.Close() })
	if _, err := bare.CreateAccount(ctx, "Kim", protocol.RolePatient, nil); err != nil {
		t.Fatal(err)
	}
	b := startServer(t, Options{Repo: bare})
	wantError(t, b.do(t, req{path: "/api/v1/audit"}), http.StatusNotImplemented, "audit log")
}
