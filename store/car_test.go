package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"

	blocks "github.com/ipfs/go-block-format"
	cid "github.com/ipfs/go-cid"
	car "github.com/ipld/go-car/v2"
	"github.com/multiformats/go-varint"
)

// carFixture is a store holding a record and a two-block signed chain
// that links to it, and the CAR of the chain.
type carFixture struct {
	s      *Store
	record Added
	plain  []byte
	head   cid.Cid
	car    []byte
	order  []cid.Cid // DFS order of the export
}

func newCARFixture(t testing.TB) *carFixture {
	t.Helper()
	s := openStore(t)
	ctx := context.Background()
	plain := randBytes(20, 2*mib+100)
	rec, err := s.Add(ctx, bytes.NewReader(plain))
	if err != nil {
		t.Fatal(err)
	}
	genesis := cborBlock(t, "genesis", nil)
	g := genesis.Cid()
	head := cborBlock(t, "head", &g, rec.CID)
	if err := s.Blockstore().PutMany(ctx, []blocks.Block{genesis, head}); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := s.ExportCAR(ctx, &buf, []cid.Cid{head.Cid()}); err != nil {
		t.Fatal(err)
	}
	var order []cid.Cid
	if err := s.Walk(ctx, head.Cid(), func(b blocks.Block) error { order = append(order, b.Cid()); return nil }); err != nil {
		t.Fatal(err)
	}
	return &carFixture{s: s, record: rec, plain: plain, head: head.Cid(), car: buf.Bytes(), order: order}
}

func acceptAll([]cid.Cid, func(cid.Cid) ([]byte, error)) error { return nil }

func TestCARRoundTrip(t *testing.T) {
	fx := newCARFixture(t)
	ctx := context.Background()

	// go-car (what `ipfs dag import` uses) reads it as CARv1 with the
	// blocks in depth-first order, each once.
	br, err := car.NewBlockReader(bytes.NewReader(fx.car))
	if err != nil {
		t.Fatal(err)
	}
	if br.Version != 1 || len(br.Roots) != 1 || !br.Roots[0].Equals(fx.head) {
		t.Fatalf("go-car sees version %d roots %v", br.Version, br.Roots)
	}
	var got []cid.Cid
	for {
		blk, err := br.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, blk.Cid())
	}
	if !slices.EqualFunc(got, fx.order, cid.Cid.Equals) || len(got) != 2+4 {
		t.Fatalf("CAR order %v, want %v", got, fx.order)
	}

	// Deterministic.
	var again bytes.Buffer
	if err := fx.s.ExportCAR(ctx, &again, []cid.Cid{fx.head}); err != nil {
		t.Fatal(err)
	}
	mustEqual(t, "second export", again.Bytes(), fx.car)

	// Import into a fresh store; check sees the roots and every block.
	dst := openStore(t)
	var checked int
	roots, err := dst.ImportCAR(ctx, bytes.NewReader(fx.car), func(roots []cid.Cid, get func(cid.Cid) ([]byte, error)) error {
		for _, c := range fx.order {
			data, err := get(c)
			if err != nil {
				return err
			}
			if err := verify(c, data); err != nil {
				return err
			}
			checked++
		}
		if _, err := get(rawCID(t, []byte("absent"))); !errors.Is(err, ErrMissing) {
			return fmt.Errorf("get of an absent block: %v", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(roots) != 1 || !roots[0].Equals(fx.head) || checked != len(fx.order) {
		t.Fatalf("roots %v, checked %d", roots, checked)
	}
	if err := dst.Pin(ctx, fx.head); err != nil {
		t.Fatal(err)
	}
	dr, err := dst.Decrypt(ctx, fx.record.CID, fx.record.Key)
	if err != nil {
		t.Fatal(err)
	}
	mustEqual(t, "record after CAR import", readAll(t, dr), fx.plain)

	// Importing again changes nothing.
	before := snapshot(t, dst)
	if _, err := dst.ImportCAR(ctx, bytes.NewReader(fx.car), nil); err != nil {
		t.Fatal(err)
	}
	sameSnapshot(t, before, snapshot(t, dst))
}

func TestExportCARErrors(t *testing.T) {
	fx := newCARFixture(t)
	ctx := context.Background()
	if err := fx.s.ExportCAR(ctx, io.Discard, nil); err == nil {
		t.Fatal("export without roots")
	}
	leaf := leafOf(t, fx.s, fx.record.CID, 0)
	flipByte(t, fx.s, leaf, 5)
	err := fx.s.ExportCAR(ctx, io.Discard, []cid.Cid{fx.head})
	wantBlockErr(t, err, leaf, ErrCorrupt)
}

// carBytes assembles a CAR from a header and raw sections.
func carBytes(t testing.TB, roots []cid.Cid, sections ...[]byte) []byte {
	t.Helper()
	hdr, err := encodeCARHeader(roots)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := writeSection(&buf, hdr); err != nil {
		t.Fatal(err)
	}
	for _, s := range sections {
		buf.Write(s)
	}
	return buf.Bytes()
}

func section(c cid.Cid, data []byte) []byte {
	var buf bytes.Buffer
	_ = writeSection(&buf, c.Bytes(), data)
	return buf.Bytes()
}

func TestImportCARRejectsBadInput(t *testing.T) {
	fx := newCARFixture(t)
	ctx := context.Background()
	dst := openStore(t)
	// Give dst some state of its own, so "unchanged" means something.
	if _, err := dst.Add(ctx, strings.NewReader("existing record")); err != nil {
		t.Fatal(err)
	}

	hdrLen := func() int {
		l, n, err := varint.FromUvarint(fx.car)
		if err != nil {
			t.Fatal(err)
		}
		return int(l) + n
	}()
	// Offset of the end of the first section.
	firstEnd := func() int {
		l, n, _ := varint.FromUvarint(fx.car[hdrLen:])
		return hdrLen + n + int(l)
	}()
	flipped := bytes.Clone(fx.car)
	flipped[len(flipped)-3] ^= 0xff // inside the last block's data

	leaf := rawCID(t, []byte("leaf"))
	oversized := carBytes(t, []cid.Cid{leaf}, func() []byte {
		var lb [varint.MaxLenUvarint63]byte
		n := varint.PutUvarint(lb[:], 3<<20)
		return append(lb[:n], bytes.Repeat([]byte{0}, 100)...)
	}())
	bigHeader := func() []byte {
		var lb [varint.MaxLenUvarint63]byte
		n := varint.PutUvarint(lb[:], 1<<20)
		return append(lb[:n], make([]byte, 10)...)
	}()
	v2 := []byte{0x0a, 0xa1, 0x67, 'v', 'e', 'r', 's', 'i', 'o', 'n', 0x02}
	noRoots := carBytes(t, nil)
	weakHash := carBytes(t, []cid.Cid{leaf}, section(cid.NewCidV1(cid.Raw, mustMH(t, []byte("x"))), []byte("x")))

	cases := []struct {
		name  string
		in    []byte
		check CheckFunc
		want  string
	}{
		{"empty", nil, nil, "store: import CAR: empty input"},
		{"truncated header", fx.car[:hdrLen-2], nil, "store: import CAR: truncated header"},
		{"truncated first section", fx.car[:hdrLen+5], nil, "store: import CAR: truncated section after 0 blocks"},
		{"truncated later section", fx.car[:len(fx.car)-10], nil, fmt.Sprintf("store: import CAR: truncated section after %d blocks", len(fx.order)-1)},
		{"truncated length varint", append(bytes.Clone(fx.car[:firstEnd]), 0x80), nil, "store: import CAR: truncated section after 1 blocks"},
		{"block does not match CID", flipped, nil, fmt.Sprintf("store: import CAR: section %d: block %s does not match its CID", len(fx.order), fx.order[len(fx.order)-1])},
		{"oversized section", oversized, nil, "store: import CAR: section 1 is 3145728 bytes, limit is 2098176"},
		{"oversized header", bigHeader, nil, "store: import CAR: header is 1048576 bytes, limit is 65536"},
		{"CARv2", v2, nil, "store: import CAR: unsupported CAR version 2 (want 1)"},
		{"no roots", noRoots, nil, "store: import CAR: invalid header: no roots"},
		{"insecure hash", weakHash, nil, "store: import CAR: section 1: block"},
		{"zero-length section", append(bytes.Clone(fx.car), 0x00), nil, fmt.Sprintf("store: import CAR: empty section after %d blocks", len(fx.order))},
		{"rejected by check", fx.car, func(roots []cid.Cid, get func(cid.Cid) ([]byte, error)) error {
			if _, err := get(fx.head); err != nil {
				return err
			}
			return errors.New("bad signature")
		}, "store: import CAR: rejected: bad signature"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := snapshot(t, dst)
			roots, err := dst.ImportCAR(ctx, bytes.NewReader(tc.in), tc.check)
			if err == nil {
				t.Fatalf("accepted; roots %v", roots)
			}
			if !strings.HasPrefix(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("error %q, want %q", err, tc.want)
			}
			sameSnapshot(t, before, snapshot(t, dst))
		})
	}
}

// mustMH is an md5 multihash, which verifcid refuses.
func mustMH(t testing.TB, data []byte) []byte {
	t.Helper()
	h, err := mhSum(data, 0xd5) // md5
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestImportCARManyBlocks(t *testing.T) {
	// Enough blocks to take the syncfs path of the flush.
	src := openStore(t)
	ctx := context.Background()
	data := randBytes(21, 12*mib+1)
	c, _, err := src.AddRaw(ctx, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := src.ExportCAR(ctx, &buf, []cid.Cid{c}); err != nil {
		t.Fatal(err)
	}
	dst := openStore(t)
	if _, err := dst.ImportCAR(ctx, &buf, acceptAll); err != nil {
		t.Fatal(err)
	}
	mustEqual(t, "imported", catBytes(t, dst, c), data)
}
