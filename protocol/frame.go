package protocol

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Messages on BlockMRS's own libp2p protocols travel as frames: an
// unsigned varint (minimal encoding) giving the length of the body, then
// the body. Every reader states the largest body it accepts, so a peer
// cannot make it allocate more.

// ErrFrameTooLarge is returned by ReadFrame for a frame over its limit.
var ErrFrameTooLarge = errors.New("frame too large")

// WriteFrame writes body as one frame.
func WriteFrame(w io.Writer, body []byte) error {
	var hdr [binary.MaxVarintLen64]byte
	n := binary.PutUvarint(hdr[:], uint64(len(body)))
	if _, err := w.Write(hdr[:n]); err != nil {
		return fmt.Errorf("write frame: %w", err)
	}
	if _, err := w.Write(body); err != nil {
		return fmt.Errorf("write frame: %w", err)
	}
	return nil
}

// ReadFrame reads one frame of at most max body bytes. A length over max
// is ErrFrameTooLarge (nothing more is read); a non-minimal or overlong
// length, or a stream that ends inside the frame, is an error; a stream
// that ends before the frame starts is io.EOF.
func ReadFrame(r *bufio.Reader, max int) ([]byte, error) {
	n, err := ReadMinimalUvarint(r)
	if errors.Is(err, io.EOF) {
		return nil, io.EOF
	}
	if err != nil {
		return nil, fmt.Errorf("frame length: %w", err)
	}
	if n > uint64(max) {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrFrameTooLarge, n, max)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return nil, fmt.Errorf("read frame: %w", noEOF(err))
	}
	return body, nil
}

// ReadMinimalUvarint reads an unsigned varint that must be in its
// shortest form (as multiformats' unsigned-varint requires). A reader that
// ends before the first byte gives io.EOF; one that ends inside the
// varint, io.ErrUnexpectedEOF.
func ReadMinimalUvarint(r io.ByteReader) (uint64, error) {
	br := &countingByteReader{r: r}
	n, err := binary.ReadUvarint(br)
	if err != nil {
		if br.n > 0 {
			return 0, noEOF(err)
		}
		return 0, err
	}
	if br.n != len(binary.AppendUvarint(nil, n)) {
		return 0, errors.New("varint is not minimally encoded")
	}
	return n, nil
}

// A frame's body is a DAG-CBOR map whose type checks its own fields
// (sizes, kinds, UTF-8). encodeFrame and decodeFrame are the one way
// such a body is written and read, so every frame type is held to its
// limit on both sides.
type checkedFrame interface{ validate() error }

// encodeFrame checks f and encodes it; an encoding over max bytes is
// an error. name is the frame's name in errors ("pair frame").
func encodeFrame(name string, f checkedFrame, max int) ([]byte, error) {
	if err := f.validate(); err != nil {
		return nil, err
	}
	enc, err := marshal(f)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", name, err)
	}
	if len(enc) > max {
		return nil, fmt.Errorf("%s is %d bytes, over the %d-byte limit", name, len(enc), max)
	}
	return enc, nil
}

// decodeFrame decodes data, at most max bytes, strictly into a new T and
// checks it.
func decodeFrame[T any, P interface {
	*T
	checkedFrame
}](name string, data []byte, max int) (*T, error) {
	if len(data) > max {
		return nil, fmt.Errorf("%s: %d bytes, over the %d-byte limit", name, len(data), max)
	}
	var f T
	if err := unmarshalStrict(data, &f); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if err := P(&f).validate(); err != nil {
		return nil, err
	}
	return &f, nil
}

// cutText cuts s to at most n bytes without splitting a UTF-8 sequence:
// how a frame's error text is made to fit before it is sent.
func cutText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "")
}
