package protocol

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/fxamacker/cbor/v2"
	"github.com/ipfs/go-cid"
	"github.com/ipld/go-ipld-prime/codec/dagcbor"
	"github.com/ipld/go-ipld-prime/node/basicnode"
	mh "github.com/multiformats/go-multihash"
)

// cidTag is the CBOR tag DAG-CBOR uses for a CID link.
const cidTag = 42

// DagCBORCodec is the multicodec of chain blocks.
const DagCBORCodec = cid.DagCBOR

var (
	encMode cbor.EncMode
	decMode cbor.DecMode
)

func init() {
	var err error
	encMode, err = cbor.EncOptions{
		Sort:          cbor.SortLengthFirst, // DAG-CBOR map key order
		IndefLength:   cbor.IndefLengthForbidden,
		NilContainers: cbor.NilContainerAsEmpty,
		ShortestFloat: cbor.ShortestFloatNone,
		TagsMd:        cbor.TagsAllowed,
	}.EncMode()
	if err != nil {
		panic(err)
	}
	strict := cbor.DecOptions{
		DupMapKey:         cbor.DupMapKeyEnforcedAPF,
		IndefLength:       cbor.IndefLengthForbidden,
		TagsMd:            cbor.TagsAllowed,
		MaxNestedLevels:   16,
		MaxArrayElements:  MaxEntriesPerBlock,
		MaxMapPairs:       256,
		ExtraReturnErrors: cbor.ExtraDecErrorUnknownField,
		UTF8:              cbor.UTF8RejectInvalid,
		FieldNameMatching: cbor.FieldNameMatchingCaseSensitive,
	}
	decMode, err = strict.DecMode()
	if err != nil {
		panic(err)
	}
}

// ErrNotCanonical is returned when bytes decode but are not the canonical
// DAG-CBOR encoding of what they contain.
var ErrNotCanonical = errors.New("not canonical DAG-CBOR")

// Link is a CID link, encoded in DAG-CBOR as tag 42 over the bytes
// 0x00 || binary CID.
type Link struct{ cid.Cid }

// NewLink wraps c as a Link.
func NewLink(c cid.Cid) Link { return Link{c} }

// MarshalCBOR implements cbor.Marshaler.
func (l Link) MarshalCBOR() ([]byte, error) {
	if !l.Defined() {
		return nil, errors.New("protocol: cannot encode an undefined CID link")
	}
	b := append([]byte{0}, l.Bytes()...)
	return encMode.Marshal(cbor.Tag{Number: cidTag, Content: b})
}

// UnmarshalCBOR implements cbor.Unmarshaler.
func (l *Link) UnmarshalCBOR(data []byte) error {
	var raw cbor.RawTag
	if err := decMode.Unmarshal(data, &raw); err != nil {
		return fmt.Errorf("CID link: %w", err)
	}
	if raw.Number != cidTag {
		return fmt.Errorf("CID link: tag %d, want %d", raw.Number, cidTag)
	}
	var b []byte
	if err := decMode.Unmarshal(raw.Content, &b); err != nil {
		return fmt.Errorf("CID link: %w", err)
	}
	if len(b) < 2 || b[0] != 0 {
		return errors.New("CID link: missing 0x00 multibase prefix")
	}
	n, c, err := cid.CidFromBytes(b[1:])
	if err != nil {
		return fmt.Errorf("CID link: %w", err)
	}
	if n != len(b)-1 {
		return errors.New("CID link: trailing bytes after CID")
	}
	l.Cid = c
	return nil
}

// Links converts CIDs to links.
func Links(cids []cid.Cid) []Link {
	out := make([]Link, len(cids))
	for i, c := range cids {
		out[i] = Link{c}
	}
	return out
}

// marshal encodes v canonically.
func marshal(v any) ([]byte, error) { return encMode.Marshal(v) }

// unmarshalStrict decodes data into v and rejects it unless re-encoding v
// gives back exactly data.
func unmarshalStrict(data []byte, v any) error {
	if err := decMode.Unmarshal(data, v); err != nil {
		return err
	}
	again, err := encMode.Marshal(v)
	if err != nil {
		return err
	}
	if !bytes.Equal(again, data) {
		return ErrNotCanonical
	}
	return nil
}

// checkCanonicalAny checks that data is canonical DAG-CBOR of any shape,
// using go-ipld-prime's strict DAG-CBOR codec as an independent judge:
// it must decode (no simple values other than true/false/null, no tags but
// 42 over a valid CID, no bignums, no undefined) and re-encode to the same
// bytes.
func checkCanonicalAny(data []byte) error {
	nb := basicnode.Prototype.Any.NewBuilder()
	opts := dagcbor.DecodeOptions{AllowLinks: true}
	if err := opts.Decode(nb, bytes.NewReader(data)); err != nil {
		return fmt.Errorf("not DAG-CBOR: %v", err)
	}
	var again bytes.Buffer
	if err := dagcbor.Encode(nb.Build(), &again); err != nil {
		return fmt.Errorf("not DAG-CBOR: %v", err)
	}
	if !bytes.Equal(again.Bytes(), data) {
		return ErrNotCanonical
	}
	return nil
}

// BlockCID returns the CIDv1 (dag-cbor, sha2-256) of encoded chain-block bytes.
func BlockCID(encoded []byte) cid.Cid {
	sum, err := mh.Sum(encoded, mh.SHA2_256, -1)
	if err != nil {
		panic(err) // sha2-256 never fails
	}
	return cid.NewCidV1(DagCBORCodec, sum)
}
