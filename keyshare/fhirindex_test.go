package keyshare

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"strings"
	"testing"

	"github.com/ipfs/go-cid"

	"github.com/blockmrs/blockmrs/protocol"
)

// Building a re-import's index reads every record's facts but stores
// none in the decision cache (an import would otherwise keep them live to
// its end), nor drops what serving cached there (a listing fills it);
// the index finds every record.
func TestFHIRIndexForDoesNotFillTheDecisionCache(t *testing.T) {
	ctx := t.Context()
	p := newParty(t, "Pat", protocol.RolePatient)
	const n = 20
	observations(t, p, n)
	cached := func() int {
		p.repo.cache.mu.Lock()
		defer p.repo.cache.mu.Unlock()
		return len(p.repo.cache.facts)
	}
	// From an empty cache, the walk stores none of the facts it reads.
	p.repo.cache.invalidate()
	if _, err := p.repo.FHIRIndexFor(ctx, p.keys, p.keys.ID); err != nil {
		t.Fatal(err)
	}
	if got := cached(); got != 0 {
		t.Fatalf("the index left the facts of %d records in the decision cache", got)
	}
	// What serving cached (a listing fills it) stays for serving.
	if _, err := p.repo.List(ctx, p.keys, true); err != nil {
		t.Fatal(err)
	}
	if got := cached(); got < n {
		t.Fatalf("a listing cached the facts of %d records, want %d or more", got, n)
	}
	before := cached()
	ix, err := p.repo.FHIRIndexFor(ctx, p.keys, p.keys.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got := cached(); got != before {
		t.Fatalf("the index changed the decision cache from %d to %d records' facts: it should neither fill nor drop it", before, got)
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

// observations commits n Observations about p (obsRecord 0 … n-1), then
// more, in one batch, and returns their CIDs in that order.
func observations(t *testing.T, p *party, n int, more ...NewRecord) []cid.Cid {
	t.Helper()
	b, err := p.repo.NewBatch(t.Context(), p.keys)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if _, err := b.Add(obsRecord(i, p.keys.ID)); err != nil {
			t.Fatal(err)
		}
	}
	for _, nr := range more {
		if _, err := b.Add(nr); err != nil {
			t.Fatal(err)
		}
	}
	out, err := b.Commit()
	if err != nil || len(out) != n+len(more) {
		t.Fatalf("commit: %d records, %v", len(out), err)
	}
	return out
}

// The index built a few records at a time is the one the whole listing
// gives: versions whose older record lies in another chunk fold it away
// (a changed resource, a chain of two versions, a note replacing a
// resource), of two records of one resource the newer counts, a
// resource without id is found by its bytes, and records no version
// replaces are found as they are.
func TestFHIRIndexForInChunks(t *testing.T) {
	ctx := t.Context()
	p := newParty(t, "Pat", protocol.RolePatient)
	const n = 20
	raw := []byte(`{"resourceType":"Observation","status":"final","code":{"text":"no id"}}`)
	sum := sha256.Sum256(raw)
	noID := protocol.Clinical{ResourceType: "Observation", Digest: sum[:]}
	first := observations(t, p, n, NewRecord{Title: "no id", Kind: protocol.KindFHIR, MediaType: "application/fhir+json", Subject: p.keys.ID,
		FHIR: &noID, Body: bytes.NewReader(raw)})
	// changed returns resource i with other bytes, as the version of old.
	changed := func(i int, old cid.Cid, text string) (cid.Cid, *protocol.Clinical) {
		t.Helper()
		nr := obsRecord(i, p.keys.ID)
		body := fmt.Appendf(nil, `{"resourceType":"Observation","id":"obs-%d","status":"amended","code":{"text":%q}}`, i, text)
		sum := sha256.Sum256(body)
		nr.FHIR.Digest, nr.Body, nr.Supersedes = sum[:], bytes.NewReader(body), old
		c, err := p.repo.AddRecord(ctx, p.keys, nr)
		if err != nil {
			t.Fatal(err)
		}
		return c, nr.FHIR
	}
	v3, c3 := changed(3, first[3], "amended")
	v3b, c3b := changed(3, v3, "amended again")
	v17, c17 := changed(17, first[17], "amended")
	// A second record of obs-5, no version of the first: the newer counts.
	dup5, c5 := changed(5, cid.Undef, "written again")
	if _, err := p.repo.AddRecord(ctx, p.keys, NewRecord{Title: "replaces obs-11", Kind: protocol.KindNote, MediaType: "text/plain",
		Supersedes: first[11], Body: strings.NewReader("see the letter")}); err != nil {
		t.Fatal(err)
	}

	// What the whole listing, folded, says is current.
	rows, err := p.repo.List(ctx, p.keys, true)
	if err != nil {
		t.Fatal(err)
	}
	current := map[string]cid.Cid{}
	for _, l := range FoldVersions(rows) {
		if l.Kind != protocol.KindFHIR || l.FHIR == nil || l.FHIR.ID == "" {
			continue
		}
		if _, seen := current[l.FHIR.ID]; !seen {
			current[l.FHIR.ID] = l.Record // newest first: the first one counts
		}
	}
	if current["obs-3"] != v3b || current["obs-17"] != v17 || current["obs-11"].Defined() || current["obs-4"] != first[4] || current["obs-5"] != dup5 {
		t.Fatalf("precondition: the folded listing's current records %v", current)
	}

	old := listChunk
	t.Cleanup(func() { listChunk = old })
	for _, chunk := range []int{3, 7, old} {
		listChunk = chunk
		ix, err := p.repo.FHIRIndexFor(ctx, p.keys, p.keys.ID)
		if err != nil {
			t.Fatal(err)
		}
		if ix.Len() != len(current) {
			t.Fatalf("chunks of %d: the index holds %d resources with an id, the folded listing %d", chunk, ix.Len(), len(current))
		}
		for i := range n {
			id := fmt.Sprintf("obs-%d", i)
			m := ix.Lookup(obsRecord(i, p.keys.ID).FHIR)
			if m.Found != current[id].Defined() || m.Record != current[id] {
				t.Fatalf("chunks of %d: %s: %+v, the folded listing has %s", chunk, id, m, current[id])
			}
		}
		for _, c := range []struct {
			fhir   *protocol.Clinical
			record cid.Cid
			same   bool
		}{{c3b, v3b, true}, {c3, v3b, false}, {c17, v17, true}, {c5, dup5, true}, {&noID, cid.Undef, true}} {
			m := ix.Lookup(c.fhir)
			if !m.Found || m.Same != c.same || (c.record.Defined() && m.Record != c.record) || !m.Record.Defined() {
				t.Fatalf("chunks of %d: %s (digest %x): %+v, want %s same=%v", chunk, c.fhir.ID, c.fhir.Digest[:4], m, c.record, c.same)
			}
		}
	}
}
