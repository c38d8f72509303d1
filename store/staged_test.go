package store

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	ds "github.com/ipfs/go-datastore"
)

// stagedLeft counts the keys left in the staging area of every staged
// batch.
func stagedLeft(t *testing.T, s *Store) int {
	t.Helper()
	start := []byte(stagedPrefix)
	end := append([]byte(nil), start...)
	end[len(end)-1]++
	it, err := s.meta.DB.NewIter(&pebble.IterOptions{LowerBound: start, UpperBound: end})
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	n := 0
	for ok := it.First(); ok; ok = it.Next() {
		n++
	}
	return n
}

func mustGet(t *testing.T, r interface {
	Get(context.Context, ds.Key) ([]byte, error)
}, k string) (string, bool) {
	t.Helper()
	v, err := r.Get(context.Background(), ds.NewKey(k))
	if errors.Is(err, ds.ErrNotFound) {
		return "", false
	}
	if err != nil {
		t.Fatalf("Get %s: %v", k, err)
	}
	return string(v), true
}

// A staged batch is all or nothing: nothing it writes is seen before
// Commit, everything is after, and its Get sees its own writes on top of
// the datastore's.
func TestStagedBatchCommit(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	d := s.Datastore()
	for _, k := range []string{"/app/keep", "/app/gone", "/app/changed"} {
		if err := d.Put(ctx, ds.NewKey(k), []byte("old")); err != nil {
			t.Fatal(err)
		}
	}
	b, err := s.NewStagedBatch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Enough writes to flush the in-memory part several times.
	const n = 20000
	val := make([]byte, 200)
	for i := range n {
		if err := b.Put(ctx, ds.NewKey(fmt.Sprintf("/app/many/%06d", i)), val); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Delete(ctx, ds.NewKey("/app/gone")); err != nil {
		t.Fatal(err)
	}
	if err := b.Put(ctx, ds.NewKey("/app/changed"), []byte("new")); err != nil {
		t.Fatal(err)
	}
	// Delete, then put again: the put wins.
	if err := b.Delete(ctx, ds.NewKey("/app/again")); err != nil {
		t.Fatal(err)
	}
	if err := b.Put(ctx, ds.NewKey("/app/again"), []byte("back")); err != nil {
		t.Fatal(err)
	}
	if stagedLeft(t, s) == 0 {
		t.Fatal("nothing was written to the staging area: the batch is held in memory")
	}

	for k, want := range map[string]string{"/app/keep": "old", "/app/changed": "new", "/app/again": "back", "/app/many/000007": string(val)} {
		if got, ok := mustGet(t, b, k); !ok || got != want {
			t.Errorf("batch Get %s = %q, %v; want %q", k, got, ok, want)
		}
	}
	if _, ok := mustGet(t, b, "/app/gone"); ok {
		t.Error("batch Get of a key it deleted found it")
	}
	// Before Commit the datastore shows none of it.
	if got, _ := mustGet(t, d, "/app/changed"); got != "old" {
		t.Errorf("before Commit /app/changed = %q, want old", got)
	}
	if _, ok := mustGet(t, d, "/app/many/000007"); ok {
		t.Error("a staged write is visible before Commit")
	}

	if err := b.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{"/app/keep": "old", "/app/changed": "new", "/app/again": "back", "/app/many/019999": string(val)} {
		if got, ok := mustGet(t, d, k); !ok || got != want {
			t.Errorf("after Commit %s = %q, %v; want %q", k, got, ok, want)
		}
	}
	if _, ok := mustGet(t, d, "/app/gone"); ok {
		t.Error("a staged deletion did not delete")
	}
	if left := stagedLeft(t, s); left != 0 {
		t.Errorf("%d staged keys left after Commit", left)
	}
	if err := b.Put(ctx, ds.NewKey("/app/late"), nil); err == nil {
		t.Error("Put after Commit succeeded")
	}
	if err := b.Commit(ctx); err == nil {
		t.Error("a second Commit succeeded")
	}
}

// An aborted batch, and one a crash cut off, leave nothing: not in the
// datastore, not in the staging area (swept at the next Open).
func TestStagedBatchAbortAndCrash(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	b, err := s.NewStagedBatch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10000 {
		if err := b.Put(ctx, ds.NewKey(fmt.Sprintf("/app/x/%d", i)), make([]byte, 300)); err != nil {
			t.Fatal(err)
		}
	}
	b.Abort(ctx)
	b.Abort(ctx) // twice is fine
	if left := stagedLeft(t, s); left != 0 {
		t.Errorf("%d staged keys left after Abort", left)
	}
	if _, ok := mustGet(t, s.Datastore(), "/app/x/1"); ok {
		t.Error("an aborted write is visible")
	}
	if err := b.Commit(ctx); err == nil {
		t.Error("Commit after Abort succeeded")
	}

	// A crash: staged writes flushed, then the store closed without
	// Commit or Abort.
	dir := t.TempDir()
	s2, err := Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	b2, err := s2.NewStagedBatch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10000 {
		if err := b2.Put(ctx, ds.NewKey(fmt.Sprintf("/app/y/%d", i)), make([]byte, 300)); err != nil {
			t.Fatal(err)
		}
	}
	if stagedLeft(t, s2) == 0 {
		t.Fatal("nothing staged on disk to sweep")
	}
	if err := s2.Close(); err != nil {
		t.Fatal(err)
	}
	s3 := openStoreAt(t, dir)
	if left := stagedLeft(t, s3); left != 0 {
		t.Errorf("%d staged keys left after reopening", left)
	}
	if _, ok := mustGet(t, s3.Datastore(), "/app/y/1"); ok {
		t.Error("a write of an uncommitted batch is visible after reopening")
	}
}

// A staged batch refuses the reserved namespace, as Batch does: it could
// otherwise overwrite pins or another batch's staging area.
func TestStagedBatchRefusesReservedKeys(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	b, err := s.NewStagedBatch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Abort(ctx)
	for _, k := range []string{"/store/pins/x", "/store/staged/0000000000000000/app/x", "/store"} {
		if err := b.Put(ctx, ds.NewKey(k), nil); err == nil {
			t.Errorf("Put %s succeeded", k)
		}
		if err := b.Delete(ctx, ds.NewKey(k)); err == nil {
			t.Errorf("Delete %s succeeded", k)
		}
	}
}

// A commit on a cancelled context makes nothing visible.
func TestStagedBatchCancelled(t *testing.T) {
	s := openStore(t)
	ctx, cancel := context.WithCancel(context.Background())
	b, err := s.NewStagedBatch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10000 {
		if err := b.Put(ctx, ds.NewKey(fmt.Sprintf("/app/z/%05d", i)), make([]byte, 100)); err != nil {
			t.Fatal(err)
		}
	}
	cancel()
	if err := b.Commit(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Commit on a cancelled context: %v, want context.Canceled", err)
	}
	if _, ok := mustGet(t, s.Datastore(), "/app/z/00001"); ok {
		t.Error("a write of a cancelled commit is visible")
	}
	if left := stagedLeft(t, s); left != 0 {
		t.Errorf("%d staged keys left", left)
	}
}
