package keyshare

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	dshelp "github.com/ipfs/boxo/datastore/dshelp"
	"github.com/ipfs/go-cid"

	"github.com/blockmrs/blockmrs/protocol"
)

// flipStoredByte flips one byte of the flatfs file of block c
// (blocks/<next-to-last two characters of the key>/<KEY>.data).
func flipStoredByte(t *testing.T, r *Repo, c cid.Cid, at int64) {
	t.Helper()
	key := dshelp.MultihashToDsKey(c.Hash()).String()[1:]
	file := filepath.Join(r.Store().Dir(), "blocks", key[len(key)-3:len(key)-1], key+".data")
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	data[at] ^= 0x01
	if err := os.WriteFile(file, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestVerifyBlocks: with Blocks, Verify re-hashes every stored block: a
// clean repo passes and counts its blocks; a flipped byte in a record's
// block fails it (OK false) naming the record's CID and the record, while
// the chains-only check still passes; a flipped chain block is named with
// its dag-cbor CID and its account.
func TestVerifyBlocks(t *testing.T) {
	ctx := context.Background()
	pat := newParty(t, "Pat", protocol.RolePatient)
	rec, err := pat.repo.AddRecord(ctx, pat.keys, NewRecord{Title: "a", Kind: protocol.KindNote, MediaType: "text/plain", Body: strings.NewReader("hello")})
	if err != nil {
		t.Fatal(err)
	}
	var progressed int
	rep, err := pat.repo.Verify(ctx, VerifyOptions{Blocks: true, Progress: func(p VerifyProgress) { progressed = p.Blocks }})
	if err != nil {
		t.Fatal(err)
	}
	// The record (one block) and two chain blocks (profile, record entry).
	if !rep.OK || rep.BlocksChecked < 3 || progressed != rep.BlocksChecked || len(rep.BadBlocks) != 0 {
		t.Fatalf("clean repo: %+v (progress %d)", rep, progressed)
	}

	flipStoredByte(t, pat.repo, rec, 40)
	rep, err = pat.repo.Verify(ctx, VerifyOptions{Blocks: true})
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK || len(rep.BadBlocks) != 1 {
		t.Fatalf("flipped record block: OK %v, bad %+v", rep.OK, rep.BadBlocks)
	}
	bb := rep.BadBlocks[0]
	if !bb.CID.Equals(rec) || len(bb.Records) != 1 || !bb.Records[0].Equals(rec) || bb.Chain != "" {
		t.Fatalf("bad block %+v, want record %s", bb, rec)
	}
	if rep, err := pat.repo.Verify(ctx, VerifyOptions{}); err != nil || !rep.OK || rep.BlocksChecked != 0 {
		t.Fatalf("chains only over a bad record block: %+v, %v", rep, err)
	}

	info, err := pat.repo.Account(ctx, pat.keys.ID)
	if err != nil {
		t.Fatal(err)
	}
	flipStoredByte(t, pat.repo, info.Head, 10)
	rep, err = pat.repo.Verify(ctx, VerifyOptions{Blocks: true})
	if err != nil {
		t.Fatal(err)
	}
	var chain *BadBlock
	for i := range rep.BadBlocks {
		if rep.BadBlocks[i].Chain != "" {
			chain = &rep.BadBlocks[i]
		}
	}
	if rep.OK || len(rep.BadBlocks) != 2 || chain == nil || chain.Chain != pat.keys.ID || !chain.CID.Equals(info.Head) {
		t.Fatalf("flipped chain block: %+v, want %s of %s", rep.BadBlocks, info.Head, pat.keys.ID)
	}
}
