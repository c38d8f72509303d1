package protocol

import "testing"

// BenchmarkDecodeBlock measures strict decoding plus signature
// verification of one small chain block.
func BenchmarkDecodeBlock(b *testing.B) {
	encs, _ := signedChain(b, seedKey("alice"), 2)
	b.SetBytes(int64(len(encs[1])))
	for b.Loop() {
		if _, err := DecodeBlock(encs[1]); err != nil {
			b.Fatal(err)
		}
	}
}
