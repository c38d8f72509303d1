package audit

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"

	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/node/internal/stream"
	"github.com/blockmrs/blockmrs/protocol"
)

// testClock is a clock a test moves.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// TestUndeclaredQuotaKeptAcrossRestarts: a node the patient's chain does
// not declare gets its quota of entries into the patient's log, and no
// more, whether it reconnects, the patient's node restarts, crashes
// before saving the count, or finds its quota file damaged; the next
// window gives it a new quota.
func TestUndeclaredQuotaKeptAcrossRestarts(t *testing.T) {
	ctx := t.Context()
	mn := mocknet.New()
	t.Cleanup(func() { mn.Close() })
	pat := newParty(t, mn, "Pat")
	sender := newParty(t, mn, "") // a grantee's node: Pat's chain does not declare it
	if err := mn.LinkAll(); err != nil {
		t.Fatal(err)
	}
	if err := mn.ConnectAllButSelf(); err != nil {
		t.Fatal(err)
	}
	clock := &testClock{now: time.Date(2026, 6, 1, 9, 0, 0, 0, time.UTC)}
	const quota = 3
	var lines logLines
	start := func() *Service {
		return New(pat.host, pat.repo, pat.log, ServiceOptions{Logger: lines.logger(), MaxUndeclared: quota, Clock: clock.Now, RetryInterval: time.Hour})
	}
	svc := start()
	defer func() { svc.Close() }()
	dial := stream.Dialer{Host: sender.host, Protocol: ProtocolID, Timeout: 5 * time.Second}
	sent := 0
	// report appends n events about Pat to the sender's log and sends
	// them in one stream; it returns how many Pat's node kept.
	report := func(n int) uint64 {
		t.Helper()
		for range n {
			if _, err := sender.log.Append(ctx, Event{Kind: keyshare.AuditServe, Subject: pat.keys.ID, Reason: fmt.Sprint("served-", sent)}); err != nil {
				t.Fatal(err)
			}
			sent++
		}
		raws, err := sender.log.readFrom(sent-n, n)
		if err != nil {
			t.Fatal(err)
		}
		body, err := dial.Ask(ctx, pat.host.ID(), 64, raws...)
		if err != nil {
			t.Fatal(err)
		}
		ack, err := protocol.DecodeAuditAck(body)
		if err != nil {
			t.Fatal(err)
		}
		return ack.Stored
	}
	restart := func() {
		t.Helper()
		priv := pat.log.priv
		if err := pat.log.Close(); err != nil {
			t.Fatal(err)
		}
		l, err := Open(pat.repo.Dir(), priv, Options{Logger: lines.logger()})
		if err != nil {
			t.Fatal(err)
		}
		pat.log = l
		t.Cleanup(func() { l.Close() })
		svc = start()
	}
	if got := report(2); got != 2 {
		t.Fatalf("first report: %d kept, want 2", got)
	}
	// Reconnecting changes nothing.
	if err := sender.host.Network().ClosePeer(pat.host.ID()); err != nil {
		t.Fatal(err)
	}
	if _, err := mn.ConnectPeers(sender.host.ID(), pat.host.ID()); err != nil {
		t.Fatal(err)
	}
	if got := report(2); got != 1 {
		t.Fatalf("after reconnecting: %d kept, want 1 (the quota is %d)", got, quota)
	}
	// A restart changes nothing.
	svc.Close()
	restart()
	if got := report(1); got != 0 {
		t.Fatalf("after a restart: %d kept, want 0", got)
	}
	// A crash before the last count was saved: the file is older than
	// the log; what the log holds past it counts.
	svc.Close()
	os.WriteFile(svc.quota.path, fmt.Appendf(nil, `{"start":%d,"upto":1,"counts":{%q:1}}`, clock.Now().UnixMilli(), sender.host.ID()), 0o600)
	restart()
	if got := report(1); got != 0 {
		t.Fatalf("after a crash that lost a count: %d kept, want 0", got)
	}
	// A damaged, a missing, an oversized quota file: every reported
	// entry of the log counts.
	for name, data := range map[string][]byte{
		"damaged":   []byte(`{"start":1,"upto":9,"counts":{"x":-5}}`),
		"garbage":   []byte("\x00\xff{"),
		"oversized": []byte(`{"start":1,"upto":0,"counts":{` + strings.Repeat(`"x":1,`, 1<<20) + `"y":1}}`),
		"missing":   nil,
	} {
		svc.Close()
		if data == nil {
			os.Remove(svc.quota.path)
		} else {
			os.WriteFile(svc.quota.path, data, 0o600)
		}
		restart()
		if got := report(1); got != 0 {
			t.Fatalf("with the quota file %s: %d kept, want 0", name, got)
		}
		if name != "missing" && !strings.Contains(lines.String(), "quota of undeclared reporters is damaged") {
			t.Fatalf("with the quota file %s, the node's log does not say so:\n%s", name, lines.String())
		}
	}
	if n := pat.log.Len(); n != quota {
		t.Fatalf("Pat's log holds %d entries, want %d", n, quota)
	}
	// The next window.
	clock.add(QuotaWindow)
	if got := report(2); got != 2 {
		t.Fatalf("in the next window: %d kept, want 2", got)
	}
	svc.Close()
	restart()
	if got := report(2); got != 1 {
		t.Fatalf("in the next window, after a restart: %d kept, want 1", got)
	}
}

// TestQuotaBounded: the quota counts at most MaxQuotaReporters
// reporters a window; a new one past them is refused, not let in by
// pushing another out.
func TestQuotaBounded(t *testing.T) {
	now := time.Date(2026, 6, 1, 9, 0, 0, 0, time.UTC)
	q := &quota{Start: now.UnixMilli(), Counts: map[string]int{}, max: 2, clock: func() time.Time { return now }}
	for i := range MaxQuotaReporters {
		q.Counts[fmt.Sprint("peer-", i)] = 1
	}
	if q.left("newcomer") {
		t.Fatal("a reporter past MaxQuotaReporters has a quota")
	}
	if !q.left("peer-7") {
		t.Fatal("a counted reporter under its quota has none left")
	}
	q.add("peer-7", 1)
	if q.left("peer-7") {
		t.Fatal("a reporter at its quota has some left")
	}
	if len(q.Counts) != MaxQuotaReporters {
		t.Fatalf("%d reporters counted", len(q.Counts))
	}
	now = now.Add(QuotaWindow)
	if !q.left("newcomer") || len(q.Counts) != 0 {
		t.Fatal("a new window did not start")
	}
}
