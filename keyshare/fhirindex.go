package keyshare

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"

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
// by its digest (the SHA-256 of its bytes) among every current record.
type FHIRIndex struct {
	byID     map[fhirKey]fhirHeld
	byDigest map[[sha256.Size]byte]fhirHeld
}

type fhirKey struct{ typ, id string }

type fhirHeld struct {
	record cid.Cid // cid.Undef: added by the import in progress
	digest []byte
	index  int // the input's index, for one added by the import
}

// FHIRIndexFor builds the index of subject's current FHIR records that k
// may read (k's listing, hidden records included: a hidden record is
// still there).
func (r *Repo) FHIRIndexFor(ctx context.Context, k *Keys, subject protocol.AccountID) (*FHIRIndex, error) {
	rows, err := r.List(ctx, k, true)
	if err != nil {
		return nil, fmt.Errorf("list records: %w", err)
	}
	// Superseded versions leave the rows (as the listing folds them,
	// under the access policy's versionOf).
	rows = FoldVersions(rows)
	ix := &FHIRIndex{byID: map[fhirKey]fhirHeld{}, byDigest: map[[sha256.Size]byte]fhirHeld{}}
	for _, l := range rows { // newest first: the first one found stays
		if !l.Readable || l.Error != "" || l.Subject != subject || l.Kind != protocol.KindFHIR || l.FHIR == nil {
			continue
		}
		if len(l.FHIR.Digest) != sha256.Size {
			continue
		}
		held := fhirHeld{record: l.Record, digest: l.FHIR.Digest, index: -1}
		d := [sha256.Size]byte(l.FHIR.Digest)
		if _, ok := ix.byDigest[d]; !ok {
			ix.byDigest[d] = held
		}
		if l.FHIR.ID == "" {
			continue
		}
		key := fhirKey{l.FHIR.ResourceType, l.FHIR.ID}
		if _, ok := ix.byID[key]; !ok {
			ix.byID[key] = held
		}
	}
	return ix, nil
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
				return FHIRMatch{Found: true, Same: true, Record: h.record, Index: h.index}
			}
		}
		return FHIRMatch{}
	}
	h, ok := ix.byID[fhirKey{c.ResourceType, c.ID}]
	if !ok {
		return FHIRMatch{}
	}
	return FHIRMatch{Found: true, Same: bytes.Equal(h.digest, c.Digest), Record: h.record, Index: h.index}
}

// Put notes that the import in progress adds the resource c describes as
// its input index i, so that a second copy of it in the same input is
// found.
func (ix *FHIRIndex) Put(c *protocol.Clinical, i int) {
	held := fhirHeld{digest: c.Digest, index: i}
	if len(c.Digest) == sha256.Size {
		if _, ok := ix.byDigest[[sha256.Size]byte(c.Digest)]; !ok {
			ix.byDigest[[sha256.Size]byte(c.Digest)] = held
		}
	}
	if c.ID != "" {
		ix.byID[fhirKey{c.ResourceType, c.ID}] = held
	}
}
