package recovery

import (
	"crypto/ed25519"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/blockmrs/blockmrs/protocol"
)

// A thief's node holding Pat's chain delivers a request under her own new
// key to Cam's node over libp2p; Cam denies it; the same key re-signed
// with another time (a new request ID) is refused over the wire too
// (recovery/inbox-replay), while a poll for it gets nothing; Cam's node
// serves Pat's own request after.
func TestDeniedKeyResignedIsRefused(t *testing.T) {
	ctx := t.Context()
	w := newWorld(t)
	w.cam.serve(t)
	mal := connectedHost(t, w.cam)
	_, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	signAt := func(at time.Time) []byte {
		t.Helper()
		q := &protocol.RecoveryRequest{Account: w.pat.keys.Public(), Key: priv.Public().(ed25519.PublicKey),
			Recipient: id.Recipient().String(), Time: at.UnixMilli()}
		raw, err := q.Sign(priv)
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	first := signAt(time.Now())
	if r := askFrame(t, mal, w.cam, &protocol.RecoveryFrame{Kind: protocol.RecFrameRequest, Request: first}); r.Kind != protocol.RecFrameOK {
		t.Fatalf("the thief's first request: %+v", r)
	}
	if err := w.cam.repo.DenyRecoveryRequest(ctx, hex.EncodeToString(protocol.RecoveryRequestID(first))); err != nil {
		t.Fatal(err)
	}
	again := signAt(time.Now().Add(time.Second))
	if r := askFrame(t, mal, w.cam, &protocol.RecoveryFrame{Kind: protocol.RecFrameRequest, Request: again}); r.Kind != protocol.RecFrameError || !strings.Contains(r.Error, "new key was denied") {
		t.Fatalf("the denied key re-signed: %+v", r)
	}
	if r := askFrame(t, mal, w.cam, &protocol.RecoveryFrame{Kind: protocol.RecFramePoll, ID: protocol.RecoveryRequestID(again)}); r.Kind != protocol.RecFrameOK || len(r.Responses) != 0 {
		t.Fatalf("a poll for the refused request: %+v", r)
	}
	s, err := w.fresh.repo.StartRecovery(ctx, w.pat.keys.ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	tok, _ := hex.DecodeString(s.Token)
	if r := askFrame(t, mal, w.cam, &protocol.RecoveryFrame{Kind: protocol.RecFrameRequest, Request: tok}); r.Kind != protocol.RecFrameOK {
		t.Fatalf("Pat's own request after the thief's: %+v", r)
	}
	if l := inbox(t, w.cam); len(l) != 1 || l[0].ID != s.Request {
		t.Fatalf("Cam's inbox: %+v, want Pat's request %s only", l, s.Request)
	}
}
