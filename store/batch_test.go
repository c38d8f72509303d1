package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"testing"
)

// TestAddBatchCommit adds small and large records on several goroutines,
// commits, and reads every one back; each root is pinned, a small
// record's CID is the one AddRaw (the importer over a reader) gives for
// its ciphertext, and no write marker is left.
func TestAddBatchCommit(t *testing.T) {
	s := openStore(t)
	ctx := context.Background()
	b, err := s.NewAddBatch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Abort(ctx)
	sizes := []int{0, 1, 3500, smallRecord, smallRecord + 1, 3 * mib}
	added := make([]Added, len(sizes))
	var wg sync.WaitGroup
	for i, n := range sizes {
		wg.Go(func() {
			a, err := b.Add(ctx, bytes.NewReader(randBytes(uint64(i), n)))
			if err != nil {
				t.Error(err)
			}
			added[i] = a
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	if got := len(b.Roots()); got != len(sizes) {
		t.Fatalf("Roots: %d, want %d", got, len(sizes))
	}
	if err := b.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Add(ctx, bytes.NewReader(nil)); !errors.Is(err, ErrBatchDone) {
		t.Fatalf("Add after Commit: %v, want ErrBatchDone", err)
	}
	pins, err := s.Pins(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i, a := range added {
		if !slices.ContainsFunc(pins, a.CID.Equals) {
			t.Errorf("record %d (%d bytes): root %s not pinned", i, sizes[i], a.CID)
		}
		rc, err := s.Decrypt(ctx, a.CID, a.Key)
		if err != nil {
			t.Fatal(err)
		}
		mustEqual(t, fmt.Sprintf("record %d", i), readAll(t, rc), randBytes(uint64(i), sizes[i]))
		ct := catBytes(t, s, a.CID)
		if int64(len(ct)) != a.Size {
			t.Errorf("record %d: Size %d, ciphertext %d bytes", i, a.Size, len(ct))
		}
		raw, _, err := s.AddRaw(ctx, bytes.NewReader(ct))
		if err != nil {
			t.Fatal(err)
		}
		if !raw.Equals(a.CID) {
			t.Errorf("record %d: batch CID %s, AddRaw of its ciphertext %s", i, a.CID, raw)
		}
	}
	if n, err := s.Interrupted(ctx); err != nil || n != 0 {
		t.Fatalf("Interrupted after Commit: %d, %v", n, err)
	}
}

// TestAddBatchAbort leaves the store as it was: no block, pin or marker
// of the batch, whether it is aborted after adds or after a failed add.
func TestAddBatchAbort(t *testing.T) {
	s := openStore(t)
	ctx := context.Background()
	if _, err := s.Add(ctx, bytes.NewReader(randBytes(99, 5000))); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, s)

	b, err := s.NewAddBatch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		if _, err := b.Add(ctx, bytes.NewReader(randBytes(uint64(i), 4000+i))); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := b.Add(ctx, io.MultiReader(bytes.NewReader(randBytes(7, 2*mib)), errReader{})); err == nil {
		t.Fatal("an add whose source fails succeeded")
	}
	b.Abort(ctx)
	b.Abort(ctx) // twice is harmless
	sameSnapshot(t, before, snapshot(t, s))
	if err := b.Commit(ctx); !errors.Is(err, ErrBatchDone) {
		t.Fatalf("Commit after Abort: %v, want ErrBatchDone", err)
	}

	// Committing with a cancelled context fails and deletes too.
	b, err = s.NewAddBatch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Add(ctx, bytes.NewReader(randBytes(1, 100))); err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := b.Commit(cctx); err == nil {
		t.Fatal("Commit with a cancelled context succeeded")
	}
	sameSnapshot(t, before, snapshot(t, s))
}

// TestAddBatchInterrupted: a batch never committed nor aborted (the
// process died) is counted by Interrupted, and GC removes its blocks.
func TestAddBatchInterrupted(t *testing.T) {
	dir := t.TempDir()
	s := openStoreAt(t, dir)
	ctx := context.Background()
	before := snapshot(t, s)
	b, err := s.NewAddBatch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if _, err := b.Add(ctx, bytes.NewReader(randBytes(uint64(i), 3000))); err != nil {
			t.Fatal(err)
		}
	}
	b.leave() // as if the process ended here
	if n, err := s.Interrupted(ctx); err != nil || n != 1 {
		t.Fatalf("Interrupted: %d, %v; want 1", n, err)
	}
	if _, err := s.GC(ctx); err != nil {
		t.Fatal(err)
	}
	sameSnapshot(t, before, snapshot(t, s))
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("source failed") }

// TestAddBatchDiscard: a discarded record is neither pinned nor kept,
// the others are; discarding every record leaves the store as it was.
func TestAddBatchDiscard(t *testing.T) {
	s := openStore(t)
	ctx := context.Background()
	before := snapshot(t, s)
	b, err := s.NewAddBatch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	kept, err := b.Add(ctx, bytes.NewReader(randBytes(1, 2000)))
	if err != nil {
		t.Fatal(err)
	}
	small, err := b.Add(ctx, bytes.NewReader(randBytes(2, 2000)))
	if err != nil {
		t.Fatal(err)
	}
	large, err := b.Add(ctx, bytes.NewReader(randBytes(3, 2*mib+5)))
	if err != nil {
		t.Fatal(err)
	}
	b.Discard(small.CID)
	b.Discard(large.CID)
	if err := b.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	for _, c := range []Added{small, large} {
		if has, _ := s.Blockstore().Has(ctx, c.CID); has {
			t.Errorf("discarded record %s is still stored", c.CID)
		}
	}
	if pinned, _ := s.IsPinned(ctx, kept.CID); !pinned {
		t.Fatal("kept record not pinned")
	}
	// Only the kept record's one block was added.
	after := snapshot(t, s)
	if len(after) != len(before)+2 { // its block and its pin
		t.Fatalf("store holds %d entries more, want 2: %v", len(after)-len(before), after)
	}

	b, err = s.NewAddBatch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	a, err := b.Add(ctx, bytes.NewReader(randBytes(4, 100)))
	if err != nil {
		t.Fatal(err)
	}
	b.Discard(a.CID)
	if err := b.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	sameSnapshot(t, after, snapshot(t, s))
}
