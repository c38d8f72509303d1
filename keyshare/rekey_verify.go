package keyshare

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"

	"github.com/ipfs/go-cid"

	"github.com/blockmrs/blockmrs/protocol"
)

// What verify says of a re-key. The new version of a re-keyed record is
// signed by its subject, not by the old record's author: the author's
// signature covers the old CID (and, sealed in the author's record
// entry, the old envelope). So for a reader of both versions verify
// compares what it can: the envelopes (title, kind, media type, file
// name, clinical fields), and the content, decrypting both while the old
// ciphertext is still here, or, once it is gone, hashing the new content
// against the digest a FHIR record's envelope carries (which lives on the
// author's chain for good). Otherwise the new version is the subject's
// word that it holds the same bytes (her node checked that when it
// re-keyed).

// Content verdicts of a RekeyReport.
const (
	RekeyContentIdentical = "identical"      // both versions decrypted here and compared
	RekeyContentDigest    = "matches-digest" // the new content hashes to the digest in the author's envelope
	RekeyContentDiffers   = "differs"        // a problem: the versions do not hold the same bytes
	RekeyContentUnchecked = "not-compared"   // Note says why
)

// RekeyReport is the provenance of a re-key as verify reports it.
type RekeyReport struct {
	// Record is the record re-keyed and New its new version; Author
	// wrote Record's entry, By (its subject) re-keyed it at Via.
	Record string             `json:"record"`
	New    string             `json:"new"`
	Author protocol.AccountID `json:"author"`
	By     protocol.AccountID `json:"by"`
	Via    EntryRef           `json:"via"`
	// Envelope tells, for a reader of both versions, whether their
	// envelopes agree (title, kind, media type, file name, clinical
	// fields): "same" or "differs"; empty when not compared.
	Envelope string `json:"envelope,omitempty"`
	// Content is one of the RekeyContent… verdicts, when verifying the
	// new version; Note says what was or was not compared.
	Content string `json:"content,omitempty"`
	Note    string `json:"note,omitempty"`
}

// rekeyReport reports the re-key a is part of, as old record (a.Rekeyed)
// or new version (a.RekeyOf), and adds a problem to rr where the two
// versions differ. k (may be nil) is the verifying account.
func (r *Repo) rekeyReport(ctx context.Context, k *Keys, a *Access, rr *RecordReport) *RekeyReport {
	switch {
	case a.Rekeyed != nil:
		l := a.Rekeyed
		return &RekeyReport{Record: l.Record, New: l.New, Author: l.Author, By: l.Via.Account, Via: l.Via,
			Note: "re-keyed: its content is in the new version, and this ciphertext is served to nobody"}
	case a.RekeyOf == nil:
		return nil
	}
	l := a.RekeyOf
	rep := &RekeyReport{Record: l.Record, New: l.New, Author: l.Author, By: l.Via.Account, Via: l.Via, Content: RekeyContentUnchecked}
	if k == nil {
		rep.Note = "no account given to compare the versions with"
		return rep
	}
	old, err := cid.Decode(l.Record)
	if err != nil {
		rep.Note = "the re-keyed record's CID does not parse"
		return rep
	}
	as, err := r.accessAll(ctx, old)
	if err != nil {
		rep.Note = err.Error()
		return rep
	}
	var oc *Access
	for _, o := range as {
		if o.Known && o.Author == l.Author && o.Entry != nil && o.Entry.Block == l.Block {
			oc = o
		}
	}
	if oc == nil {
		rep.Note = "the re-keyed record's entry is not on this node (its author's chain is missing)"
		return rep
	}
	oenv, okey, err := r.openClaim(ctx, k, oc)
	if err != nil {
		rep.Note = "you cannot open the re-keyed record: " + err.Error()
		return rep
	}
	nenv, nkey, _, err := r.openView(ctx, k, a.Record)
	if err != nil {
		rep.Note = "you cannot open this version: " + err.Error()
		return rep
	}
	rep.Envelope = "same"
	if !sameContentFields(oenv, nenv) {
		rep.Envelope = "differs"
		rr.Problems = append(rr.Problems, fmt.Sprintf("re-key of %s: the envelopes differ (title, kind, media type, file name or clinical fields)", l.Record))
	}
	newSum, err := r.plainSum(ctx, a.Record, nkey)
	if err != nil {
		rep.Note = "this version's content is not readable here: " + err.Error()
		return rep
	}
	if oldSum, err := r.plainSum(ctx, old, okey); err == nil {
		rep.Content, rep.Note = RekeyContentIdentical, "both versions decrypted here and compared byte for byte"
		if !bytes.Equal(oldSum, newSum) {
			rep.Content = RekeyContentDiffers
		}
	} else if oenv.FHIR != nil && len(oenv.FHIR.Digest) == sha256.Size {
		rep.Content, rep.Note = RekeyContentDigest, "the re-keyed ciphertext is gone; this content hashes to the digest in its author's signed envelope"
		if !bytes.Equal(oenv.FHIR.Digest, newSum) {
			rep.Content = RekeyContentDiffers
		}
	} else {
		rep.Note = "the re-keyed ciphertext is no longer on this node, and its author's envelope holds no digest: the content is the subject's word (her node compared it when it re-keyed)"
	}
	if rep.Content == RekeyContentDiffers {
		rr.Problems = append(rr.Problems, fmt.Sprintf("re-key of %s: the new version does not hold the same content", l.Record))
	}
	return rep
}

// sameContentFields tells whether two envelopes describe the same content
// (authors, dates and links aside).
func sameContentFields(a, b *protocol.Envelope) bool {
	if a.Title != b.Title || a.Kind != b.Kind || a.MediaType != b.MediaType || a.FileName != b.FileName {
		return false
	}
	if (a.FHIR == nil) != (b.FHIR == nil) {
		return false
	}
	ja, _ := json.Marshal(a.FHIR)
	jb, _ := json.Marshal(b.FHIR)
	return bytes.Equal(ja, jb) && (a.FHIR == nil || bytes.Equal(a.FHIR.Digest, b.FHIR.Digest))
}
