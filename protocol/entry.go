package protocol

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"regexp"
	"unicode/utf8"

	"filippo.io/age"
	"github.com/fxamacker/cbor/v2"
	"github.com/mr-tron/base58/base58"
	mh "github.com/multiformats/go-multihash"
)

// Entry types defined by version 1 of the chain format. An entry of a type
// not listed here is kept, signed and replicated like any other, but gives
// no access; if it is marked critical, a verifier that does not understand
// it must stop trusting the chain from that block on (see PROTOCOL.md).
const (
	TypeProfile = "profile" // binds signing key, age recipient, name and role
	TypeRecord  = "record"  // an author adds a record for a subject
	TypeGrant   = "grant"   // a subject shares record keys with a grantee
	TypeRevoke  = "revoke"  // a subject stops sharing records with a grantee
	TypeHide    = "hide"    // a subject hides records from listings and standing shares
	TypeUnhide  = "unhide"  // undoes hide
	TypeAck     = "ack"     // a subject acknowledges a record another account authored
	TypeDevice  = "device"  // an account declares (or withdraws) a node that acts for it
	TypeScope   = "scope"   // a subject gives an account a standing grant of a scope (scope.go)
	TypeUnscope = "unscope" // a subject ends a standing grant
	TypeScoped  = "scoped"  // an author or subject gives record keys under a standing grant
)

// Role is the role an account declares in its profile. Whether a role is
// believed is a separate question, answered by attestations.
type Role string

// Roles known to version 1.
const (
	RolePatient   Role = "patient"
	RoleClinician Role = "clinician"
	RoleClinic    Role = "clinic"
	RoleAuthority Role = "authority"
	RoleApp       Role = "app"
)

// ParseRole checks that s names a known role.
func ParseRole(s string) (Role, error) {
	switch r := Role(s); r {
	case RolePatient, RoleClinician, RoleClinic, RoleAuthority, RoleApp:
		return r, nil
	}
	return "", fmt.Errorf("unknown role %q (want patient, clinician, clinic, authority or app)", truncate(s))
}

// EntryBody is the typed content of a chain entry of a known type.
type EntryBody interface {
	// EntryType returns the entry's type string (TypeProfile, …).
	EntryType() string
	// Validate checks the body on its own, without any chain state.
	Validate() error
}

// Entry is one entry of a chain block: a type, a critical flag and a body.
// On the wire it is the map {"type": text, "crit": true (omitted when
// false), "body": map}.
type Entry struct {
	Type     string
	Critical bool
	// Body is the decoded body, or nil when Type is unknown to this
	// implementation.
	Body EntryBody
	// RawBody is the canonical encoding of the body. It is filled in by
	// decoding and by encoding.
	RawBody []byte
}

// NewEntry wraps a typed body as an entry.
func NewEntry(b EntryBody) Entry { return Entry{Type: b.EntryType(), Body: b} }

type entryWire struct {
	Type string          `cbor:"type"`
	Crit bool            `cbor:"crit,omitempty"`
	Body cbor.RawMessage `cbor:"body"`
}

// MarshalCBOR implements cbor.Marshaler.
func (e Entry) MarshalCBOR() ([]byte, error) {
	raw := e.RawBody
	if e.Body != nil {
		if e.Body.EntryType() != e.Type {
			return nil, fmt.Errorf("entry type %q does not match body type %q", e.Type, e.Body.EntryType())
		}
		var err error
		if raw, err = marshal(e.Body); err != nil {
			return nil, fmt.Errorf("encode %s entry: %w", e.Type, err)
		}
	}
	if raw == nil {
		return nil, fmt.Errorf("entry %q has no body", e.Type)
	}
	return marshal(entryWire{Type: e.Type, Crit: e.Critical, Body: raw})
}

// UnmarshalCBOR implements cbor.Unmarshaler. It is strict: known bodies
// must decode into their type without unknown fields and re-encode to the
// same bytes; unknown bodies must be canonical DAG-CBOR maps.
func (e *Entry) UnmarshalCBOR(data []byte) error {
	var w entryWire
	if err := decMode.Unmarshal(data, &w); err != nil {
		return fmt.Errorf("entry: %w", err)
	}
	if len(w.Type) == 0 || len(w.Type) > 64 || !utf8.ValidString(w.Type) {
		return errors.New("entry: type must be 1 to 64 bytes of text")
	}
	if len(w.Body) == 0 || w.Body[0]>>5 != 5 { // major type 5: map
		return fmt.Errorf("%s entry: body is not a map", truncate(w.Type))
	}
	body := newBody(w.Type)
	if body == nil {
		if err := checkCanonicalAny(w.Body); err != nil {
			return fmt.Errorf("%s entry: %w", truncate(w.Type), err)
		}
	} else {
		if err := unmarshalStrict(w.Body, body); err != nil {
			return fmt.Errorf("%s entry: %w", w.Type, err)
		}
		if err := body.Validate(); err != nil {
			return fmt.Errorf("%s entry: %w", w.Type, err)
		}
	}
	*e = Entry{Type: w.Type, Critical: w.Crit, Body: body, RawBody: append([]byte(nil), w.Body...)}
	return nil
}

func newBody(typ string) EntryBody {
	switch typ {
	case TypeProfile:
		return &Profile{}
	case TypeRecord:
		return &Record{}
	case TypeGrant:
		return &Grant{}
	case TypeRevoke:
		return &Revoke{}
	case TypeHide:
		return &Hide{}
	case TypeUnhide:
		return &Unhide{}
	case TypeAck:
		return &Ack{}
	case TypeDevice:
		return &Device{}
	case TypeRekey:
		return &Rekey{}
	case TypeScope:
		return &ScopeGrant{}
	case TypeUnscope:
		return &ScopeEnd{}
	case TypeScoped:
		return &ScopedKeys{}
	case TypeEmergency:
		return &EmergencyPack{}
	case TypeEmergencyEnd:
		return &EmergencyEnd{}
	case TypeAttest:
		return &Attestation{}
	case TypeUnattest:
		return &AttestEnd{}
	case TypeGuardian:
		return &GuardianAppoint{}
	case TypeUnguardian:
		return &GuardianEnd{}
	case TypeWardGrant:
		return &WardGrant{}
	case TypeWardRevoke:
		return &WardRevoke{}
	case TypeWardAccept:
		return &WardAccept{}
	case TypeWardDecline:
		return &WardDecline{}
	case TypeSuccession:
		return &Succession{}
	case TypeRecovery:
		return &RecoverySetup{}
	}
	return nil
}

// Limits on entry contents.
const (
	MaxNameLen      = 200  // bytes of a profile name
	MaxKeysPerEntry = 1024 // wrapped keys in one record or grant entry
	MaxWrappedKey   = 1024 // bytes of one wrapped key
)

var ageRecipientRe = regexp.MustCompile(`^age1[02-9ac-hj-np-z]{58}$`)

// Profile binds an account's age recipient, display name and role to its
// signing key (the block author). It is the first entry of every chain;
// a later profile entry replaces name, role and recipient (key rotation).
type Profile struct {
	Name      string `cbor:"name"`
	Role      Role   `cbor:"role"`
	Recipient string `cbor:"recipient"` // age X25519 recipient, "age1…"
}

// EntryType implements EntryBody.
func (*Profile) EntryType() string { return TypeProfile }

// Validate implements EntryBody.
func (p *Profile) Validate() error {
	if len(p.Name) == 0 || len(p.Name) > MaxNameLen {
		return fmt.Errorf("name must be 1 to %d bytes", MaxNameLen)
	}
	if _, err := ParseRole(string(p.Role)); err != nil {
		return err
	}
	if !ageRecipientRe.MatchString(p.Recipient) {
		return errors.New("recipient is not an age X25519 recipient")
	}
	if _, err := age.ParseX25519Recipient(p.Recipient); err != nil {
		return fmt.Errorf("recipient: %w", err)
	}
	return nil
}

// WrappedKey is a record key age-encrypted to one account's recipient.
type WrappedKey struct {
	To  []byte `cbor:"to"`  // Ed25519 key of the account that can unwrap it
	Key []byte `cbor:"key"` // binary age file holding the record key
}

// Record is written by a record's author on the author's own chain: the
// record's CID, whom it is about, its sealed envelope (the metadata,
// age-encrypted to the record key, so the author's signature covers it and
// the ciphertext at the CID is the encrypted content alone), and its key
// wrapped for the subject and the author (and, optionally, others).
type Record struct {
	Record     Link         `cbor:"record"`
	Subject    []byte       `cbor:"subject"`
	Supersedes *Link        `cbor:"supersedes,omitempty"`
	Meta       []byte       `cbor:"meta"`
	Keys       []WrappedKey `cbor:"keys"`
}

// EntryType implements EntryBody.
func (*Record) EntryType() string { return TypeRecord }

// Validate implements EntryBody.
func (r *Record) Validate() error {
	if !r.Record.Defined() {
		return errors.New("record CID missing")
	}
	if len(r.Subject) != ed25519.PublicKeySize {
		return errors.New("subject is not a 32-byte Ed25519 key")
	}
	if len(r.Meta) == 0 || len(r.Meta) > MaxSealedEnvelope {
		return fmt.Errorf("sealed envelope must be 1 to %d bytes", MaxSealedEnvelope)
	}
	if len(r.Keys) == 0 || len(r.Keys) > MaxKeysPerEntry {
		return fmt.Errorf("must carry 1 to %d wrapped keys", MaxKeysPerEntry)
	}
	seen := map[string]bool{}
	for i, k := range r.Keys {
		if len(k.To) != ed25519.PublicKeySize {
			return fmt.Errorf("wrapped key %d: recipient is not a 32-byte Ed25519 key", i)
		}
		if seen[string(k.To)] {
			return fmt.Errorf("wrapped key %d: a second key for the same account", i)
		}
		seen[string(k.To)] = true
		if len(k.Key) == 0 || len(k.Key) > MaxWrappedKey {
			return fmt.Errorf("wrapped key %d: must be 1 to %d bytes", i, MaxWrappedKey)
		}
	}
	return nil
}

func (r *Record) hasKeyFor(account []byte) bool {
	for _, k := range r.Keys {
		if string(k.To) == string(account) {
			return true
		}
	}
	return false
}

// SubjectID returns the subject's account ID.
func (r *Record) SubjectID() AccountID { return AccountIDFromKey(r.Subject) }

// RecordKey is one record's key wrapped for a grant's grantee.
type RecordKey struct {
	Record Link   `cbor:"record"`
	Key    []byte `cbor:"key"`
}

// Grant shares records with a grantee: for each record, its key wrapped to
// the grantee's recipient. Only the records' subject may grant.
type Grant struct {
	To      []byte      `cbor:"to"`
	Keys    []RecordKey `cbor:"keys"`
	Expires int64       `cbor:"expires,omitempty"` // Unix milliseconds; 0 means no expiry
}

// EntryType implements EntryBody.
func (*Grant) EntryType() string { return TypeGrant }

// Validate implements EntryBody.
func (g *Grant) Validate() error {
	if len(g.To) != ed25519.PublicKeySize {
		return errors.New("grantee is not a 32-byte Ed25519 key")
	}
	if len(g.Keys) == 0 || len(g.Keys) > MaxKeysPerEntry {
		return fmt.Errorf("must carry 1 to %d record keys", MaxKeysPerEntry)
	}
	seen := map[string]bool{}
	for i, k := range g.Keys {
		if !k.Record.Defined() {
			return fmt.Errorf("record key %d: CID missing", i)
		}
		if seen[k.Record.KeyString()] {
			return fmt.Errorf("record key %d: the same record twice", i)
		}
		seen[k.Record.KeyString()] = true
		if len(k.Key) == 0 || len(k.Key) > MaxWrappedKey {
			return fmt.Errorf("record key %d: must be 1 to %d bytes", i, MaxWrappedKey)
		}
	}
	if g.Expires < 0 {
		return errors.New("expiry is negative")
	}
	return nil
}

// Revoke ends a grantee's access to records: the subject's nodes stop
// serving them to the grantee and future versions are not shared. A key
// already delivered cannot be taken back.
type Revoke struct {
	From    []byte `cbor:"from"`
	Records []Link `cbor:"records"`
}

// EntryType implements EntryBody.
func (*Revoke) EntryType() string { return TypeRevoke }

// Validate implements EntryBody.
func (r *Revoke) Validate() error {
	if len(r.From) != ed25519.PublicKeySize {
		return errors.New("revoked account is not a 32-byte Ed25519 key")
	}
	return validateRecordList(r.Records)
}

// Hide hides records from the subject's own listings and from standing
// shares. It does not revoke grants already made.
type Hide struct {
	Records []Link `cbor:"records"`
}

// EntryType implements EntryBody.
func (*Hide) EntryType() string { return TypeHide }

// Validate implements EntryBody.
func (h *Hide) Validate() error { return validateRecordList(h.Records) }

// Unhide undoes Hide.
type Unhide struct {
	Records []Link `cbor:"records"`
}

// EntryType implements EntryBody.
func (*Unhide) EntryType() string { return TypeUnhide }

// Validate implements EntryBody.
func (u *Unhide) Validate() error { return validateRecordList(u.Records) }

// Ack is written by a record's subject to acknowledge a record another
// account authored about them. It links the author's chain block holding
// the record entry, so the subject's chain carries the author's history
// with it.
type Ack struct {
	Record Link   `cbor:"record"`
	Author []byte `cbor:"author"`
	Block  Link   `cbor:"block"`
}

// EntryType implements EntryBody.
func (*Ack) EntryType() string { return TypeAck }

// Validate implements EntryBody.
func (a *Ack) Validate() error {
	if !a.Record.Defined() || !a.Block.Defined() {
		return errors.New("record and block CIDs are required")
	}
	if !IsChainBlockCID(a.Block.Cid) {
		return errors.New("block is not a chain-block CID (CIDv1, dag-cbor, sha2-256)")
	}
	if len(a.Author) != ed25519.PublicKeySize {
		return errors.New("author is not a 32-byte Ed25519 key")
	}
	return nil
}

func validateRecordList(l []Link) error {
	if len(l) == 0 || len(l) > MaxKeysPerEntry {
		return fmt.Errorf("must name 1 to %d records", MaxKeysPerEntry)
	}
	seen := map[string]bool{}
	for i, c := range l {
		if !c.Defined() {
			return fmt.Errorf("record %d: CID missing", i)
		}
		if seen[c.KeyString()] {
			return fmt.Errorf("record %d: named twice", i)
		}
		seen[c.KeyString()] = true
	}
	return nil
}

// MaxPeerIDLen bounds the binary peer ID in a device entry.
const MaxPeerIDLen = 64

// Device declares that the libp2p node with peer ID Peer acts for the
// account (a patient's laptop and phone; the clinic server hosting a
// clinician's account), or, with Remove set, that it no longer does. A
// grant to an account authorises exactly its declared nodes at the
// network edge. With Replica set the node does not act for the account:
// it only keeps the account's chain and the ciphertext of the account's
// records available (a clinic server, or a stock IPFS node the patient
// chose as a backup), and can decrypt nothing.
type Device struct {
	Peer    []byte `cbor:"peer"` // binary peer ID (a multihash)
	Name    string `cbor:"name,omitempty"`
	Remove  bool   `cbor:"remove,omitempty"`
	Replica bool   `cbor:"replica,omitempty"`
}

// EntryType implements EntryBody.
func (*Device) EntryType() string { return TypeDevice }

// Validate implements EntryBody.
func (d *Device) Validate() error {
	if len(d.Peer) == 0 || len(d.Peer) > MaxPeerIDLen {
		return fmt.Errorf("peer ID must be 1 to %d bytes", MaxPeerIDLen)
	}
	if _, err := mh.Cast(d.Peer); err != nil {
		return fmt.Errorf("peer ID is not a multihash: %v", err)
	}
	if len(d.Name) > MaxNameLen || !utf8.ValidString(d.Name) {
		return fmt.Errorf("device name must be at most %d bytes of UTF-8", MaxNameLen)
	}
	return nil
}

// PeerID returns the device's peer ID in its text form (base58btc), as
// libp2p prints it.
func (d *Device) PeerID() string { return base58.Encode(d.Peer) }

// ParsePeerID decodes a libp2p peer ID's text form (base58btc "12D3KooW…"
// or "Qm…") into its binary form.
func ParsePeerID(s string) ([]byte, error) {
	if len(s) == 0 || len(s) > 2*MaxPeerIDLen {
		return nil, fmt.Errorf("peer ID %q: wrong length", truncate(s))
	}
	b, err := base58.Decode(s)
	if err != nil {
		return nil, fmt.Errorf("peer ID %q: not base58", truncate(s))
	}
	if _, err := mh.Cast(b); err != nil || len(b) > MaxPeerIDLen {
		return nil, fmt.Errorf("peer ID %q: not a multihash", truncate(s))
	}
	return b, nil
}
