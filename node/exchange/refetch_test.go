package exchange

import (
	"testing"
)

// refetchRounds is how many times TestRefetchAfterDelete fetches the
// record. Before stale wants were cancelled (wants.go), one run in five
// of this test under -race stalled on a block ("1 of 6 blocks not
// received"); the left-behind want is a race inside boxo, so the test
// fails only sometimes without the fix, never with it.
const refetchRounds = 40

// TestRefetchAfterDelete: a node fetches a record over bitswap, deletes
// it as garbage collection would, and fetches it again, many times; every
// fetch completes. boxo's bitswap client can be left listing a want that
// no request holds (see wants.go); a later want for that block was taken
// for a duplicate and never sent, and the fetch waited until its
// deadline.
func TestRefetchAfterDelete(t *testing.T) {
	pat, clinic, rec, body, recBlocks := streamSetup(t)
	clinic.ex.DisableStream() // the stream would deliver the record without bitswap
	for range refetchRounds {
		fetchOK(t, clinic, pat, rec, body)
		forget(t, clinic, rec, recBlocks)
	}
	if s := pat.ex.Stats(); s.Serve.Served != 0 || s.Allowed < int64(refetchRounds*len(recBlocks)) {
		t.Fatalf("patient's node: %+v; want every block of every round over bitswap", s)
	}
	t.Logf("%d rounds of %d blocks; stale wants cancelled before a fetch: %d",
		refetchRounds, len(recBlocks), clinic.ex.staleCancelled.Load())
}
