package store

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"
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
	go func() {
		for i := 0; i < len(data); i += 777 {
			if _, err := p.Write(data[i:min(i+777, len(data))]); err != nil {
				p.CloseWithError(err)
				return
			}
		}
		p.CloseWithError(nil)
	}()
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
	go func() {
		p.Write(data[:2500])
		p.CloseWithError(nil)
	}()
	leaves, err = drainLeaves(p)
	if err != nil || len(leaves) != 3 || len(leaves[2]) != 500 || !bytes.Equal(leaves[2], data[2000:2500]) {
		t.Fatalf("got %d leaves, err %v", len(leaves), err)
	}

	// Nothing written: no leaf at all.
	p = newLeafPipe(ctx, 1000, 4)
	p.CloseWithError(nil)
	if leaves, err = drainLeaves(p); err != nil || len(leaves) != 0 {
		t.Fatalf("empty: %d leaves, err %v", len(leaves), err)
	}

	// A writer's error reaches the reader after the full leaves; the
	// partial one is dropped, and NextBytes keeps returning the error.
	boom := errors.New("boom")
	p = newLeafPipe(ctx, 3, 4)
	p.Write([]byte("abcd"))
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
		_, err := p.Write(make([]byte, 100))
		done <- err
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

// TestLeafPipeRecycles checks that written leaves' buffers are filled
// again rather than allocated anew.
func TestLeafPipeRecycles(t *testing.T) {
	p := newLeafPipe(context.Background(), 8, 4)
	p.Write([]byte("12345678"))
	first, err := p.NextBytes()
	if err != nil {
		t.Fatal(err)
	}
	p.recycle(first)
	p.Write([]byte("abcdefgh"))
	second, err := p.NextBytes()
	if err != nil {
		t.Fatal(err)
	}
	if &first[0] != &second[0] || string(second) != "abcdefgh" {
		t.Fatalf("second leaf %q was not the first's buffer", second)
	}
	p.recycle(make([]byte, 4, 4)) // another size: not taken
	if len(p.free) != 0 {
		t.Fatalf("free holds %d buffers, want 0", len(p.free))
	}
}
