package store

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
)

// A spool gives back what was put under each number, whatever the order
// and however many writers, and leaves no file behind.
func TestSpool(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	sp, err := s.NewSpool()
	if err != nil {
		t.Fatal(err)
	}
	data := func(i int) []byte { return bytes.Repeat([]byte(fmt.Sprint(i)), i%50+1) }
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := 999 - w; i >= 0; i -= 4 {
				if err := sp.Put(i, data(i)); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := sp.Put(7, []byte("replaced")); err != nil {
		t.Fatal(err)
	}
	for i := range 1000 {
		got, ok, err := sp.Get(i)
		want := data(i)
		if i == 7 {
			want = []byte("replaced")
		}
		if err != nil || !ok || !bytes.Equal(got, want) {
			t.Fatalf("Get(%d) = %q, %v, %v; want %q", i, got, ok, err, want)
		}
	}
	if _, ok, err := sp.Get(1000); ok || err != nil {
		t.Errorf("Get of a number never put: ok %v, err %v", ok, err)
	}
	name := sp.f.Name()
	if err := sp.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(name); !os.IsNotExist(err) {
		t.Errorf("spool file still there after Close: %v", err)
	}
	if _, _, err := sp.Get(1); err == nil {
		t.Error("Get after Close succeeded")
	}
	if err := sp.Put(1, nil); err == nil {
		t.Error("Put after Close succeeded")
	}

	// One left by a crash goes at the next Open.
	sp2, err := s.NewSpool()
	if err != nil {
		t.Fatal(err)
	}
	if err := sp2.Put(0, []byte("left")); err != nil {
		t.Fatal(err)
	}
	left := sp2.f.Name()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := openStoreAt(t, dir)
	_ = s2
	if _, err := os.Stat(left); !os.IsNotExist(err) {
		t.Errorf("a crashed spool's file survived Open: %v", err)
	}
}
