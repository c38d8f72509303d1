package store

import (
	"bytes"
	"errors"
	"fmt"

	cid "github.com/ipfs/go-cid"
	"github.com/ipld/go-ipld-prime/codec/dagcbor"
	"github.com/ipld/go-ipld-prime/datamodel"
	cidlink "github.com/ipld/go-ipld-prime/linking/cid"
	"github.com/ipld/go-ipld-prime/node/basicnode"
)

// CAR limits. A UnixFS block is at most 1 MiB and bitswap's limit is 2 MiB,
// so nothing legitimate comes near them; they bound what hostile input can
// make us allocate.
const (
	maxCARHeaderSize = 64 << 10
	maxCARBlockSize  = 2 << 20
	// A section is a CID followed by the block; 1 KiB is ample for a CID.
	maxCARSectionSize = maxCARBlockSize + 1<<10
	// maxCARBlocks bounds the in-memory staging index (about 100 bytes
	// per block).
	maxCARBlocks = 1 << 20
)

// encodeCARHeader returns the dag-cbor CARv1 header {roots, version: 1}.
func encodeCARHeader(roots []cid.Cid) ([]byte, error) {
	nb := basicnode.Prototype.Map.NewBuilder()
	ma, err := nb.BeginMap(2)
	if err != nil {
		return nil, err
	}
	if err := ma.AssembleKey().AssignString("roots"); err != nil {
		return nil, err
	}
	la, err := ma.AssembleValue().BeginList(int64(len(roots)))
	if err != nil {
		return nil, err
	}
	for _, r := range roots {
		if err := la.AssembleValue().AssignLink(cidlink.Link{Cid: r}); err != nil {
			return nil, err
		}
	}
	if err := la.Finish(); err != nil {
		return nil, err
	}
	if err := ma.AssembleKey().AssignString("version"); err != nil {
		return nil, err
	}
	if err := ma.AssembleValue().AssignInt(1); err != nil {
		return nil, err
	}
	if err := ma.Finish(); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := dagcbor.Encode(nb.Build(), &buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// decodeCARHeader parses a CARv1 header strictly: a map of exactly
// "version" (1) and "roots" (a non-empty list of CIDs).
func decodeCARHeader(b []byte) ([]cid.Cid, error) {
	nb := basicnode.Prototype.Any.NewBuilder()
	opts := dagcbor.DecodeOptions{AllowLinks: true, RelaxedDecode: true}
	if err := opts.Decode(nb, bytes.NewReader(b)); err != nil {
		return nil, fmt.Errorf("invalid header: %w", err)
	}
	n := nb.Build()
	if n.Kind() != datamodel.Kind_Map {
		return nil, fmt.Errorf("invalid header: %s, not a map", n.Kind())
	}
	vn, err := n.LookupByString("version")
	if err != nil {
		return nil, errors.New("invalid header: no version")
	}
	v, err := vn.AsInt()
	if err != nil {
		return nil, errors.New("invalid header: version is not an integer")
	}
	if v != 1 {
		return nil, fmt.Errorf("unsupported CAR version %d (want 1)", v)
	}
	if n.Length() != 2 {
		return nil, errors.New("invalid header: want exactly the keys roots and version")
	}
	rn, err := n.LookupByString("roots")
	if err != nil {
		return nil, errors.New("invalid header: no roots")
	}
	if rn.Kind() != datamodel.Kind_List {
		return nil, errors.New("invalid header: roots is not a list")
	}
	if rn.Length() == 0 {
		return nil, errors.New("invalid header: no roots")
	}
	roots := make([]cid.Cid, 0, rn.Length())
	it := rn.ListIterator()
	for !it.Done() {
		_, e, err := it.Next()
		if err != nil {
			return nil, fmt.Errorf("invalid header: %w", err)
		}
		l, err := e.AsLink()
		if err != nil {
			return nil, errors.New("invalid header: a root is not a CID")
		}
		cl, ok := l.(cidlink.Link)
		if !ok || !cl.Cid.Defined() {
			return nil, errors.New("invalid header: a root is not a CID")
		}
		roots = append(roots, cl.Cid)
	}
	return roots, nil
}
