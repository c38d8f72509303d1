package keyshare

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/blockmrs/blockmrs/protocol"
)

// An add killed after its record was stored and pinned but before the
// record entry was committed leaves a pinned record nobody claims; the
// next Open unpins and collects it, and keeps every claimed record.
func TestUnclaimedRecordOfInterruptedAddIsSwept(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	r, err := Open(ctx, dir, Options{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	k, err := r.CreateAccount(ctx, "Pat", protocol.RolePatient, nil)
	if err != nil {
		t.Fatal(err)
	}
	kept, err := r.AddRecord(ctx, k, NewRecord{Title: "kept", Kind: protocol.KindNote, MediaType: "text/plain", Body: strings.NewReader("kept")})
	if err != nil {
		t.Fatal(err)
	}
	// What AddRecord had done when it was killed: marker, stored, pinned.
	if _, err := r.markAdding(ctx); err != nil {
		t.Fatal(err)
	}
	orphan, err := r.st.Add(ctx, bytes.NewReader(bytes.Repeat([]byte("x"), 3<<20)))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}

	r, err = Open(ctx, dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if pinned, _ := r.st.IsPinned(ctx, orphan.CID); pinned {
		t.Fatal("the unclaimed record is still pinned")
	}
	if has, _ := r.st.Blockstore().Has(ctx, orphan.CID); has {
		t.Fatal("the unclaimed record's blocks are still stored")
	}
	if got := r.TakeRecovered(); got.Removed == 0 {
		t.Fatalf("Open reports nothing removed: %+v", got)
	}
	if _, _, err := readAll(t, &party{repo: r, keys: k}, kept); err != nil {
		t.Fatalf("the claimed record was lost: %v", err)
	}
	if markers, _ := listKeys(ctx, r.ds, addingPrefix); len(markers) != 0 {
		t.Fatalf("markers left: %v", markers)
	}
	// A second open has nothing to do.
	r.Close()
	r, err = Open(ctx, dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if got := r.TakeRecovered(); got.Removed != 0 {
		t.Fatalf("second open removed %+v", got)
	}
}
