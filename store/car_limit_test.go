package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	cid "github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"
)

// junkSections returns n raw blocks no root links, as CAR sections.
func junkSections(t testing.TB, n, size int) []byte {
	t.Helper()
	var out []byte
	for i := range n {
		data := randBytes(uint64(1000+i), size)
		c, err := cid.Prefix{Version: 1, Codec: cid.Raw, MhType: mh.SHA2_256, MhLength: -1}.Sum(data)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, section(c, data)...)
	}
	return out
}

// TestImportCARSkipsUnreachable: a chain CAR padded with junk blocks
// stores the chain and its record and nothing else, and says how many
// blocks it skipped.
func TestImportCARSkipsUnreachable(t *testing.T) {
	fx := newCARFixture(t)
	ctx := context.Background()
	padded := append(append([]byte(nil), fx.car...), junkSections(t, 200, 1024)...)

	fresh := openStore(t)
	res, err := fresh.ImportCARWith(ctx, bytes.NewReader(padded), ImportOptions{Check: acceptAll})
	if err != nil {
		t.Fatal(err)
	}
	if res.Skipped != 200 || res.SkippedBytes != 200*1024 || res.Blocks != len(fx.order) {
		t.Fatalf("import: %+v, want 200 skipped and %d kept", res, len(fx.order))
	}
	if got := blockFiles(t, fresh.Dir()); got != len(fx.order) {
		t.Fatalf("blockstore holds %d blocks, want the %d reachable ones", got, len(fx.order))
	}
	dr, err := fresh.Decrypt(ctx, fx.record.CID, fx.record.Key)
	if err != nil {
		t.Fatal(err)
	}
	mustEqual(t, "record", readAll(t, dr), fx.plain)
}

// TestImportCARLimit: a CAR over the limit is refused with a one-line
// error giving the limit, and leaves neither blocks nor staging behind.
func TestImportCARLimit(t *testing.T) {
	fx := newCARFixture(t)
	ctx := context.Background()
	padded := append(append([]byte(nil), fx.car...), junkSections(t, 24, 256<<10)...)
	fresh := openStore(t)
	_, err := fresh.ImportCARWith(ctx, bytes.NewReader(padded), ImportOptions{Check: acceptAll, MaxSize: 4 * mib})
	if !errors.Is(err, ErrImportLimit) || strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), "4.0 MiB") {
		t.Fatalf("over-limit import: %v", err)
	}
	if got := blockFiles(t, fresh.Dir()); got != 0 {
		t.Fatalf("refused import left %d blocks", got)
	}
	left, err := os.ReadDir(fresh.tmpDir)
	if err != nil || len(left) != 0 {
		t.Fatalf("refused import left staging files: %v %v", left, err)
	}
	// The same CAR within a raised limit imports.
	if _, err := fresh.ImportCARWith(ctx, bytes.NewReader(padded), ImportOptions{Check: acceptAll, MaxSize: 64 * mib}); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkImportCARReachability imports a CAR of one 256 MiB record
// (about 260 blocks) plus 50,000 small junk blocks; compare with
// -bench 'ImportCARReachability' against the junk-free import.
func BenchmarkImportCARReachability(b *testing.B) {
	ctx := context.Background()
	src := openStore(b)
	rec, err := src.Add(ctx, newFastReader(1, 256*mib))
	if err != nil {
		b.Fatal(err)
	}
	var buf bytes.Buffer
	if err := src.ExportCAR(ctx, &buf, []cid.Cid{rec.CID}); err != nil {
		b.Fatal(fmt.Errorf("export: %w", err))
	}
	padded := append(buf.Bytes(), junkSections(b, 50000, 100)...)
	b.SetBytes(int64(len(padded)))
	for b.Loop() {
		dst := openStoreAt(b, b.TempDir())
		if _, err := dst.ImportCARWith(ctx, bytes.NewReader(padded), ImportOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}
