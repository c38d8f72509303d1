package protocol

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/ipfs/go-cid"
)

// Access requests: a requester (a clinician, say) asks a patient's account
// for records; the patient answers. Both messages are canonical DAG-CBOR
// maps signed like chain blocks, each type with its own signature
// context, and each is named by its CID (CIDv1, dag-cbor, sha2-256 over
// the whole encoding, signature included), so both sides name a request
// the same way. They travel between nodes (node/requests), never on a
// chain; an approval is a grant entry on the patient's chain, which the
// answer links.

// RequestVersion is the version of the request and answer formats.
const RequestVersion = 1

// Signature contexts of requests and answers.
const (
	RequestSignatureContext = "BlockMRS access request v1\x00"
	AnswerSignatureContext  = "BlockMRS access answer v1\x00"
)

// Limits on requests and answers.
const (
	MaxRequestSize     = 64 << 10 // bytes of one encoded request
	MaxAnswerSize      = 4 << 10  // bytes of one encoded answer
	MaxRequestRecords  = 1024     // records one request may name
	MaxReasonLen       = 1024     // bytes of a reason
	MaxRequestDuration = 100 * 366 * 24 * 3600
	RequestNonceSize   = 16
)

// Decisions an answer may carry.
const (
	DecisionApprove = "approve"
	DecisionDeny    = "deny"
)

// Request asks account To for access to records (all of the records To
// may grant when Records is empty) for Duration seconds (0: no end asked
// for). It is signed by From.
type Request struct {
	Version  int64  `cbor:"v"`
	From     []byte `cbor:"from"` // Ed25519 key of the requesting account
	To       []byte `cbor:"to"`   // Ed25519 key of the account asked
	Records  []Link `cbor:"records"`
	Reason   string `cbor:"reason"`
	Duration uint64 `cbor:"duration"` // seconds
	Created  int64  `cbor:"created"`  // Unix milliseconds
	Nonce    []byte `cbor:"nonce"`    // RequestNonceSize random bytes
	// Signer is the Ed25519 key that signed, when it is not From: the
	// successor key From's chain names (§5.14). Absent, From signed.
	Signer []byte `cbor:"signer,omitempty"`
	Sig    []byte `cbor:"sig,omitempty"`
}

// SignerKey returns the key the request's signature verifies under:
// Signer when present, else From.
func (q *Request) SignerKey() []byte { return signerKey(q.From, q.Signer) }

func signerKey(from, signer []byte) []byte {
	if signer != nil {
		return signer
	}
	return from
}

// checkSigner checks an optional signer field: absent, or a 32-byte key
// other than from (when from signs, the field is left out).
func checkSigner(what string, from, signer []byte) error {
	if signer != nil && (len(signer) != ed25519.PublicKeySize || string(signer) == string(from)) {
		return fmt.Errorf("%s: signer must be a 32-byte Ed25519 key other than from (leave it out when from signs)", what)
	}
	return nil
}

// FromID returns the requesting account.
func (q *Request) FromID() AccountID { return AccountIDFromKey(q.From) }

// ToID returns the account asked.
func (q *Request) ToID() AccountID { return AccountIDFromKey(q.To) }

// CIDs returns the records asked for (none: all).
func (q *Request) CIDs() []cid.Cid {
	out := make([]cid.Cid, len(q.Records))
	for i, l := range q.Records {
		out[i] = l.Cid
	}
	return out
}

func (q *Request) validate() error {
	if q.Version != RequestVersion {
		return fmt.Errorf("request: unsupported version %d", q.Version)
	}
	if len(q.From) != ed25519.PublicKeySize || len(q.To) != ed25519.PublicKeySize {
		return errors.New("request: from and to must be 32-byte Ed25519 keys")
	}
	if string(q.From) == string(q.To) {
		return errors.New("request: from and to are the same account")
	}
	if len(q.Records) > MaxRequestRecords {
		return fmt.Errorf("request: more than %d records", MaxRequestRecords)
	}
	seen := make(map[string]bool, len(q.Records))
	for _, l := range q.Records {
		if !l.Defined() {
			return errors.New("request: undefined record CID")
		}
		if seen[l.KeyString()] {
			return fmt.Errorf("request: record %s named twice", l.Cid)
		}
		seen[l.KeyString()] = true
	}
	if err := checkReason(q.Reason); err != nil {
		return fmt.Errorf("request: %w", err)
	}
	if q.Duration > MaxRequestDuration {
		return errors.New("request: duration over 100 years")
	}
	if q.Created < 0 {
		return errors.New("request: negative creation time")
	}
	if len(q.Nonce) != RequestNonceSize {
		return fmt.Errorf("request: nonce must be %d bytes", RequestNonceSize)
	}
	return checkSigner("request", q.From, q.Signer)
}

func checkReason(s string) error {
	if len(s) > MaxReasonLen || !utf8.ValidString(s) {
		return fmt.Errorf("reason must be at most %d bytes of UTF-8", MaxReasonLen)
	}
	return nil
}

// SigningBytes returns what the request's signature covers.
func (q *Request) SigningBytes() ([]byte, error) {
	unsigned := *q
	unsigned.Sig = nil
	enc, err := marshal(&unsigned)
	if err != nil {
		return nil, fmt.Errorf("encode request: %w", err)
	}
	return append([]byte(RequestSignatureContext), enc...), nil
}

// Sign sets Version and From from priv, signs the request and returns its
// encoding and ID (CID).
func (q *Request) Sign(priv ed25519.PrivateKey) ([]byte, cid.Cid, error) {
	return q.SignAs(priv.Public().(ed25519.PublicKey), priv)
}

// SignAs signs the request for account with priv: From is account, and
// Signer is priv's public key when that is another key (a successor key
// account's chain names). Whether that key may speak for account is for
// the verifier to decide from the chain (keyshare).
func (q *Request) SignAs(account ed25519.PublicKey, priv ed25519.PrivateKey) ([]byte, cid.Cid, error) {
	q.Version = RequestVersion
	q.From, q.Signer = ownSigner(account, priv)
	q.Sig = nil
	if q.Records == nil {
		q.Records = []Link{}
	}
	if err := q.validate(); err != nil {
		return nil, cid.Undef, err
	}
	msg, err := q.SigningBytes()
	if err != nil {
		return nil, cid.Undef, err
	}
	q.Sig = ed25519.Sign(priv, msg)
	enc, err := marshal(q)
	if err != nil {
		return nil, cid.Undef, fmt.Errorf("encode request: %w", err)
	}
	if len(enc) > MaxRequestSize {
		return nil, cid.Undef, fmt.Errorf("request is %d bytes, over the %d-byte limit", len(enc), MaxRequestSize)
	}
	return enc, BlockCID(enc), nil
}

// DecodeRequest decodes an encoded request strictly (canonical, no
// unknown fields, within limits) and checks its signature by SignerKey.
// A Signer other than From is only a claim: the verifier must check that
// From's chain names it as the current signing key (keyshare).
func DecodeRequest(data []byte) (*Request, error) {
	if len(data) > MaxRequestSize {
		return nil, fmt.Errorf("request: %d bytes, over the %d-byte limit", len(data), MaxRequestSize)
	}
	var q Request
	if err := unmarshalStrict(data, &q); err != nil {
		return nil, fmt.Errorf("request: %w", err)
	}
	if err := q.validate(); err != nil {
		return nil, err
	}
	if len(q.Sig) != ed25519.SignatureSize {
		return nil, errors.New("request: signature missing or wrong size")
	}
	msg, err := q.SigningBytes()
	if err != nil {
		return nil, err
	}
	if !ed25519.Verify(q.SignerKey(), msg, q.Sig) {
		return nil, fmt.Errorf("request from %s: bad signature", q.FromID())
	}
	return &q, nil
}

// Answer is account From's reply to a request that From was asked
// (Request is its ID): approve, with Grant linking the chain block holding
// the grant, or deny. It is signed by From and addressed to the requester.
type Answer struct {
	Version  int64  `cbor:"v"`
	Request  Link   `cbor:"request"` // ID of the request answered
	From     []byte `cbor:"from"`    // Ed25519 key of the account that was asked
	To       []byte `cbor:"to"`      // Ed25519 key of the requester
	Decision string `cbor:"decision"`
	Reason   string `cbor:"reason"`
	Grant    *Link  `cbor:"grant,omitempty"` // chain block with the grant; present iff approve
	Created  int64  `cbor:"created"`         // Unix milliseconds
	// Signer is the Ed25519 key that signed, when it is not From (see
	// Request.Signer).
	Signer []byte `cbor:"signer,omitempty"`
	Sig    []byte `cbor:"sig,omitempty"`
}

// SignerKey returns the key the answer's signature verifies under:
// Signer when present, else From.
func (a *Answer) SignerKey() []byte { return signerKey(a.From, a.Signer) }

// ownSigner returns the from and signer fields for a message account
// signs with priv.
func ownSigner(account ed25519.PublicKey, priv ed25519.PrivateKey) (from, signer []byte) {
	pub := priv.Public().(ed25519.PublicKey)
	from = append([]byte(nil), account...)
	if !pub.Equal(account) {
		signer = append([]byte(nil), pub...)
	}
	return from, signer
}

// FromID returns the answering account.
func (a *Answer) FromID() AccountID { return AccountIDFromKey(a.From) }

// ToID returns the requester.
func (a *Answer) ToID() AccountID { return AccountIDFromKey(a.To) }

func (a *Answer) validate() error {
	if a.Version != RequestVersion {
		return fmt.Errorf("answer: unsupported version %d", a.Version)
	}
	if !IsChainBlockCID(a.Request.Cid) {
		return errors.New("answer: request is not a request ID (CIDv1, dag-cbor, sha2-256)")
	}
	if len(a.From) != ed25519.PublicKeySize || len(a.To) != ed25519.PublicKeySize {
		return errors.New("answer: from and to must be 32-byte Ed25519 keys")
	}
	switch a.Decision {
	case DecisionApprove:
		if a.Grant == nil || !IsChainBlockCID(a.Grant.Cid) {
			return errors.New("answer: an approval must link its grant's chain block")
		}
	case DecisionDeny:
		if a.Grant != nil {
			return errors.New("answer: a denial links no grant")
		}
	default:
		return fmt.Errorf("answer: unknown decision %q (want approve or deny)", truncate(a.Decision))
	}
	if err := checkReason(a.Reason); err != nil {
		return fmt.Errorf("answer: %w", err)
	}
	if a.Created < 0 {
		return errors.New("answer: negative creation time")
	}
	return checkSigner("answer", a.From, a.Signer)
}

// SigningBytes returns what the answer's signature covers.
func (a *Answer) SigningBytes() ([]byte, error) {
	unsigned := *a
	unsigned.Sig = nil
	enc, err := marshal(&unsigned)
	if err != nil {
		return nil, fmt.Errorf("encode answer: %w", err)
	}
	return append([]byte(AnswerSignatureContext), enc...), nil
}

// Sign sets Version and From from priv, signs the answer and returns its
// encoding and CID.
func (a *Answer) Sign(priv ed25519.PrivateKey) ([]byte, cid.Cid, error) {
	return a.SignAs(priv.Public().(ed25519.PublicKey), priv)
}

// SignAs signs the answer for account with priv (see Request.SignAs).
func (a *Answer) SignAs(account ed25519.PublicKey, priv ed25519.PrivateKey) ([]byte, cid.Cid, error) {
	a.Version = RequestVersion
	a.From, a.Signer = ownSigner(account, priv)
	a.Sig = nil
	if err := a.validate(); err != nil {
		return nil, cid.Undef, err
	}
	msg, err := a.SigningBytes()
	if err != nil {
		return nil, cid.Undef, err
	}
	a.Sig = ed25519.Sign(priv, msg)
	enc, err := marshal(a)
	if err != nil {
		return nil, cid.Undef, fmt.Errorf("encode answer: %w", err)
	}
	if len(enc) > MaxAnswerSize {
		return nil, cid.Undef, fmt.Errorf("answer is %d bytes, over the %d-byte limit", len(enc), MaxAnswerSize)
	}
	return enc, BlockCID(enc), nil
}

// DecodeAnswer decodes an encoded answer strictly and checks its
// signature by SignerKey (a Signer other than From is a claim the verifier
// checks against From's chain). Whether From is the account the request asked is
// for the requester to check.
func DecodeAnswer(data []byte) (*Answer, error) {
	if len(data) > MaxAnswerSize {
		return nil, fmt.Errorf("answer: %d bytes, over the %d-byte limit", len(data), MaxAnswerSize)
	}
	var a Answer
	if err := unmarshalStrict(data, &a); err != nil {
		return nil, fmt.Errorf("answer: %w", err)
	}
	if err := a.validate(); err != nil {
		return nil, err
	}
	if len(a.Sig) != ed25519.SignatureSize {
		return nil, errors.New("answer: signature missing or wrong size")
	}
	msg, err := a.SigningBytes()
	if err != nil {
		return nil, err
	}
	if !ed25519.Verify(a.SignerKey(), msg, a.Sig) {
		return nil, fmt.Errorf("answer from %s: bad signature", a.FromID())
	}
	return &a, nil
}

// Frames of the request protocol (node/requests): each is one canonical
// DAG-CBOR map, sent as uvarint(length) || map.
const (
	ReqFrameRequest = "request" // Message: a request; Profile: the requester's first chain block
	ReqFrameAnswer  = "answer"  // Message: an answer
	ReqFramePoll    = "poll"    // Poll: IDs of requests whose answers the sender wants
	ReqFrameOK      = "ok"      // reply: taken (Answers: for a poll, the answers held)
	ReqFrameError   = "error"   // reply: refused, Error says why
)

// Limits on frames.
const (
	MaxProfileBlock      = 16 << 10 // bytes of the profile block a request carries
	MaxPollIDs           = 64       // request IDs in one poll, answers in one reply
	MaxRequestFrameSize  = 320 << 10
	maxRequestFrameError = 256
)

// RequestFrame is one message of the request protocol.
type RequestFrame struct {
	Kind    string   `cbor:"kind"`
	Message []byte   `cbor:"msg,omitempty"`
	Profile []byte   `cbor:"profile,omitempty"`
	Poll    []Link   `cbor:"poll,omitempty"`
	Answers [][]byte `cbor:"answers,omitempty"`
	Error   string   `cbor:"error,omitempty"`
}

func (f *RequestFrame) validate() error {
	switch f.Kind {
	case ReqFrameRequest, ReqFrameAnswer, ReqFramePoll, ReqFrameOK, ReqFrameError:
	default:
		return fmt.Errorf("frame: unknown kind %q", truncate(f.Kind))
	}
	if len(f.Profile) > MaxProfileBlock {
		return errors.New("frame: profile block too large")
	}
	if len(f.Poll) > MaxPollIDs || len(f.Answers) > MaxPollIDs {
		return fmt.Errorf("frame: more than %d request IDs or answers", MaxPollIDs)
	}
	if len(f.Error) > maxRequestFrameError || !utf8.ValidString(f.Error) {
		return errors.New("frame: error text too long or not UTF-8")
	}
	return nil
}

// EncodeRequestFrame encodes a frame's map (without the length prefix).
func EncodeRequestFrame(f *RequestFrame) ([]byte, error) {
	f.Error = cutText(f.Error, maxRequestFrameError)
	return encodeFrame("frame", f, MaxRequestFrameSize)
}

// DecodeRequestFrame decodes a frame's map strictly. The messages it carries are
// decoded separately (DecodeRequest, DecodeAnswer, DecodeBlock).
func DecodeRequestFrame(data []byte) (*RequestFrame, error) {
	return decodeFrame[RequestFrame]("frame", data, MaxRequestFrameSize)
}
