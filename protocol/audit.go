package protocol

import (
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"
	"unicode/utf8"
)

// Audit entries: each node keeps an append-only log of what it served and
// did for whom (node/audit). An entry is a canonical DAG-CBOR map signed
// by the node's own Ed25519 key (the key behind its peer ID) under
// AuditSignatureContext, and it carries the SHA-256 of the encoding of the
// entry before it (signature included), so an edited, removed or
// reordered entry breaks the chain of hashes or a signature. Entries
// about a patient whose records another node served travel to the
// patient's nodes over /blockmrs/audit/1.0.0 (see PROTOCOL.md): the
// receiving node keeps the entry exactly as the reporting node signed it,
// inside an entry of its own log (Report).

// AuditVersion is the version of the audit entry format.
const AuditVersion = 1

// AuditSignatureContext is prepended to the bytes an audit-entry
// signature covers.
const AuditSignatureContext = "BlockMRS audit entry v1\x00"

// Limits on audit entries.
const (
	MaxAuditEntrySize = 16 << 10 // bytes of one encoded entry, a report inside included
	MaxAuditRecords   = 64       // records one entry names
	MaxAuditText      = 1024     // bytes of a kind, rule, reason, peer or account field
	// MaxAuditBatch bounds the entries one /blockmrs/audit/1.0.0 stream
	// carries.
	MaxAuditBatch = 256
)

// AuditEntry is one entry of a node's audit log.
type AuditEntry struct {
	Version int64  `cbor:"v"`
	Seq     uint64 `cbor:"seq"`  // 0 for the first entry, then +1
	Prev    []byte `cbor:"prev"` // SHA-256 of the previous entry's encoding; empty at seq 0
	Time    int64  `cbor:"time"` // Unix milliseconds
	Kind    string `cbor:"kind"` // "read", "serve", "grant", …
	// Account is who was served or who acted; Peer the node served (a
	// peer ID), if any; Subject the patient the event is about.
	Account string `cbor:"account"`
	Peer    string `cbor:"peer"`
	Subject string `cbor:"subject"`
	Records []Link `cbor:"records"`
	// Rule is the access-policy rule (or claim) that allowed it; Reason
	// says why, for people (an emergency's stated reason, a grant entry).
	Rule   string `cbor:"rule"`
	Reason string `cbor:"reason"`
	// Report is, for an event another node reported, that node's signed
	// entry exactly as received; empty for the node's own events.
	Report []byte `cbor:"report"`
	Node   []byte `cbor:"node"` // Ed25519 public key of the node keeping the log
	Sig    []byte `cbor:"sig,omitempty"`
}

// AuditAck is what a node answers a stream of reported audit entries
// with: how many it stored and the highest sequence number of the
// reporter's entries it holds now (0 with Stored 0: none).
type AuditAck struct {
	Version int64  `cbor:"v"`
	Stored  uint64 `cbor:"stored"`
	Last    uint64 `cbor:"last"`
}

// ErrAuditSignature is returned for an audit entry whose signature does
// not verify with the node key it names.
var ErrAuditSignature = errors.New("audit entry: bad signature")

// NodeID returns the peer ID of the node that signed the entry.
func (e *AuditEntry) NodeID() AccountID { return AccountIDFromKey(e.Node) }

// SigningBytes returns what the node signs: AuditSignatureContext ||
// the canonical encoding of the entry without its signature.
func (e *AuditEntry) SigningBytes() ([]byte, error) {
	c := *e
	c.Sig = nil
	enc, err := marshal(&c)
	if err != nil {
		return nil, fmt.Errorf("audit entry: %w", err)
	}
	return append([]byte(AuditSignatureContext), enc...), nil
}

// Sign sets Node to priv's public key, signs the entry and returns its
// encoding. It fails for an entry that Validate refuses.
func (e *AuditEntry) Sign(priv ed25519.PrivateKey) ([]byte, error) {
	e.Node = append([]byte(nil), priv.Public().(ed25519.PublicKey)...)
	e.Sig = nil
	if err := e.validate(); err != nil {
		return nil, err
	}
	msg, err := e.SigningBytes()
	if err != nil {
		return nil, err
	}
	e.Sig = ed25519.Sign(priv, msg)
	enc, err := marshal(e)
	if err != nil {
		return nil, fmt.Errorf("audit entry: %w", err)
	}
	if len(enc) > MaxAuditEntrySize {
		return nil, fmt.Errorf("audit entry: %d bytes, limit %d", len(enc), MaxAuditEntrySize)
	}
	return enc, nil
}

// AuditHash returns the hash an entry's successor links: SHA-256 of the
// entry's whole encoding.
func AuditHash(encoded []byte) []byte {
	h := sha256.Sum256(encoded)
	return h[:]
}

// DecodeAuditEntry decodes an encoded audit entry strictly (canonical
// DAG-CBOR, known fields only, within the limits) and checks its
// signature against the node key it names. A report inside is decoded
// and checked the same way.
func DecodeAuditEntry(data []byte) (*AuditEntry, error) {
	if len(data) > MaxAuditEntrySize {
		return nil, fmt.Errorf("audit entry: %d bytes, limit %d", len(data), MaxAuditEntrySize)
	}
	var e AuditEntry
	if err := unmarshalStrict(data, &e); err != nil {
		return nil, fmt.Errorf("audit entry: %w", err)
	}
	if err := e.validate(); err != nil {
		return nil, err
	}
	msg, err := e.SigningBytes()
	if err != nil {
		return nil, err
	}
	if !ed25519.Verify(e.Node, msg, e.Sig) {
		return nil, ErrAuditSignature
	}
	if len(e.Report) > 0 {
		if _, err := DecodeAuditEntry(e.Report); err != nil {
			return nil, fmt.Errorf("audit entry %d: report: %w", e.Seq, err)
		}
	}
	return &e, nil
}

// DecodeUnverifiedAuditEntry decodes an encoded audit entry strictly into
// e without checking its signature (to name an entry whose signature
// fails).
func DecodeUnverifiedAuditEntry(data []byte, e *AuditEntry) error {
	if len(data) > MaxAuditEntrySize {
		return fmt.Errorf("audit entry: %d bytes, limit %d", len(data), MaxAuditEntrySize)
	}
	if err := unmarshalStrict(data, e); err != nil {
		return fmt.Errorf("audit entry: %w", err)
	}
	return e.validate()
}

// validate checks the entry's shape (not its signature).
func (e *AuditEntry) validate() error {
	if e.Version != AuditVersion {
		return fmt.Errorf("audit entry: unsupported version %d", e.Version)
	}
	if e.Seq == 0 && len(e.Prev) != 0 {
		return errors.New("audit entry: the first entry links no previous one")
	}
	if e.Seq > 0 && len(e.Prev) != sha256.Size {
		return fmt.Errorf("audit entry %d: previous-entry hash of %d bytes, want %d", e.Seq, len(e.Prev), sha256.Size)
	}
	if e.Time <= 0 {
		return fmt.Errorf("audit entry %d: no time", e.Seq)
	}
	if e.Kind == "" {
		return fmt.Errorf("audit entry %d: no kind", e.Seq)
	}
	for name, s := range map[string]string{"kind": e.Kind, "account": e.Account, "peer": e.Peer, "subject": e.Subject, "rule": e.Rule, "reason": e.Reason} {
		if len(s) > MaxAuditText {
			return fmt.Errorf("audit entry %d: %s of %d bytes, limit %d", e.Seq, name, len(s), MaxAuditText)
		}
		if !utf8.ValidString(s) {
			return fmt.Errorf("audit entry %d: %s is not UTF-8", e.Seq, name)
		}
	}
	for name, id := range map[string]string{"account": e.Account, "subject": e.Subject} {
		if id != "" {
			if _, err := ParseAccountID(id); err != nil {
				return fmt.Errorf("audit entry %d: %s: %w", e.Seq, name, err)
			}
		}
	}
	if len(e.Records) > MaxAuditRecords {
		return fmt.Errorf("audit entry %d: %d records, limit %d", e.Seq, len(e.Records), MaxAuditRecords)
	}
	if len(e.Node) != ed25519.PublicKeySize {
		return fmt.Errorf("audit entry %d: node key of %d bytes, want %d", e.Seq, len(e.Node), ed25519.PublicKeySize)
	}
	if e.Sig != nil && len(e.Sig) != ed25519.SignatureSize {
		return fmt.Errorf("audit entry %d: signature of %d bytes, want %d", e.Seq, len(e.Sig), ed25519.SignatureSize)
	}
	return nil
}

// EncodeAuditAck encodes an acknowledgement.
func EncodeAuditAck(a AuditAck) ([]byte, error) {
	a.Version = AuditVersion
	return marshal(&a)
}

// DecodeAuditAck decodes an acknowledgement strictly.
func DecodeAuditAck(data []byte) (AuditAck, error) {
	var a AuditAck
	if len(data) > 64 {
		return a, fmt.Errorf("audit ack: %d bytes, limit 64", len(data))
	}
	if err := unmarshalStrict(data, &a); err != nil {
		return a, fmt.Errorf("audit ack: %w", err)
	}
	if a.Version != AuditVersion {
		return a, fmt.Errorf("audit ack: unsupported version %d", a.Version)
	}
	return a, nil
}
