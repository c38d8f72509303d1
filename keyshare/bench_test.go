package keyshare

import (
	"context"
	"fmt"
	"testing"

	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"

	"github.com/blockmrs/blockmrs/protocol"
)

// benchEntry is a small entry that links nothing, like a hide of one record.
func benchEntry(i int) protocol.Entry {
	sum, _ := mh.Sum([]byte(fmt.Sprint("record ", i)), mh.SHA2_256, -1)
	return protocol.NewEntry(&protocol.Unhide{Records: []protocol.Link{protocol.NewLink(cid.NewCidV1(cid.Raw, sum))}})
}

// BenchmarkChainAppend measures appending one one-entry block to a chain:
// sign, store the block durably, update the index and head durably.
func BenchmarkChainAppend(b *testing.B) {
	ctx := context.Background()
	r, err := Open(ctx, b.TempDir(), Options{Create: true})
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	k, err := r.CreateAccount(ctx, "Bench", protocol.RolePatient, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		r.mu.Lock()
		_, err := r.appendBlock(ctx, k, []protocol.Entry{benchEntry(i)})
		r.mu.Unlock()
		if err != nil {
			b.Fatal(err)
		}
	}
}

// buildChain makes a chain of n entries in blocks of perBlock entries.
func buildChain(b *testing.B, n, perBlock int) *Repo {
	ctx := context.Background()
	r, err := Open(ctx, b.TempDir(), Options{Create: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { r.Close() })
	k, err := r.CreateAccount(ctx, "Bench", protocol.RolePatient, nil)
	if err != nil {
		b.Fatal(err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := 0; i < n; i += perBlock {
		entries := make([]protocol.Entry, 0, perBlock)
		for j := i; j < i+perBlock && j < n; j++ {
			entries = append(entries, benchEntry(j))
		}
		if _, err := r.appendBlock(ctx, k, entries); err != nil {
			b.Fatal(err)
		}
	}
	return r
}

// BenchmarkVerify10k measures Verify of a 10,000-entry chain (signatures,
// links, index rebuild and comparison); entries/s is reported.
func BenchmarkVerify10k(b *testing.B) {
	for _, perBlock := range []int{1, 100} {
		b.Run(fmt.Sprintf("entries-per-block=%d", perBlock), func(b *testing.B) {
			const n = 10000
			r := buildChain(b, n, perBlock)
			ctx := context.Background()
			b.ResetTimer()
			for b.Loop() {
				rep, err := r.Verify(ctx, VerifyOptions{})
				if err != nil || !rep.OK {
					b.Fatalf("verify: %v %+v", err, rep)
				}
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "entries/s")
		})
	}
}

// BenchmarkBatchAdd measures a batch add of 1,111 FHIR records of about
// 1.5 KB (the shape of a Synthea bundle's resources): store, seal, wrap,
// one chain commit.
func BenchmarkBatchAdd(b *testing.B) {
	ctx := context.Background()
	r, err := Open(ctx, b.TempDir(), Options{Create: true})
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	k, err := r.CreateAccount(ctx, "Bench", protocol.RolePatient, nil)
	if err != nil {
		b.Fatal(err)
	}
	const n = 1111
	b.ReportMetric(n, "records/op")
	for b.Loop() {
		batch, err := r.NewBatch(ctx, k)
		if err != nil {
			b.Fatal(err)
		}
		for i := range n {
			if _, err := batch.Add(obsRecord(i, "")); err != nil {
				b.Fatal(err)
			}
		}
		if _, err := batch.Commit(); err != nil {
			b.Fatal(err)
		}
	}
}
