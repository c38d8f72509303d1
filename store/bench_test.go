package store

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"testing"

	cid "github.com/ipfs/go-cid"
)

// BenchmarkAdd measures Add (encrypt, chunk, store, pin, one flush) of a
// 64 MiB record.
func BenchmarkAdd(b *testing.B) {
	const size = 64 * mib
	s := openStore(b)
	ctx := context.Background()
	b.SetBytes(size)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, err := s.Add(ctx, newFastReader(uint64(i), size)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAddSync compares durability strategies for Add of a 256 MiB
// record:
// once (default: write blocks unsynced, one syncfs at the end), eachBlock
// (fsync every block file and its directory as it is written, what flatfs
// with sync=true does) and none (no flush at all; not durable).
//
// The "smallBlocks" variants write 16 MiB as 4 KiB blocks (not the profile;
// the shape of many small chain blocks), where per-block fsync costs most.
func BenchmarkAddSync(b *testing.B) {
	for _, m := range []struct {
		name  string
		mode  syncMode
		size  int64
		chunk int64
	}{
		{"once", syncOnce, 256 * mib, mib},
		{"eachBlock", syncEachBlock, 256 * mib, mib},
		{"none", syncNever, 256 * mib, mib},
		{"smallBlocks/once", syncOnce, 16 * mib, 4 * kib},
		{"smallBlocks/eachBlock", syncEachBlock, 16 * mib, 4 * kib},
		{"smallBlocks/none", syncNever, 16 * mib, 4 * kib},
	} {
		b.Run(m.name, func(b *testing.B) {
			size := m.size
			s := openStore(b)
			s.syncMode = m.mode
			s.layout.chunkSize = m.chunk
			ctx := context.Background()
			b.SetBytes(size)
			for i := 0; b.Loop(); i++ {
				if _, err := s.Add(ctx, newFastReader(uint64(i), size)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkCat measures streaming a 64 MiB record's ciphertext back with
// verification of every block.
func BenchmarkCat(b *testing.B) {
	for _, size := range []int64{64 * kib, 64 * mib} {
		b.Run(fmt.Sprintf("%dKiB", size/kib), func(b *testing.B) {
			s := openStore(b)
			ctx := context.Background()
			c, _, err := s.AddRaw(ctx, newFastReader(1, size))
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(size)
			b.ReportAllocs()
			for b.Loop() {
				r, err := s.Cat(ctx, c)
				if err != nil {
					b.Fatal(err)
				}
				if n, err := io.Copy(io.Discard, r); err != nil || n != size {
					b.Fatal(n, err)
				}
				r.Close()
			}
		})
	}
}

// BenchmarkImportCAR measures a 16 MiB CAR import into an empty store.
func BenchmarkImportCAR(b *testing.B) {
	const size = 16 * mib
	src := openStore(b)
	ctx := context.Background()
	c, _, err := src.AddRaw(ctx, newFastReader(2, size))
	if err != nil {
		b.Fatal(err)
	}
	var buf bytes.Buffer
	if err := src.ExportCAR(ctx, &buf, []cid.Cid{c}); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(size)
	for b.Loop() {
		b.StopTimer()
		dst := openStore(b)
		b.StartTimer()
		if _, err := dst.ImportCAR(ctx, bytes.NewReader(buf.Bytes()), nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAddBatch measures an AddBatch of 1,000 records of 3.5 KB (the
// size of a FHIR resource) on two goroutines, committed once.
func BenchmarkAddBatch(b *testing.B) {
	s := openStore(b)
	ctx := context.Background()
	data := randBytes(1, 3500)
	const n = 1000
	b.ReportMetric(n, "records/op")
	for b.Loop() {
		batch, err := s.NewAddBatch(ctx)
		if err != nil {
			b.Fatal(err)
		}
		done := make(chan error, 2)
		for w := range 2 {
			go func() {
				for i := w; i < n; i += 2 {
					if _, err := batch.Add(ctx, bytes.NewReader(data)); err != nil {
						done <- err
						return
					}
				}
				done <- nil
			}()
		}
		for range 2 {
			if err := <-done; err != nil {
				b.Fatal(err)
			}
		}
		if err := batch.Commit(ctx); err != nil {
			b.Fatal(err)
		}
	}
}
