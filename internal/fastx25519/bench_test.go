package fastx25519

import (
	"testing"

	"filippo.io/age"
)

// BenchmarkWrap compares one stanza's cost: age's X25519Recipient (two
// ladders), ours to a public key (one fixed-base multiplication, one
// ladder) and ours knowing the secret (two fixed-base multiplications).
func BenchmarkWrap(b *testing.B) {
	id, pub, known := newIdentity(b)
	fileKey := make([]byte, 16)
	for _, c := range []struct {
		name string
		r    age.Recipient
	}{{"age", id.Recipient()}, {"public", pub}, {"known", known}} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := c.r.Wrap(fileKey); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
