package fastx25519

import (
	"errors"
	"fmt"
	"strings"
)

// The bech32 encoding (BIP 173) of age keys, decoding only: age writes
// recipients as "age1..." and identities as "AGE-SECRET-KEY-1...", a
// human-readable part, the separator '1', then 5-bit groups of the key's
// bytes followed by a six-group checksum. Like age, no length limit.

const bech32Charset = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"

// bech32Gen are the checksum's generator coefficients (BIP 173).
var bech32Gen = [5]uint32{0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3}

func bech32Polymod(values []byte) uint32 {
	chk := uint32(1)
	for _, v := range values {
		top := chk >> 25
		chk = (chk&0x1ffffff)<<5 ^ uint32(v)
		for i, g := range bech32Gen {
			if (top>>uint(i))&1 == 1 {
				chk ^= g
			}
		}
	}
	return chk
}

// hrpExpand returns the checksum's input for the human-readable part
// hrp, with room for n more values.
func hrpExpand(hrp string, n int) []byte {
	values := make([]byte, 0, 2*len(hrp)+1+n)
	for i := 0; i < len(hrp); i++ {
		values = append(values, hrp[i]>>5)
	}
	values = append(values, 0)
	for i := 0; i < len(hrp); i++ {
		values = append(values, hrp[i]&31)
	}
	return values
}

// decodeBech32 returns the human-readable part of s (in lower case) and
// the bytes s encodes, checking the checksum, the case and the padding.
func decodeBech32(s string) (string, []byte, error) {
	if strings.ToLower(s) != s && strings.ToUpper(s) != s {
		return "", nil, errors.New("mixed case")
	}
	s = strings.ToLower(s)
	pos := strings.LastIndexByte(s, '1')
	if pos < 1 || pos+7 > len(s) {
		return "", nil, errors.New("separator '1' at an invalid position")
	}
	hrp := s[:pos]
	for i := 0; i < len(hrp); i++ {
		if hrp[i] < 33 || hrp[i] > 126 {
			return "", nil, fmt.Errorf("invalid character %q", hrp[i])
		}
	}
	values := hrpExpand(hrp, len(s)-pos-1)
	start := len(values)
	for i := pos + 1; i < len(s); i++ {
		v := strings.IndexByte(bech32Charset, s[i])
		if v < 0 {
			return "", nil, fmt.Errorf("invalid character %q", s[i])
		}
		values = append(values, byte(v))
	}
	if bech32Polymod(values) != 1 {
		return "", nil, errors.New("invalid checksum")
	}
	// Regroup the 5-bit groups before the checksum into bytes; what is
	// left over must be fewer than 5 bits, all zero.
	groups := values[start : len(values)-6]
	out := make([]byte, 0, len(groups)*5/8)
	var acc uint32
	var bits uint
	for _, g := range groups {
		acc = acc<<5 | uint32(g)
		bits += 5
		if bits >= 8 {
			bits -= 8
			out = append(out, byte(acc>>bits))
		}
	}
	if bits >= 5 || acc&(1<<bits-1) != 0 {
		return "", nil, errors.New("invalid padding")
	}
	return hrp, out, nil
}
