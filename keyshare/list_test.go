package keyshare

import (
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/blockmrs/blockmrs/protocol"
)

// A listed record's JSON is its access state's JSON (Access.MarshalJSON)
// and its listing's fields, in one object.
func TestListedJSON(t *testing.T) {
	ctx := context.Background()
	p := newParty(t, "Pat", protocol.RolePatient)
	if _, err := p.repo.AddRecord(ctx, p.keys, NewRecord{Title: "note", Kind: protocol.KindNote, MediaType: "text/plain", Body: strings.NewReader("x")}); err != nil {
		t.Fatal(err)
	}
	l, err := p.repo.List(ctx, p.keys, false)
	if err != nil || len(l) != 1 {
		t.Fatal(err)
	}
	l[0].Error = "an error"
	l[0].FileName = "a.txt"
	want := map[string]any{}
	for _, v := range []any{l[0].Access, l[0].Listing} {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, &want); err != nil {
			t.Fatal(err)
		}
	}
	b, err := json.Marshal(l[0])
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) || got["cid"] != l[0].Record.String() || got["error"] != "an error" {
		t.Fatalf("listed JSON %s, want %v", b, want)
	}
	b, err = json.Marshal(Listed{Listing: Listing{Title: "t", Status: "readable"}})
	if err != nil || string(b) != `{"title":"t","readable":false,"status":"readable"}` {
		t.Fatalf("without access state: %s %v", b, err)
	}
}

// forEach calls every index once, in parallel when there are many.
func TestForEach(t *testing.T) {
	for _, n := range []int{0, 1, 15, 1000} {
		calls := make([]atomic.Int32, n)
		forEach(n, func(i int) { calls[i].Add(1) })
		for i := range calls {
			if c := calls[i].Load(); c != 1 {
				t.Fatalf("n=%d: index %d called %d times", n, i, c)
			}
		}
	}
}
