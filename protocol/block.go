package protocol

import (
	"crypto/ed25519"
	"errors"
	"fmt"

	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"
)

// BlockVersion is the chain-block format version of a block signed by
// the account key itself; BlockVersionSuccessor that of a block signed by
// a successor key (succession.go). This package writes and reads both.
const (
	BlockVersion          = 1
	BlockVersionSuccessor = 2
)

// Limits on chain blocks.
const (
	MaxBlockSize       = 1 << 20 // bytes of one encoded chain block
	MaxEntriesPerBlock = 4096
)

// BlockSignatureContext is prepended to the bytes a chain-block signature
// covers, so that nothing signed for another purpose verifies as a block.
const BlockSignatureContext = "BlockMRS chain block v1\x00"

// SuccessorBlockSignatureContext is prepended instead of
// BlockSignatureContext to what a version-2 block's signature covers: a
// block signed by a successor key, not by the key its account ID names.
const SuccessorBlockSignatureContext = "BlockMRS chain block v2 successor\x00"

// Block is one block of an account's append-only chain. On the wire it is
// a canonical DAG-CBOR map; its CID (CIDv1, dag-cbor, sha2-256) is taken
// over the whole encoding, signature included.
type Block struct {
	Version int64   `cbor:"v"`
	Author  []byte  `cbor:"author"`         // Ed25519 public key of the account
	Seq     uint64  `cbor:"seq"`            // 0 for the first block
	Prev    *Link   `cbor:"prev,omitempty"` // previous block; absent iff Seq == 0
	Time    int64   `cbor:"time"`           // Unix milliseconds, never less than Prev's
	Entries []Entry `cbor:"entries"`
	// Signer is the Ed25519 key that signed a version-2 block: the
	// account's signing key after a succession (succession.go). Absent
	// in version 1, where Author signs.
	Signer []byte `cbor:"signer,omitempty"`
	Sig    []byte `cbor:"sig,omitempty"` // Ed25519 over the version's context || encoding without sig
}

// SignerKey returns the key that signs the block: Signer in version 2,
// Author in version 1.
func (b *Block) SignerKey() ed25519.PublicKey {
	if b.Version == BlockVersionSuccessor {
		return b.Signer
	}
	return b.Author
}

// AuthorID returns the account ID of the block's author.
func (b *Block) AuthorID() AccountID { return AccountIDFromKey(b.Author) }

// SigningBytes returns what the block's signature covers.
func (b *Block) SigningBytes() ([]byte, error) {
	unsigned := *b
	unsigned.Sig = nil
	enc, err := marshal(&unsigned)
	if err != nil {
		return nil, fmt.Errorf("encode chain block: %w", err)
	}
	context := BlockSignatureContext
	if b.Version == BlockVersionSuccessor {
		context = SuccessorBlockSignatureContext
	}
	return append([]byte(context), enc...), nil
}

// Sign fills in Author and Sig with priv and returns the encoded block and
// its CID. The block must pass ValidateStatic once signed.
func (b *Block) Sign(priv ed25519.PrivateKey) ([]byte, cid.Cid, error) {
	return b.SignAs(priv.Public().(ed25519.PublicKey), priv)
}

// SignAs signs the block with priv on the chain of the account whose key
// is author: a version-1 block when priv is author's own key, else a
// version-2 block naming priv's public key as Signer. Whether that
// signer may sign the chain at this point is the chain's question
// (succession.go), not the block's.
func (b *Block) SignAs(author ed25519.PublicKey, priv ed25519.PrivateKey) ([]byte, cid.Cid, error) {
	pub := priv.Public().(ed25519.PublicKey)
	b.Version, b.Signer = BlockVersion, nil
	if !pub.Equal(author) {
		b.Version, b.Signer = BlockVersionSuccessor, append([]byte(nil), pub...)
	}
	b.Author = append([]byte(nil), author...)
	b.Sig = nil
	if err := b.validateShape(); err != nil {
		return nil, cid.Undef, err
	}
	msg, err := b.SigningBytes()
	if err != nil {
		return nil, cid.Undef, err
	}
	b.Sig = ed25519.Sign(priv, msg)
	enc, err := marshal(b)
	if err != nil {
		return nil, cid.Undef, fmt.Errorf("encode chain block: %w", err)
	}
	if len(enc) > MaxBlockSize {
		return nil, cid.Undef, fmt.Errorf("chain block is %d bytes, over the %d-byte limit", len(enc), MaxBlockSize)
	}
	// Refill RawBody so the in-memory block matches a decoded one.
	var back Block
	if err := unmarshalStrict(enc, &back); err != nil {
		return nil, cid.Undef, fmt.Errorf("chain block does not round-trip: %w", err)
	}
	*b = back
	return enc, BlockCID(enc), nil
}

// DecodeBlock decodes and statically validates an encoded chain block: the
// encoding must be canonical, the shape valid and the signature correct.
// It does not check the block against its chain (see CheckSuccessor).
func DecodeBlock(data []byte) (*Block, error) {
	if len(data) > MaxBlockSize {
		return nil, fmt.Errorf("chain block: %d bytes, over the %d-byte limit", len(data), MaxBlockSize)
	}
	var b Block
	if err := unmarshalStrict(data, &b); err != nil {
		return nil, fmt.Errorf("chain block: %w", err)
	}
	if err := b.validateShape(); err != nil {
		return nil, err
	}
	if len(b.Sig) != ed25519.SignatureSize {
		return nil, errors.New("chain block: signature missing or wrong size")
	}
	msg, err := b.SigningBytes()
	if err != nil {
		return nil, err
	}
	if !ed25519.Verify(b.SignerKey(), msg, b.Sig) {
		return nil, fmt.Errorf("chain block %d of %s: bad signature", b.Seq, b.AuthorID())
	}
	return &b, nil
}

func (b *Block) validateShape() error {
	if b.Version != BlockVersion && b.Version != BlockVersionSuccessor {
		return fmt.Errorf("chain block: unsupported version %d", b.Version)
	}
	if len(b.Author) != ed25519.PublicKeySize {
		return errors.New("chain block: author is not a 32-byte Ed25519 key")
	}
	if err := b.validateSigner(); err != nil {
		return err
	}
	if (b.Seq == 0) != (b.Prev == nil) {
		return fmt.Errorf("chain block %d: prev link must be present exactly when seq > 0", b.Seq)
	}
	if b.Prev != nil && !IsChainBlockCID(b.Prev.Cid) {
		return fmt.Errorf("chain block %d: prev is not a chain-block CID (CIDv1, dag-cbor, sha2-256)", b.Seq)
	}
	if b.Time < 0 {
		return fmt.Errorf("chain block %d: negative time", b.Seq)
	}
	if len(b.Entries) == 0 || len(b.Entries) > MaxEntriesPerBlock {
		return fmt.Errorf("chain block %d: must hold 1 to %d entries", b.Seq, MaxEntriesPerBlock)
	}
	for i := range b.Entries {
		if b.Entries[i].Body != nil {
			if err := b.Entries[i].Body.Validate(); err != nil {
				return fmt.Errorf("chain block %d entry %d (%s): %w", b.Seq, i, b.Entries[i].Type, err)
			}
		}
	}
	if b.Seq == 0 {
		if _, ok := b.Entries[0].Body.(*Profile); !ok {
			return errors.New("chain block 0: first entry must be a profile")
		}
	}
	for i := range b.Entries {
		if r, ok := b.Entries[i].Body.(*Record); ok {
			if !r.hasKeyFor(b.Author) || !r.hasKeyFor(r.Subject) {
				return fmt.Errorf("chain block %d entry %d (record): must wrap the key for the author and the subject", b.Seq, i)
			}
		}
	}
	return nil
}

// IsChainBlockCID reports whether c has the form of a chain block's CID:
// CIDv1, dag-cbor, sha2-256.
func IsChainBlockCID(c cid.Cid) bool {
	if !c.Defined() {
		return false
	}
	p := c.Prefix()
	return p.Version == 1 && p.Codec == DagCBORCodec && p.MhType == mh.SHA2_256
}

// CheckSuccessor checks that next may follow prev (whose CID is prevCID) in
// one account's chain: same author, next sequence number, link to prev and
// time not going backwards.
func CheckSuccessor(prev *Block, prevCID cid.Cid, next *Block) error {
	if string(prev.Author) != string(next.Author) {
		return fmt.Errorf("chain block %d: author differs from block %d", next.Seq, prev.Seq)
	}
	if next.Seq != prev.Seq+1 {
		return fmt.Errorf("chain block %d: sequence gap after block %d", next.Seq, prev.Seq)
	}
	if next.Prev == nil || !next.Prev.Equals(prevCID) {
		return fmt.Errorf("chain block %d: prev link does not point to block %d (%s)", next.Seq, prev.Seq, prevCID)
	}
	if next.Time < prev.Time {
		return fmt.Errorf("chain block %d: time goes backwards", next.Seq)
	}
	return nil
}

// FirstCriticalUnknown returns the index of the first entry of a type this
// implementation does not know that is marked critical, or -1.
func (b *Block) FirstCriticalUnknown() int {
	for i, e := range b.Entries {
		if e.Body == nil && e.Critical {
			return i
		}
	}
	return -1
}
