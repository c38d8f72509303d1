package requests

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/protocol"
)

// receipts counts, by request ID, the requests a node's service logged
// as received: how often the request came to it.
type receipts struct {
	mu sync.Mutex
	n  map[string]int
}

func (r *receipts) Enabled(context.Context, slog.Level) bool { return true }
func (r *receipts) WithAttrs([]slog.Attr) slog.Handler       { return r }
func (r *receipts) WithGroup(string) slog.Handler            { return r }
func (r *receipts) Handle(_ context.Context, rec slog.Record) error {
	if rec.Message != "requests: request received" {
		return nil
	}
	rec.Attrs(func(a slog.Attr) bool {
		if a.Key == "id" {
			r.mu.Lock()
			r.n[a.Value.String()]++
			r.mu.Unlock()
		}
		return true
	})
	return nil
}

func (r *receipts) of(id string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n[id]
}

func inboxInfo(t *testing.T, n *testNode, id string) keyshare.RequestInfo {
	t.Helper()
	in, _, err := n.repo.Requests(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range in {
		if q.ID == id {
			return q
		}
	}
	return keyshare.RequestInfo{}
}

// An adult ward's node relays a request to her guardian's node, which is
// down at first (retried once it is up), and does so once; the guardian's
// approval reaches the ward's node and, by its poll, the clinician's; a
// request the ward answered before the guardian's node came back is not
// relayed.
func TestRelayToGuardianNode(t *testing.T) {
	ctx := t.Context()
	ward := newNode(t, "Wanda", protocol.RolePatient)
	guard := newNode(t, "Gail", protocol.RolePatient)
	doc := newNode(t, "Dr Cole", protocol.RoleClinician)
	addNote(t, ward, "blood pressure")
	appoint(t, ward, guard, protocol.RightRead, protocol.RightGrant, protocol.RightRevoke, protocol.RightApprove)
	sendChain(t, ward, guard)
	// The guardian accepts on her node; the ward's node relays only to a
	// guardian whose accept it holds.
	if _, _, err := guard.repo.AcceptWard(ctx, guard.keys, ward.keys.ID); err != nil {
		t.Fatal(err)
	}
	sendChain(t, guard, ward)
	sendChain(t, ward, doc) // the clinician knows the ward's node only

	ward.start(t)
	doc.start(t)
	connect(t, doc, ward)
	ask := func(reason string) string {
		q, err := doc.repo.NewRequest(ctx, doc.keys, ward.keys.ID, nil, reason, 0)
		if err != nil {
			t.Fatal(err)
		}
		doc.svc.Kick()
		waitFor(t, "the request in the ward's inbox", func() bool { return inboxHas(t, ward, q.ID) })
		return q.ID
	}
	first := ask("check-up")
	// The guardian's node is down: the relay waits.
	if got := inboxInfo(t, ward, first); len(got.RelayedTo) != 0 {
		t.Fatalf("relayed while the guardian's node is down: %+v", got)
	}
	// The ward answers a second request herself before the guardian's
	// node is back: that one is never relayed.
	second := ask("second opinion")
	if _, err := ward.repo.Deny(ctx, ward.keys, second, "I decide this one"); err != nil {
		t.Fatal(err)
	}

	got := &receipts{n: map[string]int{}}
	guard.start(t, Options{Interval: 200 * time.Millisecond, PollInterval: 300 * time.Millisecond, Logger: slog.New(got)})
	connect(t, guard, ward)
	waitFor(t, "the relayed request in the guardian's inbox", func() bool { return inboxHas(t, guard, first) })
	waitFor(t, "the ward's node to record the relay", func() bool {
		return len(inboxInfo(t, ward, first).RelayedTo) == 1
	})
	if q := inboxInfo(t, guard, first); !q.Relayed || q.To != ward.keys.ID || q.State != keyshare.StateNew {
		t.Fatalf("the guardian's inbox: %+v", q)
	}
	if inboxHas(t, guard, second) {
		t.Fatal("a request the ward answered was relayed")
	}

	// A third request is relayed at once; by then the first was taken
	// once only, though the rounds went on.
	third := ask("third")
	waitFor(t, "the third request at the guardian's node", func() bool { return inboxHas(t, guard, third) })
	if n := got.of(first); n != 1 {
		t.Fatalf("the first request came to the guardian's node %d times, want once", n)
	}
	if inboxHas(t, guard, second) {
		t.Fatal("a request the ward answered was relayed")
	}

	// The guardian approves on her node: the ward's node learns it (and
	// shows who answered), the clinician's poll of it brings the answer.
	if _, err := guard.repo.Approve(ctx, guard.keys, first, time.Time{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the ward's inbox to show the guardian's answer", func() bool {
		q := inboxInfo(t, ward, first)
		return q.State == keyshare.StateApproved && q.AnsweredBy == guard.keys.ID && q.ByGuardian
	})
	sendChain(t, guard, doc) // chain sync's part: the clinician verifies the guardian's act
	waitFor(t, "the clinician's outbox to say approved", func() bool { return outboxState(t, doc, first) == keyshare.StateApproved })

	// The ward answers the third herself: the guardian's node is told.
	if _, err := ward.repo.Approve(ctx, ward.keys, third, time.Time{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the guardian's inbox to show the ward's answer", func() bool {
		q := inboxInfo(t, guard, third)
		return q.State == keyshare.StateApproved && q.AnsweredBy == ward.keys.ID && !q.ByGuardian
	})
	if _, err := guard.repo.Approve(ctx, guard.keys, third, time.Time{}); err == nil {
		t.Fatal("the guardian answers a request the ward answered")
	}
}
