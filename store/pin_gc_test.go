package store

import (
	"bytes"
	"context"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	blocks "github.com/ipfs/go-block-format"
	cid "github.com/ipfs/go-cid"
	"github.com/ipld/go-ipld-prime/codec/dagcbor"
	"github.com/ipld/go-ipld-prime/datamodel"
	"github.com/ipld/go-ipld-prime/fluent/qp"
	cidlink "github.com/ipld/go-ipld-prime/linking/cid"
	"github.com/ipld/go-ipld-prime/node/basicnode"
	mh "github.com/multiformats/go-multihash"
)

// cborBlock builds a dag-cbor map shaped like a signed chain entry: links
// (tag 42) nested in a map and a list, next to ordinary data.
func cborBlock(t testing.TB, note string, prev *cid.Cid, records ...cid.Cid) blocks.Block {
	t.Helper()
	n, err := qp.BuildMap(basicnode.Prototype.Any, 4, func(ma datamodel.MapAssembler) {
		qp.MapEntry(ma, "note", qp.String(note))
		if prev != nil {
			qp.MapEntry(ma, "prev", qp.Link(cidlink.Link{Cid: *prev}))
		}
		qp.MapEntry(ma, "body", qp.Map(1, func(ma datamodel.MapAssembler) {
			qp.MapEntry(ma, "records", qp.List(int64(len(records)), func(la datamodel.ListAssembler) {
				for _, r := range records {
					qp.ListEntry(la, qp.Link(cidlink.Link{Cid: r}))
				}
			}))
		}))
		qp.MapEntry(ma, "sig", qp.Bytes([]byte{1, 2, 3}))
	})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := dagcbor.Encode(n, &buf); err != nil {
		t.Fatal(err)
	}
	c, err := cid.Prefix{Version: 1, Codec: cid.DagCBOR, MhType: mh.SHA2_256, MhLength: -1}.Sum(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	blk, err := blocks.NewBlockWithCid(buf.Bytes(), c)
	if err != nil {
		t.Fatal(err)
	}
	return blk
}

func TestLinksDagCBOR(t *testing.T) {
	r1, r2, p := rawCID(t, []byte("a")), rawCID(t, []byte("b")), rawCID(t, []byte("p"))
	blk := cborBlock(t, "x", &p, r1, r2)
	got, err := Links(blk)
	if err != nil {
		t.Fatal(err)
	}
	// Map keys in dag-cbor order: body, note, prev, sig.
	want := []cid.Cid{r1, r2, p}
	if !slices.EqualFunc(got, want, cid.Cid.Equals) {
		t.Fatalf("links %v, want %v", got, want)
	}
	if _, err := Links(blocks.NewBlock([]byte("x"))); err == nil {
		// NewBlock makes a CIDv0 (dag-pb) for bytes that are not dag-pb.
		t.Fatal("garbage decoded as dag-pb")
	}
}

func TestPinRequiresWholeDAG(t *testing.T) {
	s := openStore(t)
	ctx := context.Background()
	c, _, err := s.AddRaw(ctx, bytes.NewReader(randBytes(8, 3*mib)))
	if err != nil {
		t.Fatal(err)
	}
	missing := rawCID(t, []byte("not here"))
	blk := cborBlock(t, "head", nil, c, missing)
	if err := s.Blockstore().Put(ctx, blk); err != nil {
		t.Fatal(err)
	}
	err = s.Pin(ctx, blk.Cid())
	wantBlockErr(t, err, missing, ErrMissing)
	if ok, _ := s.IsPinned(ctx, blk.Cid()); ok {
		t.Fatal("pinned despite a missing block")
	}
	if err := s.Unpin(ctx, blk.Cid()); !errors.Is(err, ErrNotPinned) {
		t.Fatalf("Unpin of unpinned: %v", err)
	}
}

func TestGC(t *testing.T) {
	s := openStore(t)
	ctx := context.Background()
	keep, err := s.Add(ctx, bytes.NewReader(randBytes(10, 3*mib)))
	if err != nil {
		t.Fatal(err)
	}
	drop, err := s.Add(ctx, bytes.NewReader(randBytes(11, 2*mib)))
	if err != nil {
		t.Fatal(err)
	}
	// A chain of two dag-cbor blocks referring to a third record.
	viaChain, _, err := s.AddRaw(ctx, bytes.NewReader(randBytes(12, mib+3)))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Unpin(ctx, viaChain); err != nil {
		t.Fatal(err)
	}
	genesis := cborBlock(t, "genesis", nil)
	g := genesis.Cid()
	head := cborBlock(t, "head", &g, viaChain)
	if err := s.Blockstore().PutMany(ctx, []blocks.Block{genesis, head}); err != nil {
		t.Fatal(err)
	}
	if err := s.Pin(ctx, head.Cid()); err != nil {
		t.Fatal(err)
	}
	if err := s.Unpin(ctx, drop.CID); err != nil {
		t.Fatal(err)
	}
	pins, err := s.Pins(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(pins) != 2 || !slices.ContainsFunc(pins, keep.CID.Equals) || !slices.ContainsFunc(pins, head.Cid().Equals) {
		t.Fatalf("pins %v", pins)
	}

	st, err := s.GC(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// drop: 3 chunks + root. keep: 4 + root; chain: 2 cbor + 3 blocks.
	if st.Removed != 4 || st.Kept != 5+2+3 || st.RemovedBytes < 2*mib {
		t.Fatalf("GC stats %+v", st)
	}
	if _, err := s.Cat(ctx, drop.CID); !errors.Is(err, ErrMissing) {
		t.Fatalf("unpinned record still readable: %v", err)
	}
	dr, err := s.Decrypt(ctx, keep.CID, keep.Key)
	if err != nil {
		t.Fatal(err)
	}
	mustEqual(t, "kept record", readAll(t, dr), randBytes(10, 3*mib))
	mustEqual(t, "record via chain", catBytes(t, s, viaChain), randBytes(12, mib+3))
	if _, err := s.Blockstore().Get(ctx, g); err != nil {
		t.Fatalf("genesis collected: %v", err)
	}

	// Nothing left to collect; then unpin the chain and it all goes.
	if st, err := s.GC(ctx); err != nil || st.Removed != 0 {
		t.Fatalf("second GC: %+v %v", st, err)
	}
	if err := s.Unpin(ctx, head.Cid()); err != nil {
		t.Fatal(err)
	}
	if st, err := s.GC(ctx); err != nil || st.Removed != 5 {
		t.Fatalf("GC after unpinning chain: %+v %v", st, err)
	}
}

func TestGCRefusesBrokenPinnedDAG(t *testing.T) {
	s := openStore(t)
	ctx := context.Background()
	rec, _, err := s.AddRaw(ctx, bytes.NewReader(randBytes(13, 2*mib)))
	if err != nil {
		t.Fatal(err)
	}
	garbage, _, err := s.AddRaw(ctx, strings.NewReader("garbage"))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Unpin(ctx, garbage); err != nil {
		t.Fatal(err)
	}
	flipByte(t, s, rec, 3) // the dag-pb root: its links can't be trusted
	before := snapshot(t, s)
	_, err = s.GC(ctx)
	wantBlockErr(t, err, rec, ErrCorrupt)
	sameSnapshot(t, before, snapshot(t, s))
}

// blockingReader hands out n bytes, then waits for release.
type blockingReader struct {
	n       int
	reached chan struct{}
	release chan struct{}
}

func (b *blockingReader) Read(p []byte) (int, error) {
	if b.n > 0 {
		k := min(len(p), b.n)
		clear(p[:k])
		b.n -= k
		return k, nil
	}
	if b.reached != nil {
		close(b.reached)
		b.reached = nil
		<-b.release
	}
	return 0, io.EOF
}

func TestGCWaitsForAdd(t *testing.T) {
	s := openStore(t)
	ctx := context.Background()
	reached := make(chan struct{})
	br := &blockingReader{n: 3 * mib, reached: reached, release: make(chan struct{})}
	type result struct {
		a   Added
		err error
	}
	addDone := make(chan result, 1)
	go func() {
		a, err := s.Add(ctx, br)
		addDone <- result{a, err}
	}()
	<-reached // 3 MiB of blocks written, unpinned so far
	gcDone := make(chan error, 1)
	go func() {
		_, err := s.GC(ctx)
		gcDone <- err
	}()
	select {
	case err := <-gcDone:
		t.Fatalf("GC ran during an add: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	// GC being requested must not block other writers (no deadlock with
	// a PinLock holder calling Pin).
	u := s.Blockstore().PinLock(ctx)
	c, _, err := s.AddRaw(ctx, strings.NewReader("while GC waits"))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Pin(ctx, c); err != nil {
		t.Fatal(err)
	}
	u.Unlock(ctx)
	if !s.Blockstore().GCRequested(ctx) {
		t.Fatal("GC not reported as requested")
	}
	close(br.release)
	res := <-addDone
	if res.err != nil {
		t.Fatal(res.err)
	}
	if err := <-gcDone; err != nil {
		t.Fatal(err)
	}
	dr, err := s.Decrypt(ctx, res.a.CID, res.a.Key)
	if err != nil {
		t.Fatal(err)
	}
	mustEqual(t, "record added during GC", readAll(t, dr), make([]byte, 3*mib))
}

func TestGCContextCancelWhileWaiting(t *testing.T) {
	s := openStore(t)
	u := s.Blockstore().PinLock(context.Background())
	defer u.Unlock(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := s.GC(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v", err)
	}
}

func TestWalkOrder(t *testing.T) {
	s := openStore(t)
	ctx := context.Background()
	a, b := rawBlock(t, []byte("leaf a")), cborBlock(t, "b", nil)
	bc := b.Cid()
	c := cborBlock(t, "c", &bc, a.Cid())          // body.records=[a], prev=b
	d := cborBlock(t, "d", nil, c.Cid(), a.Cid()) // records=[c, a]
	if err := s.Blockstore().PutMany(ctx, []blocks.Block{a, b, c, d}); err != nil {
		t.Fatal(err)
	}
	var got []cid.Cid
	err := s.Walk(ctx, d.Cid(), func(blk blocks.Block) error {
		got = append(got, blk.Cid())
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// d, then c (first link) and its subtree a, b; a again is skipped.
	want := []cid.Cid{d.Cid(), c.Cid(), a.Cid(), b.Cid()}
	if !slices.EqualFunc(got, want, cid.Cid.Equals) {
		t.Fatalf("walk order %v, want %v", got, want)
	}
	stop := errors.New("stop")
	if err := s.Walk(ctx, d.Cid(), func(blocks.Block) error { return stop }); err != stop {
		t.Fatalf("fn error not returned as is: %v", err)
	}
}

func rawBlock(t testing.TB, data []byte) blocks.Block {
	t.Helper()
	blk, err := blocks.NewBlockWithCid(data, rawCID(t, data))
	if err != nil {
		t.Fatal(err)
	}
	return blk
}

func TestIdentityCIDs(t *testing.T) {
	s := openStore(t)
	ctx := context.Background()
	id, err := cid.Prefix{Version: 1, Codec: cid.Raw, MhType: mh.IDENTITY, MhLength: -1}.Sum([]byte("inline"))
	if err != nil {
		t.Fatal(err)
	}
	blk := cborBlock(t, "links identity", nil, id)
	if err := s.Blockstore().Put(ctx, blk); err != nil {
		t.Fatal(err)
	}
	if err := s.Pin(ctx, blk.Cid()); err != nil {
		t.Fatal(err)
	}
	got, err := s.Blockstore().Get(ctx, id)
	if err != nil || string(got.RawData()) != "inline" {
		t.Fatalf("%v %v", got, err)
	}
	if _, err := s.GC(ctx); err != nil {
		t.Fatal(err)
	}
}
