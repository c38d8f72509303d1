package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"testing"
	"time"

	cid "github.com/ipfs/go-cid"
	ds "github.com/ipfs/go-datastore"
	dsq "github.com/ipfs/go-datastore/query"
	mh "github.com/multiformats/go-multihash"
	"golang.org/x/crypto/chacha20"
)

const (
	kib = 1 << 10
	mib = 1 << 20
)

func openStore(t testing.TB) *Store {
	t.Helper()
	return openStoreAt(t, t.TempDir())
}

func openStoreAt(t testing.TB, dir string) *Store {
	t.Helper()
	s, err := Open(context.Background(), dir)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// kuboReader reproduces kubo's test/cli/testutils.DeterministicRandomReaderBytes:
// the ChaCha20 keystream for key sha256(seed) and a zero nonce. Kubo's
// test/cli/cid_profiles_test.go records the CIDs stock `ipfs add
// --profile=unixfs-v1-2025` gives for these bytes.
func kuboReader(t testing.TB, seed string, size int64) io.Reader {
	t.Helper()
	key := sha256.Sum256([]byte(seed))
	var nonce [chacha20.NonceSize]byte
	c, err := chacha20.NewUnauthenticatedCipher(key[:], nonce[:])
	if err != nil {
		t.Fatal(err)
	}
	return &keystreamReader{c: c, left: size}
}

type keystreamReader struct {
	c    *chacha20.Cipher
	left int64
}

func (r *keystreamReader) Read(p []byte) (int, error) {
	if r.left <= 0 {
		return 0, io.EOF
	}
	n := int(min(int64(len(p)), r.left))
	clear(p[:n])
	r.c.XORKeyStream(p[:n], p[:n])
	r.left -= int64(n)
	return n, nil
}

// fastReader yields size deterministic bytes cheaply: a fixed random
// 1 MiB pattern whose first 8 bytes of every MiB carry the MiB's index, so
// that no two chunks are equal (no deduplication flattering the numbers).
type fastReader struct {
	pattern []byte
	off     int64
	size    int64
}

func newFastReader(seed uint64, size int64) *fastReader {
	p := make([]byte, mib)
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	for i := 0; i < len(p); i += 8 {
		binary.LittleEndian.PutUint64(p[i:], rng.Uint64())
	}
	return &fastReader{pattern: p, size: size}
}

func (r *fastReader) Read(p []byte) (int, error) {
	if r.off >= r.size {
		return 0, io.EOF
	}
	n := 0
	for n < len(p) && r.off < r.size {
		pos := r.off % mib
		chunk := int64(len(r.pattern)) - pos
		chunk = min(chunk, int64(len(p)-n), r.size-r.off)
		copy(p[n:], r.pattern[pos:pos+chunk])
		// Stamp the MiB index over the first 8 bytes of each MiB.
		for i := int64(0); i < chunk; i++ {
			if pos+i < 8 {
				var idx [8]byte
				binary.LittleEndian.PutUint64(idx[:], uint64(r.off/mib))
				p[n+int(i)] ^= idx[pos+i]
			} else {
				break
			}
		}
		n += int(chunk)
		r.off += chunk
	}
	return n, nil
}

func randBytes(seed uint64, n int) []byte {
	b, err := io.ReadAll(newFastReader(seed, int64(n)))
	if err != nil {
		panic(err)
	}
	return b
}

func rawCID(t testing.TB, data []byte) cid.Cid {
	t.Helper()
	c, err := cid.Prefix{Version: 1, Codec: cid.Raw, MhType: mh.SHA2_256, MhLength: -1}.Sum(data)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func readAll(t testing.TB, r io.ReadCloser) []byte {
	t.Helper()
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return b
}

func catBytes(t testing.TB, s *Store, c cid.Cid) []byte {
	t.Helper()
	r, err := s.Cat(context.Background(), c)
	if err != nil {
		t.Fatalf("Cat(%s): %v", c, err)
	}
	return readAll(t, r)
}

// snapshot lists every block key, every datastore key and the staging
// directory's entries: the store's whole observable state.
func snapshot(t testing.TB, s *Store) []string {
	t.Helper()
	ctx := context.Background()
	var out []string
	keys, errf, err := s.bs.AllKeysChanWithErr(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for k := range keys {
		out = append(out, "block "+k.String())
	}
	if err := errf(); err != nil {
		t.Fatal(err)
	}
	res, err := s.meta.Query(ctx, dsq.Query{})
	if err != nil {
		t.Fatal(err)
	}
	for r := range res.Next() {
		if r.Error != nil {
			t.Fatal(r.Error)
		}
		out = append(out, "meta "+r.Key+"="+string(r.Value))
	}
	_ = res.Close()
	ents, err := os.ReadDir(s.tmpDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		out = append(out, "tmp "+e.Name())
	}
	// flatfs batch leftovers would live here. flatfs's own background
	// goroutine also passes its disk-usage checkpoint through this folder
	// for a moment, so give a transient file time to be renamed away.
	for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		ents, err = os.ReadDir(filepath.Join(s.blocksDir, ".temp"))
		if err != nil {
			t.Fatal(err)
		}
		if len(ents) == 0 || time.Now().After(deadline) {
			break
		}
	}
	for _, e := range ents {
		out = append(out, "flatfs-temp "+e.Name())
	}
	sort.Strings(out)
	return out
}

func sameSnapshot(t testing.TB, before, after []string) {
	t.Helper()
	if !slices.Equal(before, after) {
		t.Fatalf("store changed:\nbefore: %v\nafter:  %v", before, after)
	}
}

func mustEqual(t testing.TB, what string, got, want []byte) {
	t.Helper()
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: got %d bytes, want %d bytes (content differs)", what, len(got), len(want))
	}
}

func dsKey(s string) ds.Key { return ds.NewKey(s) }

func mhSum(data []byte, code uint64) ([]byte, error) { return mh.Sum(data, code, -1) }
