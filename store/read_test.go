package store

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age"
	dshelp "github.com/ipfs/boxo/datastore/dshelp"
	cid "github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
)

// leafOf returns the i-th link of c.
func leafOf(t *testing.T, s *Store, c cid.Cid, i int) cid.Cid {
	t.Helper()
	blk, err := s.Blockstore().Get(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	l, err := Links(blk)
	if err != nil || len(l) <= i {
		t.Fatalf("links of %s: %v %v", c, l, err)
	}
	return l[i]
}

// flipByte corrupts the stored file of block c, found through flatfs's key
// encoding: blocks/<next-to-last 2 chars of key>/<KEY>.data.
func flipByte(t *testing.T, s *Store, c cid.Cid, at int64) {
	t.Helper()
	key := dshelp.MultihashToDsKey(c.Hash()).String()[1:] // base32 multihash
	file := filepath.Join(s.Dir(), "blocks", key[len(key)-3:len(key)-1], key+".data")
	if _, mine := s.blockPath(blockKey(c)); mine != file {
		t.Fatalf("blockPath %s disagrees with flatfs's next-to-last/2 layout %s", mine, file)
	}
	f, err := os.OpenFile(file, os.O_RDWR, 0)
	if err != nil {
		t.Fatalf("block file for %s: %v", c, err)
	}
	defer f.Close()
	var b [1]byte
	if _, err := f.ReadAt(b[:], at); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0x01
	if _, err := f.WriteAt(b[:], at); err != nil {
		t.Fatal(err)
	}
}

func wantBlockErr(t *testing.T, err error, c cid.Cid, kind error) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error; want %v for %s", kind, c)
	}
	var be *BlockError
	if !errors.Is(err, kind) || !errors.As(err, &be) || !be.Cid.Equals(c) || !strings.Contains(err.Error(), c.String()) {
		t.Fatalf("error %q: want %v naming %s", err, kind, c)
	}
}

func TestCorruptBlockIsNamed(t *testing.T) {
	s := openStore(t)
	ctx := context.Background()
	added, err := s.Add(ctx, bytes.NewReader(randBytes(3, 3*mib)))
	if err != nil {
		t.Fatal(err)
	}
	leaf := leafOf(t, s, added.CID, 1)
	flipByte(t, s, leaf, 1000)

	_, err = s.Blockstore().Get(ctx, leaf)
	wantBlockErr(t, err, leaf, ErrCorrupt)
	if want := "store: block " + leaf.String() + " is corrupt: hash mismatch"; err.Error() != want {
		t.Fatalf("got %q, want %q", err, want)
	}

	r, err := s.Cat(ctx, added.CID)
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.ReadAll(r)
	r.Close()
	wantBlockErr(t, err, leaf, ErrCorrupt)

	dr, err := s.Decrypt(ctx, added.CID, added.Key)
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.ReadAll(dr)
	dr.Close()
	wantBlockErr(t, err, leaf, ErrCorrupt)
	if errors.Is(err, ErrNotAuthentic) {
		t.Fatal("storage corruption reported as an age failure")
	}

	// A corrupt root is reported by Cat itself.
	flipByte(t, s, added.CID, 10)
	_, err = s.Cat(ctx, added.CID)
	wantBlockErr(t, err, added.CID, ErrCorrupt)
}

func TestMissingBlockIsNamed(t *testing.T) {
	s := openStore(t)
	ctx := context.Background()
	added, err := s.Add(ctx, bytes.NewReader(randBytes(4, 2*mib)))
	if err != nil {
		t.Fatal(err)
	}
	leaf := leafOf(t, s, added.CID, 2)
	if err := s.Blockstore().DeleteBlock(ctx, leaf); err != nil {
		t.Fatal(err)
	}
	dr, err := s.Decrypt(ctx, added.CID, added.Key)
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.ReadAll(dr)
	dr.Close()
	wantBlockErr(t, err, leaf, ErrMissing)
	if !ipld.IsNotFound(err) {
		t.Fatalf("%v should match ipld.ErrNotFound", err)
	}
	_, err = s.Cat(ctx, rawCID(t, []byte("never stored")))
	wantBlockErr(t, err, rawCID(t, []byte("never stored")), ErrMissing)
}

func TestDecryptErrors(t *testing.T) {
	s := openStore(t)
	ctx := context.Background()
	plain := randBytes(5, 200*kib)
	added, err := s.Add(ctx, bytes.NewReader(plain))
	if err != nil {
		t.Fatal(err)
	}

	other, _ := age.GenerateX25519Identity()
	if _, err := s.Decrypt(ctx, added.CID, other); !errors.Is(err, ErrWrongKey) {
		t.Fatalf("wrong key: %v", err)
	}

	ct := catBytes(t, s, added.CID)
	tampered := bytes.Clone(ct)
	tampered[len(tampered)-100] ^= 0x80 // inside the last payload chunk
	tc, _, err := s.AddRaw(ctx, bytes.NewReader(tampered))
	if err != nil {
		t.Fatal(err)
	}
	dr, err := s.Decrypt(ctx, tc, added.Key)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(dr); !errors.Is(err, ErrNotAuthentic) || !strings.Contains(err.Error(), tc.String()) {
		t.Fatalf("tampered payload: %v", err)
	}

	truncated := ct[:len(ct)-70*kib]
	trc, _, err := s.AddRaw(ctx, bytes.NewReader(truncated))
	if err != nil {
		t.Fatal(err)
	}
	dr, err = s.Decrypt(ctx, trc, added.Key)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(dr); !errors.Is(err, ErrNotAuthentic) {
		t.Fatalf("truncated payload: %v", err)
	}

	notAge, _, err := s.AddRaw(ctx, strings.NewReader("not an age file"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Decrypt(ctx, notAge, added.Key); !errors.Is(err, ErrNotAuthentic) {
		t.Fatalf("not age: %v", err)
	}
}

func TestReopenKeepsEverything(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	s, err := Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	plain := randBytes(6, 3*mib+17)
	added, err := s.Add(ctx, bytes.NewReader(plain))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Datastore().Put(ctx, dsKey("/protocol/x"), []byte("y")); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Cat(ctx, added.CID); !errors.Is(err, ErrClosed) {
		t.Fatalf("Cat after Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}

	s2 := openStoreAt(t, dir)
	sameSnapshot(t, before, snapshot(t, s2))
	dr, err := s2.Decrypt(ctx, added.CID, added.Key)
	if err != nil {
		t.Fatal(err)
	}
	mustEqual(t, "after reopen", readAll(t, dr), plain)
	if ok, _ := s2.IsPinned(ctx, added.CID); !ok {
		t.Fatal("pin lost")
	}
	if v, err := s2.Datastore().Get(ctx, dsKey("/protocol/x")); err != nil || string(v) != "y" {
		t.Fatalf("datastore value lost: %q %v", v, err)
	}
}

func TestOpenTwiceFails(t *testing.T) {
	dir := t.TempDir()
	openStoreAt(t, dir)
	if s, err := Open(context.Background(), dir); err == nil {
		s.Close()
		t.Fatal("second Open of the same directory succeeded")
	}
}

func TestDatastoreReservedNamespace(t *testing.T) {
	s := openStore(t)
	ctx := context.Background()
	d := s.Datastore()
	for _, k := range []string{"/store", "/store/pins/x", "/store/anything"} {
		if err := d.Put(ctx, dsKey(k), nil); err == nil {
			t.Fatalf("Put %s allowed", k)
		}
		if err := d.Delete(ctx, dsKey(k)); err == nil {
			t.Fatalf("Delete %s allowed", k)
		}
	}
	b, err := d.Batch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Put(ctx, dsKey("/store/pins/x"), nil); err == nil {
		t.Fatal("batch Put in /store allowed")
	}
	if err := b.Put(ctx, dsKey("/storage/x"), []byte("ok")); err != nil {
		t.Fatal(err)
	}
	if err := b.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if v, err := d.Get(ctx, dsKey("/storage/x")); err != nil || string(v) != "ok" {
		t.Fatalf("%q %v", v, err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Get(ctx, dsKey("/storage/x")); err != nil {
		t.Fatalf("closing the handed-out datastore closed the store: %v", err)
	}
}

func TestGetUncheckedSkipsOnlyTheHash(t *testing.T) {
	s := openStore(t)
	ctx := context.Background()
	added, err := s.Add(ctx, bytes.NewReader(randBytes(4, 3*mib)))
	if err != nil {
		t.Fatal(err)
	}
	leaf := leafOf(t, s, added.CID, 1)
	good, err := s.Blockstore().Get(ctx, leaf)
	if err != nil {
		t.Fatal(err)
	}
	blk, err := s.GetUnchecked(ctx, leaf)
	if err != nil || !bytes.Equal(blk.RawData(), good.RawData()) {
		t.Fatalf("unchecked read differs from the checked one (err %v)", err)
	}
	// A corrupt block comes back as stored (its receiver will reject it);
	// the checked read refuses it.
	flipByte(t, s, leaf, 1000)
	blk, err = s.GetUnchecked(ctx, leaf)
	if err != nil || bytes.Equal(blk.RawData(), good.RawData()) {
		t.Fatalf("unchecked read of a flipped block: err %v, same bytes %v", err, err == nil && bytes.Equal(blk.RawData(), good.RawData()))
	}
	_, err = s.Blockstore().Get(ctx, leaf)
	wantBlockErr(t, err, leaf, ErrCorrupt)
	// Missing stays missing.
	missing, _ := cid.Prefix{Version: 1, Codec: cid.Raw, MhType: 0x12, MhLength: -1}.Sum([]byte("absent"))
	_, err = s.GetUnchecked(ctx, missing)
	wantBlockErr(t, err, missing, ErrMissing)
}
