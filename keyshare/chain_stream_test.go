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
