package recovery

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"

	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/node/internal/streamtest"
	"github.com/blockmrs/blockmrs/protocol"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// party is a repo with one account (none for a new device), and the host
// its node runs.
type party struct {
	repo *keyshare.Repo
	keys *keyshare.Keys
	host host.Host
}

func newParty(t *testing.T, name string) *party {
	t.Helper()
	r, err := keyshare.Open(t.Context(), t.TempDir(), keyshare.Options{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	p := &party{repo: r, host: streamtest.Host(t)}
	if name != "" {
		if p.keys, err = r.CreateAccount(t.Context(), name, protocol.RolePatient, nil); err != nil {
			t.Fatal(err)
		}
		if _, err := r.SetDevice(t.Context(), p.keys, p.host.ID().String(), name+"'s node", false); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

// serve starts p's recovery service, rounds every 100 ms.
func (p *party) serve(t *testing.T) *Service {
	t.Helper()
	s := New(p.host, p.repo, Options{Interval: 100 * time.Millisecond, Logger: quiet()})
	t.Cleanup(func() { s.Close() })
	return s
}

// sendChain imports id's chain from one repo into another.
func sendChain(t *testing.T, from, to *party, id protocol.AccountID) {
	t.Helper()
	var buf bytes.Buffer
	if _, err := from.repo.ExportCAR(t.Context(), &buf, id); err != nil {
		t.Fatal(err)
	}
	if _, err := to.repo.ImportCAR(t.Context(), &buf); err != nil {
		t.Fatal(err)
	}
}

func addr(p *party) string {
	return p.host.Addrs()[0].String() + "/p2p/" + p.host.ID().String()
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// world is pat with recovery contacts cam and dee (2 of 2), whose chain
// both hold, and a new device holding it.
type world struct{ pat, cam, dee, fresh *party }

func newWorld(t *testing.T) *world {
	t.Helper()
	w := &world{pat: newParty(t, "Pat"), cam: newParty(t, "Cam"), dee: newParty(t, "Dee"), fresh: newParty(t, "")}
	for _, c := range []*party{w.cam, w.dee} {
		sendChain(t, c, w.pat, c.keys.ID)
	}
	if _, err := w.pat.repo.SetupRecovery(t.Context(), w.pat.keys, []protocol.AccountID{w.cam.keys.ID, w.dee.keys.ID}, 2); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*party{w.cam, w.dee, w.fresh} {
		sendChain(t, w.pat, c, w.pat.keys.ID)
	}
	return w
}

func inbox(t *testing.T, p *party) []keyshare.RecoveryInboxItem {
	t.Helper()
	l, err := p.repo.RecoveryRequests(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// The new device's node delivers the request to Cam's node, found by Cam's
// chain, and to Dee's, named at start, which does not serve the protocol
// at first: it gets the request once it does (redelivery after the
// failure). Each approval comes back by the polls, and the recovery
// finishes.
func TestDeliverRedeliverAndPoll(t *testing.T) {
	ctx := t.Context()
	w := newWorld(t)
	sendChain(t, w.cam, w.fresh, w.cam.keys.ID) // declares Cam's node
	w.fresh.host.Peerstore().AddAddrs(w.cam.host.ID(), w.cam.host.Addrs(), peerstore.PermanentAddrTTL)
	w.cam.serve(t)
	w.fresh.serve(t)
	st, err := w.fresh.repo.StartRecoveryVia(ctx, w.pat.keys.ID, nil, []string{addr(w.dee)})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the request at Cam's node", func() bool { return len(inbox(t, w.cam)) == 1 })
	if it := inbox(t, w.cam)[0]; it.ID != st.Request || it.SafetyCode != st.SafetyCode || it.Peer != w.fresh.host.ID().String() {
		t.Fatalf("Cam's inbox: %+v; started %s, code %s", it, st.Request, st.SafetyCode)
	}
	if len(inbox(t, w.dee)) != 0 {
		t.Fatal("Dee's node keeps a request it was not serving the protocol for")
	}
	w.dee.serve(t)
	waitFor(t, "the request redelivered to Dee's node", func() bool { return len(inbox(t, w.dee)) == 1 })

	for _, c := range []*party{w.cam, w.dee} {
		if _, err := c.repo.ApproveKeptRecovery(ctx, c.keys, st.Request); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "both responses at the new device", func() bool {
		s, err := w.fresh.repo.RecoveryStatus(ctx, w.pat.keys.ID)
		return err == nil && s.Ready
	})
	if _, err := w.fresh.repo.FinishRecovery(ctx, w.pat.keys.ID, nil); err != nil {
		t.Fatal(err)
	}
}

// connectedHost is a bare host (no repo, no service) connected to p's
// node: an attacker's node speaking the protocol by hand.
func connectedHost(t *testing.T, p *party) host.Host {
	t.Helper()
	h := streamtest.Host(t)
	if err := h.Connect(t.Context(), peer.AddrInfo{ID: p.host.ID(), Addrs: p.host.Addrs()}); err != nil {
		t.Fatal(err)
	}
	return h
}

// askFrame sends f from host from to p's node over the recovery
// protocol and returns its reply frame.
func askFrame(t *testing.T, from host.Host, p *party, f *protocol.RecoveryFrame) *protocol.RecoveryFrame {
	t.Helper()
	body, err := protocol.EncodeRecoveryFrame(f)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := protocol.WriteFrame(&buf, body); err != nil {
		t.Fatal(err)
	}
	out, err := streamtest.Send(t, from, p.host.ID(), ProtocolID, buf.Bytes())
	if err != nil {
		t.Fatalf("%s frame: %v", f.Kind, err)
	}
	body, err = protocol.ReadFrame(bufio.NewReader(bytes.NewReader(out)), protocol.MaxRecoveryFrameSize)
	if err != nil {
		t.Fatalf("%s frame: reply %v", f.Kind, err)
	}
	reply, err := protocol.DecodeRecoveryFrame(body)
	if err != nil {
		t.Fatalf("%s frame: reply %v", f.Kind, err)
	}
	return reply
}

// Hostile input at a contact's node: a frame that does not decode resets
// the stream; a stranger's request (an account the node holds no setup
// naming it for), a poll in a bad shape and an unknown frame kind get an
// error frame saying why; a poll for an unknown request gets nothing; a
// flood of requests for one account stops at the inbox's bound; the node
// serves on after all of it.
func TestHostileFramesAndBounds(t *testing.T) {
	ctx := t.Context()
	w := newWorld(t)
	w.cam.serve(t)
	mal := connectedHost(t, w.cam)
	ask := func(f *protocol.RecoveryFrame) *protocol.RecoveryFrame { t.Helper(); return askFrame(t, mal, w.cam, f) }
	if out, err := streamtest.Send(t, mal, w.cam.host.ID(), ProtocolID, []byte{3, 0xff, 0xff, 0xff}); err == nil && len(out) > 0 {
		t.Fatalf("garbage got a reply: %x", out)
	}
	if out, err := streamtest.Send(t, mal, w.cam.host.ID(), ProtocolID, []byte{0xff, 0xff, 0x7f}); err == nil && len(out) > 0 {
		t.Fatalf("an oversized frame got a reply: %x", out)
	}

	// A stranger's request: Ann's setup names Dee only, Cam holds it.
	ann := newParty(t, "Ann")
	sendChain(t, w.dee, ann, w.dee.keys.ID)
	if _, err := ann.repo.SetupRecovery(ctx, ann.keys, []protocol.AccountID{w.dee.keys.ID}, 1); err != nil {
		t.Fatal(err)
	}
	sendChain(t, ann, w.cam, ann.keys.ID)
	annNew := newParty(t, "")
	sendChain(t, ann, annNew, ann.keys.ID)
	s, err := annNew.repo.StartRecovery(ctx, ann.keys.ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	tok, _ := hex.DecodeString(s.Token)
	if r := ask(&protocol.RecoveryFrame{Kind: protocol.RecFrameRequest, Request: tok}); r.Kind != protocol.RecFrameError || !strings.Contains(r.Error, "names no account of this node") {
		t.Fatalf("a stranger's request: %+v", r)
	}
	if r := ask(&protocol.RecoveryFrame{Kind: protocol.RecFrameOK}); r.Kind != protocol.RecFrameError || !strings.Contains(r.Error, "unexpected") {
		t.Fatalf("an ok frame as a request: %+v", r)
	}
	if r := ask(&protocol.RecoveryFrame{Kind: protocol.RecFramePoll, ID: make([]byte, 32)}); r.Kind != protocol.RecFrameOK || len(r.Responses) != 0 {
		t.Fatalf("a poll for an unknown request: %+v", r)
	}

	// A flood for Pat: new requests, one per start, until the bound.
	for i := range keyshare.MaxRecoveryInboxPerAccount + 1 {
		if i > 0 {
			if err := w.fresh.repo.CancelRecovery(ctx, w.pat.keys.ID); err != nil {
				t.Fatal(err)
			}
		}
		s, err := w.fresh.repo.StartRecovery(ctx, w.pat.keys.ID, nil)
		if err != nil {
			t.Fatal(err)
		}
		tok, _ := hex.DecodeString(s.Token)
		r := ask(&protocol.RecoveryFrame{Kind: protocol.RecFrameRequest, Request: tok})
		if i < keyshare.MaxRecoveryInboxPerAccount && r.Kind != protocol.RecFrameOK {
			t.Fatalf("request %d refused: %s", i, r.Error)
		}
		if i == keyshare.MaxRecoveryInboxPerAccount && (r.Kind != protocol.RecFrameError || !strings.Contains(r.Error, "deny some first")) {
			t.Fatalf("the request over the bound: %+v", r)
		}
	}
	if n := len(inbox(t, w.cam)); n != keyshare.MaxRecoveryInboxPerAccount {
		t.Fatalf("Cam's inbox holds %d requests, bound %d", n, keyshare.MaxRecoveryInboxPerAccount)
	}
}
