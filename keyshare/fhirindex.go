package keyshare

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/blockmrs/blockmrs/protocol"
)

// FHIRIndex tells a re-import what is already there: the current FHIR
// records of one subject that an account reads, by resource. Current
// means no newer version folds it into its history (FoldVersions); of
// two current records holding one resource, the newer counts. It is built from the
// records' sealed envelopes (their clinical fields), opened through the
// account's session cache, so building it again costs little.
//
// A resource with an id is looked up by (resource type, id); one without
// by its digest (the SHA-256 of its bytes) among the current records
// without id (the same bytes hold the same id, so no record with an id
// can match one without).
//
// An import holds its index for its whole length, with an entry per
// resource it adds, so an entry is kept small (about 150 bytes with the
// map's own): the digest in place, the resource type shared.
type FHIRIndex struct {
	byID     map[fhirKey]fhirHeld
	byDigest map[[sha256.Size]byte]fhirHeld
	types    map[string]string // one copy of each resource type
}

type fhirKey struct{ typ, id string }

type fhirHeld struct {
	record cid.Cid // cid.Undef: added by the import in progress
	digest [sha256.Size]byte
	index  int32 // the input's index, for one added by the import
}

// FHIRIndexFor builds the index of subject's current FHIR records that k
// may read (k's listing, hidden records included: a hidden record is
// still there).
//
// The listing is read a chunk at a time (listEach): of each row it keeps
// only what folding versions and the index need (indexRow, about 250
// bytes with its strings, where a whole row holds about 2 KB), so a
// re-import into a large repo holds its index and these, not every
// record's access state and envelope.
func (r *Repo) FHIRIndexFor(ctx context.Context, k *Keys, subject protocol.AccountID) (*FHIRIndex, error) {
	ix := &FHIRIndex{byID: map[fhirKey]fhirHeld{}, byDigest: map[[sha256.Size]byte]fhirHeld{}, types: map[string]string{}}
	accounts := map[protocol.AccountID]protocol.AccountID{} // one copy of each author and subject
	intern := func(id protocol.AccountID) protocol.AccountID {
		if v, ok := accounts[id]; ok {
			return v
		}
		accounts[id] = id
		return id
	}
	var rows []indexRow
	// The listing reads every record's facts once: kept out of the
	// decision cache, where up to maxCached of them (about 2.7 KB each)
	// would stay live through the listing and the whole import for
	// nothing the import decides. What serving cached stays.
	done := r.cache.notFilling()
	err := r.listEach(ctx, k, true, func(l *Listed, created time.Time) {
		row := indexRow{record: l.Record, created: created, author: intern(l.Author), subject: intern(l.Subject),
			supersedes: l.Supersedes, proof: l.Proof, known: l.Known}
		if c := l.FHIR; l.Readable && l.Error == "" && l.Kind == protocol.KindFHIR && c != nil && len(c.Digest) == sha256.Size {
			row.fhir, row.typ, row.id, row.digest = true, ix.typ(c.ResourceType), c.ID, [sha256.Size]byte(c.Digest)
		}
		rows = append(rows, row)
	})
	done()
	if err != nil {
		return nil, fmt.Errorf("list records: %w", err)
	}
	// Newest first, as List orders them (RecordsOf's stable sort over
	// the same index order).
	slices.SortStableFunc(rows, func(a, b indexRow) int { return b.created.Compare(a.created) })
	// Superseded versions leave the rows (as the listing folds them,
	// under the access policy's versionOf).
	next := versionNext(len(rows), func(i int) *Access { return rows[i].access() })
	for i, l := range rows { // newest first: the first one found stays
		if next[i] >= 0 || !l.fhir || l.subject != subject {
			continue
		}
		held := fhirHeld{record: l.record, digest: l.digest, index: -1}
		if l.id == "" {
			if _, ok := ix.byDigest[held.digest]; !ok {
				ix.byDigest[held.digest] = held
			}
			continue
		}
		key := fhirKey{l.typ, l.id}
		if _, ok := ix.byID[key]; !ok {
			ix.byID[key] = held
		}
	}
	return ix, nil
}

// indexRow is what FHIRIndexFor keeps of a listed row: what versionOf
// reads of its access state, the time the listing orders it by, and, for
// a FHIR record k may read that opened, its resource type, id and digest.
type indexRow struct {
	record          cid.Cid
	created         time.Time
	author, subject protocol.AccountID
	supersedes      string
	proof           Proof
	known           bool
	fhir            bool
	typ, id         string
	digest          [sha256.Size]byte
}

// access returns the access state versionOf reads, rebuilt from the row.
func (l *indexRow) access() *Access {
	return &Access{Record: l.record, Known: l.known, Author: l.author, Subject: l.subject, Supersedes: l.supersedes, Proof: l.proof}
}

// typ returns the index's copy of a resource type.
func (ix *FHIRIndex) typ(t string) string {
	if v, ok := ix.types[t]; ok {
		return v
	}
	ix.types[t] = t
	return t
}

// Len returns the number of resources with an id in the index.
func (ix *FHIRIndex) Len() int { return len(ix.byID) }

// FHIRMatch is what the index holds of a resource.
type FHIRMatch struct {
	// Found is set when a current record holds the resource: the same
	// resource type and id, or, for a resource without id, the same
	// bytes.
	Found bool
	// Same is set when that record holds exactly these bytes: nothing to
	// add.
	Same bool
	// Record is that record; cid.Undef when the import in progress adds
	// it, as its input Index (-1 otherwise).
	Record cid.Cid
	Index  int
}

// Lookup finds the current record holding the resource c describes
// (its digest must be set).
func (ix *FHIRIndex) Lookup(c *protocol.Clinical) FHIRMatch {
	if c.ID == "" {
		if len(c.Digest) == sha256.Size {
			if h, ok := ix.byDigest[[sha256.Size]byte(c.Digest)]; ok {
				return FHIRMatch{Found: true, Same: true, Record: h.record, Index: int(h.index)}
			}
		}
		return FHIRMatch{}
	}
	h, ok := ix.byID[fhirKey{c.ResourceType, c.ID}]
	if !ok {
		return FHIRMatch{}
	}
	return FHIRMatch{Found: true, Same: bytes.Equal(h.digest[:], c.Digest), Record: h.record, Index: int(h.index)}
}

// Put notes that the import in progress adds the resource c describes as
// its input index i, so that a second copy of it in the same input is
// found. Without a digest (ReadResources always sets one) a second copy
// is never the same: one without id is not indexed, one with an id is
// "other content".
func (ix *FHIRIndex) Put(c *protocol.Clinical, i int) {
	if i < 0 || i > math.MaxInt32 {
		return
	}
	held := fhirHeld{index: int32(i)}
	hasDigest := len(c.Digest) == sha256.Size
	if hasDigest {
		held.digest = [sha256.Size]byte(c.Digest)
	}
	switch {
	case c.ID != "":
		ix.byID[fhirKey{ix.typ(c.ResourceType), c.ID}] = held
	case hasDigest:
		if _, ok := ix.byDigest[held.digest]; !ok {
			ix.byDigest[held.digest] = held
		}
	}
}
