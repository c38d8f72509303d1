package keyshare

import (
	"context"
	"slices"
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
	s := newAcceptedRelayScene(t)
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
	s := newAcceptedRelayScene(t)
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
	s := newAcceptedRelayScene(t)
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

// Mal floods Gail's node with requests to her ward Wanda, delivered
// straight to it: the inbox bound per requester holds there as on the
// ward's node (one line saying what is wrong), nothing of the refused
// request is stored, and another requester's request still gets in.
func TestGuardianInboxBound(t *testing.T) {
	ctx := context.Background()
	s := newAcceptedRelayScene(t)
	var last error
	for i := 0; i <= MaxInboxPerRequester; i++ {
		_, o := s.request(t, s.mal)
		_, last = s.gail.repo.ReceiveRequest(ctx, o.Message, o.Profile, "mal's node")
		if i < MaxInboxPerRequester && last != nil {
			t.Fatalf("request %d refused: %v", i, last)
		}
	}
	if last == nil || !strings.Contains(last.Error(), "unanswered requests here") || strings.Contains(last.Error(), "\n") {
		t.Fatalf("request past the bound on the guardian's node: %v", last)
	}
	inbox, _, err := s.gail.repo.Requests(ctx)
	if err != nil || len(inbox) != MaxInboxPerRequester {
		t.Fatalf("the guardian's inbox holds %d, want %d: %v", len(inbox), MaxInboxPerRequester, err)
	}
	q, err := s.cole.repo.NewRequest(ctx, s.cole.keys, s.wanda.keys.ID, nil, "check-up", 0)
	if err != nil {
		t.Fatal(err)
	}
	deliver(t, s.cole, s.gail)
	if got := heldRequest(t, s.gail, q.ID); got.State != StateNew {
		t.Fatalf("Cole's request on the flooded guardian's node: %+v", got)
	}
}

// The same request delivered to Wanda's node again and again, and the
// relay's delivery reported twice, make one relay to Gail and one entry
// in RelayedTo: RelayedTo is bounded by Wanda's guardians.
func TestRelayRepeatedDelivery(t *testing.T) {
	ctx := context.Background()
	s := newAcceptedRelayScene(t)
	q, msg := s.request(t, s.cole)
	for range 3 {
		if _, err := s.wanda.repo.ReceiveRequest(ctx, msg.Message, msg.Profile, "peer"); err != nil {
			t.Fatal(err)
		}
	}
	r := relaysTo(t, s.wanda, s.gail.keys.ID)
	if len(r) != 1 {
		t.Fatalf("relays of a request delivered three times: %+v", r)
	}
	for range 2 {
		if err := s.wanda.repo.MarkDelivered(ctx, r[0]); err != nil {
			t.Fatal(err)
		}
	}
	got := heldRequest(t, s.wanda, q.ID)
	if len(got.RelayedTo) != 1 || got.RelayedTo[0] != s.gail.keys.ID {
		t.Fatalf("relayed to: %v", got.RelayedTo)
	}
	if again := relaysTo(t, s.wanda, s.mal.keys.ID); len(again) != 0 {
		t.Fatalf("relays to a stranger: %+v", again)
	}
}

// A guardian appointed until a time that has passed is relayed nothing
// and her answer is refused, on the ward's node, by its clock.
func TestRelayGuardianPastUntil(t *testing.T) {
	ctx := context.Background()
	now := time.Now()
	clock := func() time.Time { return now }
	wanda := newPartyWith(t, "Wanda", protocol.RolePatient, Options{Clock: func() time.Time { return clock() }})
	gail, cole := newParty(t, "Gail", protocol.RolePatient), newParty(t, "Dr Cole", protocol.RoleClinician)
	addNote(t, wanda, "blood pressure")
	for _, p := range []*party{gail, cole} {
		send(t, p, wanda)
		send(t, wanda, p)
	}
	send(t, gail, cole)
	if _, err := wanda.repo.AppointGuardian(ctx, wanda.keys, gail.keys.ID, allRights, now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	send(t, wanda, gail)
	acceptAs(t, gail, wanda.keys.ID, wanda)
	q, err := cole.repo.NewRequest(ctx, cole.keys, wanda.keys.ID, nil, "check-up", 0)
	if err != nil {
		t.Fatal(err)
	}
	deliver(t, cole, wanda)
	if r := relaysTo(t, wanda, gail.keys.ID); len(r) != 1 {
		t.Fatalf("relays while the appointment runs: %+v", r)
	}
	later := now.Add(2 * time.Hour)
	clock = func() time.Time { return later }
	if r := relaysTo(t, wanda, gail.keys.ID); len(r) != 0 {
		t.Fatalf("relays past the appointment's until: %+v", r)
	}
	_, err = wanda.repo.ReceiveAnswer(ctx, answerAs(t, gail.keys, q.ID, cole.keys, protocol.DecisionApprove))
	if err == nil || !strings.Contains(err.Error(), string(RuleAnswerNotAsked)) {
		t.Fatalf("the guardian's answer past her until: %v", err)
	}
	if got := heldRequest(t, wanda, q.ID); got.State != StateNew {
		t.Fatalf("the inbox entry changed: %+v", got)
	}
}

// Cole's node delivers his request straight to Gail's node first, then
// Wanda's node relays the same request there: Gail's node must still
// learn it came from Wanda's node, or her answer never reaches Wanda's,
// which keeps the request open and could give a second, different answer.
func TestRelayAfterDirectDelivery(t *testing.T) {
	ctx := context.Background()
	s := newAcceptedRelayScene(t)
	wandaNode := s.declareNode(t, s.wanda)
	q, msg := s.request(t, s.cole)
	for _, p := range []*party{s.gail, s.wanda} {
		if _, err := p.repo.ReceiveRequest(ctx, msg.Message, msg.Profile, "cole's node"); err != nil {
			t.Fatal(err)
		}
	}
	r := relaysTo(t, s.wanda, s.gail.keys.ID)
	if len(r) != 1 {
		t.Fatalf("relays: %+v", r)
	}
	if _, err := s.gail.repo.ReceiveRequest(ctx, r[0].Message, r[0].Profile, wandaNode); err != nil {
		t.Fatal(err)
	}
	if got := heldRequest(t, s.gail, q.ID); !got.Relayed {
		t.Fatalf("the guardian's node does not know a node of the ward holds the request: %+v", got)
	}
	if _, err := s.gail.repo.Deny(ctx, s.gail.keys, q.ID, "no"); err != nil {
		t.Fatal(err)
	}
	pend, _ := s.gail.repo.Pending(ctx)
	if !slices.ContainsFunc(pend, func(o Outgoing) bool {
		return o.Kind == protocol.ReqFrameAnswer && o.Relay && o.Target == s.wanda.keys.ID
	}) {
		t.Fatalf("the guardian's answer is not told to the ward's node: %+v", pend)
	}
}

// Only a node the ward's chain declares makes a request relayed: Mal's
// node, redelivering a request Gail's node holds, does not.
func TestRelayedOnlyFromTheWardsNode(t *testing.T) {
	ctx := context.Background()
	s := newAcceptedRelayScene(t)
	q, msg := s.request(t, s.cole)
	for _, from := range []string{"cole's node", newPeerID(t)} {
		if _, err := s.gail.repo.ReceiveRequest(ctx, msg.Message, msg.Profile, from); err != nil {
			t.Fatal(err)
		}
	}
	if got := heldRequest(t, s.gail, q.ID); got.Relayed {
		t.Fatalf("a redelivery by a stranger's node marks the request relayed: %+v", got)
	}
}

// Dr Cole, whom Gail denied as Wanda's guardian, asks Wanda's node for
// Gail's profile and the head of Wanda's chain: a denial grants nothing,
// so neither is his (profile/refused, and Wanda's chain stays closed).
func TestDeniedRequesterGetsNoGuardianProfile(t *testing.T) {
	ctx := context.Background()
	s := newAcceptedRelayScene(t)
	coleNode := s.declareNode(t, s.cole)
	q := s.ask(t, "check-up")
	r := relaysTo(t, s.wanda, s.gail.keys.ID)[0]
	if _, err := s.gail.repo.ReceiveRequest(ctx, r.Message, r.Profile, "wanda's node"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.gail.repo.Deny(ctx, s.gail.keys, q.ID, "no"); err != nil {
		t.Fatal(err)
	}
	deliver(t, s.gail, s.wanda)
	if got := heldRequest(t, s.wanda, q.ID); got.State != StateDenied || got.AnsweredBy != s.gail.keys.ID {
		t.Fatalf("the ward's inbox after the guardian's denial: %+v", got)
	}
	d, err := s.wanda.repo.MayServeProfile(ctx, coleNode, s.gail.keys.ID)
	if err != nil || d.Allow || d.Rule != RuleProfileRefused {
		t.Fatalf("Gail's profile to the denied clinician's node: %+v %v", d, err)
	}
	d, err = s.wanda.repo.MayServe(ctx, coleNode, s.wanda.repo.mustHead(t, s.wanda.keys.ID))
	if err != nil || d.Allow {
		t.Fatalf("the head of Wanda's chain to the denied clinician's node: %+v %v", d, err)
	}
}

// declareNode declares a new node of p's on its chain, known to every
// repo of the scene, and returns its peer ID.
func (s *relayScene) declareNode(t *testing.T, p *party) string {
	t.Helper()
	node := newPeerID(t)
	if _, err := p.repo.SetDevice(context.Background(), p.keys, node, "", false); err != nil {
		t.Fatal(err)
	}
	s.sync(t)
	return node
}

// request makes a request of from's to Wanda and returns it with the
// message its repo has to deliver, not delivered yet.
func (s *relayScene) request(t *testing.T, from *party) (RequestInfo, Outgoing) {
	t.Helper()
	ctx := context.Background()
	q, err := from.repo.NewRequest(ctx, from.keys, s.wanda.keys.ID, nil, "check-up", 0)
	if err != nil {
		t.Fatal(err)
	}
	pend, err := from.repo.Pending(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range pend {
		if o.ID == q.ID {
			return q, o
		}
	}
	t.Fatalf("request %s not pending", q.ID)
	return q, Outgoing{}
}
