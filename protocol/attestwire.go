package protocol

import (
	"errors"
	"fmt"
	"unicode/utf8"
)

// Role proofs and the clinic directory on the wire (PROTOCOL.md §10.4).
// Both are public by design: any peer may ask, and the answers carry only
// what is public (clinic and authority chains, the first blocks of the
// accounts they attest). One request and one response per stream, each a
// frame (WriteFrame) holding a canonical DAG-CBOR map.
const (
	// AttestationsID is the protocol of role proofs: "give me what I
	// need to verify this account's role".
	AttestationsID = "/blockmrs/attestations/1"
	// DirectoryID is the protocol of directory queries: "which clinicians
	// do the clinics on your node attest, matching this text".
	DirectoryID = "/blockmrs/directory/1"
)

// Limits of the two protocols.
const (
	// MaxRoleProofRequest bounds a role-proof request frame's body.
	MaxRoleProofRequest = 2 << 10
	// MaxRoleProofHeldChains bounds the chains a request says it holds.
	MaxRoleProofHeldChains = 16
	// MaxRoleProofBlocks and MaxRoleProofBytes bound the blocks of one
	// response (role proof or directory answer).
	MaxRoleProofBlocks = 8192
	MaxRoleProofBytes  = 8 << 20
	// MaxRoleProofResponse bounds a response frame's body.
	MaxRoleProofResponse = MaxRoleProofBytes + 256<<10
	// MaxDirectoryQuery bounds a directory query's text.
	MaxDirectoryQuery = 200
	// MaxDirectoryResults bounds the entries of one directory answer.
	MaxDirectoryResults = 50
)

// HeldChain says how far the asker holds an account's chain.
type HeldChain struct {
	Account []byte `cbor:"account"`
	Seq     uint64 `cbor:"seq"`
}

// RoleProofRequest asks for the blocks that prove Account's role. Held
// lists chains the asker holds, so only their newer blocks come.
type RoleProofRequest struct {
	Account []byte      `cbor:"account"`
	Held    []HeldChain `cbor:"held,omitempty"`
}

// Validate checks a role-proof request.
func (q *RoleProofRequest) Validate() error {
	if _, err := accountIDFromWire(q.Account); err != nil {
		return fmt.Errorf("role proof request: %w", err)
	}
	if len(q.Held) > MaxRoleProofHeldChains {
		return fmt.Errorf("role proof request: %d held chains, limit %d", len(q.Held), MaxRoleProofHeldChains)
	}
	seen := map[string]bool{}
	for i, h := range q.Held {
		if _, err := accountIDFromWire(h.Account); err != nil {
			return fmt.Errorf("role proof request: held chain %d: %w", i, err)
		}
		if seen[string(h.Account)] {
			return fmt.Errorf("role proof request: held chain %d named twice", i)
		}
		seen[string(h.Account)] = true
	}
	return nil
}

// RoleProofResponse carries the blocks of a role proof: chain blocks, in
// any order, each verified by the receiver. An empty list means the peer
// has nothing to give (it does not know the account, or may not say).
type RoleProofResponse struct {
	Blocks [][]byte `cbor:"blocks"`
}

// Validate checks a response's shape and limits.
func (p *RoleProofResponse) Validate() error { return checkProofBlocks(p.Blocks) }

func checkProofBlocks(blocks [][]byte) error {
	if len(blocks) > MaxRoleProofBlocks {
		return fmt.Errorf("%d blocks, limit %d", len(blocks), MaxRoleProofBlocks)
	}
	total := 0
	for i, b := range blocks {
		if len(b) == 0 || len(b) > MaxBlockSize {
			return fmt.Errorf("block %d: %d bytes, limit %d", i, len(b), MaxBlockSize)
		}
		total += len(b)
	}
	if total > MaxRoleProofBytes {
		return fmt.Errorf("%d bytes of blocks, limit %d", total, MaxRoleProofBytes)
	}
	return nil
}

// DirectoryRequest asks a clinic's node for the clinicians its clinics
// attest (only Clinic's, when set) whose name or department contains
// Query (case-insensitively; every one when empty), at most Limit (at
// most MaxDirectoryResults; 0 means that many).
type DirectoryRequest struct {
	Clinic []byte `cbor:"clinic,omitempty"`
	Query  string `cbor:"query,omitempty"`
	Limit  uint64 `cbor:"limit,omitempty"`
}

// Validate checks a directory request.
func (q *DirectoryRequest) Validate() error {
	if q.Clinic != nil {
		if _, err := accountIDFromWire(q.Clinic); err != nil {
			return fmt.Errorf("directory request: clinic: %w", err)
		}
	}
	if len(q.Query) > MaxDirectoryQuery || !utf8.ValidString(q.Query) || containsControl(q.Query) {
		return fmt.Errorf("directory request: query must be at most %d bytes of UTF-8 without control characters", MaxDirectoryQuery)
	}
	if q.Limit > MaxDirectoryResults {
		return fmt.Errorf("directory request: limit %d, at most %d", q.Limit, MaxDirectoryResults)
	}
	return nil
}

// DirectoryEntry is one attested clinician, as the answering node says.
// The asker believes none of it until the blocks prove it.
type DirectoryEntry struct {
	Clinic     []byte `cbor:"clinic"`
	Account    []byte `cbor:"account"`
	Name       string `cbor:"name"`
	Role       Role   `cbor:"role"`
	Department string `cbor:"department,omitempty"`
	Emergency  bool   `cbor:"emergency,omitempty"`
	Expires    int64  `cbor:"expires,omitempty"`
}

// DirectoryResponse answers a directory query: the entries, and the
// blocks that prove them (the clinics' and authorities' chains, each
// entry's first chain block).
type DirectoryResponse struct {
	Entries []DirectoryEntry `cbor:"entries"`
	Blocks  [][]byte         `cbor:"blocks"`
}

// Validate checks a directory response's shape and limits.
func (p *DirectoryResponse) Validate() error {
	if len(p.Entries) > MaxDirectoryResults {
		return fmt.Errorf("directory response: %d entries, limit %d", len(p.Entries), MaxDirectoryResults)
	}
	for i, e := range p.Entries {
		if _, err := accountIDFromWire(e.Clinic); err != nil {
			return fmt.Errorf("directory response: entry %d: clinic: %w", i, err)
		}
		if _, err := accountIDFromWire(e.Account); err != nil {
			return fmt.Errorf("directory response: entry %d: account: %w", i, err)
		}
		if len(e.Name) == 0 || len(e.Name) > MaxNameLen || !utf8.ValidString(e.Name) {
			return fmt.Errorf("directory response: entry %d: name must be 1 to %d bytes of UTF-8", i, MaxNameLen)
		}
		if err := CheckAttestedRole(e.Role); err != nil {
			return fmt.Errorf("directory response: entry %d: %w", i, err)
		}
		if err := CheckDepartment(e.Department); err != nil {
			return fmt.Errorf("directory response: entry %d: %w", i, err)
		}
		if e.Expires < 0 {
			return fmt.Errorf("directory response: entry %d: expiry is negative", i)
		}
	}
	if err := checkProofBlocks(p.Blocks); err != nil {
		return fmt.Errorf("directory response: %w", err)
	}
	return nil
}

// validator is a message with a Validate method.
type validator interface{ Validate() error }

// EncodeAttestMessage validates and encodes one of the four messages of
// the attestations and directory protocols.
func EncodeAttestMessage(m validator) ([]byte, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return marshal(m)
}

// DecodeAttestMessage strictly decodes and validates one of the four
// messages (m points to it) from at most max bytes.
func DecodeAttestMessage(data []byte, max int, m validator) error {
	if len(data) > max {
		return fmt.Errorf("%d bytes, limit %d", len(data), max)
	}
	if err := unmarshalStrict(data, m); err != nil {
		return err
	}
	return m.Validate()
}

// ErrNoProof is what a client reports when a peer had nothing to give.
var ErrNoProof = errors.New("the peer gave no role proof")
