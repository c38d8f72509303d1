package protocol

import (
	"crypto/ed25519"
	"errors"
)

// TypeRekey is the entry type by which a subject says that she re-keyed
// a record: she stored its content again under a new record key, as a new
// record of her own, and the old CID is to be served to nobody (see
// PROTOCOL.md §5.10).
const TypeRekey = "rekey"

// Rekey is written by a record's subject on her own chain, in the block
// holding the record entry of the new version. It names the claim it
// re-keys exactly, as an ack does (its record CID, the author of its
// record entry and the block holding that entry), and the new record's
// CID. It gives no access: the new record's readers are those its record
// entry and the subject's grants name. An entry of this type on any
// other chain, or naming another claim, is ignored.
type Rekey struct {
	Record Link   `cbor:"record"` // the old record's CID
	Author []byte `cbor:"author"` // Ed25519 key of the old record entry's author
	Block  Link   `cbor:"block"`  // the chain block holding the old record entry
	New    Link   `cbor:"new"`    // the new record's CID
}

// EntryType implements EntryBody.
func (*Rekey) EntryType() string { return TypeRekey }

// Validate implements EntryBody.
func (r *Rekey) Validate() error {
	if !r.Record.Defined() || !r.Block.Defined() || !r.New.Defined() {
		return errors.New("record, block and new CIDs are required")
	}
	if !IsChainBlockCID(r.Block.Cid) {
		return errors.New("block is not a chain-block CID (CIDv1, dag-cbor, sha2-256)")
	}
	if r.Record.Equals(r.New.Cid) {
		return errors.New("the new record is the old one")
	}
	if len(r.Author) != ed25519.PublicKeySize {
		return errors.New("author is not a 32-byte Ed25519 key")
	}
	return nil
}
