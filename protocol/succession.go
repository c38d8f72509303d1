package protocol

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
)

// Signing-key succession and social recovery (PROTOCOL.md §5.14, §5.15).
//
// An account ID names the account's first Ed25519 key for good; the key
// that signs its chain can change. A succession entry names the key that
// signs the chain's blocks after it. It is valid in one of two ways:
//
//   - in a block signed by the chain's current signing key (a planned
//     succession: a device removed, a key rotated), or
//   - in a block signed by the successor key itself, carrying approvals
//     from at least the threshold of the recovery contacts named by the
//     chain's live recovery entry (a recovery after every key was lost).
//
// Blocks signed by a key other than the account's own are version 2
// (BlockVersionSuccessor), whose signature covers a context of their own,
// so a verifier of version 1 rejects them: it fails closed.

// Entry types of succession and recovery.
const (
	TypeSuccession = "succession" // the chain continues under a new signing key (always critical)
	TypeRecovery   = "recovery"   // the account names recovery contacts and a threshold
)

// Limits on recovery.
const (
	MaxRecoveryContacts = 16   // contacts in one recovery entry
	MaxRecoveryShare    = 1024 // bytes of one encrypted share
	MaxRecoverySealed   = 1024 // bytes of the sealed age identity
)

// RecoveryApprovalContext is prepended to what a recovery approval's
// signature covers.
const RecoveryApprovalContext = "BlockMRS recovery approval v1\x00"

// RecoveryRequestContext is prepended to what a recovery request's
// signature covers.
const RecoveryRequestContext = "BlockMRS recovery request v1\x00"

// Succession names the key that signs the chain after the block holding
// it. It must be the first entry of its block and is always critical.
type Succession struct {
	Key []byte `cbor:"key"` // the successor Ed25519 public key
	// Request is the ID of the recovery request this succession answers
	// (RecoveryRequest.ID); present exactly when Approvals are.
	Request   []byte             `cbor:"request,omitempty"`
	Approvals []RecoveryApproval `cbor:"approvals,omitempty"`
}

// EntryType implements EntryBody.
func (*Succession) EntryType() string { return TypeSuccession }

// Validate implements EntryBody.
func (s *Succession) Validate() error {
	if len(s.Key) != ed25519.PublicKeySize {
		return errors.New("successor key is not a 32-byte Ed25519 key")
	}
	if (len(s.Request) == 0) != (len(s.Approvals) == 0) {
		return errors.New("a recovery request and its approvals come together")
	}
	if len(s.Request) != 0 && len(s.Request) != sha256.Size {
		return errors.New("recovery request ID is not 32 bytes")
	}
	if len(s.Approvals) > MaxRecoveryContacts {
		return fmt.Errorf("more than %d approvals", MaxRecoveryContacts)
	}
	seen := map[string]bool{}
	for i := range s.Approvals {
		a := &s.Approvals[i]
		if err := a.validate(); err != nil {
			return fmt.Errorf("approval %d: %w", i, err)
		}
		if seen[string(a.Contact)] {
			return fmt.Errorf("approval %d: a second approval by %s", i, AccountIDFromKey(a.Contact))
		}
		seen[string(a.Contact)] = true
	}
	return nil
}

// NewSuccessionEntry wraps s as a critical entry: a verifier that does
// not know successions must stop trusting the chain there.
func NewSuccessionEntry(s *Succession) Entry {
	e := NewEntry(s)
	e.Critical = true
	return e
}

// RecoveryApproval is one recovery contact's signed consent that the
// account continue under a new key, for one request, under one recovery
// setup.
type RecoveryApproval struct {
	Contact []byte `cbor:"contact"` // the approving contact's account key
	// Setup is the chain block holding the recovery entry the contact
	// approves under; an approval under an older setup counts for nothing.
	Setup Link `cbor:"setup"`
	// Signer is the Ed25519 key that signed, when it is not Contact: the
	// signing key a succession on the contact's chain named. A verifier
	// counts it only if its copy of the contact's chain names it as the
	// signing key (PROTOCOL.md §5.15).
	Signer []byte `cbor:"signer,omitempty"`
	Sig    []byte `cbor:"sig"` // by SignerKey over RecoveryApprovalContext || ApprovalStatement
}

// SignerKey returns the key the approval's signature verifies under:
// Signer when present, else Contact.
func (a *RecoveryApproval) SignerKey() []byte { return signerKey(a.Contact, a.Signer) }

func (a *RecoveryApproval) validate() error {
	if len(a.Contact) != ed25519.PublicKeySize {
		return errors.New("contact is not a 32-byte Ed25519 key")
	}
	if !IsChainBlockCID(a.Setup.Cid) {
		return errors.New("setup is not a chain-block CID")
	}
	if len(a.Sig) != ed25519.SignatureSize {
		return errors.New("signature missing or wrong size")
	}
	return checkSigner("approval", a.Contact, a.Signer)
}

// approvalStatement is what a recovery approval signs.
type approvalStatement struct {
	Account []byte `cbor:"account"` // key of the account to recover
	Key     []byte `cbor:"key"`     // the successor key
	Request []byte `cbor:"request"` // the request ID
	Setup   Link   `cbor:"setup"`
	Contact []byte `cbor:"contact"`
}

// ApprovalSigningBytes returns what an approval by contact of the
// recovery of account (to successor key, for request, under the setup
// in block setup) signs.
func ApprovalSigningBytes(account, key, request, contact []byte, setup Link) ([]byte, error) {
	enc, err := marshal(approvalStatement{Account: account, Key: key, Request: request, Setup: setup, Contact: contact})
	if err != nil {
		return nil, fmt.Errorf("encode recovery approval: %w", err)
	}
	return append([]byte(RecoveryApprovalContext), enc...), nil
}

// SignRecoveryApproval returns contact priv's approval of the recovery of
// account to key for request under setup, priv being the contact's
// account key.
func SignRecoveryApproval(priv ed25519.PrivateKey, account, key, request []byte, setup Link) (RecoveryApproval, error) {
	return SignRecoveryApprovalAs(priv.Public().(ed25519.PublicKey), priv, account, key, request, setup)
}

// SignRecoveryApprovalAs returns the approval by the contact with account
// key contact, signed by priv (its account key, or the signing key a
// succession on its chain named), of the recovery of account to key for
// request under setup.
func SignRecoveryApprovalAs(contact ed25519.PublicKey, priv ed25519.PrivateKey, account, key, request []byte, setup Link) (RecoveryApproval, error) {
	msg, err := ApprovalSigningBytes(account, key, request, contact, setup)
	if err != nil {
		return RecoveryApproval{}, err
	}
	from, signer := ownSigner(contact, priv)
	return RecoveryApproval{Contact: from, Setup: setup, Signer: signer, Sig: ed25519.Sign(priv, msg)}, nil
}

// VerifyFor checks the approval's signature (by SignerKey) as an approval
// of the recovery of account to key for request. A Signer other than
// Contact is only a claim: the verifier checks that the contact's chain
// names it.
func (a *RecoveryApproval) VerifyFor(account, key, request []byte) error {
	if err := a.validate(); err != nil {
		return err
	}
	msg, err := ApprovalSigningBytes(account, key, request, a.Contact, a.Setup)
	if err != nil {
		return err
	}
	if !ed25519.Verify(a.SignerKey(), msg, a.Sig) {
		return fmt.Errorf("approval by %s: bad signature (not for this account, key and request)", AccountIDFromKey(a.Contact))
	}
	return nil
}

// RecoverySetup names an account's recovery contacts and how many of them
// must approve a recovery. Each contact holds one share of a secret that
// opens Sealed, the account's age identity; the shares are encrypted to
// the contacts. A setup with no contacts (and threshold 0) turns recovery
// off. The latest recovery entry on the chain is the live one.
type RecoverySetup struct {
	Threshold uint64          `cbor:"threshold"`
	Contacts  []RecoveryShare `cbor:"contacts"` // sorted by key, distinct
	// Sealed is the account's age identity ("AGE-SECRET-KEY-1…"), sealed
	// with ChaCha20-Poly1305 under a key derived from the shared secret.
	Sealed []byte `cbor:"sealed,omitempty"`
}

// RecoveryShare is one contact's encrypted share.
type RecoveryShare struct {
	Contact []byte `cbor:"contact"` // the contact's account key
	Share   []byte `cbor:"share"`   // an age file to the contact's recipient
}

// EntryType implements EntryBody.
func (*RecoverySetup) EntryType() string { return TypeRecovery }

// Validate implements EntryBody.
func (s *RecoverySetup) Validate() error {
	if len(s.Contacts) == 0 {
		if s.Threshold != 0 || len(s.Sealed) != 0 {
			return errors.New("a recovery entry without contacts turns recovery off: threshold 0, nothing sealed")
		}
		return nil
	}
	if len(s.Contacts) > MaxRecoveryContacts {
		return fmt.Errorf("more than %d recovery contacts", MaxRecoveryContacts)
	}
	if s.Threshold < 1 || s.Threshold > uint64(len(s.Contacts)) {
		return fmt.Errorf("threshold %d: must be 1 to the number of contacts (%d)", s.Threshold, len(s.Contacts))
	}
	if len(s.Sealed) == 0 || len(s.Sealed) > MaxRecoverySealed {
		return fmt.Errorf("sealed identity must be 1 to %d bytes", MaxRecoverySealed)
	}
	for i, c := range s.Contacts {
		if len(c.Contact) != ed25519.PublicKeySize {
			return fmt.Errorf("contact %d is not a 32-byte Ed25519 key", i)
		}
		if len(c.Share) == 0 || len(c.Share) > MaxRecoveryShare {
			return fmt.Errorf("share %d must be 1 to %d bytes", i, MaxRecoveryShare)
		}
		if i > 0 && bytes.Compare(s.Contacts[i-1].Contact, c.Contact) >= 0 {
			return errors.New("contacts must be sorted by key and distinct")
		}
	}
	return nil
}

// Has reports whether key is one of the setup's contacts.
func (s *RecoverySetup) Has(key []byte) bool {
	return slices.ContainsFunc(s.Contacts, func(c RecoveryShare) bool { return bytes.Equal(c.Contact, key) })
}

// RecoveryRequest is what a new device sends a recovery's contacts: the
// account to continue, the key to continue it under and an age recipient
// to re-encrypt the shares to, signed by the new key (which proves the
// requester holds it).
type RecoveryRequest struct {
	Version   int64  `cbor:"v"`
	Account   []byte `cbor:"account"`   // key of the account to recover
	Key       []byte `cbor:"key"`       // the new signing key
	Recipient string `cbor:"recipient"` // the new age recipient
	Time      int64  `cbor:"time"`      // Unix milliseconds
	Sig       []byte `cbor:"sig,omitempty"`
}

// MaxRecoveryRequest bounds an encoded recovery request.
const MaxRecoveryRequest = 1024

func (q *RecoveryRequest) validate() error {
	if q.Version != 1 {
		return fmt.Errorf("recovery request: unsupported version %d", q.Version)
	}
	if len(q.Account) != ed25519.PublicKeySize || len(q.Key) != ed25519.PublicKeySize {
		return errors.New("recovery request: account and key must be 32-byte Ed25519 keys")
	}
	if bytes.Equal(q.Account, q.Key) {
		return errors.New("recovery request: the new key is the account's own")
	}
	if !ageRecipientRe.MatchString(q.Recipient) {
		return errors.New("recovery request: recipient is not an age X25519 recipient")
	}
	if q.Time < 0 {
		return errors.New("recovery request: negative time")
	}
	return nil
}

func (q *RecoveryRequest) signingBytes() ([]byte, error) {
	unsigned := *q
	unsigned.Sig = nil
	enc, err := marshal(&unsigned)
	if err != nil {
		return nil, fmt.Errorf("encode recovery request: %w", err)
	}
	return append([]byte(RecoveryRequestContext), enc...), nil
}

// Sign signs the request with the new key priv (whose public key must be
// q.Key) and returns its encoding.
func (q *RecoveryRequest) Sign(priv ed25519.PrivateKey) ([]byte, error) {
	q.Version, q.Sig = 1, nil
	if !bytes.Equal(priv.Public().(ed25519.PublicKey), q.Key) {
		return nil, errors.New("recovery request: signed by another key than the one it names")
	}
	if err := q.validate(); err != nil {
		return nil, err
	}
	msg, err := q.signingBytes()
	if err != nil {
		return nil, err
	}
	q.Sig = ed25519.Sign(priv, msg)
	return marshal(q)
}

// DecodeRecoveryRequest decodes a recovery request strictly and checks
// its signature by the key it names.
func DecodeRecoveryRequest(data []byte) (*RecoveryRequest, error) {
	if len(data) > MaxRecoveryRequest {
		return nil, fmt.Errorf("recovery request: %d bytes, over the %d-byte limit", len(data), MaxRecoveryRequest)
	}
	var q RecoveryRequest
	if err := unmarshalStrict(data, &q); err != nil {
		return nil, fmt.Errorf("recovery request: %w", err)
	}
	if err := q.validate(); err != nil {
		return nil, err
	}
	if len(q.Sig) != ed25519.SignatureSize {
		return nil, errors.New("recovery request: signature missing or wrong size")
	}
	msg, err := q.signingBytes()
	if err != nil {
		return nil, err
	}
	if !ed25519.Verify(q.Key, msg, q.Sig) {
		return nil, errors.New("recovery request: bad signature")
	}
	return &q, nil
}

// RecoveryRequestID returns the ID of an encoded recovery request: the
// SHA-256 of its bytes.
func RecoveryRequestID(data []byte) []byte {
	h := sha256.Sum256(data)
	return h[:]
}

// validateSigner checks the block's Signer against its version.
func (b *Block) validateSigner() error {
	switch b.Version {
	case BlockVersion:
		if b.Signer != nil {
			return fmt.Errorf("chain block %d: version 1 has no signer field", b.Seq)
		}
	case BlockVersionSuccessor:
		if len(b.Signer) != ed25519.PublicKeySize {
			return fmt.Errorf("chain block %d: signer is not a 32-byte Ed25519 key", b.Seq)
		}
		if bytes.Equal(b.Signer, b.Author) {
			return fmt.Errorf("chain block %d: a version-2 block is signed by a key other than the author's", b.Seq)
		}
		if b.Seq == 0 {
			return errors.New("chain block 0: must be signed by the account key (version 1)")
		}
	}
	for i := range b.Entries {
		if b.Entries[i].Type != TypeSuccession {
			continue
		}
		if i != 0 {
			return fmt.Errorf("chain block %d entry %d: a succession must be the first entry of its block", b.Seq, i)
		}
		if !b.Entries[i].Critical {
			return fmt.Errorf("chain block %d: a succession entry must be critical", b.Seq)
		}
	}
	return nil
}

// Succession returns the block's succession entry, if its first entry is
// one this implementation decoded.
func (b *Block) Succession() *Succession {
	if len(b.Entries) == 0 {
		return nil
	}
	s, _ := b.Entries[0].Body.(*Succession)
	return s
}

// RecoveryResponse is what a contact sends back for a recovery request:
// its approval and its share re-encrypted to the request's recipient.
type RecoveryResponse struct {
	Version  int64            `cbor:"v"`
	Request  []byte           `cbor:"request"` // the request ID
	Approval RecoveryApproval `cbor:"approval"`
	Share    []byte           `cbor:"share"` // an age file to the request's recipient
}

// MaxRecoveryResponse bounds an encoded recovery response.
const MaxRecoveryResponse = 2048

// Encode returns the response's canonical encoding.
func (p *RecoveryResponse) Encode() ([]byte, error) {
	p.Version = 1
	if err := p.validate(); err != nil {
		return nil, err
	}
	return marshal(p)
}

func (p *RecoveryResponse) validate() error {
	if p.Version != 1 {
		return fmt.Errorf("recovery response: unsupported version %d", p.Version)
	}
	if len(p.Request) != sha256.Size {
		return errors.New("recovery response: request ID is not 32 bytes")
	}
	if err := p.Approval.validate(); err != nil {
		return fmt.Errorf("recovery response: %w", err)
	}
	if len(p.Share) == 0 || len(p.Share) > MaxRecoveryShare {
		return fmt.Errorf("recovery response: share must be 1 to %d bytes", MaxRecoveryShare)
	}
	return nil
}

// DecodeRecoveryResponse decodes a recovery response strictly. The
// approval's signature is checked against the request it answers by
// RecoveryApproval.VerifyFor.
func DecodeRecoveryResponse(data []byte) (*RecoveryResponse, error) {
	if len(data) > MaxRecoveryResponse {
		return nil, fmt.Errorf("recovery response: %d bytes, over the %d-byte limit", len(data), MaxRecoveryResponse)
	}
	var p RecoveryResponse
	if err := unmarshalStrict(data, &p); err != nil {
		return nil, fmt.Errorf("recovery response: %w", err)
	}
	if err := p.validate(); err != nil {
		return nil, err
	}
	return &p, nil
}
