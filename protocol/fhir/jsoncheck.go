package fhir

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// jsonProblem is what checkJSON found wrong: where (a FHIR-style path
// such as "code.coding[0]", "" for the value itself), what, and at which
// byte of the value.
type jsonProblem struct {
	Path    string
	Problem string
	Offset  int
}

func (p *jsonProblem) Error() string {
	if p.Path == "" {
		return p.Problem
	}
	return p.Path + ": " + p.Problem
}

// pathSeg is one step of a path: a key, or an index when key is "".
type pathSeg struct {
	key   string
	index int
}

// checker is a strict JSON scanner over one value in memory: the grammar
// of RFC 8259, valid UTF-8, no duplicate keys in any object (which the
// FHIR library's map decoding would silently collapse), nesting at most
// maxDepth. It allocates only for keys and for the path of an error. It
// also notes the top-level "resourceType" and "id" strings, so an error
// can say which resource it is in.
type checker struct {
	data     []byte
	i        int
	depth    int
	maxDepth int
	path     []pathSeg
	rt, id   string
	// members, when not nil, collects the top-level object's members.
	members map[string]json.RawMessage
}

// checkJSON checks that data is exactly one JSON object (surrounding
// white space allowed) and returns its resourceType and id strings.
func checkJSON(data []byte, maxDepth int) (rt, id string, err error) {
	return check(data, maxDepth, true)
}

// checkMembers is checkJSON that also returns the object's members, each
// value's bytes a slice of data.
func checkMembers(data []byte, maxDepth int) (members map[string]json.RawMessage, rt, id string, err error) {
	c := &checker{data: data, maxDepth: maxDepth, members: make(map[string]json.RawMessage, 16)}
	rt, id, err = c.run(true)
	return c.members, rt, id, err
}

// checkValue checks that data is exactly one JSON value of any kind.
func checkValue(data []byte, maxDepth int) error {
	_, _, err := check(data, maxDepth, false)
	return err
}

func check(data []byte, maxDepth int, object bool) (rt, id string, err error) {
	c := &checker{data: data, maxDepth: maxDepth}
	return c.run(object)
}

func (c *checker) run(object bool) (rt, id string, err error) {
	data := c.data
	c.space()
	if object && c.i < len(data) && data[c.i] != '{' {
		return "", "", c.fail("not a JSON object")
	}
	if err := c.value(); err != nil {
		return c.rt, c.id, err
	}
	c.space()
	if c.i != len(data) {
		return c.rt, c.id, c.fail(fmt.Sprintf("unexpected %s after the end of the object", describeByte(data[c.i])))
	}
	return c.rt, c.id, nil
}

func (c *checker) fail(problem string) error {
	var b strings.Builder
	for _, s := range c.path {
		if s.key == "" {
			fmt.Fprintf(&b, "[%d]", s.index)
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(clip(s.key))
	}
	return &jsonProblem{Path: b.String(), Problem: problem, Offset: c.i}
}

func (c *checker) space() {
	for c.i < len(c.data) {
		switch c.data[c.i] {
		case ' ', '\t', '\n', '\r':
			c.i++
		default:
			return
		}
	}
}

func (c *checker) value() error {
	if c.i >= len(c.data) {
		return c.fail("the JSON ends here (truncated)")
	}
	switch b := c.data[c.i]; {
	case b == '{':
		return c.object()
	case b == '[':
		return c.array()
	case b == '"':
		_, err := c.str()
		return err
	case b == '-' || (b >= '0' && b <= '9'):
		return c.number()
	case b == 't':
		return c.literal("true")
	case b == 'f':
		return c.literal("false")
	case b == 'n':
		return c.literal("null")
	default:
		return c.fail(fmt.Sprintf("unexpected %s where a value should be", describeByte(b)))
	}
}

func (c *checker) enter() error {
	c.depth++
	if c.depth > c.maxDepth {
		return c.fail(fmt.Sprintf("nested deeper than %d levels", c.maxDepth))
	}
	return nil
}

func (c *checker) object() error {
	if err := c.enter(); err != nil {
		return err
	}
	c.i++ // '{'
	var keys []string
	var seen map[string]bool
	c.space()
	if c.i < len(c.data) && c.data[c.i] == '}' {
		c.i++
		c.depth--
		return nil
	}
	for {
		c.space()
		if c.i >= len(c.data) {
			return c.fail("the JSON ends inside an object (truncated)")
		}
		if c.data[c.i] != '"' {
			return c.fail(fmt.Sprintf("unexpected %s where a key should be", describeByte(c.data[c.i])))
		}
		key, err := c.str()
		if err != nil {
			return err
		}
		// Small objects compare keys in a slice; large ones in a map.
		dup := false
		if seen != nil {
			dup = seen[key]
			seen[key] = true
		} else {
			for _, k := range keys {
				if k == key {
					dup = true
					break
				}
			}
			keys = append(keys, key)
			if len(keys) > 16 {
				seen = make(map[string]bool, 32)
				for _, k := range keys {
					seen[k] = true
				}
			}
		}
		if dup {
			return c.fail(fmt.Sprintf("duplicate key %q", clip(key)))
		}
		c.space()
		if c.i >= len(c.data) || c.data[c.i] != ':' {
			if c.i >= len(c.data) {
				return c.fail("the JSON ends inside an object (truncated)")
			}
			return c.fail(fmt.Sprintf("unexpected %s after key %q (want ':')", describeByte(c.data[c.i]), clip(key)))
		}
		c.i++
		c.space()
		c.path = append(c.path, pathSeg{key: key})
		start := c.i
		if err := c.value(); err != nil {
			return err
		}
		c.path = c.path[:len(c.path)-1]
		if c.depth == 1 && c.members != nil {
			c.members[key] = c.data[start:c.i]
		}
		if c.depth == 1 && c.data[start] == '"' && (key == "resourceType" || key == "id") {
			var s string
			if json.Unmarshal(c.data[start:c.i], &s) == nil {
				if key == "resourceType" {
					c.rt = s
				} else {
					c.id = s
				}
			}
		}
		c.space()
		if c.i >= len(c.data) {
			return c.fail("the JSON ends inside an object (truncated)")
		}
		switch c.data[c.i] {
		case ',':
			c.i++
		case '}':
			c.i++
			c.depth--
			return nil
		default:
			return c.fail(fmt.Sprintf("unexpected %s after a value (want ',' or '}')", describeByte(c.data[c.i])))
		}
	}
}

func (c *checker) array() error {
	if err := c.enter(); err != nil {
		return err
	}
	c.i++ // '['
	c.space()
	if c.i < len(c.data) && c.data[c.i] == ']' {
		c.i++
		c.depth--
		return nil
	}
	for n := 0; ; n++ {
		c.space()
		c.path = append(c.path, pathSeg{index: n})
		if err := c.value(); err != nil {
			return err
		}
		c.path = c.path[:len(c.path)-1]
		c.space()
		if c.i >= len(c.data) {
			return c.fail("the JSON ends inside an array (truncated)")
		}
		switch c.data[c.i] {
		case ',':
			c.i++
		case ']':
			c.i++
			c.depth--
			return nil
		default:
			return c.fail(fmt.Sprintf("unexpected %s after a value (want ',' or ']')", describeByte(c.data[c.i])))
		}
	}
}

// str reads a string and returns its value (decoded only when it holds
// escapes).
func (c *checker) str() (string, error) {
	start := c.i
	c.i++ // '"'
	escaped := false
	for c.i < len(c.data) {
		b := c.data[c.i]
		switch {
		case b == '"':
			c.i++
			raw := c.data[start+1 : c.i-1]
			if !escaped {
				return string(raw), nil
			}
			var s string
			if err := json.Unmarshal(c.data[start:c.i], &s); err != nil {
				return "", c.fail("a string with a bad escape")
			}
			return s, nil
		case b == '\\':
			escaped = true
			if c.i+1 >= len(c.data) {
				return "", c.fail("the JSON ends inside a string (truncated)")
			}
			switch c.data[c.i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				c.i += 2
			case 'u':
				if c.i+6 > len(c.data) {
					return "", c.fail("the JSON ends inside a string (truncated)")
				}
				if _, err := strconv.ParseUint(string(c.data[c.i+2:c.i+6]), 16, 16); err != nil {
					return "", c.fail(`a string with a bad \u escape`)
				}
				c.i += 6
			default:
				return "", c.fail(fmt.Sprintf("a string with a bad escape \\%c", c.data[c.i+1]))
			}
		case b < 0x20:
			return "", c.fail("a control character inside a string (write it as an escape such as \\n)")
		case b < utf8.RuneSelf:
			c.i++
		default:
			r, n := utf8.DecodeRune(c.data[c.i:])
			if r == utf8.RuneError && n <= 1 {
				return "", c.fail("a string that is not valid UTF-8")
			}
			c.i += n
		}
	}
	return "", c.fail("the JSON ends inside a string (truncated)")
}

func (c *checker) digits() int {
	n := 0
	for c.i < len(c.data) && c.data[c.i] >= '0' && c.data[c.i] <= '9' {
		c.i++
		n++
	}
	return n
}

func (c *checker) number() error {
	if c.data[c.i] == '-' {
		c.i++
	}
	switch {
	case c.i < len(c.data) && c.data[c.i] == '0':
		c.i++
	case c.digits() == 0:
		return c.fail("a malformed number")
	}
	if c.i < len(c.data) && c.data[c.i] == '.' {
		c.i++
		if c.digits() == 0 {
			return c.fail("a malformed number")
		}
	}
	if c.i < len(c.data) && (c.data[c.i] == 'e' || c.data[c.i] == 'E') {
		c.i++
		if c.i < len(c.data) && (c.data[c.i] == '+' || c.data[c.i] == '-') {
			c.i++
		}
		if c.digits() == 0 {
			return c.fail("a malformed number")
		}
	}
	return nil
}

func (c *checker) literal(word string) error {
	if !strings.HasPrefix(string(c.data[c.i:min(len(c.data), c.i+len(word))]), word) {
		return c.fail(fmt.Sprintf("unexpected %s where a value should be", describeByte(c.data[c.i])))
	}
	c.i += len(word)
	return nil
}

// describeByte names a byte for an error message.
func describeByte(b byte) string {
	if b >= 0x20 && b < 0x7f {
		return strconv.QuoteRune(rune(b))
	}
	return fmt.Sprintf("byte 0x%02x", b)
}
