package requests

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"

	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/node/config"
	"github.com/blockmrs/blockmrs/node/internal/streamtest"
	"github.com/blockmrs/blockmrs/node/p2p"
	"github.com/blockmrs/blockmrs/protocol"
)

type testNode struct {
	name string
	repo *keyshare.Repo
	keys *keyshare.Keys
	key  crypto.PrivKey
	id   peer.ID
	host host.Host
	svc  *Service
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// newNode makes a repo with one account whose chain declares the node's
// peer ID as its device; the host is not started (see start).
func newNode(t *testing.T, name string, role protocol.Role) *testNode {
	t.Helper()
	ctx := t.Context()
	repo, err := keyshare.Open(ctx, t.TempDir(), keyshare.Options{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { repo.Close() })
	k, err := repo.CreateAccount(ctx, name, role, nil)
	if err != nil {
		t.Fatal(err)
	}
	key, err := p2p.LoadOrCreateKey(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := repo.SetDevice(ctx, k, id.String(), name+" node", false); err != nil {
		t.Fatal(err)
	}
	return &testNode{name: name, repo: repo, keys: k, key: key, id: id}
}

// start starts n's host and service (rounds every 200 ms unless opts
// say otherwise).
func (n *testNode) start(t *testing.T, opts ...Options) {
	t.Helper()
	o := Options{Interval: 200 * time.Millisecond, PollInterval: 300 * time.Millisecond, Logger: quietLogger()}
	if len(opts) > 0 {
		o = opts[0]
	}
	cfg := config.Default()
	cfg.Listen = []string{"/ip4/127.0.0.1/tcp/0"}
	h, err := p2p.NewHost(t.Context(), cfg, n.key)
	if err != nil {
		t.Fatal(err)
	}
	n.host = h
	n.svc = New(h, n.repo, o)
	t.Cleanup(n.stop)
}

func (n *testNode) stop() {
	if n.svc != nil {
		n.svc.Close()
		n.host.Close()
		n.svc, n.host = nil, nil
	}
}

// appoint makes guard ward's guardian with rights, for good, on ward's
// node, which is given guard's chain first.
func appoint(t *testing.T, ward, guard *testNode, rights ...protocol.GuardianRight) {
	t.Helper()
	sendChain(t, guard, ward)
	if _, err := ward.repo.AppointGuardian(t.Context(), ward.keys, guard.keys.ID, rights, time.Time{}); err != nil {
		t.Fatal(err)
	}
}

// sendChain imports from's whole chain into to's repo.
func sendChain(t *testing.T, from, to *testNode) {
	t.Helper()
	var buf bytes.Buffer
	if _, err := from.repo.ExportCAR(t.Context(), &buf, from.keys.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := to.repo.ImportCAR(t.Context(), &buf); err != nil {
		t.Fatal(err)
	}
}

func connect(t *testing.T, a, b *testNode) {
	t.Helper()
	if err := a.host.Connect(t.Context(), peer.AddrInfo{ID: b.host.ID(), Addrs: b.host.Addrs()}); err != nil {
		t.Fatal(err)
	}
}

// waitFor polls cond until it holds or 15 s pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func outboxState(t *testing.T, n *testNode, id string) string {
	_, out, err := n.repo.Requests(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range out {
		if q.ID == id {
			return q.State
		}
	}
	return ""
}

func inboxHas(t *testing.T, n *testNode, id string) bool {
	return inboxInfo(t, n, id).ID == id
}

func addNote(t *testing.T, n *testNode, text string) cid.Cid {
	t.Helper()
	c, err := n.repo.AddRecord(t.Context(), n.keys, keyshare.NewRecord{Title: text, Kind: protocol.KindNote,
		MediaType: "text/plain", Body: strings.NewReader(text)})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// sendRaw writes data on a request stream from h to p and reads the
// reply.
func sendRaw(t *testing.T, h host.Host, p peer.ID, data []byte) ([]byte, error) {
	t.Helper()
	return streamtest.Send(t, h, p, ProtocolID, data)
}

func frame(t *testing.T, f *protocol.RequestFrame) []byte {
	t.Helper()
	body, err := protocol.EncodeRequestFrame(f)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := protocol.WriteFrame(&buf, body); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestOfflineDeliveryApproveAndAnswer(t *testing.T) {
	ctx := t.Context()
	clinic := newNode(t, "Dr Who", protocol.RoleClinician)
	patient := newNode(t, "Pat", protocol.RolePatient)
	stranger := newNode(t, "Mallory", protocol.RoleClinician)
	r1 := addNote(t, patient, "haemoglobin")
	sendChain(t, patient, clinic)   // the clinic knows the patient and its node
	sendChain(t, patient, stranger) // so does a stranger

	clinic.start(t)
	// The patient's node is down: the request waits in the outbox.
	req, err := clinic.repo.NewRequest(ctx, clinic.keys, patient.keys.ID, nil, "follow-up", 7*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	clinic.svc.Kick()
	time.Sleep(500 * time.Millisecond)
	if s := outboxState(t, clinic, req.ID); s != keyshare.StatePendingDelivery {
		t.Fatalf("outbox state while the patient is offline: %q", s)
	}

	// The patient's node comes up and connects: the request arrives.
	patient.start(t)
	connect(t, patient, clinic)
	waitFor(t, "the request in the patient's inbox", func() bool { return inboxHas(t, patient, req.ID) })
	waitFor(t, "the outbox to say delivered", func() bool { return outboxState(t, clinic, req.ID) == keyshare.StateDelivered })

	// A stranger's forged answer is refused and changes nothing.
	stranger.start(t)
	connect(t, stranger, clinic)
	forged := &protocol.Answer{Request: protocol.NewLink(cid.MustParse(req.ID)), To: clinic.keys.Public(),
		Decision: protocol.DecisionDeny, Reason: "forged", Created: time.Now().UnixMilli()}
	fraw, _, err := forged.Sign(stranger.keys.Sign)
	if err != nil {
		t.Fatal(err)
	}
	reply, err := sendRaw(t, stranger.host, clinic.host.ID(), frame(t, &protocol.RequestFrame{Kind: protocol.ReqFrameAnswer, Message: fraw}))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(reply, []byte("but the request asked")) {
		t.Fatalf("forged answer reply: %q", reply)
	}
	if s := outboxState(t, clinic, req.ID); s != keyshare.StateDelivered {
		t.Fatalf("outbox state after a forged answer: %q", s)
	}

	// The patient approves; the answer reaches the clinic (by poll: the
	// patient's repo has only the clinic's profile, no device entries).
	info, err := patient.repo.Approve(ctx, patient.keys, req.ID, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the outbox to say approved", func() bool { return outboxState(t, clinic, req.ID) == keyshare.StateApproved })
	a, err := patient.repo.Access(ctx, r1)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := a.Reader(clinic.keys.ID); !ok {
		t.Fatal("the clinic is no reader after approval")
	}
	_, out, _ := clinic.repo.Requests(ctx)
	if out[0].Grant != info.Grant {
		t.Fatalf("grant in outbox %q, patient's %q", out[0].Grant, info.Grant)
	}
	waitFor(t, "the patient to have nothing left to deliver", func() bool {
		p, _ := patient.repo.Pending(ctx)
		return len(p) == 0
	})
}

func TestAnswerPushedAndDeny(t *testing.T) {
	ctx := t.Context()
	clinic := newNode(t, "Dr Who", protocol.RoleClinician)
	patient := newNode(t, "Pat", protocol.RolePatient)
	sendChain(t, patient, clinic)
	sendChain(t, clinic, patient) // the patient knows the clinic's node: answers are pushed
	// No periodic rounds and no polls: queueing a message must start
	// its delivery.
	slow := Options{Interval: time.Hour, PollInterval: time.Hour, Logger: quietLogger()}
	clinic.start(t, slow)
	patient.start(t, slow)
	connect(t, clinic, patient)
	time.Sleep(300 * time.Millisecond) // let the rounds the connection started pass
	req, err := clinic.repo.NewRequest(ctx, clinic.keys, patient.keys.ID, nil, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the request in the inbox", func() bool { return inboxHas(t, patient, req.ID) })
	if _, err := patient.repo.Deny(ctx, patient.keys, req.ID, "ask me in person"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the outbox to say denied", func() bool { return outboxState(t, clinic, req.ID) == keyshare.StateDenied })
}

func TestOversizedFrameRejected(t *testing.T) {
	ctx := t.Context()
	clinic := newNode(t, "Dr Who", protocol.RoleClinician)
	patient := newNode(t, "Pat", protocol.RolePatient)
	stranger := newNode(t, "Mallory", protocol.RoleClinician)
	sendChain(t, patient, clinic)
	patient.start(t)
	stranger.start(t)
	connect(t, stranger, patient)

	// A length over the limit: the stream is reset, nothing is read.
	over := binary.AppendUvarint(nil, protocol.MaxRequestFrameSize+1)
	if reply, err := sendRaw(t, stranger.host, patient.host.ID(), append(over, make([]byte, 1024)...)); err == nil && len(reply) > 0 {
		t.Fatalf("oversized frame answered: %q", reply)
	}
	// Not minimally encoded, and garbage: the same.
	for _, bad := range [][]byte{{0x81, 0x00, 0xa0}, {0x03, 0xff, 0xff, 0xff}} {
		if reply, err := sendRaw(t, stranger.host, patient.host.ID(), bad); err == nil && len(reply) > 0 {
			t.Fatalf("bad frame %x answered: %q", bad, reply)
		}
	}
	// A garbage request gets an error reply.
	reply, err := sendRaw(t, stranger.host, patient.host.ID(), frame(t, &protocol.RequestFrame{Kind: protocol.ReqFrameRequest, Message: []byte{0xa0}}))
	if err != nil {
		t.Fatal(err)
	}
	body, err := protocol.ReadFrame(bufio.NewReader(bytes.NewReader(reply)), protocol.MaxRequestFrameSize)
	if err != nil {
		t.Fatal(err)
	}
	if f, err := protocol.DecodeRequestFrame(body); err != nil || f.Kind != protocol.ReqFrameError {
		t.Fatalf("reply %+v %v", f, err)
	}

	// The node keeps serving others.
	clinic.start(t)
	req, err := clinic.repo.NewRequest(ctx, clinic.keys, patient.keys.ID, nil, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	connect(t, clinic, patient)
	waitFor(t, "the request in the inbox", func() bool { return inboxHas(t, patient, req.ID) })
}

func TestPeerRateLimit(t *testing.T) {
	patient := newNode(t, "Pat", protocol.RolePatient)
	stranger := newNode(t, "Mallory", protocol.RoleClinician)
	patient.start(t)
	stranger.start(t)
	stranger.host.Peerstore().AddAddrs(patient.host.ID(), patient.host.Addrs(), peerstore.PermanentAddrTTL)
	connect(t, stranger, patient)
	poll := frame(t, &protocol.RequestFrame{Kind: protocol.ReqFramePoll, Poll: protocol.Links([]cid.Cid{protocol.BlockCID([]byte("x"))})})
	answered := 0
	for range PeerBurst + 10 {
		if reply, err := sendRaw(t, stranger.host, patient.host.ID(), poll); err == nil && len(reply) > 0 {
			answered++
		}
	}
	if answered >= PeerBurst+10 || answered < PeerBurst-2 {
		t.Fatalf("%d of %d streams answered; burst is %d", answered, PeerBurst+10, PeerBurst)
	}
}
