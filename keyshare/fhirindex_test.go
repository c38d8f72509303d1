package keyshare

import (
	"testing"

	"github.com/blockmrs/blockmrs/protocol"
)

// Building a re-import's index reads every record's facts but leaves the
// decision cache empty (an import would otherwise keep them live to its
// end), while a listing does fill it; the index finds every record.
func TestFHIRIndexForLeavesTheDecisionCacheEmpty(t *testing.T) {
	ctx := t.Context()
	p := newParty(t, "Pat", protocol.RolePatient)
	b, err := p.repo.NewBatch(ctx, p.keys)
	if err != nil {
		t.Fatal(err)
	}
	const n = 20
	for i := range n {
		if _, err := b.Add(obsRecord(i, p.keys.ID)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	cached := func() int {
		p.repo.cache.mu.Lock()
		defer p.repo.cache.mu.Unlock()
		return len(p.repo.cache.facts)
	}
	if _, err := p.repo.List(ctx, p.keys, true); err != nil {
		t.Fatal(err)
	}
	if got := cached(); got < n {
		t.Fatalf("a listing cached the facts of %d records, want %d or more", got, n)
	}
	ix, err := p.repo.FHIRIndexFor(ctx, p.keys, p.keys.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got := cached(); got != 0 {
		t.Fatalf("the index left the facts of %d records in the decision cache", got)
	}
	if ix.Len() != n {
		t.Fatalf("the index holds %d resources, want %d", ix.Len(), n)
	}
	for i := range n {
		nr := obsRecord(i, p.keys.ID)
		if m := ix.Lookup(nr.FHIR); !m.Found || !m.Same || !m.Record.Defined() {
			t.Fatalf("resource %d: %+v", i, m)
		}
	}
}
