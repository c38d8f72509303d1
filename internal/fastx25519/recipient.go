package fastx25519

import (
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"

	"filippo.io/age"
	"filippo.io/edwards25519"
	"golang.org/x/crypto/chacha20poly1305"
	"golang.org/x/crypto/curve25519"
)

// label is the HKDF info of the X25519 recipient type (C2SP age).
const label = "age-encryption.org/v1/X25519"

// ErrLowOrder is a shared secret of all zeros: the recipient's public key
// is a low-order point. age refuses such a recipient, and so does Wrap.
var ErrLowOrder = errors.New("fastx25519: X25519 shared secret is all zeros (low-order public key)")

// Recipient is an age X25519 recipient; see the package doc. It is safe
// for concurrent use.
type Recipient struct {
	pub [curve25519.PointSize]byte
	// secret is the recipient's clamped secret scalar mod l, when the
	// writer holds it (ForIdentity); nil otherwise.
	secret *edwards25519.Scalar
}

var _ age.Recipient = (*Recipient)(nil)

// Parse returns the recipient of an age public key ("age1...").
func Parse(s string) (*Recipient, error) {
	hrp, pub, err := decodeBech32(s)
	if err != nil {
		return nil, fmt.Errorf("fastx25519: malformed recipient: %w", err)
	}
	if hrp != "age" || len(pub) != curve25519.PointSize {
		return nil, errors.New("fastx25519: not an age X25519 recipient")
	}
	r := &Recipient{}
	copy(r.pub[:], pub)
	return r, nil
}

// FromAge returns the recipient r, as age parsed it.
func FromAge(r *age.X25519Recipient) (*Recipient, error) {
	return Parse(r.String())
}

// ForIdentity returns the recipient of id, knowing id's secret key, so
// that Wrap computes the shared secret from the base point too.
func ForIdentity(id *age.X25519Identity) (*Recipient, error) {
	r, err := FromAge(id.Recipient())
	if err != nil {
		return nil, err
	}
	hrp, sk, err := decodeBech32(id.String())
	if err != nil || hrp != "age-secret-key-" || len(sk) != curve25519.ScalarSize {
		return nil, errors.New("fastx25519: malformed age identity")
	}
	r.secret, err = edwards25519.NewScalar().SetBytesWithClamping(sk)
	clear(sk)
	if err != nil {
		return nil, fmt.Errorf("fastx25519: %w", err)
	}
	return r, nil
}

// Wrap wraps fileKey in one "X25519" stanza for r, with a fresh
// ephemeral key.
func (r *Recipient) Wrap(fileKey []byte) ([]*age.Stanza, error) {
	var e [curve25519.ScalarSize]byte
	if _, err := rand.Read(e[:]); err != nil {
		return nil, err
	}
	share, shared, err := r.exchange(e[:])
	clear(e[:])
	if err != nil {
		return nil, err
	}
	salt := make([]byte, 0, 2*curve25519.PointSize)
	salt = append(append(salt, share...), r.pub[:]...)
	key, err := hkdf.Key(sha256.New, shared, salt, label, chacha20poly1305.KeySize)
	clear(shared)
	if err != nil {
		return nil, err
	}
	aead, err := chacha20poly1305.New(key)
	clear(key)
	if err != nil {
		return nil, err
	}
	body := aead.Seal(nil, make([]byte, chacha20poly1305.NonceSize), fileKey, nil)
	return []*age.Stanza{{Type: "X25519", Args: []string{base64.RawStdEncoding.EncodeToString(share)}, Body: body}}, nil
}

// exchange returns the ephemeral share X25519(e, basepoint) and the
// shared secret X25519(e, r's public key), refusing an all-zero secret.
func (r *Recipient) exchange(e []byte) (share, shared []byte, err error) {
	es, err := edwards25519.NewScalar().SetBytesWithClamping(e)
	if err != nil {
		return nil, nil, err
	}
	share = baseMult(es)
	if r.secret != nil {
		shared = baseMult(edwards25519.NewScalar().Multiply(es, r.secret))
	} else if shared, err = curve25519.X25519(e, r.pub[:]); err != nil {
		return nil, nil, ErrLowOrder
	}
	if subtle.ConstantTimeCompare(shared, make([]byte, len(shared))) == 1 {
		return nil, nil, ErrLowOrder
	}
	return share, shared, nil
}

// baseMult returns the X25519 u-coordinate of [s]B.
func baseMult(s *edwards25519.Scalar) []byte {
	return new(edwards25519.Point).ScalarBaseMult(s).BytesMontgomery()
}
