package fastx25519

import (
	"bytes"
	"strings"
	"testing"

	"filippo.io/age"
	"golang.org/x/crypto/curve25519"
)

// encodeBech32 is the test's own BIP 173 encoder, to make age keys from
// raw points.
func encodeBech32(hrp string, data []byte) string {
	var groups []byte
	var acc uint32
	var bits uint
	for _, b := range data {
		acc = acc<<8 | uint32(b)
		bits += 8
		for bits >= 5 {
			bits -= 5
			groups = append(groups, byte(acc>>bits)&31)
		}
	}
	if bits > 0 {
		groups = append(groups, byte(acc<<(5-bits))&31)
	}
	values := append(append(hrpExpand(hrp, len(groups)+6), groups...), 0, 0, 0, 0, 0, 0)
	chk := bech32Polymod(values) ^ 1
	for i := range 6 {
		groups = append(groups, byte(chk>>(5*(5-i)))&31)
	}
	var sb strings.Builder
	sb.WriteString(hrp + "1")
	for _, g := range groups {
		sb.WriteByte(bech32Charset[g])
	}
	return sb.String()
}

// TestDecodeAgeKeys decodes age's own encodings: a secret key and its
// public key, which must be X25519(secret, basepoint) of each other, and
// which age parses back from our test encoder's output.
func TestDecodeAgeKeys(t *testing.T) {
	for range 200 {
		id, err := age.GenerateX25519Identity()
		if err != nil {
			t.Fatal(err)
		}
		hrp, sk, err := decodeBech32(id.String())
		if err != nil || hrp != "age-secret-key-" || len(sk) != 32 {
			t.Fatalf("%s: %q %x %v", id, hrp, sk, err)
		}
		hrp, pk, err := decodeBech32(id.Recipient().String())
		if err != nil || hrp != "age" {
			t.Fatalf("%s: %q %v", id.Recipient(), hrp, err)
		}
		want, err := curve25519.X25519(sk, curve25519.Basepoint)
		if err != nil || !bytes.Equal(pk, want) {
			t.Fatalf("public key %x, want %x", pk, want)
		}
		if s := encodeBech32("age", pk); s != id.Recipient().String() {
			t.Fatalf("encoded %s, age wrote %s", s, id.Recipient())
		}
	}
}

// TestDecodeRefuses checks the malformed encodings Parse refuses.
func TestDecodeRefuses(t *testing.T) {
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	good := id.Recipient().String()
	flip := []byte(good)
	flip[10] = map[bool]byte{true: 'q', false: 'p'}[flip[10] != 'q']
	bad := map[string]string{
		"a changed character": string(flip),
		"mixed case":          "AGE" + good[3:],
		"no separator":        strings.ReplaceAll(good, "1", ""),
		"truncated":           good[:len(good)-1],
		"not in the charset":  good[:10] + "b" + good[11:],
		"another type":        encodeBech32("agx", make([]byte, 32)),
		"31 bytes":            encodeBech32("age", make([]byte, 31)),
		"an identity":         id.String(),
		"empty":               "",
	}
	for name, s := range bad {
		if _, err := Parse(s); err == nil {
			t.Errorf("%s: Parse(%q) succeeded", name, s)
		}
	}
	if _, err := Parse(good); err != nil {
		t.Fatalf("Parse(%s): %v", good, err)
	}
	if _, err := Parse(strings.ToUpper(good)); err != nil {
		t.Fatalf("upper case: %v", err)
	}
}
