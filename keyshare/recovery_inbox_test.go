package keyshare

import (
	"context"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/blockmrs/blockmrs/protocol"
)

// A contact's node keeps a delivered request once (a redelivery changes
// nothing), shows it with the safety code the recovering repo shows, and
// after its contact approves by inbox ID holds the response for the
// recovering repo's poll, which counts it.
func TestRecoveryInboxKeepsAndAnswers(t *testing.T) {
	ctx := context.Background()
	w := newRecoveryWorld(t, 2)
	req := w.start(t)
	status, err := w.fresh.repo.RecoveryStatus(ctx, w.pat.keys.ID)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		it, err := w.c1.repo.ReceiveRecoveryRequest(ctx, req, "peer")
		if err != nil {
			t.Fatal(err)
		}
		if it.ID != status.Request || it.SafetyCode != status.SafetyCode || it.Account != w.pat.keys.ID {
			t.Fatalf("kept %+v; the recovering repo shows %s, code %s", it, status.Request, status.SafetyCode)
		}
	}
	list, err := w.c1.repo.RecoveryRequests(ctx)
	if err != nil || len(list) != 1 || len(list[0].Contacts) != 1 || list[0].Contacts[0] != w.c1.keys.ID || len(list[0].Approved) != 0 || list[0].Others != 0 {
		t.Fatalf("inbox after a redelivery: %+v, %v", list, err)
	}
	if resps, _ := w.c1.repo.RecoveryResponsesFor(ctx, protocol.RecoveryRequestID(req)); len(resps) != 0 {
		t.Fatal("a response before any approval")
	}
	if _, err := w.c1.repo.ApproveKeptRecovery(ctx, w.c1.keys, strings.ToUpper(status.Request)); err != nil {
		t.Fatal(err)
	}
	resps, err := w.c1.repo.RecoveryResponsesFor(ctx, protocol.RecoveryRequestID(req))
	if err != nil || len(resps) != 1 {
		t.Fatalf("responses held: %d, %v", len(resps), err)
	}
	s, err := w.fresh.repo.AddRecoveryResponse(ctx, w.pat.keys.ID, resps[0])
	if err != nil || len(s.Approved) != 1 || s.Approved[0] != w.c1.keys.ID {
		t.Fatalf("the polled response: %+v, %v", s, err)
	}
	if list, _ := w.c1.repo.RecoveryRequests(ctx); len(list[0].Approved) != 1 {
		t.Fatalf("the inbox does not show the approval: %+v", list)
	}
	if s.SafetyCode != RecoverySafetyCode(protocol.RecoveryRequestID(req)) || len(s.SafetyCode) != len("123-456-789") {
		t.Fatalf("safety code %q", s.SafetyCode)
	}
}

// Attacks on the inbox: a stranger's node and a node without the chain
// keep nothing; a flood for one account stops at the bound; a request
// denied here, replayed, is refused, and so is an old one; a response to
// an earlier request does not count for the new one.
func TestRecoveryInboxAttacks(t *testing.T) {
	ctx := context.Background()
	w := newRecoveryWorld(t, 2)
	req := w.start(t)
	refused := func(what string, err error, want string) {
		t.Helper()
		if !errors.Is(err, ErrRecovery) || !strings.Contains(err.Error(), want) {
			t.Fatalf("%s: %v, want a refusal saying %q", what, err, want)
		}
	}
	_, err := w.stranger.repo.ReceiveRecoveryRequest(ctx, req, "peer")
	refused("a stranger's node", err, "names no account of this node")
	empty := newParty(t, "Ned", protocol.RolePatient)
	_, err = empty.repo.ReceiveRecoveryRequest(ctx, req, "peer")
	refused("a node without the chain", err, "names no account of this node")
	if l, _ := w.stranger.repo.RecoveryRequests(ctx); len(l) != 0 {
		t.Fatalf("the stranger keeps %+v", l)
	}

	// Denied, then replayed.
	if _, err := w.c2.repo.ReceiveRecoveryRequest(ctx, req, "peer"); err != nil {
		t.Fatal(err)
	}
	id := hex.EncodeToString(protocol.RecoveryRequestID(req))
	if err := w.c2.repo.DenyRecoveryRequest(ctx, id); err != nil {
		t.Fatal(err)
	}
	if _, err := w.c2.repo.ApproveKeptRecovery(ctx, w.c2.keys, id); err == nil || !strings.Contains(err.Error(), "no recovery request") {
		t.Fatalf("approved a denied request: %v", err)
	}
	_, err = w.c2.repo.ReceiveRecoveryRequest(ctx, req, "peer")
	refused("a denied request replayed", err, "denied here")

	// A flood: new requests for pat (each start makes one) fill the
	// account's share of the inbox; the next is refused.
	old := approve(t, w.c3, req)
	for i := range MaxRecoveryInboxPerAccount + 1 {
		if err := w.fresh.repo.CancelRecovery(ctx, w.pat.keys.ID); err != nil {
			t.Fatal(err)
		}
		next := w.start(t)
		_, err := w.c1.repo.ReceiveRecoveryRequest(ctx, next, "peer")
		if i < MaxRecoveryInboxPerAccount && err != nil {
			t.Fatalf("request %d refused: %v", i, err)
		}
		if i == MaxRecoveryInboxPerAccount {
			refused("a flood", err, "deny some first")
		}
	}
	l, _ := w.c1.repo.RecoveryRequests(ctx)
	if len(l) != MaxRecoveryInboxPerAccount {
		t.Fatalf("the inbox holds %d requests, bound %d", len(l), MaxRecoveryInboxPerAccount)
	}
	// Several requests for one account at once: each says how many others
	// there are, so the faces warn that only one can be the owner's.
	for _, it := range l {
		if it.Others != MaxRecoveryInboxPerAccount-1 {
			t.Fatalf("request %s of %d for one account says %d others", it.ID, len(l), it.Others)
		}
	}
	if err := w.c1.repo.DenyRecoveryRequest(ctx, l[0].ID); err != nil {
		t.Fatal(err)
	}
	if l, _ := w.c1.repo.RecoveryRequests(ctx); len(l) != MaxRecoveryInboxPerAccount-1 || l[0].Others != MaxRecoveryInboxPerAccount-2 {
		t.Fatalf("after denying one: %+v", l)
	}
	// The response to the first request, for the last one.
	_, err = w.fresh.repo.AddRecoveryResponse(ctx, w.pat.keys.ID, old)
	refused("a response to another request", err, "answers another request")

	// A request past its time: Lee's node keeps it, drops it from the
	// inbox two weeks on, and refuses it replayed then.
	var skew time.Duration
	lee := newPartyWith(t, "Lee", protocol.RolePatient, Options{Clock: func() time.Time { return time.Now().Add(skew) }})
	ann := newParty(t, "Ann", protocol.RolePatient)
	send(t, lee, ann)
	if _, err := ann.repo.SetupRecovery(ctx, ann.keys, []protocol.AccountID{lee.keys.ID}, 1); err != nil {
		t.Fatal(err)
	}
	send(t, ann, lee)
	annNew := newParty(t, "Other", protocol.RolePatient)
	send(t, &party{repo: lee.repo, keys: ann.keys}, annNew)
	st, err := annNew.repo.StartRecovery(ctx, ann.keys.ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	stale, _ := hex.DecodeString(st.Token)
	if _, err := lee.repo.ReceiveRecoveryRequest(ctx, stale, "peer"); err != nil {
		t.Fatal(err)
	}
	skew = MaxRecoveryRequestAge + time.Hour
	if l, _ := lee.repo.RecoveryRequests(ctx); len(l) != 0 {
		t.Fatalf("an expired request is still listed: %+v", l)
	}
	_, err = lee.repo.ReceiveRecoveryRequest(ctx, stale, "peer")
	refused("an old request", err, "outside the")

	// Inbox IDs that are not request IDs touch nothing.
	for _, bad := range []string{"../recovering/" + string(w.pat.keys.ID), strings.Repeat("z", recoveryIDHex), ""} {
		if err := w.fresh.repo.DenyRecoveryRequest(ctx, bad); err == nil || !strings.Contains(err.Error(), "hex characters") {
			t.Fatalf("deny %q: %v", bad, err)
		}
		if _, err := w.c1.repo.ApproveKeptRecovery(ctx, w.c1.keys, bad); err == nil {
			t.Fatalf("approve %q: no error", bad)
		}
	}
	if _, err := w.fresh.repo.RecoveryStatus(ctx, w.pat.keys.ID); err != nil {
		t.Fatalf("the started recovery is gone: %v", err)
	}
}
