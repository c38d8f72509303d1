package requests

import (
	"bufio"
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/protocol"
)

// Dr Cole's node (or Wanda's) sends Gail's node a request for Wanda,
// whose appointment of Gail is pending, then declined: the error frame
// back reads as for a ward nobody here was appointed by, so the sender
// learns neither that Gail is Wanda's guardian here nor her answer
// (SECURITY.md: a declined ward's node learns nothing of the decline).
// Gail's own node still knows why: the refusal's reason, kept from the
// error frame, says the appointment is not accepted, or declined.
func TestRefusedRelayTellsNoConsent(t *testing.T) {
	ctx := t.Context()
	ward := newNode(t, "Wanda", protocol.RolePatient)
	guard := newNode(t, "Gail", protocol.RolePatient)
	doc := newNode(t, "Dr Cole", protocol.RoleClinician)
	stranger := newNode(t, "Mal", protocol.RolePatient)
	appoint(t, ward, guard, protocol.RightRead, protocol.RightApprove)
	sendChain(t, ward, guard)
	sendChain(t, stranger, guard)
	sendChain(t, ward, doc)
	sendChain(t, stranger, doc)
	guard.start(t)
	doc.start(t)
	connect(t, doc, guard)

	// refusal sends Gail's node Cole's request to account to and returns
	// the error frame's text and the request's ID; why is the reason
	// Gail's node gives itself for the last refusal.
	var why string
	refusal := func(to *testNode) (string, string) {
		t.Helper()
		q, err := doc.repo.NewRequest(ctx, doc.keys, to.keys.ID, nil, "check-up", 0)
		if err != nil {
			t.Fatal(err)
		}
		out, err := doc.repo.Pending(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range out {
			if o.ID != q.ID || o.Kind != protocol.ReqFrameRequest {
				continue
			}
			reply, err := sendRaw(t, doc.host, guard.host.ID(), frame(t, &protocol.RequestFrame{Kind: protocol.ReqFrameRequest, Message: o.Message, Profile: o.Profile}))
			if err != nil {
				t.Fatal(err)
			}
			body, err := protocol.ReadFrame(bufio.NewReader(bytes.NewReader(reply)), protocol.MaxRequestFrameSize)
			if err != nil {
				t.Fatal(err)
			}
			f, err := protocol.DecodeRequestFrame(body)
			if err != nil || f.Kind != protocol.ReqFrameError {
				t.Fatalf("Gail's node took a request for %s: %+v %v", to.keys.ID, f, err)
			}
			_, err = guard.repo.ReceiveRequest(ctx, o.Message, o.Profile, doc.host.ID().String())
			var na *keyshare.NotAddressedError
			if !errors.As(err, &na) {
				t.Fatalf("Gail's repo on the request for %s: %v", to.keys.ID, err)
			}
			why = na.Why
			return f.Error, q.ID
		}
		t.Fatalf("request %s not in Cole's outbox", q.ID)
		return "", ""
	}
	same := func(got, id string, to *testNode, other, otherID string, otherTo *testNode) bool {
		return strings.ReplaceAll(strings.ReplaceAll(got, id, "ID"), string(to.keys.ID), "TO") ==
			strings.ReplaceAll(strings.ReplaceAll(other, otherID, "ID"), string(otherTo.keys.ID), "TO")
	}
	base, baseID := refusal(stranger)
	for _, state := range []string{"pending", "declined"} {
		if state == "declined" {
			if _, _, err := guard.repo.DeclineWard(ctx, guard.keys, ward.keys.ID); err != nil {
				t.Fatal(err)
			}
		}
		got, id := refusal(ward)
		if want := map[string]string{"pending": "accept", "declined": "declin"}[state]; !strings.Contains(why, want) {
			t.Errorf("%s: Gail's node does not say why to itself (%q): %q", state, want, why)
		}
		for _, leak := range []string{"accept", "declin", "guardian", string(guard.keys.ID)} {
			if strings.Contains(got, leak) {
				t.Errorf("%s: the refusal tells %q: %s", state, leak, got)
			}
		}
		if !same(got, id, ward, base, baseID, stranger) {
			t.Errorf("%s: the refusal differs from one for a stranger's request:\n%s\n%s", state, got, base)
		}
	}
}
