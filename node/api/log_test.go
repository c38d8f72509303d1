package api

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/protocol"
)

// The log endpoint pages whole blocks, newest first, and each entry
// carries the facts it names; bad paging parameters are 400.
func TestLogPagesAndFacts(t *testing.T) {
	ctx := t.Context()
	repo := openRepo(t)
	pat, err := repo.CreateAccount(ctx, "Pat", protocol.RolePatient, nil)
	if err != nil {
		t.Fatal(err)
	}
	const laptop = "12D3KooWHHzSeKaY8xuZVzkLbKFfvNgPPeKhFBGrMbNzbm5akpqu"
	for i := range 5 {
		if _, err := repo.SetDevice(ctx, pat, laptop, "laptop "+strconv.Itoa(i), false); err != nil {
			t.Fatal(err)
		}
	}
	e := serve(t, repo, nil)
	as := "?account=" + url.QueryEscape(string(pat.ID))
	var all []LogEntry
	decode(t, e.do(t, req{path: "/api/v1/log" + as}), http.StatusOK, &all)
	if len(all) != 6 || all[0].Seq != 0 || all[0].Type != "profile" || all[0].Name != "Pat" || all[5].Seq != 5 {
		t.Fatalf("whole log: %+v", all)
	}
	last := all[5]
	if last.Type != "device" || last.PeerID != laptop || last.Name != "laptop 4" || last.Replica || last.Removed || last.Records != nil {
		t.Fatalf("device entry's facts: %+v", last)
	}

	// Pages of two blocks, newest first, until block 0.
	var got []LogEntry
	before := ""
	for range 4 {
		var p []LogEntry
		decode(t, e.do(t, req{path: "/api/v1/log" + as + "&limit=2" + before}), http.StatusOK, &p)
		if len(p) == 0 || len(p) > 2 {
			t.Fatalf("page after %q: %d entries", before, len(p))
		}
		got = append(p, got...)
		if p[0].Seq == 0 {
			break
		}
		before = "&before=" + strconv.FormatUint(p[0].Seq, 10)
	}
	if len(got) != len(all) {
		t.Fatalf("pages hold %d entries, the log %d", len(got), len(all))
	}
	for i := range all {
		if got[i].Block != all[i].Block || got[i].Index != all[i].Index {
			t.Fatalf("entry %d: page %+v, log %+v", i, got[i], all[i])
		}
	}
	// before past the head is the whole chain; before 1 is block 0 alone.
	var p []LogEntry
	decode(t, e.do(t, req{path: "/api/v1/log" + as + "&before=99"}), http.StatusOK, &p)
	if len(p) != len(all) {
		t.Fatalf("before past the head: %d entries", len(p))
	}
	decode(t, e.do(t, req{path: "/api/v1/log" + as + "&before=1"}), http.StatusOK, &p)
	if len(p) != 1 || p[0].Seq != 0 {
		t.Fatalf("before 1: %+v", p)
	}

	for _, bad := range []string{"&limit=-1", "&limit=1001", "&limit=x", "&before=-1", "&before=x"} {
		wantError(t, e.do(t, req{path: "/api/v1/log" + as + bad}), http.StatusBadRequest, "")
	}
}

// A grant's entry names its records, its grantee and its expiry.
func TestLogGrantFacts(t *testing.T) {
	ctx := t.Context()
	repo := openRepo(t)
	pat, err := repo.CreateAccount(ctx, "Pat", protocol.RolePatient, nil)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := repo.CreateAccount(ctx, "Dr Grey", protocol.RoleClinician, nil)
	if err != nil {
		t.Fatal(err)
	}
	added, err := repo.AddRecord(ctx, pat, keyshare.NewRecord{Title: "Blood test", Kind: protocol.KindNote, MediaType: "text/plain", Body: strings.NewReader("Hb 13.2")})
	if err != nil {
		t.Fatal(err)
	}
	rec := added.String()
	until := time.Now().Add(48 * time.Hour).Truncate(time.Millisecond).UTC()
	if _, err := repo.Grant(ctx, pat, []cid.Cid{added}, doc.ID, until); err != nil {
		t.Fatal(err)
	}
	e := serve(t, repo, nil)
	var all []LogEntry
	decode(t, e.do(t, req{path: "/api/v1/log?account=Pat"}), http.StatusOK, &all)
	g := all[len(all)-1]
	if g.Type != "grant" || g.Party != doc.ID || len(g.Records) != 1 || g.Records[0] != rec || g.Expires == nil || !g.Expires.Equal(until) {
		t.Fatalf("grant entry: %+v", g)
	}
	r := all[len(all)-2]
	if r.Type != "record" || r.Party != pat.ID || len(r.Records) != 1 || r.Records[0] != rec {
		t.Fatalf("record entry: %+v", r)
	}
}
