package keyshare

import (
	"context"
	"strings"
	"testing"

	"github.com/blockmrs/blockmrs/protocol"
)

// appendBlocks stores each block of a many-block append as it signs it;
// a block failing to sign deletes the ones stored before it, so the
// repo is as it was (and the chain's head did not move).
func TestAppendBlocksFailureDeletesStoredBlocks(t *testing.T) {
	ctx := context.Background()
	p := newParty(t, "Pat", protocol.RolePatient)
	before := repoState(t, p.repo)
	unhide := benchEntry
	chunks := [][]protocol.Entry{{unhide(0)}, {unhide(1)}, nil} // the third holds no entries: Sign refuses it
	p.repo.mu.Lock()
	_, err := p.repo.appendBlocks(ctx, p.keys, chunks)
	p.repo.mu.Unlock()
	if err == nil || !strings.Contains(err.Error(), "must hold 1 to") {
		t.Fatalf("appendBlocks of a block with no entries: %v", err)
	}
	sameState(t, "a failed append", before, repoState(t, p.repo))

	// The same two good blocks commit, and are read back as the chain.
	p.repo.mu.Lock()
	head, err := p.repo.appendBlocks(ctx, p.keys, [][]protocol.Entry{{unhide(0)}, {unhide(1)}})
	p.repo.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	b, err := p.repo.readBlock(ctx, head)
	if err != nil {
		t.Fatal(err)
	}
	prev, err := p.repo.readBlock(ctx, b.Prev.Cid)
	if err != nil {
		t.Fatal(err)
	}
	if prev.Seq+1 != b.Seq || len(b.Entries) != 1 || len(prev.Entries) != 1 {
		t.Fatalf("blocks %d and %d, %d and %d entries", prev.Seq, b.Seq, len(prev.Entries), len(b.Entries))
	}
}

// A staged append (many blocks: each stored and applied as it is signed,
// its facts staged on disk) is as atomic as a small one: a failure after
// several blocks leaves the repo as it was, and a good one commits every
// block, readable as the chain and verified.
func TestStagedAppendIsAtomic(t *testing.T) {
	ctx := context.Background()
	p := newParty(t, "Pat", protocol.RolePatient)
	before := repoState(t, p.repo)
	seq := mustAccount(t, p).Seq
	blocks := func(bad int) [][]protocol.Entry {
		var out [][]protocol.Entry
		for i := range stagedBlocks + 4 {
			if i == bad {
				out = append(out, nil) // Sign refuses a block without entries
				continue
			}
			out = append(out, []protocol.Entry{benchEntry(i)})
		}
		return out
	}
	p.repo.mu.Lock()
	_, err := p.repo.appendBlocks(ctx, p.keys, blocks(stagedBlocks+2))
	p.repo.mu.Unlock()
	if err == nil || !strings.Contains(err.Error(), "must hold 1 to") {
		t.Fatalf("a staged append with a bad block: %v", err)
	}
	sameState(t, "a failed staged append", before, repoState(t, p.repo))

	p.repo.mu.Lock()
	head, err := p.repo.appendBlocks(ctx, p.keys, blocks(-1))
	p.repo.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	acct := mustAccount(t, p)
	if acct.Seq != seq+stagedBlocks+4 || !acct.Head.Equals(head) {
		t.Fatalf("after a staged append of %d blocks: seq %d head %s, want seq %d head %s", stagedBlocks+4, acct.Seq, acct.Head, seq+stagedBlocks+4, head)
	}
	for s := seq + 1; s <= acct.Seq; s++ {
		c, ok, err := p.repo.blockAt(ctx, p.keys.ID, s)
		if err != nil || !ok {
			t.Fatalf("block %d not indexed: %v", s, err)
		}
		if _, err := p.repo.readBlock(ctx, c); err != nil {
			t.Fatalf("block %d: %v", s, err)
		}
	}
	mustVerify(t, p)
}

// A big chain received (an import of 2,500 records' entries, over
// stagedBytes of blocks) is committed staged: every record's facts are
// there after it, and the importing repo verifies.
func TestStagedImport(t *testing.T) {
	ctx := context.Background()
	pat := newParty(t, "Pat", protocol.RolePatient)
	doc := newParty(t, "Dr Grey", protocol.RoleClinician)
	b, err := pat.repo.NewBatch(ctx, pat.keys)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Abort()
	for i := range 2500 {
		if _, err := b.Add(obsRecord(i, "")); err != nil {
			t.Fatal(err)
		}
	}
	cids, err := b.Commit()
	if err != nil {
		t.Fatal(err)
	}
	size := 0
	acct := mustAccount(t, pat)
	for s := uint64(0); s <= acct.Seq; s++ {
		c, _, err := pat.repo.blockAt(ctx, pat.keys.ID, s)
		if err != nil {
			t.Fatal(err)
		}
		blk, err := pat.repo.st.Blockstore().Get(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		size += len(blk.RawData())
	}
	if size < stagedBytes {
		t.Fatalf("the chain is %d bytes, under stagedBytes (%d): the import would not be staged", size, stagedBytes)
	}
	send(t, pat, doc)
	got, err := doc.repo.Account(ctx, pat.keys.ID)
	if err != nil || got.Seq != acct.Seq || !got.Head.Equals(acct.Head) {
		t.Fatalf("doc's copy of pat's chain: %+v, %v; want seq %d head %s", got, err, acct.Seq, acct.Head)
	}
	for _, i := range []int{0, 1250, 2499} {
		a, err := doc.repo.AccessFor(ctx, cids[i], doc.keys.ID)
		if err != nil || !a.Known || a.Subject != pat.keys.ID {
			t.Fatalf("record %d on doc's repo: %+v, %v", i, a, err)
		}
	}
	mustVerify(t, doc)
}
