package chainsync

// Benchmarks for BENCHMARKS.md ("Node"): how long a grant takes to make a
// record readable on the grantee's node, and how long a fresh node takes
// to sync a 10,000-entry chain. Both use real libp2p hosts on loopback.
//
//	go test -run XXX -bench 'GrantToReadable|ChainSync10k' -benchtime 1x ./node/chainsync

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/blockmrs/blockmrs/protocol"
)

// BenchmarkGrantToReadable grants 100 records, one at a time, each 64 KiB,
// and measures from the grant on the patient's node until the clinic's
// node can decrypt the record: announcement, chain pull, record fetch.
func BenchmarkGrantToReadable(b *testing.B) {
	const grants = 100
	patient := newNode(b, "patient", protocol.RolePatient)
	clinic := newNode(b, "clinic", protocol.RoleClinician)
	meet(b, patient, clinic)
	for b.Loop() {
		var took []time.Duration
		for range grants {
			body := make([]byte, 64<<10)
			rand.Read(body)
			rec := addRecord(b, patient, body)
			start := time.Now()
			if _, err := patient.repo.Grant(b.Context(), patient.keys, []cid.Cid{rec}, clinic.keys.ID, time.Time{}); err != nil {
				b.Fatal(err)
			}
			for !readable(b, clinic, rec, body) {
				if time.Since(start) > time.Minute {
					b.Fatalf("record %d not readable after a minute; clinic log:\n%s\npatient log:\n%s", len(took), clinic.logs.all(), patient.logs.all())
				}
				time.Sleep(time.Millisecond)
			}
			took = append(took, time.Since(start))
		}
		slices.Sort(took)
		b.ReportMetric(float64(took[len(took)/2].Microseconds())/1000, "ms-median")
		b.ReportMetric(float64(took[len(took)-1].Microseconds())/1000, "ms-worst")
	}
}

// BenchmarkChainSync10k measures a fresh node catching up with a
// 10,000-entry chain (plus its profile and one grant), from connecting to
// the node that holds it until it holds the same head: one entry per
// block, and 100 entries per block.
func BenchmarkChainSync10k(b *testing.B) {
	for _, perBlock := range []int{1, 100} {
		b.Run(fmt.Sprintf("entries-per-block=%d", perBlock), func(b *testing.B) {
			patient := newNode(b, "patient", protocol.RolePatient)
			rec := addRecord(b, patient, []byte("x"))
			longChain(b, patient, rec, 10_000, perBlock)
			for b.Loop() {
				b.StopTimer()
				clinic := newNode(b, "clinic", protocol.RoleClinician)
				// Profiles change hands offline, so nothing connects early.
				swapProfiles(b, patient, clinic)
				if _, err := patient.repo.Grant(b.Context(), patient.keys, []cid.Cid{rec}, clinic.keys.ID, time.Time{}); err != nil {
					b.Fatal(err)
				}
				head, seq := headOf(b, patient.repo, patient.keys.ID)
				b.StartTimer()
				if err := clinic.host.Connect(b.Context(), patient.addr()); err != nil {
					b.Fatal(err)
				}
				for {
					if h, _ := headOf(b, clinic.repo, patient.keys.ID); h.Equals(head) {
						break
					}
					time.Sleep(time.Millisecond)
				}
				b.StopTimer()
				b.ReportMetric(float64(seq), "blocks")
				clinic.stop()
				b.StartTimer()
			}
		})
	}
}

// swapProfiles makes a and b contacts of each other through profile CARs.
func swapProfiles(b *testing.B, x, y *testNode) {
	b.Helper()
	for _, pair := range [][2]*testNode{{x, y}, {y, x}} {
		var buf bytes.Buffer
		if err := pair[0].repo.ExportProfile(b.Context(), &buf, pair[0].keys.ID); err != nil {
			b.Fatal(err)
		}
		if _, err := pair[1].repo.ImportCAR(b.Context(), &buf); err != nil {
			b.Fatal(err)
		}
	}
}

// longChain appends entries hide/unhide entries about rec to n's chain,
// perBlock to a block, signing the blocks here and applying them in one
// go (appending them one by one would mostly measure fsync).
func longChain(b *testing.B, n *testNode, rec cid.Cid, entries, perBlock int) {
	b.Helper()
	info, err := n.repo.Account(b.Context(), n.keys.ID)
	if err != nil {
		b.Fatal(err)
	}
	prev, seq, t := info.Head, info.Seq, time.Now().UnixMilli()
	offered := map[cid.Cid][]byte{}
	links := []protocol.Link{protocol.NewLink(rec)}
	for done := 0; done < entries; {
		var es []protocol.Entry
		for ; len(es) < perBlock && done < entries; done++ {
			if done%2 == 0 {
				es = append(es, protocol.NewEntry(&protocol.Hide{Records: links}))
			} else {
				es = append(es, protocol.NewEntry(&protocol.Unhide{Records: links}))
			}
		}
		l := protocol.NewLink(prev)
		seq++
		blk := &protocol.Block{Seq: seq, Prev: &l, Time: t, Entries: es}
		raw, c, err := blk.Sign(n.keys.Sign)
		if err != nil {
			b.Fatal(err)
		}
		offered[c] = raw
		prev = c
	}
	if _, err := n.repo.ApplyChains(b.Context(), []cid.Cid{prev}, offered); err != nil {
		b.Fatal(err)
	}
}
