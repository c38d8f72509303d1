package requests

import (
	"bufio"
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/protocol"
)

// Gail, removed as Wanda's guardian, pushes her deny of Dr Cole's request
// to his node over libp2p, hoping to be the first answer there. His node
// holds Wanda's removal but an older copy of Gail's chain than Wanda's
// node cut at (Gail wrote blocks only Wanda's node saw): it refuses the
// answer (answer/removed) with a one-line error frame saying so, the outbox stays
// delivered, and Wanda's own answer is the one that stands.
func TestRemovedGuardianAnswerPushedToRequester(t *testing.T) {
	ctx := t.Context()
	ward := newNode(t, "Wanda", protocol.RolePatient)
	guard := newNode(t, "Gail", protocol.RolePatient)
	doc := newNode(t, "Dr Cole", protocol.RoleClinician)
	addNote(t, ward, "blood pressure")
	appoint(t, ward, guard, protocol.RightRead, protocol.RightApprove)
	sendChain(t, guard, doc)
	sendChain(t, doc, ward) // Wanda's node pushes her answer to Cole's
	addNote(t, guard, "a note of her own")
	addNote(t, guard, "another")
	sendChain(t, guard, ward)
	if _, err := ward.repo.RemoveGuardian(ctx, ward.keys, guard.keys.ID); err != nil {
		t.Fatal(err)
	}
	sendChain(t, ward, doc)

	ward.start(t)
	doc.start(t)
	guard.start(t)
	connect(t, doc, ward)
	connect(t, guard, doc)
	q, err := doc.repo.NewRequest(ctx, doc.keys, ward.keys.ID, nil, "check-up", 0)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the request in the ward's inbox", func() bool { return inboxHas(t, ward, q.ID) })
	waitFor(t, "the outbox to say delivered", func() bool { return outboxState(t, doc, q.ID) == keyshare.StateDelivered })

	a := &protocol.Answer{Request: protocol.NewLink(cid.MustParse(q.ID)), To: doc.keys.Public(),
		Decision: protocol.DecisionDeny, Reason: "I say no", Created: time.Now().UnixMilli()}
	raw, _, err := a.Sign(guard.keys.Sign)
	if err != nil {
		t.Fatal(err)
	}
	reply, err := sendRaw(t, guard.host, doc.host.ID(), frame(t, &protocol.RequestFrame{Kind: protocol.ReqFrameAnswer, Message: raw}))
	if err != nil {
		t.Fatal(err)
	}
	body, err := protocol.ReadFrame(bufio.NewReader(bytes.NewReader(reply)), protocol.MaxRequestFrameSize)
	if err != nil {
		t.Fatal(err)
	}
	f, err := protocol.DecodeRequestFrame(body)
	if err != nil || f.Kind != protocol.ReqFrameError || !strings.Contains(f.Error, "removed as guardian") || strings.Contains(f.Error, "\n") {
		t.Fatalf("the removed guardian's answer, pushed: %+v %v", f, err)
	}
	if got := outboxState(t, doc, q.ID); got != keyshare.StateDelivered {
		t.Fatalf("the outbox after the refused answer: %s", got)
	}

	if _, err := ward.repo.Approve(ctx, ward.keys, q.ID, time.Time{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the outbox to show Wanda's approval", func() bool { return outboxState(t, doc, q.ID) == keyshare.StateApproved })
}
