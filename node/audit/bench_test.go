package audit

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/blockmrs/blockmrs/keyshare"
)

// BenchmarkAppend measures recording one served record: building,
// signing (Ed25519) and writing one entry; the file is synced every
// SyncDelay by the syncer, off the caller's path.
//
//	go test ./node/audit -run '^$' -bench . -benchmem
func BenchmarkAppend(b *testing.B) {
	l, err := Open(b.TempDir(), testKey(b), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	ev := Event{Kind: keyshare.AuditServe, Account: testAccount(b), Peer: string(testAccount(b)), Subject: testAccount(b),
		Records: []cid.Cid{testCID(b, "r")}, Rule: keyshare.RuleReadGrantee, Reason: "holds a live grant, bafyreib…#3"}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := l.Append(ctx, ev); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkServed measures what the block exchange pays per block it
// serves: queueing it for the worker (Served), with the worker running
// and no repo behind it (it resolves nothing).
func BenchmarkServed(b *testing.B) {
	l, err := Open(b.TempDir(), testKey(b), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	q := &servedQueue{l: l, ch: make(chan served, DefaultQueueSize), stop: make(chan struct{}), done: make(chan struct{}), seen: map[servedKey]time.Time{}}
	l.served = q
	go func() { // a worker that only drains, as when nothing resolves
		defer close(q.done)
		for {
			select {
			case <-q.ch:
				q.handled.Add(1)
			case <-q.stop:
				return
			}
		}
	}()
	cs := make([]cid.Cid, 1024)
	for i := range cs {
		cs[i] = testCID(b, fmt.Sprint(i))
	}
	peer := string(testAccount(b))
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		l.Served(peer, cs[i%len(cs)])
		i++
	}
}
