package protocol

import (
	"bytes"
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"mime"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/cloudflare/circl/group"
	"github.com/cloudflare/circl/secretsharing"
	"github.com/mr-tron/base58/base58"
	mh "github.com/multiformats/go-multihash"
	"golang.org/x/crypto/chacha20poly1305"
)

// Emergency access (PROTOCOL.md §5.12). A patient seals an emergency
// summary under a fresh key and splits that key k-of-n among custodians
// (Shamir over ristretto255, github.com/cloudflare/circl/secretsharing),
// in one "emergency" entry on her chain; each custodian's share is an age
// file to its recipient. An attested emergency clinician asks custodians
// with a signed EmergencyRequest; each custodian that agrees returns its
// share as an age file to the clinician. With k shares the clinician
// recovers the key and opens the summary. "emergency-end" withdraws a
// pack. Neither entry is critical: a verifier that does not know them
// gives no emergency access, which is the safe failure.
const (
	TypeEmergency    = "emergency"     // a patient's emergency pack: sealed summary, k-of-n shares
	TypeEmergencyEnd = "emergency-end" // a patient withdraws an emergency pack
)

// Limits of emergency packs.
const (
	EmergencyIDSize       = 16        // bytes of a pack ID
	MinEmergencyThreshold = 2         // shares needed at least: no custodian alone
	MaxEmergencyCustodian = 16        // custodians of one pack
	MaxEmergencySealed    = 512 << 10 // bytes of the sealed summary
	MaxEmergencyShare     = 1024      // bytes of one age-encrypted share
	MaxEmergencyTitle     = 200       // bytes of a pack's title
	EmergencyScalarSize   = 32        // bytes of an encoded ristretto255 scalar
	EmergencyElementSize  = 32        // bytes of an encoded ristretto255 element
	// EmergencyRequestSkew bounds how far a request's time may be from
	// the custodian's clock, either way, in milliseconds.
	EmergencyRequestSkew = 5 * 60 * 1000
	MaxEmergencyRequest  = 4 << 10 // bytes of one encoded request
	MaxEmergencyNotify   = 32      // peers a pack names to tell of its use
	MaxEmergencyNotice   = 8 << 10 // bytes of one encoded notice
)

// EmergencySummaryInfo is the HKDF info string of the summary key.
const EmergencySummaryInfo = "BlockMRS emergency summary v1"

// EmergencyRequestSignatureContext prefixes what a request's signature
// covers.
const EmergencyRequestSignatureContext = "BlockMRS emergency request v1\x00"

// EmergencyShare is one custodian's share in a pack.
type EmergencyShare struct {
	To    []byte `cbor:"to"`    // Ed25519 key of the custodian
	Index uint64 `cbor:"index"` // the share's x coordinate, 1…n
	Share []byte `cbor:"share"` // age file of the 32-byte share value to the custodian's recipient
	// Nodes are the binary peer IDs of the custodian's nodes when the
	// pack was made, where a clinician holding the pack asks for the
	// share (at most MaxEmergencyNotify).
	Nodes [][]byte `cbor:"nodes"`
}

// EmergencyPack (type "emergency") is a patient's emergency pack. The
// block author is the patient. Threshold shares recover the secret s;
// the summary key is HKDF-SHA-256(s, salt ID, info EmergencySummaryInfo)
// and Sealed is nonce(24) || XChaCha20-Poly1305(key, nonce, summary, ID).
type EmergencyPack struct {
	ID        []byte           `cbor:"id"`     // EmergencyIDSize random bytes
	Title     string           `cbor:"title"`  // what the summary is, shown to custodians and clinicians
	MediaType string           `cbor:"media"`  // the summary's media type
	Threshold uint64           `cbor:"k"`      // shares needed
	Until     int64            `cbor:"until"`  // Unix milliseconds after which custodians refuse
	Window    int64            `cbor:"window"` // milliseconds a first use keeps the pack open, then custodians refuse
	Shares    []EmergencyShare `cbor:"shares"` // one per custodian
	Commit    [][]byte         `cbor:"commit"` // Feldman commitments: Threshold ristretto255 elements
	Sealed    []byte           `cbor:"sealed"` // the sealed summary
	// Notify lists the binary peer IDs (at most MaxEmergencyNotify) a
	// custodian tells of every request it decides: the patient's own
	// nodes and her guardians' nodes, chosen by the patient.
	Notify [][]byte `cbor:"notify"`
}

// NotifyPeers returns Notify in text form.
func (p *EmergencyPack) NotifyPeers() []string { return PeerIDs(p.Notify) }

// EntryType implements EntryBody.
func (*EmergencyPack) EntryType() string { return TypeEmergency }

// Validate implements EntryBody.
func (p *EmergencyPack) Validate() error {
	if len(p.ID) != EmergencyIDSize {
		return fmt.Errorf("pack ID must be %d bytes", EmergencyIDSize)
	}
	if len(p.Title) == 0 || len(p.Title) > MaxEmergencyTitle || !utf8.ValidString(p.Title) {
		return fmt.Errorf("title must be 1 to %d bytes of UTF-8", MaxEmergencyTitle)
	}
	if len(p.MediaType) == 0 || len(p.MediaType) > 255 {
		return errors.New("media type must be 1 to 255 bytes")
	}
	if _, _, err := mime.ParseMediaType(p.MediaType); err != nil || !strings.Contains(p.MediaType, "/") {
		return fmt.Errorf("media type %q is not type/subtype", truncate(p.MediaType))
	}
	n := uint64(len(p.Shares))
	if n > MaxEmergencyCustodian {
		return fmt.Errorf("more than %d custodians", MaxEmergencyCustodian)
	}
	if p.Threshold < MinEmergencyThreshold || p.Threshold > n {
		return fmt.Errorf("threshold %d: must be %d to the number of custodians (%d), so that no custodian alone opens the pack", p.Threshold, MinEmergencyThreshold, n)
	}
	if p.Until <= 0 {
		return errors.New("a pack must have an expiry")
	}
	if p.Window <= 0 {
		return errors.New("a pack must have a use window")
	}
	seen := map[string]bool{}
	for i, s := range p.Shares {
		if len(s.To) != ed25519.PublicKeySize {
			return fmt.Errorf("share %d: custodian is not a 32-byte Ed25519 key", i)
		}
		if seen[string(s.To)] {
			return fmt.Errorf("share %d: custodian %s named twice", i, AccountIDFromKey(s.To))
		}
		seen[string(s.To)] = true
		if s.Index != uint64(i+1) {
			return fmt.Errorf("share %d: index must be %d", i, i+1)
		}
		if len(s.Share) == 0 || len(s.Share) > MaxEmergencyShare {
			return fmt.Errorf("share %d: 1 to %d bytes", i, MaxEmergencyShare)
		}
		if err := checkPeerList(s.Nodes); err != nil {
			return fmt.Errorf("share %d: nodes: %w", i, err)
		}
	}
	if uint64(len(p.Commit)) != p.Threshold {
		return fmt.Errorf("%d commitments for threshold %d", len(p.Commit), p.Threshold)
	}
	for i, c := range p.Commit {
		if err := group.Ristretto255.NewElement().UnmarshalBinary(c); err != nil || len(c) != EmergencyElementSize {
			return fmt.Errorf("commitment %d is not a ristretto255 element", i)
		}
	}
	if err := checkPeerList(p.Notify); err != nil {
		return fmt.Errorf("notify: %w", err)
	}
	if len(p.Sealed) < chacha20poly1305.NonceSizeX+chacha20poly1305.Overhead || len(p.Sealed) > MaxEmergencySealed {
		return fmt.Errorf("sealed summary must be %d to %d bytes", chacha20poly1305.NonceSizeX+chacha20poly1305.Overhead, MaxEmergencySealed)
	}
	return nil
}

func checkPeerList(l [][]byte) error {
	if len(l) > MaxEmergencyNotify {
		return fmt.Errorf("more than %d peers", MaxEmergencyNotify)
	}
	for i, b := range l {
		if _, err := mh.Cast(b); err != nil || len(b) == 0 || len(b) > MaxPeerIDLen {
			return fmt.Errorf("%d: not a binary peer ID", i)
		}
	}
	return nil
}

// PeerIDs returns binary peer IDs in text form.
func PeerIDs(l [][]byte) []string {
	out := make([]string, len(l))
	for i, b := range l {
		out[i] = base58.Encode(b)
	}
	return out
}

// ShareOf returns the share of custodian id, if the pack names it.
func (p *EmergencyPack) ShareOf(id AccountID) (EmergencyShare, bool) {
	for _, s := range p.Shares {
		if AccountIDFromKey(s.To) == id {
			return s, true
		}
	}
	return EmergencyShare{}, false
}

// Custodians returns the pack's custodians in share order.
func (p *EmergencyPack) Custodians() []AccountID {
	out := make([]AccountID, len(p.Shares))
	for i, s := range p.Shares {
		out[i] = AccountIDFromKey(s.To)
	}
	return out
}

// EmergencyEnd (type "emergency-end") withdraws the patient's pack ID:
// custodians that learn of it refuse every later request for it.
type EmergencyEnd struct {
	ID []byte `cbor:"id"`
}

// EntryType implements EntryBody.
func (*EmergencyEnd) EntryType() string { return TypeEmergencyEnd }

// Validate implements EntryBody.
func (e *EmergencyEnd) Validate() error {
	if len(e.ID) != EmergencyIDSize {
		return fmt.Errorf("pack ID must be %d bytes", EmergencyIDSize)
	}
	return nil
}

// EmergencySplit is what SealEmergency makes: the sealed summary, the
// commitments and one share value per custodian (index i+1), in clear,
// for the caller to encrypt to each custodian.
type EmergencySplit struct {
	Sealed []byte
	Commit [][]byte
	Values [][]byte // EmergencyScalarSize bytes each
}

// SealEmergency makes a fresh secret, seals summary under the key derived
// from it for pack id, and splits the secret into n shares of which k
// recover it (circl's New takes the polynomial degree, k-1).
func SealEmergency(rnd io.Reader, id, summary []byte, k, n int) (*EmergencySplit, error) {
	if k < MinEmergencyThreshold || k > n || n > MaxEmergencyCustodian {
		return nil, fmt.Errorf("threshold %d of %d custodians: need %d ≤ k ≤ n ≤ %d", k, n, MinEmergencyThreshold, MaxEmergencyCustodian)
	}
	if len(id) != EmergencyIDSize {
		return nil, fmt.Errorf("pack ID must be %d bytes", EmergencyIDSize)
	}
	g := group.Ristretto255
	secret := g.RandomScalar(rnd)
	ss := secretsharing.New(rnd, uint(k-1), secret)
	sealed, err := sealSummary(rnd, secret, id, summary)
	if err != nil {
		return nil, err
	}
	out := &EmergencySplit{Sealed: sealed}
	for _, c := range ss.CommitSecret() {
		b, err := c.MarshalBinary()
		if err != nil {
			return nil, fmt.Errorf("encode commitment: %w", err)
		}
		out.Commit = append(out.Commit, b)
	}
	for _, s := range ss.Share(uint(n)) {
		b, err := s.Value.MarshalBinary()
		if err != nil {
			return nil, fmt.Errorf("encode share: %w", err)
		}
		out.Values = append(out.Values, b)
	}
	if len(out.Sealed) > MaxEmergencySealed {
		return nil, fmt.Errorf("summary is too large: sealed it takes %d bytes, over the %d-byte limit", len(out.Sealed), MaxEmergencySealed)
	}
	return out, nil
}

func summaryAEAD(secret group.Scalar, id []byte) (aeadCipher, error) {
	ikm, err := secret.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("encode secret: %w", err)
	}
	key, err := hkdf.Key(sha256.New, ikm, id, EmergencySummaryInfo, chacha20poly1305.KeySize)
	if err != nil {
		return nil, fmt.Errorf("derive summary key: %w", err)
	}
	return chacha20poly1305.NewX(key)
}

type aeadCipher interface {
	Seal(dst, nonce, plaintext, additionalData []byte) []byte
	Open(dst, nonce, ciphertext, additionalData []byte) ([]byte, error)
}

func sealSummary(rnd io.Reader, secret group.Scalar, id, summary []byte) ([]byte, error) {
	aead, err := summaryAEAD(secret, id)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, chacha20poly1305.NonceSizeX)
	if _, err := io.ReadFull(rnd, nonce); err != nil {
		return nil, fmt.Errorf("nonce: %w", err)
	}
	return aead.Seal(nonce, nonce, summary, id), nil
}

// ErrEmergencyShare is returned for a share that does not match the
// pack's commitments: a custodian answered with a wrong value.
var ErrEmergencyShare = errors.New("share does not match the pack's commitments")

// CheckEmergencyShare checks share value (at index) against the pack's
// commitments.
func (p *EmergencyPack) CheckEmergencyShare(index uint64, value []byte) error {
	s, err := p.share(index, value)
	if err != nil {
		return err
	}
	commit, err := p.commitments()
	if err != nil {
		return err
	}
	if !secretsharing.Verify(uint(p.Threshold-1), s, commit) {
		return fmt.Errorf("share %d: %w", index, ErrEmergencyShare)
	}
	return nil
}

func (p *EmergencyPack) share(index uint64, value []byte) (secretsharing.Share, error) {
	g := group.Ristretto255
	if index == 0 || index > uint64(len(p.Shares)) {
		return secretsharing.Share{}, fmt.Errorf("share index %d: the pack has shares 1 to %d", index, len(p.Shares))
	}
	v := g.NewScalar()
	if len(value) != EmergencyScalarSize || v.UnmarshalBinary(value) != nil {
		return secretsharing.Share{}, fmt.Errorf("share %d: not a ristretto255 scalar", index)
	}
	return secretsharing.Share{ID: g.NewScalar().SetUint64(index), Value: v}, nil
}

func (p *EmergencyPack) commitments() (secretsharing.SecretCommitment, error) {
	out := make(secretsharing.SecretCommitment, len(p.Commit))
	for i, c := range p.Commit {
		out[i] = group.Ristretto255.NewElement()
		if err := out[i].UnmarshalBinary(c); err != nil {
			return nil, fmt.Errorf("commitment %d: %w", i, err)
		}
	}
	return out, nil
}

// OpenEmergency recovers the secret from shares (index → value; at least
// Threshold distinct ones, each checked against the commitments) and
// opens the sealed summary.
func (p *EmergencyPack) OpenEmergency(values map[uint64][]byte) ([]byte, error) {
	var shares []secretsharing.Share
	idx := make([]uint64, 0, len(values))
	for i := range values {
		idx = append(idx, i)
	}
	slices.Sort(idx)
	for _, i := range idx {
		if err := p.CheckEmergencyShare(i, values[i]); err != nil {
			return nil, err
		}
		s, _ := p.share(i, values[i])
		shares = append(shares, s)
	}
	if uint64(len(shares)) < p.Threshold {
		return nil, fmt.Errorf("%d share(s) of the %d needed", len(shares), p.Threshold)
	}
	secret, err := secretsharing.Recover(uint(p.Threshold-1), shares)
	if err != nil {
		return nil, fmt.Errorf("recover the pack's key: %w", err)
	}
	aead, err := summaryAEAD(secret, p.ID)
	if err != nil {
		return nil, err
	}
	n := chacha20poly1305.NonceSizeX
	out, err := aead.Open(nil, p.Sealed[:n], p.Sealed[n:], p.ID)
	if err != nil {
		return nil, errors.New("the recovered key does not open the summary")
	}
	return out, nil
}

// EmergencyRequest is an emergency clinician's signed request for the
// shares of a patient's pack, sent as it is to every custodian's node
// (each keeps the nonce, so a replay to the same custodian is refused).
// Recipient is where shares are to be encrypted (the clinician's age
// recipient): it is covered by the signature, so nobody else can
// redirect a share. An empty Pack asks for the patient's latest live
// pack the custodian holds.
type EmergencyRequest struct {
	Version   int64  `cbor:"v"`
	Clinician []byte `cbor:"from"`      // Ed25519 key of the clinician
	Recipient string `cbor:"recipient"` // the clinician's age X25519 recipient
	Patient   []byte `cbor:"patient"`   // Ed25519 key of the patient
	Pack      []byte `cbor:"pack"`      // ID of the pack, or empty
	Reason    string `cbor:"reason"`    // why, recorded in the audit trail; required
	Created   int64  `cbor:"created"`   // Unix milliseconds
	Nonce     []byte `cbor:"nonce"`     // RequestNonceSize random bytes
	Sig       []byte `cbor:"sig,omitempty"`
}

// EmergencyRequestVersion is the version of EmergencyRequest.
const EmergencyRequestVersion = 1

// ClinicianID, PatientID and CustodianID return the accounts named.
func (q *EmergencyRequest) ClinicianID() AccountID { return AccountIDFromKey(q.Clinician) }

// PatientID returns the patient whose pack is asked for.
func (q *EmergencyRequest) PatientID() AccountID { return AccountIDFromKey(q.Patient) }

func (q *EmergencyRequest) validate() error {
	if q.Version != EmergencyRequestVersion {
		return fmt.Errorf("emergency request: unsupported version %d", q.Version)
	}
	if len(q.Clinician) != ed25519.PublicKeySize || len(q.Patient) != ed25519.PublicKeySize {
		return errors.New("emergency request: clinician and patient must be 32-byte Ed25519 keys")
	}
	if bytes.Equal(q.Clinician, q.Patient) {
		return errors.New("emergency request: the clinician cannot be the patient")
	}
	if !ageRecipientRe.MatchString(q.Recipient) {
		return errors.New("emergency request: recipient is not an age X25519 recipient")
	}
	if len(q.Pack) != 0 && len(q.Pack) != EmergencyIDSize {
		return fmt.Errorf("emergency request: pack ID must be empty or %d bytes", EmergencyIDSize)
	}
	if q.Reason == "" {
		return errors.New("emergency request: a reason is required")
	}
	if err := checkReason(q.Reason); err != nil {
		return fmt.Errorf("emergency request: %w", err)
	}
	if q.Created <= 0 {
		return errors.New("emergency request: no creation time")
	}
	if len(q.Nonce) != RequestNonceSize {
		return fmt.Errorf("emergency request: nonce must be %d bytes", RequestNonceSize)
	}
	return nil
}

// SigningBytes returns what the request's signature covers.
func (q *EmergencyRequest) SigningBytes() ([]byte, error) {
	unsigned := *q
	unsigned.Sig = nil
	enc, err := marshal(&unsigned)
	if err != nil {
		return nil, fmt.Errorf("encode emergency request: %w", err)
	}
	return append([]byte(EmergencyRequestSignatureContext), enc...), nil
}

// Sign sets Version and Clinician from priv, signs the request and
// returns its encoding.
func (q *EmergencyRequest) Sign(priv ed25519.PrivateKey) ([]byte, error) {
	q.Version = EmergencyRequestVersion
	q.Clinician = append([]byte(nil), priv.Public().(ed25519.PublicKey)...)
	q.Sig = nil
	if err := q.validate(); err != nil {
		return nil, err
	}
	msg, err := q.SigningBytes()
	if err != nil {
		return nil, err
	}
	q.Sig = ed25519.Sign(priv, msg)
	enc, err := marshal(q)
	if err != nil {
		return nil, fmt.Errorf("encode emergency request: %w", err)
	}
	if len(enc) > MaxEmergencyRequest {
		return nil, fmt.Errorf("emergency request is %d bytes, over the %d-byte limit", len(enc), MaxEmergencyRequest)
	}
	return enc, nil
}

// DecodeEmergencyRequest decodes a request strictly and checks its
// signature by Clinician. Whether the clinician may have the share is
// the custodian's decision (keyshare).
func DecodeEmergencyRequest(data []byte) (*EmergencyRequest, error) {
	if len(data) > MaxEmergencyRequest {
		return nil, fmt.Errorf("emergency request: %d bytes, over the %d-byte limit", len(data), MaxEmergencyRequest)
	}
	var q EmergencyRequest
	if err := unmarshalStrict(data, &q); err != nil {
		return nil, fmt.Errorf("emergency request: %w", err)
	}
	if err := q.validate(); err != nil {
		return nil, err
	}
	if len(q.Sig) != ed25519.SignatureSize {
		return nil, errors.New("emergency request: signature missing or wrong size")
	}
	msg, err := q.SigningBytes()
	if err != nil {
		return nil, err
	}
	if !ed25519.Verify(q.Clinician, msg, q.Sig) {
		return nil, fmt.Errorf("emergency request from %s: bad signature", q.ClinicianID())
	}
	return &q, nil
}

// EmergencyNoticeSignatureContext prefixes what a notice's signature
// covers.
const EmergencyNoticeSignatureContext = "BlockMRS emergency notice v1\x00"

// EmergencyNotice is a custodian's signed statement that it decided an
// emergency request: the clinician's signed request itself (so the reason
// and the clinician are the clinician's words, not the custodian's), the
// decision and the rule. Custodians send it to the pack's Notify peers.
type EmergencyNotice struct {
	Version   int64  `cbor:"v"`
	Request   []byte `cbor:"request"`   // the encoded, signed EmergencyRequest
	Custodian []byte `cbor:"custodian"` // Ed25519 key of the custodian that decided
	Pack      []byte `cbor:"pack"`      // ID of the pack decided on (empty: none held)
	Given     bool   `cbor:"given"`     // the share was given
	Rule      string `cbor:"rule"`      // the policy rule that decided
	Decided   int64  `cbor:"decided"`   // Unix milliseconds
	Sig       []byte `cbor:"sig,omitempty"`
}

// SigningBytes returns what the notice's signature covers.
func (n *EmergencyNotice) SigningBytes() ([]byte, error) {
	unsigned := *n
	unsigned.Sig = nil
	enc, err := marshal(&unsigned)
	if err != nil {
		return nil, fmt.Errorf("encode emergency notice: %w", err)
	}
	return append([]byte(EmergencyNoticeSignatureContext), enc...), nil
}

func (n *EmergencyNotice) validate() (*EmergencyRequest, error) {
	if n.Version != EmergencyRequestVersion {
		return nil, fmt.Errorf("emergency notice: unsupported version %d", n.Version)
	}
	if len(n.Custodian) != ed25519.PublicKeySize {
		return nil, errors.New("emergency notice: custodian is not a 32-byte Ed25519 key")
	}
	if len(n.Rule) == 0 || len(n.Rule) > 64 || !utf8.ValidString(n.Rule) {
		return nil, errors.New("emergency notice: rule must be 1 to 64 bytes")
	}
	if len(n.Pack) != 0 && len(n.Pack) != EmergencyIDSize {
		return nil, fmt.Errorf("emergency notice: pack ID must be empty or %d bytes", EmergencyIDSize)
	}
	q, err := DecodeEmergencyRequest(n.Request)
	if err != nil {
		return nil, fmt.Errorf("emergency notice: %w", err)
	}
	if len(q.Pack) != 0 && !bytes.Equal(q.Pack, n.Pack) {
		return nil, errors.New("emergency notice: names another pack than its request")
	}
	return q, nil
}

// Sign sets Version and Custodian from priv, signs and encodes the notice.
func (n *EmergencyNotice) Sign(priv ed25519.PrivateKey) ([]byte, error) {
	n.Version = EmergencyRequestVersion
	n.Custodian = append([]byte(nil), priv.Public().(ed25519.PublicKey)...)
	n.Sig = nil
	if _, err := n.validate(); err != nil {
		return nil, err
	}
	msg, err := n.SigningBytes()
	if err != nil {
		return nil, err
	}
	n.Sig = ed25519.Sign(priv, msg)
	enc, err := marshal(n)
	if err != nil {
		return nil, fmt.Errorf("encode emergency notice: %w", err)
	}
	if len(enc) > MaxEmergencyNotice {
		return nil, fmt.Errorf("emergency notice is %d bytes, over the %d-byte limit", len(enc), MaxEmergencyNotice)
	}
	return enc, nil
}

// DecodeEmergencyNotice decodes a notice strictly and checks both
// signatures (the custodian's on the notice, the clinician's on the
// request inside), returning the notice and its request.
func DecodeEmergencyNotice(data []byte) (*EmergencyNotice, *EmergencyRequest, error) {
	if len(data) > MaxEmergencyNotice {
		return nil, nil, fmt.Errorf("emergency notice: %d bytes, over the %d-byte limit", len(data), MaxEmergencyNotice)
	}
	var n EmergencyNotice
	if err := unmarshalStrict(data, &n); err != nil {
		return nil, nil, fmt.Errorf("emergency notice: %w", err)
	}
	q, err := n.validate()
	if err != nil {
		return nil, nil, err
	}
	if len(n.Sig) != ed25519.SignatureSize {
		return nil, nil, errors.New("emergency notice: signature missing or wrong size")
	}
	msg, err := n.SigningBytes()
	if err != nil {
		return nil, nil, err
	}
	if !ed25519.Verify(n.Custodian, msg, n.Sig) {
		return nil, nil, fmt.Errorf("emergency notice from %s: bad signature", AccountIDFromKey(n.Custodian))
	}
	return &n, q, nil
}

// Frames of the emergency protocol /blockmrs/emergency/1.0.0: a stream
// carries one frame each way, uvarint(length) || DAG-CBOR map.
const (
	EmFrameDeposit = "deposit" // a patient's node delivers a pack or end block (Block)
	EmFrameOpen    = "open"    // a clinician asks for shares (Request, Proof)
	EmFrameNotice  = "notice"  // a custodian tells of a decision (Notice)
	EmFrameOK      = "ok"      // reply: taken
	EmFrameAnswer  = "answer"  // reply to open: Rule, and Block and Shares when given
	EmFrameError   = "error"   // reply: refused (Error, Rule)
)

// MaxEmergencyFrame bounds one frame: a pack block, or a request with a
// role proof (the chains of the clinics and authorities attesting the
// clinician).
const MaxEmergencyFrame = 8 << 20

// EmergencyGiven is one share in an answer: the custodian's value as an
// age file to the clinician's recipient.
type EmergencyGiven struct {
	Custodian []byte `cbor:"custodian"`
	Index     uint64 `cbor:"index"`
	Share     []byte `cbor:"share"`
}

// EmergencyFrame is one frame of the emergency protocol.
type EmergencyFrame struct {
	Kind    string           `cbor:"kind"`
	Block   []byte           `cbor:"block,omitempty"`
	Request []byte           `cbor:"request,omitempty"`
	Proof   [][]byte         `cbor:"proof,omitempty"`
	Notice  []byte           `cbor:"notice,omitempty"`
	Shares  []EmergencyGiven `cbor:"shares,omitempty"`
	Rule    string           `cbor:"rule,omitempty"`
	Error   string           `cbor:"error,omitempty"`
}

func (f *EmergencyFrame) validate() error {
	switch f.Kind {
	case EmFrameDeposit, EmFrameOpen, EmFrameNotice, EmFrameOK, EmFrameAnswer, EmFrameError:
	default:
		return fmt.Errorf("emergency frame: unknown kind %q", truncate(f.Kind))
	}
	if len(f.Shares) > MaxEmergencyCustodian {
		return fmt.Errorf("emergency frame: more than %d shares", MaxEmergencyCustodian)
	}
	for i, s := range f.Shares {
		if len(s.Custodian) != ed25519.PublicKeySize || len(s.Share) == 0 || len(s.Share) > MaxEmergencyShare {
			return fmt.Errorf("emergency frame: share %d malformed", i)
		}
	}
	if len(f.Error) > MaxReasonLen || len(f.Rule) > 64 || !utf8.ValidString(f.Error) || !utf8.ValidString(f.Rule) {
		return errors.New("emergency frame: error or rule too long")
	}
	return nil
}

// EncodeEmergencyFrame encodes a frame within MaxEmergencyFrame.
func EncodeEmergencyFrame(f *EmergencyFrame) ([]byte, error) {
	f.Error = cutText(f.Error, MaxReasonLen)
	return encodeFrame("emergency frame", f, MaxEmergencyFrame)
}

// DecodeEmergencyFrame decodes a frame strictly. What it carries is
// checked by its own decoder (blocks, requests, notices).
func DecodeEmergencyFrame(data []byte) (*EmergencyFrame, error) {
	return decodeFrame[EmergencyFrame]("emergency frame", data, MaxEmergencyFrame)
}
