package fhir

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"
)

// scanner reads the input's JSON structure in a fixed buffer: it walks
// the top-level object and the Bundle's entries token by token and
// captures each resource's bytes exactly as they are, so memory holds
// one resource at a time, never the input. What it captures is checked
// in full (checkJSON) by the validation workers; the scanner itself only
// matches brackets and strings, which is what keeps it fast.
type scanner struct {
	r    io.Reader
	buf  []byte
	pos  int   // next unread byte of buf
	end  int   // end of the bytes read into buf
	base int64 // input offset of buf[0]
	line int   // line (1-based) of buf[pos]
	rerr error // the reader's error, io.EOF at the end

	// While recording, every consumed byte is also appended to rec, up
	// to recMax bytes; past that recOver is set and rec dropped.
	recOn   bool
	recOver bool
	rec     []byte
	recMax  int
}

// errTruncated is the scanner's "input ended" inside a structure.
var errTruncated = errors.New("the input ends here (truncated)")

func newScanner(r io.Reader) *scanner {
	return &scanner{r: r, buf: make([]byte, 64<<10), line: 1}
}

func (s *scanner) offset() int64 { return s.base + int64(s.pos) }

// more makes at least one unread byte available; false at the end of the
// input or on a read error (s.rerr).
func (s *scanner) more() bool {
	if s.pos < s.end {
		return true
	}
	if s.rerr != nil {
		return false
	}
	s.base += int64(s.end)
	s.pos, s.end = 0, 0
	for empty := 0; s.end == 0 && s.rerr == nil; empty++ {
		if empty == 100 {
			s.rerr = io.ErrNoProgress
			break
		}
		n, err := s.r.Read(s.buf)
		s.end = n
		if err != nil {
			s.rerr = err
		}
	}
	return s.end > 0
}

// readErr is the error for input that ended where more was needed.
func (s *scanner) readErr() error {
	if s.rerr == nil || s.rerr == io.EOF {
		return errTruncated
	}
	return fmt.Errorf("reading the input: %w", s.rerr)
}

// peek returns the next byte without consuming it.
func (s *scanner) peek() (byte, bool) {
	if !s.more() {
		return 0, false
	}
	return s.buf[s.pos], true
}

// consume moves past n available bytes.
func (s *scanner) consume(n int) {
	chunk := s.buf[s.pos : s.pos+n]
	s.line += bytes.Count(chunk, []byte{'\n'})
	if s.recOn && !s.recOver {
		if len(s.rec)+n > s.recMax {
			s.recOver, s.rec = true, nil
		} else {
			s.rec = append(s.rec, chunk...)
		}
	}
	s.pos += n
}

// record starts recording consumed bytes, at most max of them.
func (s *scanner) record(max int) {
	s.recOn, s.recOver, s.rec, s.recMax = true, false, make([]byte, 0, 4096), max
}

// stopRecording ends recording and drops what was recorded.
func (s *scanner) stopRecording() { s.recOn, s.rec = false, nil }

// skipBOM consumes a UTF-8 byte-order mark at the start.
func (s *scanner) skipBOM() {
	for s.end-s.pos < 3 && s.rerr == nil {
		// Read until three bytes are there (or the input ends).
		if s.pos > 0 || s.end == len(s.buf) {
			break
		}
		n, err := s.r.Read(s.buf[s.end:])
		s.end += n
		if err != nil {
			s.rerr = err
		}
	}
	if bytes.HasPrefix(s.buf[s.pos:s.end], []byte{0xEF, 0xBB, 0xBF}) {
		s.pos += 3
	}
}

// space consumes white space.
func (s *scanner) space() {
	for s.more() {
		i := s.pos
		for i < s.end {
			switch s.buf[i] {
			case ' ', '\t', '\r', '\n':
				i++
				continue
			}
			break
		}
		n := i - s.pos
		s.consume(n)
		if s.pos < s.end {
			return
		}
	}
}

// expect consumes white space then byte b.
func (s *scanner) expect(b byte) error {
	s.space()
	c, ok := s.peek()
	if !ok {
		return s.readErr()
	}
	if c != b {
		return fmt.Errorf("unexpected %s at byte %d (want %q)", describeByte(c), s.offset(), b)
	}
	s.consume(1)
	return nil
}

// capture appends the bytes of the next JSON value (after white space)
// to dst exactly as they are in the input; an object or array is
// followed to its matching bracket, a string to its closing quote, a
// number or literal to the next delimiter. It fails past limit bytes or
// maxDepth levels, and on input that ends first.
func (s *scanner) capture(dst []byte, limit, maxDepth int) ([]byte, error) {
	s.space()
	first, ok := s.peek()
	if !ok {
		return dst, s.readErr()
	}
	start := len(dst)
	depth, inStr, esc := 0, false, false
	bare := first != '{' && first != '[' && first != '"'
	for {
		if !s.more() {
			if bare && s.rerr == io.EOF && len(dst) > start {
				return dst, nil // a number or literal at the very end
			}
			return dst, s.readErr()
		}
		chunk := s.buf[s.pos:s.end]
		i, done := 0, false
	scan:
		for ; i < len(chunk); i++ {
			b := chunk[i]
			if bare {
				switch b {
				case ',', '}', ']', ' ', '\t', '\r', '\n', '{', '[', '"', ':':
					done = true
					break scan
				}
				continue
			}
			if inStr {
				switch {
				case esc:
					esc = false
				case b == '\\':
					esc = true
				case b == '"':
					inStr = false
					if depth == 0 {
						i++
						done = true
						break scan
					}
				}
				continue
			}
			switch b {
			case '"':
				inStr = true
			case '{', '[':
				depth++
				if depth > maxDepth {
					return dst, fmt.Errorf("nested deeper than %d levels", maxDepth)
				}
			case '}', ']':
				depth--
				if depth <= 0 {
					i++
					done = true
					break scan
				}
			}
		}
		if len(dst)-start+i > limit {
			if limit >= 1<<20 {
				return dst, fmt.Errorf("larger than %d MiB", limit>>20)
			}
			return dst, fmt.Errorf("longer than %d bytes", limit)
		}
		dst = append(dst, chunk[:i]...)
		s.consume(i)
		if done {
			if len(dst) == start {
				return dst, fmt.Errorf("unexpected %s at byte %d where a value should be", describeByte(first), s.offset())
			}
			return dst, nil
		}
	}
}

// str reads the next value as a JSON string of at most limit bytes.
func (s *scanner) str(limit int) (string, error) {
	s.space()
	c, ok := s.peek()
	if !ok {
		return "", s.readErr()
	}
	if c != '"' {
		return "", fmt.Errorf("unexpected %s at byte %d (want a string)", describeByte(c), s.offset())
	}
	raw, err := s.capture(nil, limit, 1)
	if err != nil {
		return "", err
	}
	if !utf8.Valid(raw) {
		return "", errors.New("a string that is not valid UTF-8")
	}
	var v string
	if err := json.Unmarshal(raw, &v); err != nil {
		return "", errors.New("a malformed string")
	}
	return v, nil
}

// skip reads past the next value, checking that it is well-formed JSON.
func (s *scanner) skip(scratch []byte, maxDepth int) ([]byte, error) {
	v, err := s.capture(scratch[:0], MaxResourceSize, maxDepth)
	if err != nil {
		return v, err
	}
	if err := checkValue(v, maxDepth); err != nil {
		return v, err
	}
	return v, nil
}

// maxMembers bounds the members of an object the scanner walks (a
// Bundle, an entry, the top level of a single resource), so that the
// keys it remembers stay few whatever the input.
const maxMembers = 1024

// objectKeys reads the members of an object whose '{' was consumed,
// calling member for each key with the scanner at its value; member
// must consume the value. Duplicate keys are refused.
func (s *scanner) objectKeys(member func(key string) error) error {
	s.space()
	if c, ok := s.peek(); ok && c == '}' {
		s.consume(1)
		return nil
	}
	seen := map[string]bool{}
	for {
		key, err := s.str(1024)
		if err != nil {
			return err
		}
		if seen[key] {
			return fmt.Errorf("duplicate key %q", clip(key))
		}
		if len(seen) == maxMembers {
			return fmt.Errorf("more than %d members in one object", maxMembers)
		}
		seen[key] = true
		if err := s.expect(':'); err != nil {
			return err
		}
		if err := member(key); err != nil {
			return err
		}
		s.space()
		c, ok := s.peek()
		if !ok {
			return s.readErr()
		}
		s.consume(1)
		switch c {
		case ',':
		case '}':
			return nil
		default:
			return fmt.Errorf("unexpected %s at byte %d (want ',' or '}')", describeByte(c), s.offset()-1)
		}
	}
}
