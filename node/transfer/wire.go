// Package transfer sends a whole record DAG to an entitled peer in one
// libp2p stream (protocol /blockmrs/dag/1.0.0), instead of block by block
// over bitswap. The server decides the request exactly as bitswap's want
// filter would decide a want for the root (keyshare.Repo.MayServe) and
// sends only blocks reachable from that root, depth-first; the client
// accepts the root first and then only blocks linked from blocks it
// already accepted, each checked against its CID. Whatever the stream does
// not deliver, the caller fetches over bitswap (node/exchange does).
//
// Wire format (PROTOCOL.md §10): every message is an unsigned varint
// length (minimal encoding) followed by that many bytes.
//
//	request  = uvarint(len(cid)) cid          ; 1 ≤ len ≤ MaxCIDSize
//	response = *frame end
//	frame    = uvarint(len(cid)+len(data)) cid data
//	end      = 0x00
//
// cid is a binary CID (self-delimiting), data the block's bytes, at most
// MaxBlockSize. A refusal and a root the server does not hold get the same
// answer: end alone.
package transfer

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/multiformats/go-varint"
)

// ID is the protocol ID of the DAG stream.
const ID protocol.ID = "/blockmrs/dag/1.0.0"

// Limits of the wire format. A message over a limit is a protocol error:
// the reader resets the stream.
const (
	// MaxCIDSize bounds a binary CID (a CIDv1 with a 64-byte digest is
	// well under it).
	MaxCIDSize = 128
	// MaxBlockSize bounds a block's data: bitswap's limit (records use
	// 1 MiB chunks).
	MaxBlockSize = 2 << 20
	// MaxFrameSize bounds a frame's length field.
	MaxFrameSize = MaxBlockSize + MaxCIDSize
)

// Errors of the wire format.
var (
	ErrTooLarge  = errors.New("transfer: message over its size limit")
	ErrMalformed = errors.New("transfer: malformed message")
)

// AppendRequest appends the request for the DAG rooted at root to dst.
func AppendRequest(dst []byte, root cid.Cid) ([]byte, error) {
	if !root.Defined() {
		return dst, fmt.Errorf("%w: undefined CID", ErrMalformed)
	}
	b := root.Bytes()
	if len(b) > MaxCIDSize {
		return dst, ErrTooLarge
	}
	dst = binary.AppendUvarint(dst, uint64(len(b)))
	return append(dst, b...), nil
}

// ReadRequest reads one request from r, strictly: a minimal length of 1
// to MaxCIDSize bytes holding exactly one valid CID. It reads at most
// MaxCIDSize+2 bytes.
func ReadRequest(r *bufio.Reader) (cid.Cid, error) {
	n, err := readLen(r, MaxCIDSize)
	if err != nil {
		return cid.Undef, err
	}
	if n == 0 {
		return cid.Undef, fmt.Errorf("%w: empty request", ErrMalformed)
	}
	var buf [MaxCIDSize]byte
	if _, err := io.ReadFull(r, buf[:n]); err != nil {
		return cid.Undef, unexpectedEOF(err)
	}
	return decodeCID(buf[:n])
}

// DecodeRequest decodes a request that must fill b exactly.
func DecodeRequest(b []byte) (cid.Cid, error) {
	r := bufio.NewReaderSize(bytes.NewReader(b), 16)
	c, err := ReadRequest(r)
	if err != nil {
		return cid.Undef, err
	}
	if _, err := r.ReadByte(); err != io.EOF {
		return cid.Undef, fmt.Errorf("%w: trailing bytes", ErrMalformed)
	}
	return c, nil
}

// AppendFrame appends the frame carrying block c with data to dst.
func AppendFrame(dst []byte, c cid.Cid, data []byte) ([]byte, error) {
	dst, err := appendFrameHeader(dst, c, len(data))
	if err != nil {
		return dst, err
	}
	return append(dst, data...), nil
}

// appendFrameHeader appends the length and the CID of a frame whose data
// is n bytes.
func appendFrameHeader(dst []byte, c cid.Cid, n int) ([]byte, error) {
	if !c.Defined() {
		return dst, fmt.Errorf("%w: undefined CID", ErrMalformed)
	}
	b := c.Bytes()
	if len(b) > MaxCIDSize || n > MaxBlockSize {
		return dst, ErrTooLarge
	}
	dst = binary.AppendUvarint(dst, uint64(len(b)+n))
	return append(dst, b...), nil
}

// End is the message that ends a response.
var End = []byte{0}

// ReadFrame reads one frame from r. At the end of the response it returns
// end true. The returned data is newly allocated (the length is checked
// against MaxFrameSize before anything is allocated); the CID is not
// checked against the data here.
func ReadFrame(r *bufio.Reader) (c cid.Cid, data []byte, end bool, err error) {
	n, err := readLen(r, MaxFrameSize)
	if err != nil {
		return cid.Undef, nil, false, err
	}
	if n == 0 {
		return cid.Undef, nil, true, nil
	}
	// The CID comes first; read it without allocating the frame, so a
	// frame that is no block costs nothing.
	head, err := r.Peek(min(n, MaxCIDSize))
	if err != nil {
		return cid.Undef, nil, false, unexpectedEOF(err)
	}
	cn, c, err := cid.CidFromBytes(head)
	if err != nil {
		return cid.Undef, nil, false, fmt.Errorf("%w: frame CID: %v", ErrMalformed, err)
	}
	if n-cn > MaxBlockSize {
		return cid.Undef, nil, false, ErrTooLarge
	}
	if _, err := r.Discard(cn); err != nil {
		return cid.Undef, nil, false, unexpectedEOF(err)
	}
	data = make([]byte, n-cn)
	if _, err := io.ReadFull(r, data); err != nil {
		return cid.Undef, nil, false, unexpectedEOF(err)
	}
	return c, data, false, nil
}

// readLen reads a minimal uvarint no larger than limit.
func readLen(r io.ByteReader, limit int) (int, error) {
	n, err := varint.ReadUvarint(r)
	switch {
	case err == io.EOF:
		return 0, io.ErrUnexpectedEOF
	case errors.Is(err, varint.ErrNotMinimal), errors.Is(err, varint.ErrOverflow), errors.Is(err, varint.ErrUnderflow):
		return 0, fmt.Errorf("%w: length: %v", ErrMalformed, err)
	case err != nil:
		return 0, err
	case n > uint64(limit):
		return 0, ErrTooLarge
	}
	return int(n), nil
}

// decodeCID decodes b, which must be exactly one CID.
func decodeCID(b []byte) (cid.Cid, error) {
	n, c, err := cid.CidFromBytes(b)
	if err != nil {
		return cid.Undef, fmt.Errorf("%w: CID: %v", ErrMalformed, err)
	}
	if n != len(b) {
		return cid.Undef, fmt.Errorf("%w: bytes after the CID", ErrMalformed)
	}
	return c, nil
}

func unexpectedEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
