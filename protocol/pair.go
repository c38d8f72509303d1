package protocol

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Device pairing: a node of an account (the offering node) gives the
// account's keys and chain to a new node (the joining node) over the
// libp2p protocol /blockmrs/pair/1.0.0, after the joining node proves it
// holds the one-time secret the offering node showed (PROTOCOL.md,
// "Device pairing").
//
// The secret is PairSecretLen characters of Crockford's base32
// (PairSecretBits bits of entropy, from crypto/rand). The joining node
// learned the offering node's peer ID from the same pairing code, so the
// Noise handshake already proves to it whom it talks to; the proof binds
// the secret to both peer IDs of that authenticated channel:
//
//	key   = SHA-256(PairKeyContext || secret)
//	proof = HMAC-SHA256(key, PairProofContext || uvarint(len(offerer)) || offerer || uvarint(len(joiner)) || joiner)
//	confirm = the same with PairConfirmContext
//
// where offerer and joiner are the binary peer IDs. The joiner sends the
// proof; the offerer answers with the confirmation (it knew the secret
// too) and the keys. A proof made for one pair of peers is worth nothing
// on another channel, and an eavesdropper sees only Noise ciphertext.

// PairVersion is the version of the pairing frames.
const PairVersion = 1

// Contexts of the pairing key, proof and confirmation.
const (
	PairKeyContext     = "BlockMRS pair key v1\x00"
	PairProofContext   = "BlockMRS pair proof v1\x00"
	PairConfirmContext = "BlockMRS pair confirm v1\x00"
)

// Pairing secrets.
const (
	// PairSecretLen is the length of a secret in characters.
	PairSecretLen = 12
	// PairSecretBits is its entropy: 5 bits a character.
	PairSecretBits = 5 * PairSecretLen
	// PairSecretAlphabet is Crockford's base32 alphabet.
	PairSecretAlphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
)

// Kinds of pairing frames.
const (
	PairFrameJoin  = "join"  // joiner → offerer: Proof, Name
	PairFrameKeys  = "keys"  // offerer → joiner: Confirm, Keys, Head
	PairFrameChain = "chain" // offerer → joiner: Blocks of the chain, Last on the final one
	PairFrameDone  = "done"  // joiner → offerer: the account is stored (or Error says why not)
	PairFrameError = "error" // either way: refused, Error says why

	// A device of an account asks another for the account's rotation
	// files (Account), and gets them (Names and Files, pairwise).
	PairFrameRotations = "rotations"
)

// Limits on pairing frames.
const (
	MaxPairFrameSize = 4 << 20   // bytes of one encoded frame
	MaxPairChain     = 256 << 20 // bytes of chain blocks one pairing carries
	MaxPairKeys      = 64 << 10  // bytes of the keys
	maxPairError     = 256
	pairProofSize    = sha256.Size
)

// PairFrame is one message of the pairing protocol, a canonical DAG-CBOR
// map sent as uvarint(length) || map.
type PairFrame struct {
	Version int64    `cbor:"v"`
	Kind    string   `cbor:"kind"`
	Proof   []byte   `cbor:"proof,omitempty"`
	Confirm []byte   `cbor:"confirm,omitempty"`
	Name    string   `cbor:"name,omitempty"`
	Keys    []byte   `cbor:"keys,omitempty"`
	Head    *Link    `cbor:"head,omitempty"`
	Blocks  [][]byte `cbor:"blocks,omitempty"`
	Last    bool     `cbor:"last,omitempty"`
	Error   string   `cbor:"error,omitempty"`
	Account string   `cbor:"account,omitempty"`
	Names   []string `cbor:"names,omitempty"`
	Files   [][]byte `cbor:"files,omitempty"`
}

// MaxPairFiles bounds the rotation files one frame carries.
const MaxPairFiles = 64

func (f *PairFrame) validate() error {
	if f.Version != PairVersion {
		return fmt.Errorf("pair frame: unsupported version %d", f.Version)
	}
	switch f.Kind {
	case PairFrameJoin:
		if len(f.Proof) != pairProofSize {
			return errors.New("pair frame: join without a proof")
		}
	case PairFrameKeys:
		if len(f.Confirm) != pairProofSize || len(f.Keys) == 0 || f.Head == nil || !f.Head.Defined() {
			return errors.New("pair frame: keys without confirmation, keys or head")
		}
	case PairFrameChain:
		if len(f.Blocks) == 0 {
			return errors.New("pair frame: chain without blocks")
		}
	case PairFrameRotations:
		if len(f.Names) != len(f.Files) || len(f.Names) > MaxPairFiles {
			return fmt.Errorf("pair frame: rotations with %d names and %d files (at most %d)", len(f.Names), len(f.Files), MaxPairFiles)
		}
		if _, err := ParseAccountID(f.Account); err != nil {
			return fmt.Errorf("pair frame: rotations: account: %w", err)
		}
		for _, n := range f.Names {
			if len(n) > 128 || !utf8.ValidString(n) {
				return errors.New("pair frame: rotation file name too long")
			}
		}
	case PairFrameDone, PairFrameError:
	default:
		return fmt.Errorf("pair frame: unknown kind %q", truncate(f.Kind))
	}
	if len(f.Name) > MaxNameLen || !utf8.ValidString(f.Name) {
		return fmt.Errorf("pair frame: name over %d bytes or not UTF-8", MaxNameLen)
	}
	if len(f.Keys) > MaxPairKeys {
		return errors.New("pair frame: keys too large")
	}
	if len(f.Error) > maxPairError || !utf8.ValidString(f.Error) {
		return errors.New("pair frame: error text too long or not UTF-8")
	}
	return nil
}

// EncodePairFrame encodes a frame's map (without the length prefix); an
// over-long Error is cut.
func EncodePairFrame(f *PairFrame) ([]byte, error) {
	f.Version = PairVersion
	f.Error = cutText(f.Error, maxPairError)
	return encodeFrame("pair frame", f, MaxPairFrameSize)
}

// DecodePairFrame decodes a frame's map strictly. The blocks and keys it
// carries are decoded separately (DecodeBlock, keyshare.ParseKeys).
func DecodePairFrame(data []byte) (*PairFrame, error) {
	return decodeFrame[PairFrame]("pair frame", data, MaxPairFrameSize)
}

// ParsePairSecret normalizes a pairing secret as people type it:
// case, spaces and dashes do not matter, and O, I and L read as 0, 1, 1
// (Crockford). It must then be PairSecretLen characters of the alphabet.
func ParsePairSecret(s string) (string, error) {
	if len(s) > 4*PairSecretLen {
		return "", fmt.Errorf("pairing secret: over %d characters", 4*PairSecretLen)
	}
	var b strings.Builder
	for _, r := range strings.ToUpper(s) {
		switch {
		case r == '-' || r == ' ':
			continue
		case r == 'O':
			r = '0'
		case r == 'I' || r == 'L':
			r = '1'
		}
		if !strings.ContainsRune(PairSecretAlphabet, r) {
			return "", fmt.Errorf("pairing secret: %q is not one of its characters (0-9 and A-Z but U)", r)
		}
		b.WriteRune(r)
	}
	if b.Len() != PairSecretLen {
		return "", fmt.Errorf("pairing secret: %d characters, want %d", b.Len(), PairSecretLen)
	}
	return b.String(), nil
}

// FormatPairSecret groups a normalized secret in fours for reading out:
// "7KQ2-M9XF-3TRA".
func FormatPairSecret(secret string) string {
	var parts []string
	for i := 0; i < len(secret); i += 4 {
		parts = append(parts, secret[i:min(i+4, len(secret))])
	}
	return strings.Join(parts, "-")
}

// PairSecretFromBytes makes a secret from at least PairSecretBits random
// bits (8 bytes), 5 bits a character.
func PairSecretFromBytes(random []byte) (string, error) {
	if len(random) < (PairSecretBits+7)/8 {
		return "", fmt.Errorf("pairing secret: %d random bytes, want %d", len(random), (PairSecretBits+7)/8)
	}
	v := binary.BigEndian.Uint64(append(make([]byte, 0, 8), random[:8]...))
	out := make([]byte, PairSecretLen)
	for i := range out {
		out[i] = PairSecretAlphabet[v>>(64-5*(i+1))&31]
	}
	return string(out), nil
}

// PairProof is the joiner's proof over the offerer's and the joiner's
// binary peer IDs (see the package's pairing comment).
func PairProof(secret string, offerer, joiner []byte) []byte {
	return pairMAC(PairProofContext, secret, offerer, joiner)
}

// PairConfirm is the offerer's confirmation, over the same peer IDs.
func PairConfirm(secret string, offerer, joiner []byte) []byte {
	return pairMAC(PairConfirmContext, secret, offerer, joiner)
}

func pairMAC(context, secret string, offerer, joiner []byte) []byte {
	key := sha256.Sum256([]byte(PairKeyContext + secret))
	m := hmac.New(sha256.New, key[:])
	m.Write([]byte(context))
	for _, p := range [][]byte{offerer, joiner} {
		m.Write(binary.AppendUvarint(nil, uint64(len(p))))
		m.Write(p)
	}
	return m.Sum(nil)
}
