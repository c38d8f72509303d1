package store

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

// drainLeaves reads p's leaves to the end.
func drainLeaves(p *leafPipe) ([][]byte, error) {
	var leaves [][]byte
	for {
		leaf, err := p.NextBytes()
		if err != nil {
			if err == io.EOF {
				err = nil
			}
			return leaves, err
		}
		leaves = append(leaves, bytes.Clone(leaf))
		p.recycle(leaf)
	}
}

func TestLeafPipe(t *testing.T) {
	ctx := context.Background()
	data := bytes.Repeat([]byte("0123456789abcdef"), 10000)
	p := newLeafPipe(ctx, 1000, 4)
	go func() { p.CloseWithError(p.fill(iotest.HalfReader(bytes.NewReader(data)))) }()
	leaves, err := drainLeaves(p)
	if err != nil || len(leaves) != 160 || !bytes.Equal(bytes.Join(leaves, nil), data) {
		t.Fatalf("read back %d leaves, err %v", len(leaves), err)
	}
	for i, l := range leaves {
		if len(l) != 1000 {
			t.Fatalf("leaf %d has %d bytes, want 1000", i, len(l))
		}
	}
	if p.consumed() != int64(len(data)) {
		t.Fatalf("consumed %d, want %d", p.consumed(), len(data))
	}

	// The remainder is the last leaf, cut as chunker.NewSizeSplitter cuts.
	p = newLeafPipe(ctx, 1000, 4)
	go func() { p.CloseWithError(p.fill(bytes.NewReader(data[:2500]))) }()
	leaves, err = drainLeaves(p)
	if err != nil || len(leaves) != 3 || len(leaves[2]) != 500 || !bytes.Equal(leaves[2], data[2000:2500]) {
		t.Fatalf("got %d leaves, err %v", len(leaves), err)
	}

	// Nothing written: no leaf at all.
	p = newLeafPipe(ctx, 1000, 4)
	p.CloseWithError(p.fill(bytes.NewReader(nil)))
	if leaves, err = drainLeaves(p); err != nil || len(leaves) != 0 {
		t.Fatalf("empty: %d leaves, err %v", len(leaves), err)
	}

	// A writer's error reaches the reader after the full leaves; the
	// partial one is dropped, and NextBytes keeps returning the error.
	boom := errors.New("boom")
	p = newLeafPipe(ctx, 3, 4)
	if err := p.fill(io.MultiReader(strings.NewReader("abcd"), iotest.ErrReader(boom))); !errors.Is(err, boom) {
		t.Fatalf("fill returned %v, want boom", err)
	}
	p.CloseWithError(boom)
	leaves, err = drainLeaves(p)
	if len(leaves) != 1 || string(leaves[0]) != "abc" || !errors.Is(err, boom) {
		t.Fatalf("got %q, %v", leaves, err)
	}
	if _, err := p.NextBytes(); !errors.Is(err, boom) || !errors.Is(p.failure(), boom) {
		t.Fatalf("again: %v, failure %v", err, p.failure())
	}

	// A stopped reader unblocks a writer waiting on a full pipe.
	p = newLeafPipe(ctx, 10, 1)
	stop := errors.New("importer failed")
	done := make(chan error)
	go func() {
		done <- p.fill(bytes.NewReader(make([]byte, 100)))
	}()
	p.CloseRead(stop)
	if err := <-done; !errors.Is(err, stop) {
		t.Fatalf("writer got %v", err)
	}

	// A cancelled context stops the reader.
	cctx, cancel := context.WithCancel(ctx)
	p = newLeafPipe(cctx, 10, 1)
	cancel()
	if _, err := p.NextBytes(); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
}

// TestLeafPipeRecycles checks that a written leaf's buffer is filled
// again rather than a new one allocated.
func TestLeafPipeRecycles(t *testing.T) {
	p := newLeafPipe(context.Background(), 8, 4)
	old := make([]byte, 3, 8)
	p.recycle(old)
	p.recycle(make([]byte, 4)) // another size: not taken
	if len(p.free) != 1 {
		t.Fatalf("free holds %d buffers, want 1", len(p.free))
	}
	if err := p.fill(strings.NewReader("abcdefgh")); err != nil {
		t.Fatal(err)
	}
	leaf, err := p.NextBytes()
	if err != nil {
		t.Fatal(err)
	}
	if &leaf[0] != &old[:1][0] || string(leaf) != "abcdefgh" {
		t.Fatalf("leaf %q was not the recycled buffer", leaf)
	}
}
