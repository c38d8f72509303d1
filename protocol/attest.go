package protocol

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"unicode"
	"unicode/utf8"
)

// Attestations (PROTOCOL.md §5.11). An authority attests that an account
// is a clinic (or a subordinate authority), a clinic that an account is a
// clinician there, each by an entry on its own chain. A role is verified
// only when a chain of live attestations reaches an authority the
// verifying user trusts (keyshare's role rules); an attestation gives no
// access to any record by itself.
//
// Neither entry is marked critical: a verifier that does not know them
// verifies no role at all, which is the safe side (it shows every role as
// declared only), and loses no other fact of the chain.
const (
	TypeAttest   = "attest"   // an attester vouches for an account's role
	TypeUnattest = "unattest" // an attester withdraws its attestation of an account
)

// MaxDepartmentLen bounds an attestation's department text.
const MaxDepartmentLen = 200

// Attestation (type "attest") is written by an attester on its own chain:
// account To holds Role there (a clinician of this clinic, in Department;
// a clinic under this authority), until Expires. Emergency says the
// clinician may use emergency access. A later attestation of the same
// account by the same attester replaces it; an AttestEnd withdraws it.
type Attestation struct {
	To         []byte `cbor:"to"`
	Role       Role   `cbor:"role"`
	Department string `cbor:"department,omitempty"`
	Emergency  bool   `cbor:"emergency,omitempty"`
	Expires    int64  `cbor:"expires,omitempty"` // Unix milliseconds; 0 means no expiry
}

// EntryType implements EntryBody.
func (*Attestation) EntryType() string { return TypeAttest }

// Validate implements EntryBody. Only the roles an attester can vouch for
// are allowed: clinician, clinic and authority (a patient or an app is
// never attested).
func (a *Attestation) Validate() error {
	if len(a.To) != ed25519.PublicKeySize {
		return errors.New("attested account is not a 32-byte Ed25519 key")
	}
	if err := CheckAttestedRole(a.Role); err != nil {
		return err
	}
	if err := CheckDepartment(a.Department); err != nil {
		return err
	}
	if a.Emergency && a.Role != RoleClinician {
		return errors.New("only a clinician's attestation may allow emergency access")
	}
	if a.Expires < 0 {
		return errors.New("expiry is negative")
	}
	return nil
}

// CheckAttestedRole checks that r is a role an attestation may give.
func CheckAttestedRole(r Role) error {
	switch r {
	case RoleClinician, RoleClinic, RoleAuthority:
		return nil
	}
	return fmt.Errorf("role %q cannot be attested (want clinician, clinic or authority)", truncate(string(r)))
}

// CheckDepartment checks a department text: at most MaxDepartmentLen
// bytes of UTF-8 without control characters.
func CheckDepartment(d string) error {
	if len(d) > MaxDepartmentLen || !utf8.ValidString(d) || containsControl(d) {
		return fmt.Errorf("department must be at most %d bytes of UTF-8 without control characters", MaxDepartmentLen)
	}
	return nil
}

func containsControl(s string) bool {
	for _, r := range s {
		if unicode.IsControl(r) {
			return true
		}
	}
	return false
}

// AttestEnd (type "unattest") withdraws the attester's attestation of
// account From: from this entry on it counts for nothing, on every node
// that holds the attester's chain this far.
type AttestEnd struct {
	From []byte `cbor:"from"`
}

// EntryType implements EntryBody.
func (*AttestEnd) EntryType() string { return TypeUnattest }

// Validate implements EntryBody.
func (e *AttestEnd) Validate() error {
	if len(e.From) != ed25519.PublicKeySize {
		return errors.New("account is not a 32-byte Ed25519 key")
	}
	return nil
}
