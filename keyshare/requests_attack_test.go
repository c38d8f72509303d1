package keyshare

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/blockmrs/blockmrs/protocol"
)

// A removed guardian's answer reaching the requester's repo, which holds
// the ward's removal but an older copy of the guardian's chain than the
// ward's node held when it cut (the guardian wrote blocks only the ward's
// node saw): judged by its next block there, the answer would fall
// inside the span. An answer is an act of now, so a removal ends it
// whatever the verifier holds of the guardian's chain (answer/removed).
func TestRemovedGuardianAnswerOnAStaleRequester(t *testing.T) {
	ctx := context.Background()
	s := newRelayScene(t)
	// Gail writes blocks only Wanda's repo sees; Wanda then removes her,
	// cutting past them.
	addNote(t, s.gail, "my own note")
	addNote(t, s.gail, "another")
	send(t, s.gail, s.wanda)
	if _, err := s.wanda.repo.RemoveGuardian(ctx, s.wanda.keys, s.gail.keys.ID); err != nil {
		t.Fatal(err)
	}
	deliverChain(t, s.wanda, s.cole.repo)
	q, err := s.cole.repo.NewRequest(ctx, s.cole.keys, s.wanda.keys.ID, nil, "check-up", 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{protocol.DecisionDeny, protocol.DecisionApprove} {
		_, err := s.cole.repo.ReceiveAnswer(ctx, answerAs(t, s.gail.keys, q.ID, s.cole.keys, d))
		if err == nil || !strings.Contains(err.Error(), string(RuleAnswerRemoved)) || strings.Contains(err.Error(), "\n") {
			t.Fatalf("the removed guardian's %s, on the requester's repo: %v", d, err)
		}
	}
	if got, err := s.cole.repo.FindRequest(ctx, Outbox, q.ID); err != nil || got.AnsweredBy != "" || got.State != StatePendingDelivery {
		t.Fatalf("the outbox entry changed: %+v %v", got, err)
	}
	// Wanda's own answer is still the one that stands.
	got, err := s.cole.repo.ReceiveAnswer(ctx, answerAs(t, s.wanda.keys, q.ID, s.cole.keys, protocol.DecisionDeny))
	if err != nil || got.AnsweredBy != s.wanda.keys.ID || got.State != StateDenied {
		t.Fatalf("the ward's answer after the refused ones: %+v %v", got, err)
	}
}

// A guardian appointed again after her removal answers again: the new
// appointment's span is open.
func TestReappointedGuardianAnswers(t *testing.T) {
	ctx := context.Background()
	s := newRelayScene(t)
	if _, err := s.wanda.repo.RemoveGuardian(ctx, s.wanda.keys, s.gail.keys.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.wanda.repo.AppointGuardian(ctx, s.wanda.keys, s.gail.keys.ID, allRights, time.Time{}); err != nil {
		t.Fatal(err)
	}
	deliverChain(t, s.wanda, s.cole.repo)
	q, err := s.cole.repo.NewRequest(ctx, s.cole.keys, s.wanda.keys.ID, nil, "check-up", 0)
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.cole.repo.ReceiveAnswer(ctx, answerAs(t, s.gail.keys, q.ID, s.cole.keys, protocol.DecisionDeny))
	if err != nil || got.AnsweredBy != s.gail.keys.ID || !got.ByGuardian {
		t.Fatalf("the re-appointed guardian's answer: %+v %v", got, err)
	}
}

// A guardian's node holding a request to her ward relays it nowhere: only
// a node of the account asked relays, so a request delivered straight to
// Gail's node (by Mal's, say) never reaches Harry, Wanda's other guardian,
// through Gail's, nor goes back to Wanda's nodes as if relayed from them.
func TestGuardianNodeDoesNotRelay(t *testing.T) {
	ctx := context.Background()
	s := newRelayScene(t)
	harry := newParty(t, "Harry", protocol.RolePatient)
	for _, p := range []*party{s.wanda, s.gail, s.cole} {
		send(t, harry, p)
	}
	if _, err := s.wanda.repo.AppointGuardian(ctx, s.wanda.keys, harry.keys.ID, allRights, time.Time{}); err != nil {
		t.Fatal(err)
	}
	deliverChain(t, s.wanda, s.gail.repo)
	q, err := s.cole.repo.NewRequest(ctx, s.cole.keys, s.wanda.keys.ID, nil, "check-up", 0)
	if err != nil {
		t.Fatal(err)
	}
	deliver(t, s.cole, s.gail)
	held := heldRequest(t, s.gail, q.ID)
	if held.Relayed {
		t.Fatalf("a request straight from the requester shows as relayed by the ward's node: %+v", held)
	}
	pend, err := s.gail.repo.Pending(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range pend {
		if o.Relay {
			t.Fatalf("the guardian's node relays: %+v", o)
		}
	}
	// Gail's answer goes to Cole only: Wanda's node did not relay it.
	if _, err := s.gail.repo.Deny(ctx, s.gail.keys, q.ID, "no"); err != nil {
		t.Fatal(err)
	}
	pend, _ = s.gail.repo.Pending(ctx)
	if len(pend) != 1 || pend[0].Relay || pend[0].Target != s.cole.keys.ID {
		t.Fatalf("after the guardian's answer: %+v", pend)
	}
}
