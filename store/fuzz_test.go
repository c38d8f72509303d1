package store

import (
	"bytes"
	"context"
	"testing"

	blocks "github.com/ipfs/go-block-format"
	cid "github.com/ipfs/go-cid"
)

// FuzzImportCAR feeds arbitrary bytes to ImportCAR: it must never panic,
// and when it fails the store must be exactly as before.
func FuzzImportCAR(f *testing.F) {
	src := openStore(f)
	ctx := context.Background()
	c, _, err := src.AddRaw(ctx, bytes.NewReader(randBytes(30, 2*kib)))
	if err != nil {
		f.Fatal(err)
	}
	genesis := cborBlock(f, "genesis", nil)
	g := genesis.Cid()
	head := cborBlock(f, "head", &g, c)
	if err := src.Blockstore().PutMany(ctx, []blocks.Block{genesis, head}); err != nil {
		f.Fatal(err)
	}
	var valid bytes.Buffer
	if err := src.ExportCAR(ctx, &valid, []cid.Cid{head.Cid()}); err != nil {
		f.Fatal(err)
	}
	f.Add(valid.Bytes())
	f.Add(valid.Bytes()[:valid.Len()/2])
	f.Add(carBytes(f, []cid.Cid{c}))
	f.Add([]byte{})
	f.Add([]byte{0x01, 0xa0})

	dst := openStore(f)
	f.Fuzz(func(t *testing.T, in []byte) {
		before := snapshot(t, dst)
		_, err := dst.ImportCAR(ctx, bytes.NewReader(in), func(roots []cid.Cid, get func(cid.Cid) ([]byte, error)) error {
			for _, r := range roots {
				_, _ = get(r)
			}
			return nil
		})
		if err != nil {
			sameSnapshot(t, before, snapshot(t, dst))
		}
	})
}
