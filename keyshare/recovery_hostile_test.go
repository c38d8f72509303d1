package keyshare

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/blockmrs/blockmrs/protocol"
)

// thiefRequest is a recovery request for account made by someone holding
// only its chain: signed by her own new key priv, dated at.
func thiefRequest(t *testing.T, account protocol.AccountID, priv ed25519.PrivateKey, at time.Time) []byte {
	t.Helper()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	q := &protocol.RecoveryRequest{Account: keyOf(account), Key: priv.Public().(ed25519.PublicKey),
		Recipient: id.Recipient().String(), Time: at.UnixMilli()}
	raw, err := q.Sign(priv)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// A thief holding pat's chain (the stranger has it) at a contact's inbox:
// her request shows another safety code than pat's; she cannot move pat's
// request (and code) to her key; a flood of hers does not evict pat's
// request; denied, the same key re-signed with another time is refused
// (recovery/inbox-replay); polling pat's request she gets a response that
// counts for neither her recovery nor, rebound, her request.
func TestRecoveryThiefAtTheInbox(t *testing.T) {
	ctx := context.Background()
	w := newRecoveryWorld(t, 2)
	req := w.start(t)
	pat, err := w.c1.repo.ReceiveRecoveryRequest(ctx, req, "pat's node")
	if err != nil {
		t.Fatal(err)
	}
	refused := func(what string, err error, want string) {
		t.Helper()
		if !errors.Is(err, ErrRecovery) || !strings.Contains(err.Error(), want) {
			t.Fatalf("%s: %v, want a refusal saying %q", what, err, want)
		}
	}

	// The safety code is bound to the request, and the request to its key:
	// pat's request with the thief's key in it fails its signature.
	thief := testPriv(77)
	q, err := protocol.DecodeRecoveryRequest(req)
	if err != nil {
		t.Fatal(err)
	}
	moved := bytes.Replace(req, q.Key, thief.Public().(ed25519.PublicKey), 1)
	if bytes.Equal(moved, req) {
		t.Fatal("the new key is not in the request's bytes")
	}
	if _, err := w.c1.repo.ReceiveRecoveryRequest(ctx, moved, "mal"); err == nil || !strings.Contains(err.Error(), "bad signature") {
		t.Fatalf("pat's request moved to the thief's key: %v", err)
	}
	own, err := w.c1.repo.ReceiveRecoveryRequest(ctx, thiefRequest(t, w.pat.keys.ID, thief, time.Now()), "mal")
	if err != nil {
		t.Fatal(err)
	}
	if own.SafetyCode == pat.SafetyCode || own.ID == pat.ID {
		t.Fatalf("the thief's request shows pat's code %s", pat.SafetyCode)
	}

	// A flood fills pat's share of the inbox, and stops there: pat's
	// request stays.
	for i := range MaxRecoveryInboxPerAccount + 3 {
		_, err := w.c1.repo.ReceiveRecoveryRequest(ctx, thiefRequest(t, w.pat.keys.ID, testPriv(byte(100+i)), time.Now()), "mal")
		if i >= MaxRecoveryInboxPerAccount-2 {
			refused("a flood past the bound", err, "deny some first")
		}
	}
	list, err := w.c1.repo.RecoveryRequests(ctx)
	if err != nil || len(list) != MaxRecoveryInboxPerAccount || list[0].ID != pat.ID {
		t.Fatalf("the inbox after a flood: %+v, %v (pat's %s first)", list, err, pat.ID)
	}

	// Denied, the thief re-signs the same key with another time: refused.
	if err := w.c1.repo.DenyRecoveryRequest(ctx, own.ID); err != nil {
		t.Fatal(err)
	}
	again := thiefRequest(t, w.pat.keys.ID, thief, time.Now().Add(time.Second))
	_, err = w.c1.repo.ReceiveRecoveryRequest(ctx, again, "mal")
	refused("a denied key re-signed", err, "new key was denied here")
	// A delivery of pat's own request still goes through.
	if _, err := w.c1.repo.ReceiveRecoveryRequest(ctx, req, "pat's node"); err != nil {
		t.Fatalf("pat's request after the thief's denial: %v", err)
	}

	// The thief polls pat's request's ID after Cam approves it: the
	// response is for pat's request and key; it counts for no recovery the
	// thief started, and rebound to her request its signature fails.
	if _, err := w.c1.repo.ApproveKeptRecovery(ctx, w.c1.keys, pat.ID); err != nil {
		t.Fatal(err)
	}
	patID, _ := hex.DecodeString(pat.ID)
	polled, err := w.c1.repo.RecoveryResponsesFor(ctx, patID)
	if err != nil || len(polled) != 1 {
		t.Fatalf("poll: %d, %v", len(polled), err)
	}
	mine, err := w.stranger.repo.StartRecovery(ctx, w.pat.keys.ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = w.stranger.repo.AddRecoveryResponse(ctx, w.pat.keys.ID, polled[0])
	refused("pat's response for the thief's recovery", err, "answers another request")
	resp, err := protocol.DecodeRecoveryResponse(polled[0])
	if err != nil {
		t.Fatal(err)
	}
	resp.Request, _ = hex.DecodeString(mine.Request)
	rebound, err := resp.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.stranger.repo.AddRecoveryResponse(ctx, w.pat.keys.ID, rebound); err == nil {
		t.Fatal("pat's approval rebound to the thief's request counted")
	}
	if s, err := w.stranger.repo.RecoveryStatus(ctx, w.pat.keys.ID); err != nil || len(s.Approved) != 0 {
		t.Fatalf("the thief's recovery: %+v, %v", s, err)
	}
}

// Hostile requests at the inbox: oversized, truncated, bit-flipped or
// garbage encodings are refused with an error, and the inbox is unchanged.
func TestRecoveryInboxHostileEncodings(t *testing.T) {
	ctx := context.Background()
	w := newRecoveryWorld(t, 2)
	req := w.start(t)
	flipped := append([]byte(nil), req...)
	flipped[len(flipped)-3] ^= 0x40
	for name, raw := range map[string][]byte{
		"empty":     nil,
		"oversized": append(append([]byte(nil), req...), make([]byte, protocol.MaxRecoveryRequest)...),
		"truncated": req[:len(req)/2],
		"flipped":   flipped,
		"garbage":   []byte("\xff\xfe../../keyshare/local/x"),
	} {
		if _, err := w.c1.repo.ReceiveRecoveryRequest(ctx, raw, "mal"); err == nil {
			t.Fatalf("%s request kept", name)
		}
	}
	if l, err := w.c1.repo.RecoveryRequests(ctx); err != nil || len(l) != 0 {
		t.Fatalf("the inbox after hostile requests: %+v, %v", l, err)
	}
}
