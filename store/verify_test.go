package store

import (
	"bytes"
	"context"
	"testing"

	cid "github.com/ipfs/go-cid"
)

// TestVerifyBlocks: a clean store verifies with every block counted once
// and progress reported per block; a flipped byte in a leaf and in a root
// makes exactly those two blocks bad (by multihash), and the walk still
// covers every block.
func TestVerifyBlocks(t *testing.T) {
	s := openStore(t)
	ctx := context.Background()
	added, err := s.Add(ctx, bytes.NewReader(randBytes(7, 3*mib)))
	if err != nil {
		t.Fatal(err)
	}
	other, err := s.Add(ctx, bytes.NewReader(randBytes(8, 1000)))
	if err != nil {
		t.Fatal(err)
	}
	var calls int
	var last VerifyProgress
	bad, done, err := s.VerifyBlocks(ctx, func(p VerifyProgress) { calls++; last = p })
	if err != nil || len(bad) != 0 {
		t.Fatalf("clean store: bad %v, err %v", bad, err)
	}
	// 3 MiB of ciphertext: a root and 4 leaves; the small record one block.
	if done.Blocks != 6 || calls != 6 || last != done || done.Bytes < 3*mib {
		t.Fatalf("clean store: done %+v, %d progress calls, last %+v", done, calls, last)
	}

	leaf := leafOf(t, s, added.CID, 2)
	flipByte(t, s, leaf, 500)
	flipByte(t, s, added.CID, 10)
	bad, done2, err := s.VerifyBlocks(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if done2 != done {
		t.Fatalf("corrupt store: walked %+v, want %+v", done2, done)
	}
	got := map[string]bool{}
	for _, c := range bad {
		if c.Prefix().Codec != cid.Raw {
			t.Errorf("bad block %s: want the raw codec", c)
		}
		got[string(c.Hash())] = true
	}
	if len(bad) != 2 || !got[string(leaf.Hash())] || !got[string(added.CID.Hash())] || got[string(other.CID.Hash())] {
		t.Fatalf("bad blocks %v, want the leaf %s and the root %s", bad, leaf, added.CID)
	}

	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, _, err := s.VerifyBlocks(cctx, nil); err == nil {
		t.Fatal("a cancelled walk reported success")
	}
}
