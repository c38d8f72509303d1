package keyshare

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/blockmrs/blockmrs/protocol"
)

// relayScene: Wanda, an adult ward on her own repo, appointed Gail her
// guardian; Dr Cole asks Wanda; Mal is a stranger. Every chain is known
// to every repo.
type relayScene struct {
	wanda, gail, cole, mal *party
	note                   cid.Cid // Wanda's record
}

func newRelayScene(t *testing.T, may ...protocol.GuardianRight) *relayScene {
	t.Helper()
	s := &relayScene{wanda: newParty(t, "Wanda", protocol.RolePatient), gail: newParty(t, "Gail", protocol.RolePatient),
		cole: newParty(t, "Dr Cole", protocol.RoleClinician), mal: newParty(t, "Mal", protocol.RolePatient)}
	s.note = addNote(t, s.wanda, "blood pressure")
	s.sync(t)
	if len(may) == 0 {
		may = allRights
	}
	if _, err := s.wanda.repo.AppointGuardian(context.Background(), s.wanda.keys, s.gail.keys.ID, may, time.Time{}); err != nil {
		t.Fatal(err)
	}
	s.sync(t)
	return s
}

// newAcceptedRelayScene is newRelayScene once Gail accepted the
// appointment, and every repo holds her accept.
func newAcceptedRelayScene(t *testing.T, may ...protocol.GuardianRight) *relayScene {
	t.Helper()
	s := newRelayScene(t, may...)
	acceptAs(t, s.gail, s.wanda.keys.ID)
	s.sync(t)
	return s
}

func (s *relayScene) sync(t *testing.T) {
	t.Helper()
	all := []*party{s.wanda, s.gail, s.cole, s.mal}
	for _, a := range all {
		for _, b := range all {
			if a != b {
				send(t, a, b)
			}
		}
	}
}

// ask makes a request of Cole's to Wanda and delivers it to Wanda's repo.
func (s *relayScene) ask(t *testing.T, reason string) RequestInfo {
	t.Helper()
	q, err := s.cole.repo.NewRequest(context.Background(), s.cole.keys, s.wanda.keys.ID, nil, reason, 0)
	if err != nil {
		t.Fatal(err)
	}
	deliver(t, s.cole, s.wanda)
	return q
}

// relaysTo returns the requests p's repo has to relay to account to.
func relaysTo(t *testing.T, p *party, to protocol.AccountID) []Outgoing {
	t.Helper()
	out, err := p.repo.Pending(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return slices.DeleteFunc(out, func(o Outgoing) bool {
		return !o.Relay || o.Kind != protocol.ReqFrameRequest || o.Target != to
	})
}

func heldRequest(t *testing.T, p *party, id string) RequestInfo {
	t.Helper()
	q, err := p.repo.FindRequest(context.Background(), Inbox, id)
	if err != nil {
		t.Fatal(err)
	}
	return q
}

// answerAs signs an answer to request id for requester to, as k.
func answerAs(t *testing.T, k *Keys, id string, to *Keys, decision string) []byte {
	t.Helper()
	a := &protocol.Answer{Request: protocol.NewLink(cid.MustParse(id)), To: to.Public(), Decision: decision, Reason: "by hand", Created: time.Now().UnixMilli()}
	if decision == protocol.DecisionApprove {
		l := protocol.NewLink(protocol.BlockCID([]byte("no grant")))
		a.Grant = &l
	}
	raw, _, err := a.Sign(k.Sign)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// A request to Wanda is relayed once to Gail, who may approve; Gail's
// answer is taken by Wanda's repo (answered by Gail, as guardian) and
// served to Cole's poll; the first answer stands.
func TestRelayToGuardianAndAnswer(t *testing.T) {
	ctx := context.Background()
	s := newAcceptedRelayScene(t)
	q := s.ask(t, "check-up")
	relays := relaysTo(t, s.wanda, s.gail.keys.ID)
	if len(relays) != 1 || relays[0].ID != q.ID {
		t.Fatalf("relays to the guardian: %+v", relays)
	}
	if _, err := s.gail.repo.ReceiveRequest(ctx, relays[0].Message, relays[0].Profile, "wanda's node"); err != nil {
		t.Fatal(err)
	}
	if err := s.wanda.repo.MarkDelivered(ctx, relays[0]); err != nil {
		t.Fatal(err)
	}
	if again := relaysTo(t, s.wanda, s.gail.keys.ID); len(again) != 0 {
		t.Fatalf("relayed again after the guardian's node took it: %+v", again)
	}
	if got := heldRequest(t, s.wanda, q.ID); !slices.Equal(got.RelayedTo, []protocol.AccountID{s.gail.keys.ID}) {
		t.Fatalf("relayed to: %v", got.RelayedTo)
	}

	ans, err := s.gail.repo.Approve(ctx, s.gail.keys, q.ID, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if ans.AnsweredBy != s.gail.keys.ID || !ans.ByGuardian {
		t.Fatalf("the guardian's inbox: %+v", ans)
	}
	pend, _ := s.gail.repo.Pending(ctx)
	var raw []byte
	for _, o := range pend {
		if o.Kind == protocol.ReqFrameAnswer && o.ID == q.ID {
			raw = o.Message
		}
	}
	got, err := s.wanda.repo.ReceiveAnswer(ctx, raw)
	if err != nil {
		t.Fatal(err)
	}
	if got.Box != Inbox || got.State != StateApproved || got.AnsweredBy != s.gail.keys.ID || !got.ByGuardian || got.Grant != ans.Grant {
		t.Fatalf("the ward's inbox after the guardian's answer: %+v", got)
	}
	if _, err := s.wanda.repo.Approve(ctx, s.wanda.keys, q.ID, time.Time{}); err == nil || !strings.Contains(err.Error(), "approved already") {
		t.Fatalf("the ward approves a request her guardian answered: %v", err)
	}
	mine := answerAs(t, s.wanda.keys, q.ID, s.cole.keys, protocol.DecisionDeny)
	if _, err := s.wanda.repo.ReceiveAnswer(ctx, mine); err == nil || !strings.Contains(err.Error(), "first answer stands") {
		t.Fatalf("a second, different answer: %v", err)
	}
	// Cole's poll of Wanda's node gets the guardian's answer.
	send(t, s.gail, s.cole)
	answers, err := s.wanda.repo.AnswersFor(ctx, []cid.Cid{cid.MustParse(q.ID)})
	if err != nil || len(answers) != 1 {
		t.Fatalf("answers for the poll: %d %v", len(answers), err)
	}
	out, err := s.cole.repo.ReceiveAnswer(ctx, answers[0])
	if err != nil {
		t.Fatal(err)
	}
	if out.Box != Outbox || out.State != StateApproved || out.AnsweredBy != s.gail.keys.ID || !out.ByGuardian {
		t.Fatalf("the requester's outbox: %+v", out)
	}
	// Answered: nothing more to relay.
	if r := relaysTo(t, s.wanda, s.gail.keys.ID); len(r) != 0 {
		t.Fatalf("relays after the answer: %+v", r)
	}
}

// The ward answering herself ends the relay: her answer is told to the
// guardian relayed to, whose inbox shows it answered by the ward.
func TestRelayWardAnswersHerself(t *testing.T) {
	ctx := context.Background()
	s := newAcceptedRelayScene(t)
	q := s.ask(t, "check-up")
	r := relaysTo(t, s.wanda, s.gail.keys.ID)[0]
	if _, err := s.gail.repo.ReceiveRequest(ctx, r.Message, r.Profile, "wanda's node"); err != nil {
		t.Fatal(err)
	}
	if err := s.wanda.repo.MarkDelivered(ctx, r); err != nil {
		t.Fatal(err)
	}
	if _, err := s.wanda.repo.Deny(ctx, s.wanda.keys, q.ID, "not now"); err != nil {
		t.Fatal(err)
	}
	pend, _ := s.wanda.repo.Pending(ctx)
	var tell *Outgoing
	for i, o := range pend {
		if o.Kind == protocol.ReqFrameAnswer && o.Relay && o.Target == s.gail.keys.ID {
			tell = &pend[i]
		}
	}
	if tell == nil {
		t.Fatalf("the guardian relayed to is not told the ward's answer: %+v", pend)
	}
	got, err := s.gail.repo.ReceiveAnswer(ctx, tell.Message)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != StateDenied || got.AnsweredBy != s.wanda.keys.ID || got.ByGuardian {
		t.Fatalf("the guardian's inbox after the ward's answer: %+v", got)
	}
	if _, err := s.gail.repo.Approve(ctx, s.gail.keys, q.ID, time.Time{}); err == nil {
		t.Fatal("the guardian approves a request the ward denied")
	}
	if err := s.wanda.repo.MarkDelivered(ctx, *tell); err != nil {
		t.Fatal(err)
	}
	pend, _ = s.wanda.repo.Pending(ctx)
	if slices.ContainsFunc(pend, func(o Outgoing) bool { return o.Relay }) {
		t.Fatalf("still relaying after the answer was told: %+v", pend)
	}
}

// Answers the ward's repo must refuse for a request in its inbox, each
// with a clear error, storing nothing.
func TestRelayAnswerAttacks(t *testing.T) {
	ctx := context.Background()
	s := newAcceptedRelayScene(t, protocol.RightRead)
	q := s.ask(t, "check-up")
	if r := relaysTo(t, s.wanda, s.gail.keys.ID); len(r) != 0 {
		t.Fatalf("relayed to a guardian without approve: %+v", r)
	}
	refused := func(name string, raw []byte, want string) {
		t.Helper()
		_, err := s.wanda.repo.ReceiveAnswer(ctx, raw)
		if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "\n") {
			t.Fatalf("%s: got %v, want one line with %q", name, err, want)
		}
		if got := heldRequest(t, s.wanda, q.ID); got.State != StateNew || got.AnsweredBy != "" {
			t.Fatalf("%s: the inbox entry changed: %+v", name, got)
		}
	}
	refused("guardian without approve", answerAs(t, s.gail.keys, q.ID, s.cole.keys, protocol.DecisionApprove), "does not let")
	refused("stranger", answerAs(t, s.mal.keys, q.ID, s.cole.keys, protocol.DecisionApprove), "is not a guardian")
	refused("to someone else", answerAs(t, s.wanda.keys, q.ID, s.mal.keys, protocol.DecisionApprove), string(RuleAnswerOtherTo))
	refused("unknown request", answerAs(t, s.wanda.keys, protocol.BlockCID([]byte("other")).String(), s.cole.keys, protocol.DecisionApprove), "no such request here")

	// With approve (widened: Gail accepts again), then removed: a
	// removed guardian answers no more.
	if _, err := s.wanda.repo.AppointGuardian(ctx, s.wanda.keys, s.gail.keys.ID, allRights, time.Time{}); err != nil {
		t.Fatal(err)
	}
	send(t, s.wanda, s.gail)
	if r := relaysTo(t, s.wanda, s.gail.keys.ID); len(r) != 0 {
		t.Fatalf("relays for widened rights before the new accept: %+v", r)
	}
	acceptAs(t, s.gail, s.wanda.keys.ID, s.wanda)
	if r := relaysTo(t, s.wanda, s.gail.keys.ID); len(r) != 1 {
		t.Fatalf("relays once the guardian may approve: %+v", r)
	}
	if _, err := s.wanda.repo.RemoveGuardian(ctx, s.wanda.keys, s.gail.keys.ID); err != nil {
		t.Fatal(err)
	}
	if r := relaysTo(t, s.wanda, s.gail.keys.ID); len(r) != 0 {
		t.Fatalf("relays to a removed guardian: %+v", r)
	}
	refused("removed guardian", answerAs(t, s.gail.keys, q.ID, s.cole.keys, protocol.DecisionApprove), "removed")

	// A replayed answer to another request changes only that one: the
	// ward's answer to an earlier request, replayed, leaves q new.
	first := s.ask(t, "earlier")
	if _, err := s.wanda.repo.Deny(ctx, s.wanda.keys, first.ID, "no"); err != nil {
		t.Fatal(err)
	}
	p, _ := s.wanda.repo.Pending(ctx)
	for _, o := range p {
		if o.Kind == protocol.ReqFrameAnswer && o.ID == first.ID {
			got, err := s.wanda.repo.ReceiveAnswer(ctx, o.Message)
			if err != nil || got.ID != first.ID {
				t.Fatalf("replayed answer: %+v %v", got, err)
			}
		}
	}
	if got := heldRequest(t, s.wanda, q.ID); got.State != StateNew {
		t.Fatalf("a replayed answer to another request changed q: %+v", got)
	}
	mustVerify(t, s.wanda)
}

// Once Gail granted Cole Wanda's record as her guardian, Wanda's repo
// gives Gail's profile to Cole's node (entitled to Gail's chain there), so
// it can start Gail's chain; a stranger's node still gets nothing.
func TestRelayGuardianProfileToGrantee(t *testing.T) {
	ctx := context.Background()
	s := newAcceptedRelayScene(t)
	coleNode, malNode := newPeerID(t), newPeerID(t)
	for _, p := range []struct {
		who  *party
		node string
	}{{s.cole, coleNode}, {s.mal, malNode}} {
		if _, err := p.who.repo.SetDevice(ctx, p.who.keys, p.node, "", false); err != nil {
			t.Fatal(err)
		}
	}
	s.sync(t)
	profileTo := func(node string) Decision {
		t.Helper()
		d, err := s.wanda.repo.MayServeProfile(ctx, node, s.gail.keys.ID)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	if d := profileTo(coleNode); d.Allow {
		t.Fatalf("Gail's profile to Cole's node before any grant: %+v", d)
	}
	q := s.ask(t, "check-up")
	r := relaysTo(t, s.wanda, s.gail.keys.ID)[0]
	if _, err := s.gail.repo.ReceiveRequest(ctx, r.Message, r.Profile, "wanda's node"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.gail.repo.Approve(ctx, s.gail.keys, q.ID, time.Time{}); err != nil {
		t.Fatal(err)
	}
	send(t, s.gail, s.wanda)
	if d := profileTo(coleNode); !d.Allow || d.Rule != RuleProfileChain {
		t.Fatalf("Gail's profile to Cole's node after her grant: %+v", d)
	}
	if d := profileTo(malNode); d.Allow || d.Rule != RuleProfileRefused {
		t.Fatalf("Gail's profile to a stranger's node: %+v", d)
	}
}

// A request relayed to Gail stays "new" in her inbox after Wanda removes
// her as guardian, but is listed as no longer hers to answer, and her
// approve is refused; while she holds the right it is hers.
func TestRelayedRequestNoLongerYoursAfterRemoval(t *testing.T) {
	ctx := context.Background()
	s := newAcceptedRelayScene(t)
	q := s.ask(t, "check-up")
	relays := relaysTo(t, s.wanda, s.gail.keys.ID)
	if len(relays) != 1 {
		t.Fatalf("relays to the guardian: %+v", relays)
	}
	if _, err := s.gail.repo.ReceiveRequest(ctx, relays[0].Message, relays[0].Profile, "wanda's node"); err != nil {
		t.Fatal(err)
	}
	if got := heldRequest(t, s.gail, q.ID); got.NoLongerYours || got.State != StateNew {
		t.Fatalf("the guardian's inbox while she may approve: %+v", got)
	}
	if _, err := s.wanda.repo.RemoveGuardian(ctx, s.wanda.keys, s.gail.keys.ID); err != nil {
		t.Fatal(err)
	}
	send(t, s.wanda, s.gail)
	got := heldRequest(t, s.gail, q.ID)
	if !got.NoLongerYours || got.State != StateNew {
		t.Fatalf("the guardian's inbox after her removal: %+v", got)
	}
	if _, err := s.gail.repo.Approve(ctx, s.gail.keys, q.ID, time.Time{}); err == nil {
		t.Fatal("a removed guardian approved a relayed request")
	}
	// Wanda's own inbox never flags her own request.
	if own := heldRequest(t, s.wanda, q.ID); own.NoLongerYours {
		t.Fatalf("the ward's own request flagged: %+v", own)
	}
}
