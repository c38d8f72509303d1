package audit

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/protocol"
)

// party is one node of a report test: a repo, its audit log, a mocknet
// host whose key signs the log.
type party struct {
	repo *keyshare.Repo
	log  *Log
	host host.Host
	keys *keyshare.Keys // its account, if it has one
}

func newParty(t *testing.T, mn mocknet.Mocknet, account string) *party {
	t.Helper()
	ctx := t.Context()
	sk, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	h, err := mn.AddPeer(sk, ma.StringCast("/ip4/127.0.0.1/tcp/4001"))
	if err != nil {
		t.Fatal(err)
	}
	repo, err := keyshare.Open(ctx, t.TempDir(), keyshare.Options{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	priv, err := NodeKey(sk)
	if err != nil {
		t.Fatal(err)
	}
	l, err := Open(repo.Dir(), priv, Options{})
	if err != nil {
		t.Fatal(err)
	}
	l.startServed(repo, Options{})
	repo.SetAuditSink(l)
	t.Cleanup(func() { repo.Close() })
	p := &party{repo: repo, log: l, host: h}
	if account != "" {
		if p.keys, err = repo.CreateAccount(ctx, account, protocol.RolePatient, nil, keyshare.DeviceInfo{PeerID: h.ID().String()}); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

// knows imports other's account (its chain) into p's repo.
func (p *party) knows(t *testing.T, other *party) {
	t.Helper()
	var buf bytes.Buffer
	if _, err := other.repo.ExportCAR(t.Context(), &buf, other.keys.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := p.repo.ImportCAR(t.Context(), &buf); err != nil {
		t.Fatal(err)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestReportReachesThePatient: a replica records serving the patient's
// record while the patient's node is unreachable; when the two connect,
// the event reaches the patient's log, marked as reported by the
// replica, once, however often the replica tries again.
func TestReportReachesThePatient(t *testing.T) {
	ctx := t.Context()
	mn := mocknet.New()
	t.Cleanup(func() { mn.Close() })
	pat := newParty(t, mn, "Pat")
	replica := newParty(t, mn, "")
	replica.knows(t, pat)
	if err := mn.LinkAll(); err != nil {
		t.Fatal(err)
	}
	patSvc := New(pat.host, pat.repo, pat.log, ServiceOptions{Logger: quiet()})
	defer patSvc.Close()
	repSvc := New(replica.host, replica.repo, replica.log, ServiceOptions{Logger: quiet(), RetryInterval: 50 * time.Millisecond})
	defer repSvc.Close()

	// Pat's node is away: no link.
	if err := mn.UnlinkPeers(pat.host.ID(), replica.host.ID()); err != nil {
		t.Fatal(err)
	}
	rec := testCID(t, "record")
	doctor := testAccount(t)
	if _, err := replica.log.Append(ctx, Event{Kind: keyshare.AuditServe, Account: doctor, Peer: string(doctor), Subject: pat.keys.ID,
		Records: []cid.Cid{rec}, Rule: keyshare.RuleReadGrantee, Reason: "holds a live grant"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the report waits for Pat's node", func() bool {
		return strings.Join(repSvc.Pending(), ",") == pat.host.ID().String()
	})

	// Pat's node comes back.
	if _, err := mn.LinkPeers(pat.host.ID(), replica.host.ID()); err != nil {
		t.Fatal(err)
	}
	replica.host.Peerstore().AddAddrs(pat.host.ID(), pat.host.Addrs(), time.Hour)
	if _, err := mn.ConnectPeers(pat.host.ID(), replica.host.ID()); err != nil {
		t.Fatal(err)
	}
	var got []Entry
	waitFor(t, "the event is in Pat's log", func() bool {
		got, _ = pat.log.List(ctx, Filter{Subjects: []protocol.AccountID{pat.keys.ID}})
		return len(got) == 1
	})
	e := got[0]
	if e.Kind != keyshare.AuditServe || e.Account != doctor || e.ReportedBy != replica.host.ID().String() || e.ReportedSeq != 0 ||
		len(e.Records) != 1 || e.Records[0] != rec.String() || e.Rule != string(keyshare.RuleReadGrantee) {
		t.Fatalf("Pat's copy: %+v", e)
	}
	waitFor(t, "nothing waits any more", func() bool { return len(repSvc.Pending()) == 0 })

	// Sent again (the replica lost its state): kept once.
	if ok, err := patSvc.Receive(ctx, replica.host.ID().String(), firstRaw(t, replica.log)); ok || err != nil {
		t.Fatalf("a repeated report: stored %v, %v", ok, err)
	}
	if n := pat.log.Len(); n != 1 {
		t.Fatalf("Pat's log holds %d entries after a repeat", n)
	}
	if rep, err := pat.log.Verify(ctx); err != nil || rep.Reported != 1 {
		t.Fatalf("Pat's log: %+v, %v", rep, err)
	}
}

func firstRaw(t *testing.T, l *Log) []byte {
	t.Helper()
	raws, err := l.readFrom(0, 1)
	if err != nil || len(raws) != 1 {
		t.Fatalf("read the first entry: %v", err)
	}
	return raws[0]
}

// TestReportsThatAreRefused tries to get entries into a patient's log
// around the rules: forged (signed by another node than the sender),
// edited, relayed, about someone else, replayed, and a flood from a node
// the patient never declared.
func TestReportsThatAreRefused(t *testing.T) {
	ctx := t.Context()
	mn := mocknet.New()
	t.Cleanup(func() { mn.Close() })
	pat := newParty(t, mn, "Pat")
	svc := &Service{repo: pat.repo, l: pat.log, quota: loadQuota(pat.log, MaxUndeclared, time.Now, quiet()), log: quiet()}
	sender := testKey(t)
	senderID := string(protocol.AccountIDFromKey(sender.Public().(ed25519.PublicKey)))
	entry := func(seq uint64, subject protocol.AccountID, report []byte) []byte {
		t.Helper()
		e := &protocol.AuditEntry{Version: protocol.AuditVersion, Seq: seq, Time: 1, Kind: "serve", Subject: string(subject), Report: report}
		if seq > 0 {
			e.Prev = make([]byte, 32)
		}
		enc, err := e.Sign(sender)
		if err != nil {
			t.Fatal(err)
		}
		return enc
	}
	refused := func(name, from string, raw []byte, want string) {
		t.Helper()
		ok, err := svc.Receive(ctx, from, raw)
		if ok || err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("%s: stored %v, %v; want refused with %q", name, ok, err, want)
		}
	}
	good := entry(1, pat.keys.ID, nil)
	refused("forged", peerIDOf(t), good, "signed by another node")
	refused("edited", senderID, bytes.Replace(good, []byte("serve"), []byte("SERVE"), 1), "signature")
	refused("relayed", senderID, entry(2, pat.keys.ID, good), "report of another node's entry")
	refused("about someone else", senderID, entry(3, testAccount(t), nil), "about no account of this node")
	if ok, err := svc.Receive(ctx, senderID, good); !ok || err != nil {
		t.Fatalf("an undeclared node's first-hand report: stored %v, %v", ok, err)
	}
	if ok, err := svc.Receive(ctx, senderID, good); ok || err != nil {
		t.Fatalf("replayed: stored %v, %v", ok, err)
	}
	if ok, err := svc.Receive(ctx, senderID, entry(0, pat.keys.ID, nil)); ok || err != nil {
		t.Fatalf("an older entry: stored %v, %v", ok, err)
	}
	svc.quota.Counts[senderID] = MaxUndeclared
	refused("over the quota", senderID, entry(5, pat.keys.ID, nil), "too many entries")
	if n := pat.log.Len(); n != 1 {
		t.Fatalf("Pat's log holds %d entries, want the one kept", n)
	}
	if _, err := svc.Receive(ctx, senderID, make([]byte, protocol.MaxAuditEntrySize+1)); err == nil {
		t.Fatal("an oversized entry was accepted")
	}
}

func peerIDOf(t *testing.T) string {
	sk, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPrivateKey(sk)
	if err != nil {
		t.Fatal(err)
	}
	return id.String()
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
