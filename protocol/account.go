package protocol

import (
	"bytes"
	"crypto/ed25519"
	"fmt"

	"github.com/mr-tron/base58/base58"
	mh "github.com/multiformats/go-multihash"
)

// AccountID names an account: the libp2p peer-ID text form ("12D3KooW…")
// of the account's Ed25519 signing key. It is the identity multihash of the
// protobuf-encoded public key, in base58btc, so any libp2p implementation
// can compute it, and it names exactly one key.
type AccountID string

// ed25519KeyProto is the protobuf prefix of a libp2p PublicKey message with
// Type=Ed25519 (field 1 = 1) and Data (field 2) of 32 bytes.
var ed25519KeyProto = []byte{0x08, 0x01, 0x12, 0x20}

// AccountIDFromKey returns the account ID of an Ed25519 public key.
func AccountIDFromKey(pub ed25519.PublicKey) AccountID {
	if len(pub) != ed25519.PublicKeySize {
		panic("protocol: AccountIDFromKey: wrong key size")
	}
	pb := append(append([]byte{}, ed25519KeyProto...), pub...)
	m, err := mh.Sum(pb, mh.IDENTITY, -1)
	if err != nil {
		panic(err)
	}
	return AccountID(base58.Encode(m))
}

// ParseAccountID decodes an account ID back into its Ed25519 public key.
func ParseAccountID(s string) (ed25519.PublicKey, error) {
	if len(s) == 0 || len(s) > 100 {
		return nil, fmt.Errorf("account ID %q: wrong length", truncate(s))
	}
	raw, err := base58.Decode(s)
	if err != nil {
		return nil, fmt.Errorf("account ID %q: not base58", truncate(s))
	}
	dec, err := mh.Decode(raw)
	if err != nil {
		return nil, fmt.Errorf("account ID %q: %v", truncate(s), err)
	}
	if dec.Code != mh.IDENTITY || len(dec.Digest) != len(ed25519KeyProto)+ed25519.PublicKeySize ||
		!bytes.HasPrefix(dec.Digest, ed25519KeyProto) {
		return nil, fmt.Errorf("account ID %q: not an Ed25519 key", truncate(s))
	}
	pub := ed25519.PublicKey(dec.Digest[len(ed25519KeyProto):])
	if AccountIDFromKey(pub) != AccountID(s) {
		return nil, fmt.Errorf("account ID %q: not in canonical form", truncate(s))
	}
	return pub, nil
}

// Key returns the public key the ID names.
func (id AccountID) Key() (ed25519.PublicKey, error) { return ParseAccountID(string(id)) }

// Short returns a short form of the ID for humans (the last 8 characters,
// which vary; the first characters of every Ed25519 peer ID are the same).
func (id AccountID) Short() string {
	if len(id) <= 8 {
		return string(id)
	}
	return "…" + string(id[len(id)-8:])
}

func truncate(s string) string {
	if len(s) > 60 {
		return s[:60] + "…"
	}
	return s
}

// accountKey is a 32-byte Ed25519 public key as it appears on the wire.
func accountIDFromWire(b []byte) (AccountID, error) {
	if len(b) != ed25519.PublicKeySize {
		return "", fmt.Errorf("account key: %d bytes, want %d", len(b), ed25519.PublicKeySize)
	}
	return AccountIDFromKey(b), nil
}
