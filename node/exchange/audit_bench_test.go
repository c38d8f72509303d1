package exchange

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/node/audit"
	"github.com/blockmrs/blockmrs/protocol"
)

// BenchmarkServeAudited measures serving small records (one 2 KiB block
// each) over bitswap, the serving node with and without its audit log:
// a granted clinic fetches 100 records from the patient's node per
// iteration. With the log, every record served is recorded (the dedup
// window is cut to nothing, so each iteration appends 100 entries); the
// log's worker shares the machine with serving, as in a daemon.
//
//	go test ./node/exchange -run '^$' -bench ServeAudited -benchtime 5x
func BenchmarkServeAudited(b *testing.B) {
	for _, audited := range []bool{false, true} {
		b.Run(fmt.Sprintf("audit=%v", audited), func(b *testing.B) { benchServeAudited(b, audited) })
	}
}

func benchServeAudited(b *testing.B, audited bool) {
	const records = 100
	ctx := b.Context()
	pat := newNode(b, "Pat", protocol.RolePatient)
	var log *audit.Log
	if audited {
		var err error
		if log, err = audit.Attach(pat.repo, pat.repo.Dir(), audit.Options{DedupWindow: time.Nanosecond}); err != nil {
			b.Fatal(err)
		}
	}
	clinic := newNode(b, "Clinic", protocol.RoleClinic)
	clinic.declare(b)
	sendChain(b, clinic, pat)
	clinic.knows(pat)
	clinic.ex.DisableStream()
	var recs []cid.Cid
	for i := range records {
		body := bytes.Repeat([]byte{byte(i)}, 2<<10)
		rec, err := pat.repo.AddRecord(ctx, pat.keys, keyshare.NewRecord{Title: fmt.Sprint("r", i), Kind: protocol.KindFile, MediaType: "application/octet-stream", Body: bytes.NewReader(body)})
		if err != nil {
			b.Fatal(err)
		}
		recs = append(recs, rec)
	}
	if _, err := pat.repo.Grant(ctx, pat.keys, recs, clinic.keys.ID, time.Time{}); err != nil {
		b.Fatal(err)
	}
	sendChain(b, pat, clinic)
	var blocks [][]cid.Cid
	for _, r := range recs {
		blocks = append(blocks, dagBlocks(b, pat, r))
	}
	b.ResetTimer()
	for b.Loop() {
		for _, r := range recs {
			if err := clinic.ex.Fetch(ctx, r, pat.host.ID()); err != nil {
				b.Fatal(err)
			}
		}
		if log != nil {
			if err := log.Flush(ctx); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		for i, r := range recs {
			if err := clinic.repo.Store().Unpin(ctx, r); err != nil {
				b.Fatal(err)
			}
			for _, c := range blocks[i] {
				if err := clinic.repo.Store().Blockstore().DeleteBlock(ctx, c); err != nil {
					b.Fatal(err)
				}
			}
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(records*b.N)/b.Elapsed().Seconds(), "records/s")
	if log != nil {
		st := log.ServedStats()
		b.ReportMetric(float64(st.Recorded)/float64(b.N), "entries/op")
	}
}

// BenchmarkAllowAudited measures the serving node's per-want decision
// (the bitswap filter: MayServe, then, with the log, queueing the block
// for the audit worker), for wants of 100 records' blocks in turn, with
// and without the audit log. With the log the worker resolves each block
// into its record on the other core and records each record once (the
// default dedup window).
//
//	go test ./node/exchange -run '^$' -bench AllowAudited -benchmem
func BenchmarkAllowAudited(b *testing.B) {
	for _, audited := range []bool{false, true} {
		b.Run(fmt.Sprintf("audit=%v", audited), func(b *testing.B) {
			ctx := b.Context()
			pat := newNode(b, "Pat", protocol.RolePatient)
			var log *audit.Log
			if audited {
				var err error
				if log, err = audit.Attach(pat.repo, pat.repo.Dir(), audit.Options{}); err != nil {
					b.Fatal(err)
				}
			}
			clinic := newNode(b, "Clinic", protocol.RoleClinic)
			clinic.declare(b)
			sendChain(b, clinic, pat)
			var recs []cid.Cid
			for i := range 100 {
				rec, err := pat.repo.AddRecord(ctx, pat.keys, keyshare.NewRecord{Title: fmt.Sprint("r", i), Kind: protocol.KindFile,
					MediaType: "application/octet-stream", Body: bytes.NewReader(bytes.Repeat([]byte{byte(i)}, 2<<10))})
				if err != nil {
					b.Fatal(err)
				}
				recs = append(recs, rec)
			}
			if _, err := pat.repo.Grant(ctx, pat.keys, recs, clinic.keys.ID, time.Time{}); err != nil {
				b.Fatal(err)
			}
			p := clinic.host.ID()
			if !pat.ex.allow(p, recs[0]) {
				b.Fatal("the clinic may not have the record")
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if !pat.ex.allow(p, recs[i%len(recs)]) {
					b.Fatal("refused")
				}
				i++
			}
			b.StopTimer()
			if log != nil {
				if err := log.Flush(ctx); err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(float64(log.ServedStats().Recorded), "entries")
			}
		})
	}
}
