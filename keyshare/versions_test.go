package keyshare

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/blockmrs/blockmrs/protocol"
)

// row is a listing row for record name by author about pat, superseding
// old ("" for none), acknowledged by pat when the author is someone else.
func row(name string, author protocol.AccountID, old string) Listed {
	x := newFacts().claim(author, pat, 3)
	if author != pat {
		x.ack(pat, author, 4, 3)
	}
	a := x.eval()[0]
	a.Record = testCID(name)
	if old != "" {
		a.Supersedes = testCID(old).String()
	}
	return Listed{Access: a, Listing: Listing{Title: name, Status: "readable"}}
}

func TestFoldVersionsShowsHistoryNotRows(t *testing.T) {
	// v3 → v2 → v1 by doc, newest first as List gives them, and an
	// unrelated record between.
	rows := []Listed{row("v3", doc, "v2"), row("other", pat, ""), row("v2", doc, "v1"), row("v1", doc, "")}
	out := FoldVersions(rows)
	if len(out) != 2 || out[0].Title != "v3" || out[1].Title != "other" {
		t.Fatalf("rows: %v", titles(out))
	}
	h := out[0].History
	if len(h) != 2 || h[0].Record != testCID("v2").String() || h[1].Record != testCID("v1").String() {
		t.Fatalf("history of v3: %+v", h)
	}
	if h[0].Author != doc || h[0].Title != "v2" || h[0].Created.Equal(time.Time{}) {
		t.Fatalf("history entry lacks what the page shows: %+v", h[0])
	}
}

func TestFoldVersionsKeepsAStrangersVersionApart(t *testing.T) {
	// mal claims a "new version" of doc's record about pat: acknowledged
	// or not, it must not tuck the real record away.
	for _, acked := range []bool{false, true} {
		fake := row("fake", mal, "real")
		if !acked {
			fake = Listed{Access: newFacts().claim(mal, pat, 3).eval()[0], Listing: Listing{Title: "fake"}}
			fake.Record, fake.Supersedes = testCID("fake"), testCID("real").String()
		}
		out := FoldVersions([]Listed{fake, row("real", doc, "")})
		if len(out) != 2 || len(out[0].History) != 0 {
			t.Fatalf("acked=%v: the real record was folded into mal's: %v", acked, titles(out))
		}
	}
	// The subject may replace what someone wrote about her.
	if out := FoldVersions([]Listed{row("mine", pat, "real"), row("real", doc, "")}); len(out) != 1 {
		t.Fatalf("pat's own new version did not fold: %v", titles(out))
	}
}

func TestFoldVersionsSurvivesForks(t *testing.T) {
	// Two versions of v1: the first (newest) takes it, the other stays a
	// row; nothing is lost.
	out := FoldVersions([]Listed{row("a", doc, "v1"), row("b", doc, "v1"), row("v1", doc, "")})
	if len(out) != 2 || len(out[0].History) != 1 || len(out[1].History) != 0 {
		t.Fatalf("fork: %v", titles(out))
	}
	// A cycle (only conceivable with several claims on one CID) keeps
	// every row listed.
	out = FoldVersions([]Listed{row("x", doc, "y"), row("y", doc, "x")})
	n := 0
	for _, l := range out {
		n += 1 + len(l.History)
	}
	if n != 2 {
		t.Fatalf("cycle lost rows: %v", titles(out))
	}
}

func titles(ls []Listed) []string {
	var out []string
	for _, l := range ls {
		out = append(out, l.Title)
	}
	return out
}

// VersionsOf gives a record page what folding the whole listing gives it:
// the row holding the record's versions, opening only those.
func TestVersionsOfMatchesTheFoldedListing(t *testing.T) {
	ctx := context.Background()
	r, err := Open(ctx, t.TempDir(), Options{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	k, err := r.CreateAccount(ctx, "Pat", protocol.RolePatient, nil)
	if err != nil {
		t.Fatal(err)
	}
	add := func(title string, old cid.Cid) cid.Cid {
		t.Helper()
		c, err := r.AddRecord(ctx, k, NewRecord{Title: title, Kind: protocol.KindNote, MediaType: "text/plain", Supersedes: old, Body: strings.NewReader(title)})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	v1 := add("v1", cid.Undef)
	other := add("other", cid.Undef)
	v2 := add("v2", v1)
	v3 := add("v3", v2)
	all, err := r.List(ctx, k, true)
	if err != nil {
		t.Fatal(err)
	}
	folded := FoldVersions(all)
	for _, c := range []cid.Cid{v1, v2, v3, other} {
		got, err := r.VersionsOf(ctx, k, c)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 {
			t.Fatalf("%s: %d rows, want the one holding it: %v", c, len(got), titles(got))
		}
		var want Listed
		for _, row := range folded {
			if row.Record == got[0].Record {
				want = row
			}
		}
		if want.Access == nil || got[0].Title != want.Title || !slices.Equal(got[0].History, want.History) {
			t.Fatalf("%s: got %q %+v, the folded listing has %q %+v", c, got[0].Title, got[0].History, want.Title, want.History)
		}
	}
	if got, _ := r.VersionsOf(ctx, k, v1); got[0].Record != v3 || len(got[0].History) != 2 {
		t.Fatalf("v1's versions: %v %+v", titles(got), got[0].History)
	}
	if got, _ := r.VersionsOf(ctx, k, other); len(got[0].History) != 0 {
		t.Fatalf("an unrelated record has a history: %+v", got[0].History)
	}
}
