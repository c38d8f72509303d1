package audit

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/protocol"
)

// benchEntries is the size of the log the listing benchmarks query.
const benchEntries = 100_000

// benchLog fills a log in a fresh folder with benchEntries serve events,
// one second apart: 100 subjects in turn, 10,000 records each named by
// 10 entries. It returns the folder (the log closed), the key, a record,
// a subject and the time of the newest 1% of the entries.
func benchLog(b *testing.B) (dir string, l *Log, record cid.Cid, subject protocol.AccountID, since time.Time) {
	b.Helper()
	dir, priv := b.TempDir(), testKey(b)
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	subjects := make([]protocol.AccountID, 100)
	for i := range subjects {
		subjects[i] = testAccount(b)
	}
	records := make([]cid.Cid, 10_000)
	for i := range records {
		records[i] = testCID(b, fmt.Sprint("bench-", i))
	}
	l, err := Open(dir, priv, Options{Logger: quiet()})
	if err != nil {
		b.Fatal(err)
	}
	peer := string(testAccount(b))
	ctx := context.Background()
	for i := range benchEntries {
		ev := Event{Time: start.Add(time.Duration(i) * time.Second), Kind: keyshare.AuditServe, Account: subjects[(i+1)%100],
			Peer: peer, Subject: subjects[i%100], Records: []cid.Cid{records[i%len(records)]}, Rule: keyshare.RuleReadGrantee}
		if _, err := l.Append(ctx, ev); err != nil {
			b.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		b.Fatal(err)
	}
	l, err = Open(dir, priv, Options{Logger: quiet()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { l.Close() })
	return dir, l, records[1234], subjects[7], start.Add(time.Duration(benchEntries-benchEntries/100) * time.Second)
}

// BenchmarkList100k measures the listings `blockmrs audit` makes on a
// log of 100,000 entries: one record's events (10 entries), one
// subject's (1,000), the newest 1% (--since, 1,000), a subject's since
// then (10), and everything (the newest 10,000, MaxAuditList). Opening
// the log is measured too (it reads the index, or the whole log when
// there is none).
//
//	go test ./node/audit -run '^$' -bench 'List100k|Open100k' -benchtime 5x
func BenchmarkList100k(b *testing.B) {
	_, l, record, subject, since := benchLog(b)
	ctx := context.Background()
	for _, c := range []struct {
		name string
		f    Filter
		want int
	}{
		{"record", Filter{Record: record}, 10},
		{"subject", Filter{Subjects: []protocol.AccountID{subject}}, 1000},
		{"since", Filter{Since: since}, 1000},
		{"subject-since", Filter{Subjects: []protocol.AccountID{subject}, Since: since}, 10},
		{"newest-10000", Filter{Limit: 10000}, 10000},
	} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				got, err := l.List(ctx, c.f)
				if err != nil || len(got) != c.want {
					b.Fatalf("List: %d entries, want %d, %v", len(got), c.want, err)
				}
			}
		})
	}
}

// BenchmarkOpen100k measures opening a log of 100,000 entries.
func BenchmarkOpen100k(b *testing.B) {
	dir, l, _, _, _ := benchLog(b)
	priv := l.priv
	l.Close()
	for b.Loop() {
		l, err := Open(dir, priv, Options{Logger: quiet()})
		if err != nil || l.Len() != benchEntries {
			b.Fatalf("Open: %v", err)
		}
		l.Close()
	}
}
