package exchange

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"

	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/node/config"
	"github.com/blockmrs/blockmrs/node/internal/peerlimit"
	"github.com/blockmrs/blockmrs/node/p2p"
	"github.com/blockmrs/blockmrs/protocol"
)

type testNode struct {
	name string
	repo *keyshare.Repo
	keys *keyshare.Keys
	host host.Host
	ex   *Exchange
}

func quietLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// newNode starts a repo with one account, a loopback libp2p host and an
// exchange over them.
func newNode(t testing.TB, name string, role protocol.Role) *testNode {
	t.Helper()
	ctx := t.Context()
	repo, err := keyshare.Open(ctx, t.TempDir(), keyshare.Options{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	k, err := repo.CreateAccount(ctx, name, role, nil)
	if err != nil {
		t.Fatal(err)
	}
	key, err := p2p.LoadOrCreateKey(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.Listen = []string{"/ip4/127.0.0.1/tcp/0"}
	h, err := p2p.NewHost(ctx, cfg, key)
	if err != nil {
		t.Fatal(err)
	}
	n := &testNode{name: name, repo: repo, keys: k, host: h, ex: New(h, repo, quietLogger())}
	t.Cleanup(func() {
		n.ex.Close()
		h.Close()
		repo.Close()
	})
	return n
}

// declare makes n's node a declared device of n's account.
func (n *testNode) declare(t testing.TB) {
	t.Helper()
	if _, err := n.repo.SetDevice(t.Context(), n.keys, n.host.ID().String(), n.name+" node", false); err != nil {
		t.Fatal(err)
	}
}

// knows adds other's addresses to n's peerstore.
func (n *testNode) knows(other *testNode) {
	n.host.Peerstore().AddAddrs(other.host.ID(), other.host.Addrs(), peerstore.PermanentAddrTTL)
}

// sendChain exports from's account (narrowed by opts) into to's repo.
func sendChain(t testing.TB, from, to *testNode, opts ...keyshare.ExportOptions) {
	t.Helper()
	var buf bytes.Buffer
	if _, err := from.repo.ExportCAR(t.Context(), &buf, from.keys.ID, opts...); err != nil {
		t.Fatal(err)
	}
	if _, err := to.repo.ImportCAR(t.Context(), &buf); err != nil {
		t.Fatal(err)
	}
}

// dagBlocks lists the blocks of the DAG rooted at root in n's store.
func dagBlocks(t testing.TB, n *testNode, root cid.Cid) []cid.Cid {
	t.Helper()
	var out []cid.Cid
	if err := n.repo.Store().Walk(t.Context(), root, func(b blocks.Block) error {
		out = append(out, b.Cid())
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// holdsNone fails the test if n's store holds any of cs (by multihash,
// which is how the store keys blocks), or holds any block at all that is
// not in allowed.
func holdsNone(t testing.TB, n *testNode, cs []cid.Cid) {
	t.Helper()
	bs := n.repo.Store().Blockstore()
	for _, c := range cs {
		if has, err := bs.Has(context.WithoutCancel(t.Context()), c); err != nil || has {
			t.Fatalf("%s holds block %s (err %v)", n.name, c, err)
		}
	}
	forbidden := map[string]bool{}
	for _, c := range cs {
		forbidden[string(c.Hash())] = true
	}
	ch, err := bs.AllKeysChan(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for c := range ch {
		if forbidden[string(c.Hash())] {
			t.Fatalf("%s holds block %s", n.name, c)
		}
	}
}

func readRecord(t testing.TB, n *testNode, c cid.Cid) []byte {
	t.Helper()
	_, rc, err := n.repo.OpenRecord(t.Context(), n.keys, c)
	if err != nil {
		t.Fatalf("%s opens %s: %v", n.name, c, err)
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("%s reads %s: %v", n.name, c, err)
	}
	return data
}

func TestExchangeEnforcesAccess(t *testing.T) {
	ctx := t.Context()
	pat := newNode(t, "Pat", protocol.RolePatient)
	clinic := newNode(t, "Clinic", protocol.RoleClinic)
	stranger := newNode(t, "Stranger", protocol.RolePatient)
	// A second stranger whose account is unknown to everyone and whose
	// node is declared nowhere.
	nobody := newNode(t, "Nobody", protocol.RolePatient)
	clinic.declare(t)
	stranger.declare(t)
	sendChain(t, clinic, pat)
	sendChain(t, stranger, pat)
	for _, n := range []*testNode{clinic, stranger, nobody} {
		n.knows(pat)
	}

	// A record of several blocks: 3 MiB of random bytes.
	body := make([]byte, 3<<20)
	if _, err := rand.Read(body); err != nil {
		t.Fatal(err)
	}
	rec, err := pat.repo.AddRecord(ctx, pat.keys, keyshare.NewRecord{Title: "scan", Kind: protocol.KindFile, MediaType: "application/octet-stream", Body: bytes.NewReader(body)})
	if err != nil {
		t.Fatal(err)
	}
	recBlocks := dagBlocks(t, pat, rec)
	if len(recBlocks) < 3 {
		t.Fatalf("record has %d blocks; want several", len(recBlocks))
	}
	if _, err := pat.repo.Grant(ctx, pat.keys, []cid.Cid{rec}, clinic.keys.ID, time.Time{}); err != nil {
		t.Fatal(err)
	}
	// The clinic gets the patient's chain without the record.
	sendChain(t, pat, clinic, keyshare.ExportOptions{For: stranger.keys.ID})
	holdsNone(t, clinic, recBlocks)

	// The clinic's node fetches the record from the patient's node.
	start := time.Now()
	fctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	if err := clinic.ex.Fetch(fctx, rec, pat.host.ID()); err != nil {
		t.Fatalf("clinic fetch: %v", err)
	}
	cancel()
	t.Logf("clinic fetched %d blocks (%d bytes of plaintext) in %v", len(recBlocks), len(body), time.Since(start))
	if pinned, err := clinic.repo.Store().IsPinned(ctx, rec); err != nil || !pinned {
		t.Fatalf("record not pinned at the clinic: %v", err)
	}
	if got := readRecord(t, clinic, rec); !bytes.Equal(got, body) {
		t.Fatal("clinic decrypted different bytes")
	}

	// Strangers get nothing: their wants reach the patient's node and
	// are refused.
	refused := pat.ex.Stats().Refused
	parallel(t, []*testNode{stranger, nobody}, func(n *testNode) error {
		sctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		if err := n.ex.Fetch(sctx, rec, pat.host.ID()); err == nil {
			return fmt.Errorf("%s fetched the record", n.name)
		}
		return nil
	})
	for _, n := range []*testNode{stranger, nobody} {
		holdsNone(t, n, recBlocks)
	}
	if got := pat.ex.Stats().Refused - refused; got < 2 {
		t.Fatalf("patient's node refused %d wants; want one per stranger at least", got)
	}

	// A chain block of the patient the clinic does not hold yet (the
	// head after a new, private record) goes to the clinic and to no
	// stranger.
	if _, err := pat.repo.AddRecord(ctx, pat.keys, keyshare.NewRecord{Title: "private", Kind: protocol.KindNote, MediaType: "text/plain", Body: bytes.NewReader([]byte("mine"))}); err != nil {
		t.Fatal(err)
	}
	head := patHead(t, pat)
	refused = pat.ex.Stats().Refused
	parallel(t, []*testNode{stranger, nobody}, func(n *testNode) error {
		sctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		if _, err := n.ex.FetchBlock(sctx, head, pat.host.ID()); err == nil {
			return fmt.Errorf("%s got the patient's chain block", n.name)
		}
		return nil
	})
	for _, n := range []*testNode{stranger, nobody} {
		holdsNone(t, n, []cid.Cid{head})
	}
	if got := pat.ex.Stats().Refused - refused; got < 2 {
		t.Fatalf("patient's node refused %d chain-block wants; want 2 at least", got)
	}
	holdsNone(t, clinic, []cid.Cid{head})
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	blk, err := clinic.ex.FetchBlock(cctx, head, pat.host.ID())
	cancel()
	if err != nil {
		t.Fatalf("clinic fetches the patient's chain block: %v", err)
	}
	want, err := pat.repo.Store().Blockstore().Get(ctx, head)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(blk.RawData(), want.RawData()) {
		t.Fatal("chain block bytes differ")
	}

	// The patient revokes; the clinic, having lost its copy, asks again
	// and gets nothing.
	if _, err := pat.repo.Revoke(ctx, pat.keys, []cid.Cid{rec}, clinic.keys.ID); err != nil {
		t.Fatal(err)
	}
	if err := clinic.repo.Store().Unpin(ctx, rec); err != nil {
		t.Fatal(err)
	}
	for _, c := range recBlocks {
		if err := clinic.repo.Store().Blockstore().DeleteBlock(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	holdsNone(t, clinic, recBlocks)
	refused = pat.ex.Stats().Refused
	rctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	err = clinic.ex.Fetch(rctx, rec, pat.host.ID())
	cancel()
	if err == nil {
		t.Fatal("clinic fetched the record after revocation")
	}
	holdsNone(t, clinic, recBlocks)
	if pat.ex.Stats().Refused == refused {
		t.Fatal("the clinic's want after revocation was not refused by the patient's node")
	}
}

// parallel runs fn for each node concurrently and fails on any error.
func parallel(t *testing.T, nodes []*testNode, fn func(*testNode) error) {
	t.Helper()
	errs := make(chan error, len(nodes))
	for _, n := range nodes {
		go func() { errs <- fn(n) }()
	}
	for range nodes {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

func patHead(t *testing.T, n *testNode) cid.Cid {
	t.Helper()
	info, err := n.repo.Account(t.Context(), n.keys.ID)
	if err != nil {
		t.Fatal(err)
	}
	return info.Head
}

// BenchmarkFetch measures a granted node fetching a 64 MiB record (its
// ciphertext DAG) from the patient's node over loopback TCP, block by
// block with bitswap, then pinning and indexing it.
func BenchmarkFetch(b *testing.B) {
	ctx := b.Context()
	pat := newNode(b, "Pat", protocol.RolePatient)
	clinic := newNode(b, "Clinic", protocol.RoleClinic)
	clinic.declare(b)
	sendChain(b, clinic, pat)
	clinic.knows(pat)
	other, err := pat.repo.CreateAccount(ctx, "Other", protocol.RolePatient, nil)
	if err != nil {
		b.Fatal(err)
	}
	body := make([]byte, 64<<20)
	if _, err := rand.Read(body); err != nil {
		b.Fatal(err)
	}
	rec, err := pat.repo.AddRecord(ctx, pat.keys, keyshare.NewRecord{Title: "big", Kind: protocol.KindFile, MediaType: "application/octet-stream", Body: bytes.NewReader(body)})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := pat.repo.Grant(ctx, pat.keys, []cid.Cid{rec}, clinic.keys.ID, time.Time{}); err != nil {
		b.Fatal(err)
	}
	sendChain(b, pat, clinic, keyshare.ExportOptions{For: other.ID})
	recBlocks := dagBlocks(b, pat, rec)
	b.SetBytes(int64(len(body)))
	b.ResetTimer()
	for b.Loop() {
		if err := clinic.ex.Fetch(ctx, rec, pat.host.ID()); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if err := clinic.repo.Store().Unpin(ctx, rec); err != nil {
			b.Fatal(err)
		}
		for _, c := range recBlocks {
			if err := clinic.repo.Store().Blockstore().DeleteBlock(ctx, c); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
	}
}

func TestRefusalsAreLoggedOncePerPeer(t *testing.T) {
	var buf bytes.Buffer
	e := &Exchange{log: slog.New(slog.NewTextHandler(&buf, nil)), refusalLog: peerlimit.NewThrottle(peerlimit.LogEvery)}
	a, b := peer.ID("peer-a"), peer.ID("peer-b")
	for range 1000 {
		e.logRefusal(a, "peer is no declared device or replica of any account")
		e.logRefusal(b, "peer is no declared device or replica of any account")
	}
	if n := strings.Count(buf.String(), "exchange: refused a want"); n != 2 {
		t.Fatalf("a flood from two peers logged %d lines, want 2:\n%s", n, buf.String())
	}
}
