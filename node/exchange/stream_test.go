package exchange

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"testing"
	"time"

	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	mh "github.com/multiformats/go-multihash"

	"github.com/blockmrs/blockmrs/internal/stocktools"
	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/node/transfer"
	"github.com/blockmrs/blockmrs/protocol"
)

// streamSetup gives a patient's node holding a record of several blocks
// granted to the clinic, whose node holds the patient's chain but not the
// record.
func streamSetup(t *testing.T) (pat, clinic *testNode, rec cid.Cid, body []byte, recBlocks []cid.Cid) {
	t.Helper()
	ctx := t.Context()
	pat = newNode(t, "Pat", protocol.RolePatient)
	clinic = newNode(t, "Clinic", protocol.RoleClinic)
	clinic.declare(t)
	sendChain(t, clinic, pat)
	clinic.knows(pat)
	other, err := pat.repo.CreateAccount(ctx, "Other", protocol.RolePatient, nil)
	if err != nil {
		t.Fatal(err)
	}
	body = stocktools.PseudoRandomBytes("dag stream", 5<<20+3)
	rec, err = pat.repo.AddRecord(ctx, pat.keys, keyshare.NewRecord{Title: "scan", Kind: protocol.KindFile,
		MediaType: "application/octet-stream", Body: bytes.NewReader(body)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pat.repo.Grant(ctx, pat.keys, []cid.Cid{rec}, clinic.keys.ID, time.Time{}); err != nil {
		t.Fatal(err)
	}
	sendChain(t, pat, clinic, keyshare.ExportOptions{For: other.ID})
	recBlocks = dagBlocks(t, pat, rec)
	if len(recBlocks) < 4 {
		t.Fatalf("record has %d blocks; want several", len(recBlocks))
	}
	holdsNone(t, clinic, recBlocks)
	return pat, clinic, rec, body, recBlocks
}

// forget removes the record from n's store again.
func forget(t *testing.T, n *testNode, rec cid.Cid, cs []cid.Cid) {
	t.Helper()
	ctx := context.WithoutCancel(t.Context()) // also from a Cleanup, after t's context ends
	_ = n.repo.Store().Unpin(ctx, rec)
	for _, c := range cs {
		if err := n.repo.Store().Blockstore().DeleteBlock(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	holdsNone(t, n, cs)
}

func fetchOK(t *testing.T, n, from *testNode, rec cid.Cid, body []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	if err := n.ex.Fetch(ctx, rec, from.host.ID()); err != nil {
		t.Fatalf("%s fetch: %v", n.name, err)
	}
	if got := readRecord(t, n, rec); !bytes.Equal(got, body) {
		t.Fatalf("%s decrypted other bytes", n.name)
	}
	if pinned, err := n.repo.Store().IsPinned(t.Context(), rec); err != nil || !pinned {
		t.Fatalf("record not pinned at %s: %v", n.name, err)
	}
}

// ask sends payload on a raw DAG stream from n to to and returns all it
// read, or the read error.
func ask(t *testing.T, n, to *testNode, payload []byte) ([]byte, error) {
	t.Helper()
	n.knows(to)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	if err := n.ex.connect(ctx, []peer.ID{to.host.ID()}); err != nil {
		t.Fatal(err)
	}
	st, err := n.host.NewStream(ctx, to.host.ID(), transfer.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	_ = st.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := st.Write(payload); err != nil {
		return nil, err
	}
	_ = st.CloseWrite()
	return io.ReadAll(st)
}

func request(t *testing.T, c cid.Cid) []byte {
	t.Helper()
	b, err := transfer.AppendRequest(nil, c)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestStreamFetch(t *testing.T) {
	ctx := t.Context()
	pat, clinic, rec, body, recBlocks := streamSetup(t)

	fetchOK(t, clinic, pat, rec, body)
	st := clinic.ex.Stats()
	if st.StreamFetches != 1 || st.StreamPartial != 0 || st.StreamBlocks != int64(len(recBlocks)) {
		t.Fatalf("stream not used for the whole record: %+v", st)
	}
	if s := pat.ex.Stats(); s.Serve.Served != 1 || s.Serve.Blocks != int64(len(recBlocks)) || s.Allowed != 0 {
		t.Fatalf("patient's node: %+v; want one stream of %d blocks and no bitswap want", s, len(recBlocks))
	}

	// Refusals look exactly like a root the node does not hold: the end
	// message alone.
	stranger := newNode(t, "Stranger", protocol.RolePatient)
	stranger.declare(t)
	sendChain(t, stranger, pat)
	unknown, _ := cid.V1Builder{Codec: cid.Raw, MhType: mh.SHA2_256}.Sum([]byte("nobody has this"))
	for _, c := range []struct {
		name string
		from *testNode
		root cid.Cid
	}{
		{"stranger asks for the record", stranger, rec},
		{"clinic asks for an unknown CID", clinic, unknown},
		// The clinic may read the patient's chain block over bitswap,
		// but a chain block is no record root: it links every record of
		// the chain, and a DAG stream would send them all.
		{"clinic asks for the patient's chain head", clinic, patHead(t, pat)},
		// An inner block alone is no record root either.
		{"clinic asks for a leaf", clinic, recBlocks[len(recBlocks)-1]},
	} {
		got, err := ask(t, c.from, pat, request(t, c.root))
		if err != nil || !bytes.Equal(got, transfer.End) {
			t.Fatalf("%s: got %d bytes (%x…), %v; want the end message alone", c.name, len(got), got[:min(len(got), 8)], err)
		}
	}
	if s := pat.ex.Stats().Serve; s.Refused != 4 || s.Served != 1 {
		t.Fatalf("patient's node: %+v", s)
	}

	// The stranger's fetch gets nothing over either protocol.
	sctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	stranger.knows(pat)
	if err := stranger.ex.Fetch(sctx, rec, pat.host.ID()); err == nil {
		t.Fatal("stranger fetched the record")
	}
	holdsNone(t, stranger, recBlocks)
	if s := stranger.ex.Stats(); s.StreamBlocks != 0 {
		t.Fatalf("stranger: %+v", s)
	}

	// Malformed requests: the server resets the stream, counts it, and
	// keeps serving. (The count is checked at the end: the client may see
	// the reset before the server's handler has returned.)
	badStart := pat.ex.Stats().Serve.Bad
	bads := [][]byte{
		binary.AppendUvarint(nil, 1<<20), // over the size limit
		{0x80, 0x00},                     // non-minimal length
		{0},                              // empty
		append([]byte{5}, "hello"...),    // not a CID
		append(request(t, rec), 0),       // trailing byte
		append([]byte{byte(len(rec.Bytes()) + 1)}, append(rec.Bytes(), 7)...), // bytes after the CID
	}
	for _, bad := range bads {
		got, err := ask(t, clinic, pat, bad)
		if err == nil && len(got) > 0 {
			t.Fatalf("request %x answered with %d bytes", bad, len(got))
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for pat.ex.Stats().Serve.Bad != badStart+int64(len(bads)) {
		if time.Now().After(deadline) {
			t.Fatalf("%d malformed requests counted, want %d", pat.ex.Stats().Serve.Bad-badStart, len(bads))
		}
		time.Sleep(10 * time.Millisecond)
	}
	forget(t, clinic, rec, recBlocks)
	fetchOK(t, clinic, pat, rec, body)
	if s := clinic.ex.Stats(); s.StreamFetches != 2 {
		t.Fatalf("second stream fetch: %+v", s)
	}
}

// TestStreamFallback: a server that misbehaves gets its stream reset and
// no bad block stored; bitswap fetches the rest.
func TestStreamFallback(t *testing.T) {
	ctx := t.Context()
	pat, clinic, rec, body, recBlocks := streamSetup(t)
	get := func(c cid.Cid) blocks.Block {
		b, err := pat.repo.Store().Blockstore().Get(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	frame := func(c cid.Cid, data []byte) []byte {
		f, err := transfer.AppendFrame(nil, c, data)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	stray := blocks.NewBlock([]byte("a block of some other DAG"))
	rootData := get(rec).RawData()
	var wellFormed []byte // root and its first two children, in order
	for _, c := range recBlocks[:3] {
		wellFormed = append(wellFormed, frame(c, get(c).RawData())...)
	}
	bad := append(bytes.Clone(rootData[:len(rootData)-1]), rootData[len(rootData)-1]^1)
	cases := []struct {
		name    string
		send    []byte
		reset   bool // reset the stream after send instead of closing it
		partial bool // the client keeps blocks from the stream
	}{
		{name: "block not matching its CID", send: frame(rec, bad)},
		{name: "root not first", send: frame(recBlocks[1], get(recBlocks[1]).RawData())},
		{name: "unlinked block", send: append(frame(rec, rootData), frame(stray.Cid(), stray.RawData())...), partial: true},
		{name: "block sent twice", send: append(frame(rec, rootData), frame(rec, rootData)...), partial: true},
		{name: "oversized frame", send: binary.AppendUvarint(nil, transfer.MaxFrameSize+1)},
		{name: "garbage", send: stocktools.PseudoRandomBytes("garbage", 4096)},
		{name: "truncated", send: wellFormed[:len(wellFormed)-10], partial: true},
		{name: "broken midway", send: wellFormed, reset: true, partial: true},
		{name: "ends early", send: append(bytes.Clone(wellFormed), 0), partial: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// The next case starts from a clinic holding none of the
			// record, even when this one fails half way.
			t.Cleanup(func() { forget(t, clinic, rec, recBlocks) })
			pat.host.SetStreamHandler(transfer.ID, func(s network.Stream) {
				if _, err := transfer.ReadRequest(bufio.NewReader(s)); err != nil {
					s.Reset()
					return
				}
				s.Write(c.send)
				if c.reset {
					s.Reset()
					return
				}
				s.Close()
			})
			before := clinic.ex.Stats()
			fetchOK(t, clinic, pat, rec, body)
			after := clinic.ex.Stats()
			if after.StreamFetches != before.StreamFetches {
				t.Fatal("the stream counted as complete")
			}
			if got := after.StreamPartial - before.StreamPartial; (got == 1) != c.partial {
				t.Fatalf("partial stream fetches: %d", got)
			}
			if pat.ex.Stats().Allowed == 0 {
				t.Fatal("bitswap did not fetch the rest")
			}
			holdsNone(t, clinic, []cid.Cid{stray.Cid()})
		})
	}
	pat.host.SetStreamHandler(transfer.ID, pat.ex.dag.Handle)
	fetchOK(t, clinic, pat, rec, body)
}
