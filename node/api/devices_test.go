package api

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/blockmrs/blockmrs/protocol"
)

// The device endpoints declare, list and withdraw an account's devices
// and replicas, refuse what is malformed and a locked account, and the
// log endpoint shows the device entries.
func TestDevicesAndLog(t *testing.T) {
	ctx := t.Context()
	repo := openRepo(t)
	pat, err := repo.CreateAccount(ctx, "Pat", protocol.RolePatient, nil)
	if err != nil {
		t.Fatal(err)
	}
	sam, err := repo.CreateAccount(ctx, "Sam", protocol.RolePatient, []byte("secret"))
	if err != nil {
		t.Fatal(err)
	}
	e := serve(t, repo, nil)
	post := func(path, body string) *http.Response { return e.postJSON(t, path, body) }
	asPat := "?account=" + url.QueryEscape(string(pat.ID))
	const laptop = "12D3KooWHHzSeKaY8xuZVzkLbKFfvNgPPeKhFBGrMbNzbm5akpqu"
	backup := newHost(t).ID().String()

	var list NodeList
	decode(t, e.do(t, req{path: "/api/v1/devices" + asPat}), http.StatusOK, &list)
	if list.Account != pat.ID || list.Devices == nil || len(list.Devices) != 0 || list.Replicas == nil || len(list.Replicas) != 0 {
		t.Fatalf("devices before any: %+v", list)
	}

	// Declare a device and a replica; the list shows each in its place.
	var set NodeSet
	decode(t, post("/api/v1/devices"+asPat, `{"peer_id":"`+laptop+`","name":"laptop"}`), http.StatusOK, &set)
	if set.Account != pat.ID || set.PeerID != laptop || set.Replica || set.Removed || set.Block == "" {
		t.Fatalf("declare: %+v", set)
	}
	decode(t, post("/api/v1/devices"+asPat, `{"peer_id":"`+backup+`","name":"home backup","replica":true}`), http.StatusOK, &set)
	if set.PeerID != backup || !set.Replica || set.Removed {
		t.Fatalf("declare replica: %+v", set)
	}
	decode(t, e.do(t, req{path: "/api/v1/devices" + asPat}), http.StatusOK, &list)
	if len(list.Devices) != 1 || list.Devices[0].PeerID != laptop || list.Devices[0].Name != "laptop" ||
		len(list.Replicas) != 1 || list.Replicas[0].PeerID != backup || !list.Replicas[0].Replica {
		t.Fatalf("devices: %+v", list)
	}

	// Refusals.
	wantError(t, post("/api/v1/devices"+asPat, `{"peer_id":"not-a-peer"}`), http.StatusBadRequest, "peer_id")
	wantError(t, post("/api/v1/devices"+asPat, `{"peer_id":"`+laptop+`","extra":1}`), http.StatusBadRequest, "unknown field")
	wantError(t, post("/api/v1/devices/remove"+asPat, `{"peer_id":"`+laptop+`","replica":true}`), http.StatusNotFound, "not declared")
	asSam := "?account=" + url.QueryEscape(string(sam.ID))
	wantError(t, post("/api/v1/devices"+asSam, `{"peer_id":"`+laptop+`"}`), http.StatusLocked, "locked")
	wantError(t, post("/api/v1/devices/remove"+asSam, `{"peer_id":"`+laptop+`"}`), http.StatusLocked, "locked")

	// Withdraw both; the list is empty again.
	decode(t, post("/api/v1/devices/remove"+asPat, `{"peer_id":"`+laptop+`"}`), http.StatusOK, &set)
	if set.PeerID != laptop || !set.Removed || set.Replica {
		t.Fatalf("withdraw: %+v", set)
	}
	decode(t, post("/api/v1/devices/remove"+asPat, `{"peer_id":"`+backup+`","replica":true}`), http.StatusOK, &set)
	if !set.Removed || !set.Replica {
		t.Fatalf("withdraw replica: %+v", set)
	}
	decode(t, e.do(t, req{path: "/api/v1/devices" + asPat}), http.StatusOK, &list)
	if len(list.Devices) != 0 || len(list.Replicas) != 0 {
		t.Fatalf("devices after withdrawing: %+v", list)
	}

	// The log lists the four device entries after the profile, as the
	// repo's log has them.
	var entries []LogEntry
	decode(t, e.do(t, req{path: "/api/v1/log" + asPat}), http.StatusOK, &entries)
	var summaries []string
	for _, en := range entries {
		if en.Account != pat.ID {
			t.Fatalf("entry of %s in %s's log", en.Account, pat.ID)
		}
		if en.Type == "device" {
			summaries = append(summaries, en.Summary)
		}
	}
	want := []string{
		`declare device ` + laptop + ` ("laptop")`,
		`declare replica ` + backup + ` ("home backup")`,
		`withdraw device ` + laptop,
		`withdraw replica ` + backup,
	}
	if strings.Join(summaries, "\n") != strings.Join(want, "\n") || len(entries) == 0 || entries[0].Type != "profile" {
		t.Fatalf("log: %+v", entries)
	}
	direct, err := repo.Log(ctx, pat.ID)
	if err != nil || len(direct) != len(entries) {
		t.Fatalf("repo log %d entries (%v), API %d", len(direct), err, len(entries))
	}
	wantError(t, e.do(t, req{path: "/api/v1/log?account=nobody"}), http.StatusNotFound, "account")
}
