package protocol

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Guardians (PROTOCOL.md §5.13). A ward appoints a guardian on her own
// chain (a guardian entry) and removes it (an unguardian entry). The
// guardian acts from its own account, by entries on its own chain that
// name the ward: wardgrant (a grant of the ward's records) and
// wardrevoke (a revocation of them). An act counts as the ward's when
// the guardian's block holding it lies inside an appointment's span of
// the guardian's chain (From ≤ seq < Before, both chosen by the ward's
// node from the guardian's chain as it knew it), the appointment gives
// the right, and the block's time is before the appointment's Until.
// The chain positions do not depend on anybody's clock; Until does (on
// the guardian's, SECURITY.md says what it guarantees).
const (
	TypeGuardian   = "guardian"   // a ward appoints a guardian (GuardianAppoint)
	TypeUnguardian = "unguardian" // a ward removes a guardian (GuardianEnd)
	TypeWardGrant  = "wardgrant"  // a guardian grants a ward's records (WardGrant)
	TypeWardRevoke = "wardrevoke" // a guardian revokes a ward's records (WardRevoke); critical
)

// GuardianRight is one thing a ward lets a guardian do.
type GuardianRight string

// The rights, in their canonical order.
const (
	RightRead    GuardianRight = "read"    // the ward's records are wrapped for the guardian (a standing grant of patient/*.rs)
	RightGrant   GuardianRight = "grant"   // grant the ward's records to others
	RightRevoke  GuardianRight = "revoke"  // revoke the ward's records from others
	RightApprove GuardianRight = "approve" // answer access requests addressed to the ward
)

// GuardianRights lists every right in canonical order.
var GuardianRights = []GuardianRight{RightRead, RightGrant, RightRevoke, RightApprove}

// ParseRights parses a comma-separated list of rights ("read,grant") into
// canonical order. Granting and approving need read: a guardian can only
// give a key it can open.
func ParseRights(s string) ([]GuardianRight, error) {
	var out []GuardianRight
	for _, p := range strings.Split(s, ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		if !slices.Contains(GuardianRights, GuardianRight(p)) {
			return nil, fmt.Errorf("unknown guardian right %q (want read, grant, revoke or approve)", truncate(p))
		}
		if !slices.Contains(out, GuardianRight(p)) {
			out = append(out, GuardianRight(p))
		}
	}
	out = canonicalRights(out)
	return out, checkRights(out)
}

func canonicalRights(rs []GuardianRight) []GuardianRight {
	out := []GuardianRight{}
	for _, r := range GuardianRights {
		if slices.Contains(rs, r) {
			out = append(out, r)
		}
	}
	return out
}

func checkRights(rs []GuardianRight) error {
	if len(rs) == 0 {
		return errors.New("no guardian rights given (want some of read, grant, revoke, approve)")
	}
	if !slices.Equal(rs, canonicalRights(rs)) || len(rs) != len(canonicalRights(rs)) {
		return fmt.Errorf("rights %v are not in canonical order without repeats (read, grant, revoke, approve)", rs)
	}
	if (slices.Contains(rs, RightGrant) || slices.Contains(rs, RightApprove)) && !slices.Contains(rs, RightRead) {
		return errors.New("grant and approve need read: a guardian can only give keys it can open")
	}
	return nil
}

// GuardianAppoint (type "guardian") is written by the ward on her chain:
// account To acts for her with the rights May, in the blocks of its own
// chain from sequence number From on, until Until (Unix milliseconds;
// 0: no end), until an unguardian entry closes the span. The block that
// holds it also holds, when May has read, a standing grant of
// patient/*.rs to To expiring at Until: the read right is that grant.
type GuardianAppoint struct {
	To    []byte          `cbor:"to"`
	May   []GuardianRight `cbor:"may"`
	From  uint64          `cbor:"from"`
	Until int64           `cbor:"until,omitempty"`
}

// EntryType implements EntryBody.
func (*GuardianAppoint) EntryType() string { return TypeGuardian }

// Validate implements EntryBody.
func (g *GuardianAppoint) Validate() error {
	if len(g.To) != ed25519.PublicKeySize {
		return errors.New("guardian is not a 32-byte Ed25519 key")
	}
	if err := checkRights(g.May); err != nil {
		return err
	}
	if g.Until < 0 {
		return errors.New("until is negative")
	}
	return nil
}

// Has tells whether the appointment gives right r.
func (g *GuardianAppoint) Has(r GuardianRight) bool { return slices.Contains(g.May, r) }

// GuardianEnd (type "unguardian") is written by the ward on her chain: it
// closes the span of the latest appointment of From before it, so that
// no act in From's chain blocks of sequence number Before or higher
// counts. The ward's node sets Before to one past the guardian's chain
// head it holds (0 when it holds none): every act it could have seen
// stands, nothing later does, whatever the guardian's clock says.
type GuardianEnd struct {
	From   []byte `cbor:"from"`
	Before uint64 `cbor:"before"`
}

// EntryType implements EntryBody.
func (*GuardianEnd) EntryType() string { return TypeUnguardian }

// Validate implements EntryBody.
func (e *GuardianEnd) Validate() error {
	if len(e.From) != ed25519.PublicKeySize {
		return errors.New("guardian is not a 32-byte Ed25519 key")
	}
	return nil
}

// WardGrant (type "wardgrant") is a guardian's grant of its ward's
// records, on the guardian's chain: as a grant entry by the ward would
// be, with Ward naming whose records they are.
type WardGrant struct {
	Ward    []byte      `cbor:"ward"`
	To      []byte      `cbor:"to"`
	Keys    []RecordKey `cbor:"keys"`
	Expires int64       `cbor:"expires,omitempty"`
}

// EntryType implements EntryBody.
func (*WardGrant) EntryType() string { return TypeWardGrant }

// Validate implements EntryBody.
func (w *WardGrant) Validate() error {
	if len(w.Ward) != ed25519.PublicKeySize {
		return errors.New("ward is not a 32-byte Ed25519 key")
	}
	if string(w.Ward) == string(w.To) {
		return errors.New("a grant to the ward herself")
	}
	g := Grant{To: w.To, Keys: w.Keys, Expires: w.Expires}
	return g.Validate()
}

// WardRevoke (type "wardrevoke") is a guardian's revocation of its ward's
// records from an account, on the guardian's chain. It is written
// critical: a verifier that does not know it must not go on trusting the
// guardian's chain as if the revocation had not happened.
type WardRevoke struct {
	Ward    []byte `cbor:"ward"`
	From    []byte `cbor:"from"`
	Records []Link `cbor:"records"`
}

// EntryType implements EntryBody.
func (*WardRevoke) EntryType() string { return TypeWardRevoke }

// Validate implements EntryBody.
func (w *WardRevoke) Validate() error {
	if len(w.Ward) != ed25519.PublicKeySize {
		return errors.New("ward is not a 32-byte Ed25519 key")
	}
	rv := Revoke{From: w.From, Records: w.Records}
	return rv.Validate()
}

// WardID returns the ward's account ID.
func (w *WardGrant) WardID() AccountID { return AccountIDFromKey(w.Ward) }

// WardID returns the ward's account ID.
func (w *WardRevoke) WardID() AccountID { return AccountIDFromKey(w.Ward) }

// JoinRights writes rights as text, separated by sep ("read,grant").
func JoinRights(rs []GuardianRight, sep string) string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = string(r)
	}
	return strings.Join(out, sep)
}
