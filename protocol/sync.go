package protocol

import (
	"errors"
	"fmt"

	"github.com/ipfs/go-cid"
)

// ChainSyncID is the libp2p protocol ID of chain sync: one request and
// one response per stream, each a frame (see WriteFrame) holding a
// canonical DAG-CBOR map.
const ChainSyncID = "/blockmrs/chain/1.0.0"

// Chain sync limits.
const (
	// MaxSyncRequest bounds a request frame's body.
	MaxSyncRequest = 1 << 10
	// MaxSyncBlocks bounds the blocks in one response.
	MaxSyncBlocks = 1024
	// MaxSyncBytes bounds the total bytes of the blocks in one response;
	// a response always carries at least one block when it carries any,
	// so one block may take it up to MaxBlockSize.
	MaxSyncBytes = 4 << 20
	// MaxSyncResponse bounds a response frame's body.
	MaxSyncResponse = MaxSyncBytes + MaxBlockSize + 64<<10
)

// Kinds of chain sync requests.
const (
	// SyncHead asks for the head of Account's chain.
	SyncHead = "head"
	// SyncBlocks asks for the chain blocks from Head back to, and
	// including, the block after sequence number After (to genesis
	// without After).
	SyncBlocks = "blocks"
	// SyncAnnounce tells the peer that Account's chain now ends at Head.
	SyncAnnounce = "announce"
	// SyncProfile asks for Account's first chain block (its profile), for
	// an account the peer hosts.
	SyncProfile = "profile"
)

// Statuses of chain sync responses.
const (
	// SyncOK answers a request that was served.
	SyncOK = "ok"
	// SyncNone answers a request the peer does not serve: it does not
	// hold what was asked for, or the asker may not have it. The two are
	// deliberately the same answer.
	SyncNone = "none"
)

// SyncRequest is a chain sync request.
type SyncRequest struct {
	Kind    string  `cbor:"kind"`
	Account []byte  `cbor:"account,omitempty"` // Ed25519 key, 32 bytes
	Head    *Link   `cbor:"head,omitempty"`
	After   *uint64 `cbor:"after,omitempty"`
}

// SyncResponse is a chain sync response.
type SyncResponse struct {
	Status string `cbor:"status"`
	// Head and Seq answer SyncHead.
	Head *Link  `cbor:"head,omitempty"`
	Seq  uint64 `cbor:"seq,omitempty"`
	// Blocks answer SyncBlocks (head first, following prev links) and
	// SyncProfile (the genesis block alone).
	Blocks [][]byte `cbor:"blocks,omitempty"`
}

// AccountID returns the request's account, or an error if it has none.
func (q *SyncRequest) AccountID() (AccountID, error) {
	return accountIDFromWire(q.Account)
}

// Validate checks that the request is well formed for its kind.
func (q *SyncRequest) Validate() error {
	needAccount, needHead, mayAfter := false, false, false
	switch q.Kind {
	case SyncHead, SyncProfile:
		needAccount = true
	case SyncBlocks:
		needHead, mayAfter = true, true
	case SyncAnnounce:
		needAccount, needHead = true, true
	default:
		return fmt.Errorf("sync request: unknown kind %q", truncate(q.Kind))
	}
	if needAccount {
		if _, err := q.AccountID(); err != nil {
			return fmt.Errorf("sync request %s: %w", q.Kind, err)
		}
	} else if q.Account != nil {
		return fmt.Errorf("sync request %s: unexpected account", q.Kind)
	}
	if needHead {
		if q.Head == nil || !IsChainBlockCID(q.Head.Cid) {
			return fmt.Errorf("sync request %s: head must be a chain block CID", q.Kind)
		}
	} else if q.Head != nil {
		return fmt.Errorf("sync request %s: unexpected head", q.Kind)
	}
	if !mayAfter && q.After != nil {
		return fmt.Errorf("sync request %s: unexpected after", q.Kind)
	}
	return nil
}

// EncodeSyncRequest validates and encodes q.
func EncodeSyncRequest(q *SyncRequest) ([]byte, error) {
	if err := q.Validate(); err != nil {
		return nil, err
	}
	b, err := marshal(q)
	if err != nil {
		return nil, fmt.Errorf("sync request: %w", err)
	}
	if len(b) > MaxSyncRequest {
		return nil, errors.New("sync request: too large")
	}
	return b, nil
}

// DecodeSyncRequest strictly decodes and validates a request frame body.
func DecodeSyncRequest(data []byte) (*SyncRequest, error) {
	if len(data) > MaxSyncRequest {
		return nil, fmt.Errorf("sync request: %d bytes, limit %d", len(data), MaxSyncRequest)
	}
	var q SyncRequest
	if err := unmarshalStrict(data, &q); err != nil {
		return nil, fmt.Errorf("sync request: %w", err)
	}
	if err := q.Validate(); err != nil {
		return nil, err
	}
	return &q, nil
}

// Validate checks a response's shape and limits (not the blocks
// themselves, which the receiver verifies as chain blocks).
func (p *SyncResponse) Validate() error {
	switch p.Status {
	case SyncOK:
	case SyncNone:
		if p.Head != nil || p.Seq != 0 || p.Blocks != nil {
			return errors.New("sync response: \"none\" carries nothing")
		}
	default:
		return fmt.Errorf("sync response: unknown status %q", truncate(p.Status))
	}
	if p.Head != nil && !IsChainBlockCID(p.Head.Cid) {
		return errors.New("sync response: head is not a chain block CID")
	}
	if len(p.Blocks) > MaxSyncBlocks {
		return fmt.Errorf("sync response: %d blocks, limit %d", len(p.Blocks), MaxSyncBlocks)
	}
	total := 0
	for i, b := range p.Blocks {
		if len(b) == 0 || len(b) > MaxBlockSize {
			return fmt.Errorf("sync response: block %d: %d bytes, limit %d", i, len(b), MaxBlockSize)
		}
		total += len(b)
	}
	if len(p.Blocks) > 1 && total > MaxSyncBytes {
		return fmt.Errorf("sync response: %d bytes of blocks, limit %d", total, MaxSyncBytes)
	}
	return nil
}

// EncodeSyncResponse validates and encodes p.
func EncodeSyncResponse(p *SyncResponse) ([]byte, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	b, err := marshal(p)
	if err != nil {
		return nil, fmt.Errorf("sync response: %w", err)
	}
	return b, nil
}

// DecodeSyncResponse strictly decodes and validates a response frame
// body.
func DecodeSyncResponse(data []byte) (*SyncResponse, error) {
	if len(data) > MaxSyncResponse {
		return nil, fmt.Errorf("sync response: %d bytes, limit %d", len(data), MaxSyncResponse)
	}
	var p SyncResponse
	if err := unmarshalStrict(data, &p); err != nil {
		return nil, fmt.Errorf("sync response: %w", err)
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return &p, nil
}

// HeadCID returns the response's head, cid.Undef if none.
func (p *SyncResponse) HeadCID() cid.Cid {
	if p.Head == nil {
		return cid.Undef
	}
	return p.Head.Cid
}
