package chainsync

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/node/config"
	"github.com/blockmrs/blockmrs/node/exchange"
	"github.com/blockmrs/blockmrs/node/p2p"
	"github.com/blockmrs/blockmrs/protocol"
)

// logSink collects log lines so tests can count them.
type logSink struct {
	mu    sync.Mutex
	lines []string
}

func (l *logSink) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, string(p))
	return len(p), nil
}

func (l *logSink) all() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "")
}

func (l *logSink) count(substr string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, s := range l.lines {
		if strings.Contains(s, substr) {
			n++
		}
	}
	return n
}

type testNode struct {
	name   string
	keyDir string
	repo   *keyshare.Repo
	keys   *keyshare.Keys
	host   host.Host
	ex     *exchange.Exchange
	sync   *Service
	logs   *logSink
}

// newNode starts a repo whose one account declares this node in its first
// block, a loopback host, an exchange and chain sync.
func newNode(t testing.TB, name string, role protocol.Role) *testNode {
	t.Helper()
	ctx := t.Context()
	n := &testNode{name: name, keyDir: t.TempDir(), logs: &logSink{}}
	repo, err := keyshare.Open(ctx, t.TempDir(), keyshare.Options{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	n.repo = repo
	n.start(t)
	n.keys, err = repo.CreateAccount(ctx, name, role, nil, keyshare.DeviceInfo{PeerID: n.host.ID().String(), Name: name + " node"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		n.stop()
		repo.Close()
	})
	return n
}

// start brings the node online: host (same node key every time),
// exchange, chain sync.
func (n *testNode) start(t testing.TB) {
	t.Helper()
	key, err := p2p.LoadOrCreateKey(n.keyDir)
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.Listen = []string{"/ip4/127.0.0.1/tcp/0"}
	cfg.MDNS = false
	n.host, err = p2p.NewHost(t.Context(), cfg, key)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(n.logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	n.ex = exchange.New(n.host, n.repo, log)
	n.sync = New(n.host, n.repo, n.ex, log)
}

// stop takes the node offline; the repo stays open.
func (n *testNode) stop() {
	if n.host == nil {
		return
	}
	n.sync.Close()
	n.ex.Close()
	n.host.Close()
	n.host = nil
}

func (n *testNode) addr() peer.AddrInfo { return peer.AddrInfo{ID: n.host.ID(), Addrs: n.host.Addrs()} }

// meet connects a and b and makes each a contact of the other through
// the profile request, as `blockmrs contact add ADDR` does.
func meet(t testing.TB, a, b *testNode) {
	t.Helper()
	if _, err := a.sync.Profile(t.Context(), b.addr(), b.keys.ID); err != nil {
		t.Fatalf("%s adds %s: %v", a.name, b.name, err)
	}
	if _, err := b.sync.Profile(t.Context(), a.addr(), a.keys.ID); err != nil {
		t.Fatalf("%s adds %s: %v", b.name, a.name, err)
	}
}

func addRecord(t testing.TB, n *testNode, body []byte) cid.Cid {
	t.Helper()
	c, err := n.repo.AddRecord(t.Context(), n.keys, keyshare.NewRecord{
		Title: "note", Kind: protocol.KindNote, MediaType: "text/plain", Body: bytes.NewReader(body),
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// eventually polls cond every 20 ms for up to 20 s.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func headOf(t testing.TB, repo *keyshare.Repo, id protocol.AccountID) (cid.Cid, uint64) {
	t.Helper()
	info, err := repo.Account(t.Context(), id)
	if err != nil {
		return cid.Undef, 0
	}
	return info.Head, info.Seq
}

// readable reports whether n's account can open record c and read want.
func readable(t testing.TB, n *testNode, c cid.Cid, want []byte) bool {
	t.Helper()
	_, rc, err := n.repo.OpenRecord(t.Context(), n.keys, c)
	if err != nil {
		return false
	}
	defer rc.Close()
	got, err := io.ReadAll(rc)
	return err == nil && bytes.Equal(got, want)
}

func TestGrantAndRevokeReachGranteeStrangerGetsNothing(t *testing.T) {
	patient := newNode(t, "patient", protocol.RolePatient)
	clinic := newNode(t, "clinic", protocol.RoleClinician)
	stranger := newNode(t, "stranger", protocol.RoleClinician)
	meet(t, patient, clinic)
	meet(t, patient, stranger) // the stranger even knows the patient's profile

	body := make([]byte, 3<<20)
	rand.Read(body)
	rec := addRecord(t, patient, body)
	if _, err := patient.repo.Grant(t.Context(), patient.keys, []cid.Cid{rec}, clinic.keys.ID, time.Time{}); err != nil {
		t.Fatal(err)
	}
	head, seq := headOf(t, patient.repo, patient.keys.ID)

	// The grant travels by announcement; the record follows by itself.
	eventually(t, "the clinic holds the patient's new head", func() bool {
		h, _ := headOf(t, clinic.repo, patient.keys.ID)
		return h.Equals(head)
	})
	eventually(t, "the clinic can read the granted record", func() bool { return readable(t, clinic, rec, body) })

	// The stranger was connected all along and got nothing: no chain
	// block past the profile, no record block.
	if h, s := headOf(t, stranger.repo, patient.keys.ID); s != 0 || h.Equals(head) {
		t.Fatalf("stranger holds the patient's chain up to seq %d", s)
	}
	if _, _, err := stranger.sync.Head(t.Context(), patient.host.ID(), patient.keys.ID); !errors.Is(err, ErrNotServed) {
		t.Fatalf("stranger's head request: err = %v, want ErrNotServed", err)
	}
	if _, err := stranger.sync.Pull(t.Context(), patient.host.ID(), head); !errors.Is(err, ErrNotServed) {
		t.Fatalf("stranger's pull: err = %v, want ErrNotServed", err)
	}
	for _, c := range []cid.Cid{rec, head} {
		if has, _ := stranger.repo.Store().Blockstore().Has(t.Context(), c); has {
			t.Fatalf("stranger holds block %s", c)
		}
	}

	// A revocation reaches the clinic the same way.
	if _, err := patient.repo.Revoke(t.Context(), patient.keys, []cid.Cid{rec}, clinic.keys.ID); err != nil {
		t.Fatal(err)
	}
	head2, seq2 := headOf(t, patient.repo, patient.keys.ID)
	if seq2 <= seq {
		t.Fatal("revoke did not advance the chain")
	}
	eventually(t, "the clinic holds the revocation", func() bool {
		h, _ := headOf(t, clinic.repo, patient.keys.ID)
		return h.Equals(head2)
	})
	a, err := clinic.repo.AccessFor(t.Context(), rec, clinic.keys.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := a.Reader(clinic.keys.ID); ok {
		t.Fatal("clinic still listed as reader after the revocation arrived")
	}
	// The clinic's node drops its copy, and the next fetch of the record's
	// blocks is refused by the patient's node.
	eventually(t, "the clinic dropped the revoked record", func() bool {
		has, _ := clinic.repo.Store().Blockstore().Has(t.Context(), rec)
		return !has
	})
	refusedBefore := patient.ex.Stats().Refused
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
	defer cancel()
	if err := clinic.ex.Fetch(ctx, rec, patient.host.ID()); err == nil {
		t.Fatal("clinic fetched the record after the revocation")
	}
	if has, _ := clinic.repo.Store().Blockstore().Has(t.Context(), rec); has {
		t.Fatal("clinic received the record's root after the revocation")
	}
	if patient.ex.Stats().Refused <= refusedBefore {
		t.Fatal("the patient's node did not refuse the clinic's want")
	}
}

func TestOfflineGranteeCatchesUpOnConnect(t *testing.T) {
	patient := newNode(t, "patient", protocol.RolePatient)
	clinic := newNode(t, "clinic", protocol.RoleClinician)
	meet(t, patient, clinic)
	// The clinic's node goes offline, the patient grants.
	clinic.stop()
	body := []byte("blood pressure 120/80")
	rec := addRecord(t, patient, body)
	if _, err := patient.repo.Grant(t.Context(), patient.keys, []cid.Cid{rec}, clinic.keys.ID, time.Time{}); err != nil {
		t.Fatal(err)
	}
	head, _ := headOf(t, patient.repo, patient.keys.ID)
	// Back online: connecting is enough.
	clinic.start(t)
	if err := clinic.host.Connect(t.Context(), patient.addr()); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the clinic caught up", func() bool {
		h, _ := headOf(t, clinic.repo, patient.keys.ID)
		return h.Equals(head)
	})
	eventually(t, "the clinic can read the record", func() bool { return readable(t, clinic, rec, body) })
}

func TestLargeChainSyncsInPages(t *testing.T) {
	if testing.Short() {
		t.Skip("appends 1,124 blocks; scripts/test.sh runs it in its Large pass")
	}
	patient := newNode(t, "patient", protocol.RolePatient)
	clinic := newNode(t, "clinic", protocol.RoleClinician)
	meet(t, patient, clinic)
	rec := addRecord(t, patient, []byte("x"))
	// More blocks than one response carries.
	for i := range protocol.MaxSyncBlocks + 100 {
		if _, err := patient.repo.Hide(t.Context(), patient.keys, []cid.Cid{rec}, i%2 == 0); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := patient.repo.Grant(t.Context(), patient.keys, []cid.Cid{rec}, clinic.keys.ID, time.Time{}); err != nil {
		t.Fatal(err)
	}
	head, seq := headOf(t, patient.repo, patient.keys.ID)
	// The announcement of the grant brings the whole chain.
	eventually(t, "the clinic holds the whole chain", func() bool {
		h, s := headOf(t, clinic.repo, patient.keys.ID)
		return h.Equals(head) && s == seq
	})
}

// fakePeer is a host that answers chain sync with whatever the test
// says.
func fakePeer(t testing.TB, answer func(q *protocol.SyncRequest) []byte) host.Host {
	t.Helper()
	key, err := p2p.LoadOrCreateKey(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.Listen = []string{"/ip4/127.0.0.1/tcp/0"}
	cfg.MDNS = false
	h, err := p2p.NewHost(t.Context(), cfg, key)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	h.SetStreamHandler(protocol.ChainSyncID, func(st network.Stream) {
		defer st.Close()
		body, err := protocol.ReadFrame(bufio.NewReader(st), protocol.MaxSyncRequest)
		if err != nil {
			st.Reset()
			return
		}
		q, err := protocol.DecodeSyncRequest(body)
		if err != nil {
			st.Reset()
			return
		}
		st.Write(answer(q))
	})
	return h
}

func frame(t testing.TB, resp *protocol.SyncResponse) []byte {
	t.Helper()
	b, err := protocol.EncodeSyncResponse(resp)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	protocol.WriteFrame(&buf, b)
	return buf.Bytes()
}

func TestHostileResponsesChangeNothing(t *testing.T) {
	patient := newNode(t, "patient", protocol.RolePatient)
	clinic := newNode(t, "clinic", protocol.RoleClinician)
	meet(t, patient, clinic)
	// Nothing is granted to the clinic, so nothing is announced to it: it
	// holds only the patient's profile while hostile peers offer the rest.
	addRecord(t, patient, []byte("x"))
	addRecord(t, patient, []byte("y"))
	goodHead, _ := headOf(t, patient.repo, patient.keys.ID)
	raws, err := patient.repo.ChainBack(t.Context(), goodHead, keyshare.NoneHeld, 100, 1<<20)
	if err != nil {
		t.Fatal(err)
	}

	// A block re-signed by someone else (valid signature, wrong author
	// for the chain it claims to extend).
	other, _ := keyshare.GenerateKeys()
	real, _ := protocol.DecodeBlock(raws[0])
	peerRaw, _ := protocol.ParsePeerID(clinic.host.ID().String())
	forged := &protocol.Block{Seq: real.Seq, Prev: real.Prev, Time: real.Time,
		Entries: []protocol.Entry{protocol.NewEntry(&protocol.Device{Peer: peerRaw, Name: "mallory"})}}
	forgedRaw, forgedCID, err := forged.Sign(other.Sign)
	if err != nil {
		t.Fatal(err)
	}
	// A block with one bit flipped.
	flipped := bytes.Clone(raws[0])
	flipped[len(flipped)-1] ^= 1

	cases := []struct {
		name string
		head cid.Cid
		resp []byte
	}{
		{"bytes not matching the CID", goodHead, frame(t, &protocol.SyncResponse{Status: protocol.SyncOK, Blocks: [][]byte{flipped}})},
		{"another author's block", forgedCID, frame(t, &protocol.SyncResponse{Status: protocol.SyncOK, Blocks: [][]byte{forgedRaw}})},
		{"chain cut short", goodHead, frame(t, &protocol.SyncResponse{Status: protocol.SyncOK, Blocks: raws[:1]})},
		{"oversized frame", goodHead, append([]byte{0xff, 0xff, 0xff, 0x7f}, make([]byte, 100)...)},
		{"garbage", goodHead, []byte{5, 1, 2, 3, 4, 5}},
		{"non-canonical varint", goodHead, []byte{0x80, 0x00}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fake := fakePeer(t, func(q *protocol.SyncRequest) []byte {
				if q.Kind == protocol.SyncBlocks && len(raws) > 1 && q.Head.Cid.Equals(protocol.BlockCID(raws[1])) {
					return []byte{} // the rest of the chain: nothing
				}
				return tc.resp
			})
			if err := clinic.host.Connect(t.Context(), peer.AddrInfo{ID: fake.ID(), Addrs: fake.Addrs()}); err != nil {
				t.Fatal(err)
			}
			before, beforeSeq := headOf(t, clinic.repo, patient.keys.ID)
			if _, err := clinic.sync.Pull(t.Context(), fake.ID(), tc.head); err == nil {
				t.Fatal("pull from a hostile peer succeeded")
			}
			after, afterSeq := headOf(t, clinic.repo, patient.keys.ID)
			if !after.Equals(before) || afterSeq != beforeSeq {
				t.Fatal("hostile response changed the chain")
			}
			if forks, _ := clinic.repo.Forks(t.Context()); len(forks) != 0 {
				t.Fatal("hostile response recorded as fork evidence")
			}
		})
	}
	// After all that the clinic still takes the honest chain, from anyone
	// (it is signed): here the patient's own blocks, relayed.
	relay := fakePeer(t, func(q *protocol.SyncRequest) []byte {
		return frame(t, &protocol.SyncResponse{Status: protocol.SyncOK, Blocks: raws})
	})
	if err := clinic.host.Connect(t.Context(), peer.AddrInfo{ID: relay.ID(), Addrs: relay.Addrs()}); err != nil {
		t.Fatal(err)
	}
	if _, err := clinic.sync.Pull(t.Context(), relay.ID(), goodHead); err != nil {
		t.Fatal(err)
	}
	if h, _ := headOf(t, clinic.repo, patient.keys.ID); !h.Equals(goodHead) {
		t.Fatal("clinic did not take the honest chain")
	}
}

func TestEquivocatingHeadIsKeptAsEvidence(t *testing.T) {
	patient := newNode(t, "patient", protocol.RolePatient)
	clinic := newNode(t, "clinic", protocol.RoleClinician)
	meet(t, patient, clinic)
	rec := addRecord(t, patient, []byte("x"))
	if _, err := patient.repo.Grant(t.Context(), patient.keys, []cid.Cid{rec}, clinic.keys.ID, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if _, err := clinic.sync.Sync(t.Context(), patient.host.ID(), patient.keys.ID); err != nil {
		t.Fatal(err)
	}
	held, heldSeq := headOf(t, clinic.repo, patient.keys.ID)

	// The patient's key signs a second, different block at the held
	// sequence number: an equivocation, offered by another peer.
	raws, err := patient.repo.ChainBack(t.Context(), held, keyshare.NoneHeld, 1, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := protocol.DecodeBlock(raws[0])
	b.Time++
	twinRaw, twin, err := b.Sign(patient.keys.Sign)
	if err != nil {
		t.Fatal(err)
	}
	fake := fakePeer(t, func(q *protocol.SyncRequest) []byte {
		return frame(t, &protocol.SyncResponse{Status: protocol.SyncOK, Blocks: [][]byte{twinRaw}})
	})
	if err := clinic.host.Connect(t.Context(), peer.AddrInfo{ID: fake.ID(), Addrs: fake.Addrs()}); err != nil {
		t.Fatal(err)
	}
	_, err = clinic.sync.Pull(t.Context(), fake.ID(), twin)
	var fe *keyshare.ForkError
	if !errors.As(err, &fe) {
		t.Fatalf("pull of an equivocating head: err = %v, want a fork", err)
	}
	if h, s := headOf(t, clinic.repo, patient.keys.ID); !h.Equals(held) || s != heldSeq {
		t.Fatal("equivocating head replaced the held one")
	}
	forks, err := clinic.repo.Forks(t.Context())
	if err != nil || len(forks) != 1 {
		t.Fatalf("forks = %v (err %v), want the evidence", forks, err)
	}
}

func TestHostileRequestsAreRefusedAndOthersStillServed(t *testing.T) {
	patient := newNode(t, "patient", protocol.RolePatient)
	clinic := newNode(t, "clinic", protocol.RoleClinician)
	meet(t, patient, clinic)
	rec := addRecord(t, patient, []byte("x"))
	if _, err := patient.repo.Grant(t.Context(), patient.keys, []cid.Cid{rec}, clinic.keys.ID, time.Time{}); err != nil {
		t.Fatal(err)
	}

	attacker := fakePeer(t, func(*protocol.SyncRequest) []byte { return nil })
	if err := attacker.Connect(t.Context(), patient.addr()); err != nil {
		t.Fatal(err)
	}
	send := func(payload []byte) (reset bool) {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		st, err := attacker.NewStream(ctx, patient.host.ID(), protocol.ChainSyncID)
		if err != nil {
			return true
		}
		st.SetDeadline(time.Now().Add(5 * time.Second))
		st.Write(payload)
		st.CloseWrite()
		_, err = io.ReadAll(st)
		return err != nil
	}
	oversized := append([]byte{0x80, 0x80, 0x04}, make([]byte, 2000)...) // claims 64 KiB
	for _, payload := range [][]byte{oversized, {3, 0xff, 0xff, 0xff}, {0x80, 0x00}} {
		if !send(payload) {
			t.Fatalf("payload %x... was answered, want a reset", payload[:3])
		}
	}
	if n := patient.logs.count("chainsync: bad request"); n != 1 {
		t.Fatalf("bad requests logged %d times, want once", n)
	}
	// A flood: the limiter resets what is over the burst.
	var wg sync.WaitGroup
	var mu sync.Mutex
	resets := 0
	req, _ := protocol.EncodeSyncRequest(&protocol.SyncRequest{Kind: protocol.SyncHead, Account: mustKey(t, patient.keys.ID)})
	var fr bytes.Buffer
	protocol.WriteFrame(&fr, req)
	for range RequestBurst + 100 {
		wg.Go(func() {
			if send(fr.Bytes()) {
				mu.Lock()
				resets++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if resets == 0 {
		t.Fatal("a flood of requests was served in full")
	}
	// Everyone else is still served (once the flood's streams are
	// released on the patient's side: libp2p resets a stream opened while
	// its resource manager still counts the attacker's).
	var err error
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if _, _, err = clinic.sync.Head(t.Context(), patient.host.ID(), patient.keys.ID); err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		t.Fatalf("clinic not served after the attack: %v", err)
	}
}

func mustKey(t testing.TB, id protocol.AccountID) []byte {
	k, err := id.Key()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestReplicaServesGranteesWhilePatientIsOffline(t *testing.T) {
	patient := newNode(t, "patient", protocol.RolePatient)
	clinic := newNode(t, "clinic", protocol.RoleClinic) // the patient's replica
	doctor := newNode(t, "doctor", protocol.RoleClinician)
	meet(t, patient, clinic)
	meet(t, patient, doctor)
	if err := doctor.host.Connect(t.Context(), clinic.addr()); err != nil {
		t.Fatal(err)
	}

	body := make([]byte, 1<<20)
	rand.Read(body)
	rec := addRecord(t, patient, body)
	if _, err := patient.repo.SetReplica(t.Context(), patient.keys, clinic.host.ID().String(), "clinic", false); err != nil {
		t.Fatal(err)
	}
	// The replica takes the chain and the ciphertext by itself.
	eventually(t, "the replica holds the record", func() bool {
		ok, _ := clinic.repo.Store().IsPinned(t.Context(), rec)
		return ok
	})
	if _, _, err := clinic.repo.OpenRecord(t.Context(), clinic.keys, rec); !errors.Is(err, keyshare.ErrNoAccess) {
		t.Fatalf("replica opened the record: err = %v", err)
	}

	// The doctor is offline while the patient grants, then the patient's
	// node goes away for good.
	doctor.stop()
	if _, err := patient.repo.Grant(t.Context(), patient.keys, []cid.Cid{rec}, doctor.keys.ID, time.Time{}); err != nil {
		t.Fatal(err)
	}
	head, _ := headOf(t, patient.repo, patient.keys.ID)
	eventually(t, "the replica holds the grant", func() bool {
		h, _ := headOf(t, clinic.repo, patient.keys.ID)
		return h.Equals(head)
	})
	// After the grant, the replica asks the patient's node for the
	// grantee's profile, to know which nodes act for it.
	eventually(t, "the replica knows the grantee", func() bool {
		_, err := clinic.repo.Account(t.Context(), doctor.keys.ID)
		return err == nil
	})
	patient.stop()

	doctor.start(t)
	if err := doctor.host.Connect(t.Context(), clinic.addr()); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the doctor holds the grant, from the replica", func() bool {
		h, _ := headOf(t, doctor.repo, patient.keys.ID)
		return h.Equals(head)
	})
	eventually(t, "the doctor reads the record, from the replica", func() bool { return readable(t, doctor, rec, body) })
}
