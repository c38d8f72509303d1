package store_test

// Interop with a stock Kubo node initialised with the IPIP-499 profile
// unixfs-v1-2025: the same bytes must give the same CID, and `ipfs cat` of
// that CID must give back what store.Cat does. See DESIGN.md, "Interop that
// must keep holding".

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	cid "github.com/ipfs/go-cid"

	"github.com/blockmrs/blockmrs/internal/stocktools"
	"github.com/blockmrs/blockmrs/store"
)

const (
	interopKiB = 1 << 10
	interopMiB = 1 << 20
)

// interopSeed is the seed (see stocktools.PseudoRandom) of every test file
// here.
func interopSeed(label string) string { return "blockmrs interop " + label }

// streamSum is what a stream hashed to, and how long it was.
type streamSum struct {
	n   int64
	sum [sha256.Size]byte
}

func (s streamSum) String() string {
	return fmt.Sprintf("%d bytes sha256:%s", s.n, hex.EncodeToString(s.sum[:]))
}

type sumWriter struct {
	h hash.Hash
	n int64
}

func newSumWriter() *sumWriter { return &sumWriter{h: sha256.New()} }

func (w *sumWriter) Write(p []byte) (int, error) {
	w.n += int64(len(p))
	return w.h.Write(p)
}

func (w *sumWriter) result() streamSum {
	var s streamSum
	s.n = w.n
	w.h.Sum(s.sum[:0])
	return s
}

// writeRandomFile streams size deterministic bytes (seed) to a new file in
// dir and returns its path and sum. Files with the same seed are prefixes
// of one another.
func writeRandomFile(t testing.TB, dir, name, seed string, size int64) (string, streamSum) {
	t.Helper()
	path := filepath.Join(dir, name)
	sw := newSumWriter()
	stocktools.WriteFile(t, path, io.TeeReader(io.LimitReader(stocktools.PseudoRandom(seed), size), sw))
	return path, sw.result()
}

// addFile stores the file at path with store.AddRaw.
func addFile(t testing.TB, s *store.Store, path string) cid.Cid {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	c, n, err := s.AddRaw(context.Background(), f)
	if err != nil {
		t.Fatalf("AddRaw(%s): %v", filepath.Base(path), err)
	}
	if n != fi.Size() {
		t.Fatalf("AddRaw(%s) read %d bytes, the file has %d", filepath.Base(path), n, fi.Size())
	}
	return c
}

// storeCat streams store.Cat(c) into w.
func storeCat(t testing.TB, s *store.Store, c cid.Cid, w io.Writer) {
	t.Helper()
	rc, err := s.Cat(context.Background(), c)
	if err != nil {
		t.Fatalf("store.Cat(%s): %v", c, err)
	}
	defer rc.Close()
	if _, err := io.Copy(w, rc); err != nil {
		t.Fatalf("store.Cat(%s): read: %v", c, err)
	}
}

func storeCatSum(t testing.TB, s *store.Store, c cid.Cid) streamSum {
	t.Helper()
	sw := newSumWriter()
	storeCat(t, s, c, sw)
	return sw.result()
}

// kuboCatSum streams `ipfs cat c` into a hash, never holding the output in
// memory (Kubo.Cat buffers it, which is fine for MiBs but not for a GiB).
func kuboCatSum(t testing.TB, k *stocktools.Kubo, c string) streamSum {
	t.Helper()
	cmd := k.Command("cat", c)
	sw := newSumWriter()
	var stderr bytes.Buffer
	cmd.Stdout = sw
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("ipfs cat %s: %v: %s", c, err, strings.TrimSpace(stderr.String()))
	}
	return sw.result()
}

// compareWithKubo adds the file at path to s (AddRaw) and to k (`ipfs add`),
// requires the same CID, and requires `ipfs cat`, store.Cat and want (the
// file's sum) to agree. It returns the CID.
func compareWithKubo(t testing.TB, s *store.Store, k *stocktools.Kubo, path string, want streamSum) cid.Cid {
	t.Helper()
	start := time.Now()
	ours := addFile(t, s, path)
	tOurs := time.Since(start)
	start = time.Now()
	theirs := k.AddFile(t, path)
	tTheirs := time.Since(start)
	t.Logf("%d bytes: store.AddRaw %s (%v), ipfs add %s (%v)", want.n, ours, tOurs.Round(time.Millisecond), theirs, tTheirs.Round(time.Millisecond))
	if ours.String() != theirs {
		t.Fatalf("%d bytes: CID mismatch: store.AddRaw %s, stock ipfs add %s", want.n, ours, theirs)
	}
	if got := storeCatSum(t, s, ours); got != want {
		t.Fatalf("store.Cat(%s) = %v, want the file's %v", ours, got, want)
	}
	if got := kuboCatSum(t, k, theirs); got != want {
		t.Fatalf("ipfs cat %s = %v, want store.Cat's %v", theirs, got, want)
	}
	return ours
}

func openInteropStore(t testing.TB) *store.Store {
	t.Helper()
	s, err := store.Open(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	stocktools.CloseAtCleanup(t, s)
	return s
}

// ageCiphertextSize is the size of an age file with one X25519 recipient
// for n plaintext bytes: a 168-byte header, a 16-byte nonce, and 16 bytes
// of tag per 64 KiB payload chunk (one chunk for empty plaintext).
func ageCiphertextSize(n int64) int64 {
	const header, nonce, tag, chunk = 168, 16, 16, 64 * interopKiB
	chunks := max(1, (n+chunk-1)/chunk)
	return header + nonce + n + chunks*tag
}

// ageSizeFor returns the plaintext size whose ciphertext is exactly ct
// bytes, searching near ct.
func ageSizeFor(t testing.TB, ct int64) int64 {
	t.Helper()
	for n := ct - 184 - 16*(ct/(64*interopKiB)+2); n <= ct; n++ {
		if n >= 0 && ageCiphertextSize(n) == ct {
			return n
		}
	}
	t.Fatalf("no plaintext size gives %d ciphertext bytes", ct)
	return 0
}

func TestStockIPFSSameCID(t *testing.T) {
	s := openInteropStore(t)
	k := stocktools.StartKubo(t, stocktools.KuboOptions{})
	dir := t.TempDir()

	t.Run("AddRaw", func(t *testing.T) {
		for _, size := range []int64{
			0, 1,
			interopMiB - 1, interopMiB, interopMiB + 1,
			3*interopMiB + 5,
			17*interopMiB + 3,
		} {
			t.Run(fmt.Sprint(size), func(t *testing.T) {
				path, sum := writeRandomFile(t, dir, fmt.Sprintf("raw-%d", size), interopSeed("raw"), size)
				c := compareWithKubo(t, s, k, path, sum)
				// One chunk is a raw leaf; more is a dag-pb root.
				wantCodec := uint64(cid.Raw)
				if size > interopMiB {
					wantCodec = cid.DagProtobuf
				}
				if p := c.Prefix(); p.Version != 1 || p.Codec != wantCodec {
					t.Fatalf("%s: version %d codec 0x%x, want CIDv1 codec 0x%x", c, p.Version, p.Codec, wantCodec)
				}
			})
		}
	})

	// store.Add's ciphertext, read back with store.Cat and given to stock
	// ipfs add, lands on the CID store.Add reported. Sizes put the
	// ciphertext on either side of the one-chunk boundary.
	t.Run("Add", func(t *testing.T) {
		ctx := context.Background()
		for _, tc := range []struct {
			name  string
			plain int64
		}{
			{"empty", 0},
			{"300KiB", 300*interopKiB + 3},
			{"ciphertext 1MiB-1", ageSizeFor(t, interopMiB-1)},
			{"ciphertext 1MiB", ageSizeFor(t, interopMiB)},
			{"ciphertext 1MiB+1", ageSizeFor(t, interopMiB+1)},
			{"3MiB+5", 3*interopMiB + 5},
		} {
			t.Run(tc.name, func(t *testing.T) {
				plainPath, _ := writeRandomFile(t, dir, "plain-"+tc.name, interopSeed("add"), tc.plain)
				f, err := os.Open(plainPath)
				if err != nil {
					t.Fatal(err)
				}
				added, err := s.Add(ctx, f)
				f.Close()
				if err != nil {
					t.Fatalf("store.Add: %v", err)
				}
				if want := ageCiphertextSize(tc.plain); added.Size != want {
					t.Errorf("store.Add of %d bytes: ciphertext %d bytes, want %d (age overhead changed?)", tc.plain, added.Size, want)
				}

				ctPath := filepath.Join(dir, "ct-"+tc.name)
				out, err := os.Create(ctPath)
				if err != nil {
					t.Fatal(err)
				}
				sw := newSumWriter()
				storeCat(t, s, added.CID, io.MultiWriter(out, sw))
				if err := out.Close(); err != nil {
					t.Fatal(err)
				}
				ct := sw.result()
				if ct.n != added.Size {
					t.Fatalf("store.Cat gave %d bytes, Added.Size is %d", ct.n, added.Size)
				}
				ctFile, err := os.Open(ctPath)
				if err != nil {
					t.Fatal(err)
				}
				head := make([]byte, 22)
				_, err = io.ReadFull(ctFile, head)
				ctFile.Close()
				if err != nil || string(head) != "age-encryption.org/v1\n" {
					t.Fatalf("ciphertext starts %q, want the age header alone", head)
				}

				theirs := k.AddFile(t, ctPath)
				t.Logf("plaintext %d, ciphertext %d bytes: store.Add %s, ipfs add %s", tc.plain, ct.n, added.CID, theirs)
				if added.CID.String() != theirs {
					t.Fatalf("CID mismatch: store.Add %s, stock ipfs add of its ciphertext %s", added.CID, theirs)
				}
				if got := kuboCatSum(t, k, theirs); got != ct {
					t.Fatalf("ipfs cat %s = %v, want store.Cat's %v", theirs, got, ct)
				}
			})
		}
	})
}

// TestLargeStockIPFSSameCID crosses the 1024-links boundary with real 1 MiB
// chunks: 1024 MiB is 1024 leaves under one root; one more byte adds a DAG
// level. It moves a few GiB, so it runs without the race detector.
func TestLargeStockIPFSSameCID(t *testing.T) {
	if testing.Short() {
		t.Skip("large: run by scripts/test.sh without -short")
	}
	ctx := context.Background()
	s := openInteropStore(t)
	k := stocktools.StartKubo(t, stocktools.KuboOptions{})
	dir := t.TempDir()

	links := func(c cid.Cid) []cid.Cid {
		t.Helper()
		blk, err := s.Blockstore().Get(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		l, err := store.Links(blk)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}

	const gib = 1024 * interopMiB
	var atMax cid.Cid
	for _, tc := range []struct {
		name string
		size int64
	}{
		{"1024MiB", gib},
		{"1024MiB+1", gib + 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			path, sum := writeRandomFile(t, dir, tc.name, interopSeed("large"), tc.size)
			t.Logf("wrote %s in %v", sum, time.Since(start).Round(time.Millisecond))
			c := compareWithKubo(t, s, k, path, sum)
			root := links(c)
			switch tc.size {
			case gib:
				atMax = c
				if len(root) != 1024 {
					t.Fatalf("1024 chunks: root %s has %d links, want 1024", c, len(root))
				}
			default:
				if len(root) != 2 {
					t.Fatalf("1025 chunks: root %s has %d links, want 2", c, len(root))
				}
				if atMax.Defined() && !root[0].Equals(atMax) {
					t.Fatalf("1025 chunks: first child %s, want the 1024-chunk root %s", root[0], atMax)
				}
			}
			// The file is not needed any more; free the disk early.
			_ = os.Remove(path)
		})
	}
}
