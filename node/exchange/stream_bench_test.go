package exchange

import (
	"bytes"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/blockmrs/blockmrs/internal/stocktools"
	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/protocol"
)

// BenchmarkFetchDecrypt measures a granted node fetching a record from the
// patient's node over loopback TCP (two in-process hosts) and decrypting
// it, over the DAG stream and over bitswap alone. Each iteration starts
// from a store without the record's blocks.
//
//	go test ./node/exchange -run '^$' -bench FetchDecrypt -benchtime 3x
func BenchmarkFetchDecrypt(b *testing.B) {
	for _, mib := range []int{64, 256} {
		if testing.Short() && mib > 64 {
			continue
		}
		for _, mode := range []string{"stream", "bitswap"} {
			b.Run(fmt.Sprintf("%dMiB/%s", mib, mode), func(b *testing.B) {
				benchFetchDecrypt(b, mib<<20, mode == "bitswap")
			})
		}
	}
}

func benchFetchDecrypt(b *testing.B, size int, bitswapOnly bool) {
	ctx := b.Context()
	pat := newNode(b, "Pat", protocol.RolePatient)
	clinic := newNode(b, "Clinic", protocol.RoleClinic)
	clinic.declare(b)
	sendChain(b, clinic, pat)
	clinic.knows(pat)
	if bitswapOnly {
		clinic.ex.DisableStream()
	}
	other, err := pat.repo.CreateAccount(ctx, "Other", protocol.RolePatient, nil)
	if err != nil {
		b.Fatal(err)
	}
	body := stocktools.PseudoRandomBytes("fetch bench", size)
	rec, err := pat.repo.AddRecord(ctx, pat.keys, keyshare.NewRecord{Title: "big", Kind: protocol.KindFile, MediaType: "application/octet-stream", Body: bytes.NewReader(body)})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := pat.repo.Grant(ctx, pat.keys, []cid.Cid{rec}, clinic.keys.ID, time.Time{}); err != nil {
		b.Fatal(err)
	}
	sendChain(b, pat, clinic, keyshare.ExportOptions{For: other.ID})
	recBlocks := dagBlocks(b, pat, rec)
	b.SetBytes(int64(size))
	b.ResetTimer()
	var fetchTime time.Duration
	for b.Loop() {
		t0 := time.Now()
		if err := clinic.ex.Fetch(ctx, rec, pat.host.ID()); err != nil {
			b.Fatal(err)
		}
		fetchTime += time.Since(t0)
		_, rc, err := clinic.repo.OpenRecord(ctx, clinic.keys, rec)
		if err != nil {
			b.Fatal(err)
		}
		n, err := io.Copy(io.Discard, rc)
		rc.Close()
		if err != nil || n != int64(size) {
			b.Fatalf("decrypted %d bytes: %v", n, err)
		}
		b.StopTimer()
		if err := clinic.repo.Store().Unpin(ctx, rec); err != nil {
			b.Fatal(err)
		}
		for _, c := range recBlocks {
			if err := clinic.repo.Store().Blockstore().DeleteBlock(ctx, c); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
	}
	b.StopTimer()
	b.ReportMetric(float64(fetchTime.Milliseconds())/float64(b.N), "fetch-ms/op")
	st := clinic.ex.Stats()
	if !bitswapOnly && st.StreamFetches == 0 {
		b.Fatal("the DAG stream was not used")
	}
	if bitswapOnly && st.StreamBlocks != 0 {
		b.Fatal("the DAG stream was used")
	}
}
