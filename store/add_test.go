package store

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"filippo.io/age"
	cid "github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"
)

func checkProfileCID(t *testing.T, c cid.Cid, size int64) {
	t.Helper()
	p := c.Prefix()
	if p.Version != 1 || p.MhType != mh.SHA2_256 {
		t.Fatalf("%s: want CIDv1 sha2-256, got %+v", c, p)
	}
	// One chunk is a raw leaf (bafk...), more is a dag-pb root (bafy...).
	want := "bafy"
	if size <= mib {
		want = "bafk"
	}
	if !strings.HasPrefix(c.String(), want) {
		t.Fatalf("CID %s for %d bytes: want prefix %s", c, size, want)
	}
}

func TestAddRoundTrip(t *testing.T) {
	s := openStore(t)
	ctx := context.Background()
	for _, size := range []int{0, 1, mib - 1, mib, mib + 1, 5 * mib} {
		plain := randBytes(uint64(size), size)
		added, err := s.Add(ctx, bytes.NewReader(plain))
		if err != nil {
			t.Fatalf("Add(%d): %v", size, err)
		}
		if added.Key == nil {
			t.Fatal("no key")
		}
		checkProfileCID(t, added.CID, added.Size)

		ct := catBytes(t, s, added.CID)
		if int64(len(ct)) != added.Size {
			t.Fatalf("size %d: Cat gave %d bytes, Added.Size is %d", size, len(ct), added.Size)
		}
		// The ciphertext is a plain age file for the returned key.
		pr, err := age.Decrypt(bytes.NewReader(ct), added.Key)
		if err != nil {
			t.Fatalf("age.Decrypt: %v", err)
		}
		got, err := io.ReadAll(pr)
		if err != nil {
			t.Fatal(err)
		}
		mustEqual(t, "age.Decrypt", got, plain)

		dr, err := s.Decrypt(ctx, added.CID, added.Key)
		if err != nil {
			t.Fatalf("Decrypt: %v", err)
		}
		mustEqual(t, "Decrypt", readAll(t, dr), plain)

		pinned, err := s.IsPinned(ctx, added.CID)
		if err != nil || !pinned {
			t.Fatalf("record not pinned: %v %v", pinned, err)
		}
		// Same ciphertext through AddRaw gives the same CID.
		c2, n, err := s.AddRaw(ctx, bytes.NewReader(ct))
		if err != nil {
			t.Fatal(err)
		}
		if !c2.Equals(added.CID) || n != added.Size {
			t.Fatalf("AddRaw of the ciphertext: %s/%d, Add gave %s/%d", c2, n, added.CID, added.Size)
		}
	}
}

func TestAddFreshKeys(t *testing.T) {
	s := openStore(t)
	ctx := context.Background()
	a, err := s.Add(ctx, strings.NewReader("same"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.Add(ctx, strings.NewReader("same"))
	if err != nil {
		t.Fatal(err)
	}
	if a.Key.String() == b.Key.String() || a.CID.Equals(b.CID) {
		t.Fatal("two adds shared a key or a CID")
	}
}

func TestAddRawSameBytesSameCID(t *testing.T) {
	s := openStore(t)
	ctx := context.Background()
	data := randBytes(7, 3*mib+5)
	c1, n1, err := s.AddRaw(ctx, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	c2, n2, err := s.AddRaw(ctx, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if !c1.Equals(c2) || n1 != n2 || n1 != int64(len(data)) {
		t.Fatalf("%s/%d vs %s/%d", c1, n1, c2, n2)
	}
	mustEqual(t, "Cat", catBytes(t, s, c1), data)
}

// TestAddRawMatchesKubo checks CIDs against stock `ipfs add
// --profile=unixfs-v1-2025`: vectors from kubo v0.43.0
// test/cli/cid_profiles_test.go, plus sizes whose CID follows directly from
// the spec (one chunk is one raw block).
func TestAddRawMatchesKubo(t *testing.T) {
	s := openStore(t)
	ctx := context.Background()
	cases := []struct {
		name string
		r    func() io.Reader
		want string
	}{
		{"empty", func() io.Reader { return strings.NewReader("") }, "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"},
		{"hello world", func() io.Reader { return strings.NewReader("hello world") }, "bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e"},
		{"1 byte", func() io.Reader { return strings.NewReader("x") }, rawCID(t, []byte("x")).String()},
		{"1 MiB", func() io.Reader { return kuboReader(t, "chunk-v1-seed", mib) }, "bafkreiacndfy443ter6qr2tmbbdhadvxxheowwf75s6zehscklu6ezxmta"},
		{"1 MiB+1", func() io.Reader { return kuboReader(t, "chunk-v1-seed", mib+1) }, "bafybeigmix7t42i6jacydtquhet7srwvgpizfg7gjbq7627d35mjomtu64"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, _, err := s.AddRaw(ctx, tc.r())
			if err != nil {
				t.Fatal(err)
			}
			if c.String() != tc.want {
				t.Fatalf("got %s, want %s", c, tc.want)
			}
		})
	}
}

// TestLargeAddRawMatchesKuboVectors checks the 1024-chunk boundary against
// kubo's vectors with real 1 MiB chunks: 1 GiB+1 bytes (seed
// "v1-2025-seed") must give kubo's two-level root, and that root's first
// child is the 1 GiB (exactly 1024 chunks) file, whose CID kubo also
// records; the balanced layout builds it identically in both files (see
// TestLayoutLevels). One 1 GiB import instead of two keeps this affordable.
func TestLargeAddRawMatchesKuboVectors(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 1 GiB: run without -short (scripts/test.sh's large pass); TestLayoutLevels covers the shape cheaply")
	}
	s := openStore(t)
	ctx := context.Background()
	c, n, err := s.AddRaw(ctx, kuboReader(t, "v1-2025-seed", 1024*mib+1))
	if err != nil {
		t.Fatal(err)
	}
	if n != 1024*mib+1 {
		t.Fatalf("read %d bytes", n)
	}
	const (
		wantOver = "bafybeibdsi225ugbkmpbdohnxioyab6jsqrmkts3twhpvfnzp77xtzpyhe" // 1024 MiB + 1
		wantAt   = "bafybeihmf37wcuvtx4hpu7he5zl5qaf2ineo2lqlfrapokkm5zzw7zyhvm" // 1024 MiB
	)
	if c.String() != wantOver {
		t.Fatalf("1 GiB+1: got %s, want %s", c, wantOver)
	}
	blk, err := s.Blockstore().Get(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	links, err := Links(blk)
	if err != nil {
		t.Fatal(err)
	}
	if len(links) != 2 || links[0].String() != wantAt {
		t.Fatalf("root links %v, want 2 with the first %s", links, wantAt)
	}
	blk, err = s.Blockstore().Get(ctx, links[0])
	if err != nil {
		t.Fatal(err)
	}
	if l, err := Links(blk); err != nil || len(l) != 1024 {
		t.Fatalf("1 GiB node has %d links (%v), want 1024", len(l), err)
	}
}

// TestLayoutLevels uses 16-byte chunks to cross the 1024-links boundary
// cheaply: 1024 chunks fit under one root, one more byte adds a level.
func TestLayoutLevels(t *testing.T) {
	s := openStore(t)
	s.layout = importLayout{chunkSize: 16, maxLinks: 1024}
	ctx := context.Background()
	links := func(c cid.Cid) []cid.Cid {
		t.Helper()
		blk, err := s.Blockstore().Get(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		l, err := Links(blk)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}

	at := randBytes(1, 1024*16)
	c, _, err := s.AddRaw(ctx, bytes.NewReader(at))
	if err != nil {
		t.Fatal(err)
	}
	root := links(c)
	if len(root) != 1024 {
		t.Fatalf("1024 chunks: root has %d links, want 1024", len(root))
	}
	for _, l := range root {
		if l.Prefix().Codec != cid.Raw {
			t.Fatalf("leaf %s is not raw", l)
		}
	}
	mustEqual(t, "Cat at max links", catBytes(t, s, c), at)

	over := append(at, 0x42)
	c2, _, err := s.AddRaw(ctx, bytes.NewReader(over))
	if err != nil {
		t.Fatal(err)
	}
	root2 := links(c2)
	if len(root2) != 2 {
		t.Fatalf("1025 chunks: root has %d links, want 2", len(root2))
	}
	if !root2[0].Equals(c) {
		t.Fatalf("first child %s should be the full 1024-chunk node %s", root2[0], c)
	}
	if n := len(links(root2[1])); n != 1 || root2[1].Prefix().Codec != cid.DagProtobuf {
		t.Fatalf("second child: %d links, codec %x; want a dag-pb node with 1 link", n, root2[1].Prefix().Codec)
	}
	mustEqual(t, "Cat over max links", catBytes(t, s, c2), over)
}

type failingReader struct{ n int }

var errSource = errors.New("source broke")

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, errSource
	}
	n := min(len(p), f.n)
	f.n -= n
	return n, nil
}

func TestAddReaderError(t *testing.T) {
	s := openStore(t)
	ctx := context.Background()
	before := snapshot(t, s)
	if _, err := s.Add(ctx, &failingReader{n: 3 * mib}); !errors.Is(err, errSource) || !strings.Contains(err.Error(), "read plaintext") {
		t.Fatalf("Add with failing reader: %v", err)
	}
	if _, _, err := s.AddRaw(ctx, &failingReader{n: 10}); !errors.Is(err, errSource) {
		t.Fatalf("AddRaw with failing reader: %v", err)
	}
	// Nothing pinned; written blocks are garbage and GC removes them.
	if pins, _ := s.Pins(ctx); len(pins) != 0 {
		t.Fatalf("pins after failed adds: %v", pins)
	}
	if _, err := s.GC(ctx); err != nil {
		t.Fatal(err)
	}
	sameSnapshot(t, before, snapshot(t, s))
}

func TestAddCancelled(t *testing.T) {
	s := openStore(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Add(ctx, strings.NewReader("x")); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v", err)
	}
}
