package protocol

// Chain sync messages (PROTOCOL.md §10.2): golden vectors in
// testdata/sync.json (rewrite with go test ./protocol -run TestSyncVectors
// -update), strict decoding, and fuzzers for the frame and message
// decoders.

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/ipfs/go-cid"
)

const syncVectorsPath = "testdata/sync.json"

type syncVector struct {
	Name string `json:"name"`
	// Kind is "request" or "response".
	Kind string `json:"kind"`
	// Encoding is the message (hex), Frame the same message framed.
	Encoding string `json:"encoding"`
	Frame    string `json:"frame,omitempty"`
	// Error, for a negative vector, is a fragment of the error a
	// decoder of this implementation gives.
	Error string `json:"error,omitempty"`
}

type syncVectors struct {
	Comment  string       `json:"comment"`
	Account  string       `json:"account"`
	Head     string       `json:"head"`
	Positive []syncVector `json:"positive"`
	Negative []syncVector `json:"negative"`
}

// syncVectorInputs builds the vectors from fixed inputs: alice's key from
// the main vectors, and the CID of a fixed chain-block-shaped byte string.
func syncVectorInputs(t *testing.T) syncVectors {
	seed := sha256.Sum256([]byte(vecSeedPrefix + "alice"))
	pub := ed25519.NewKeyFromSeed(seed[:]).Public().(ed25519.PublicKey)
	block := []byte{0xa0} // stands in for a chain block's bytes
	head := BlockCID(block)
	after := uint64(41)
	link := NewLink(head)
	enc := func(v any) []byte {
		b, err := marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	framed := func(b []byte) string {
		var buf bytes.Buffer
		if err := WriteFrame(&buf, b); err != nil {
			t.Fatal(err)
		}
		return hex.EncodeToString(buf.Bytes())
	}
	pos := func(name, kind string, v any) syncVector {
		b := enc(v)
		return syncVector{Name: name, Kind: kind, Encoding: hex.EncodeToString(b), Frame: framed(b)}
	}
	neg := func(name, kind string, b []byte, errFrag string) syncVector {
		return syncVector{Name: name, Kind: kind, Encoding: hex.EncodeToString(b), Error: errFrag}
	}
	// {"account": …, "kind": "head"}: keys in bytewise order, where
	// DAG-CBOR wants length-first ("kind" before "account").
	wrongOrder := append([]byte{0xa2, 0x67}, "account"...)
	wrongOrder = append(wrongOrder, 0x58, 0x20)
	wrongOrder = append(wrongOrder, pub...)
	wrongOrder = append(wrongOrder, 0x64)
	wrongOrder = append(wrongOrder, "kind"...)
	wrongOrder = append(wrongOrder, 0x64)
	wrongOrder = append(wrongOrder, "head"...)

	return syncVectors{
		Comment: "Chain sync messages, PROTOCOL.md §10.2. account is alice's key from vectors.json; head is the CID of the byte 0xa0 as a dag-cbor block.",
		Account: hex.EncodeToString(pub),
		Head:    head.String(),
		Positive: []syncVector{
			pos("head request", "request", &SyncRequest{Kind: SyncHead, Account: pub}),
			pos("blocks request from genesis", "request", &SyncRequest{Kind: SyncBlocks, Head: &link}),
			pos("blocks request after seq 41", "request", &SyncRequest{Kind: SyncBlocks, Head: &link, After: &after}),
			pos("announce", "request", &SyncRequest{Kind: SyncAnnounce, Account: pub, Head: &link}),
			pos("profile request", "request", &SyncRequest{Kind: SyncProfile, Account: pub}),
			pos("head response", "response", &SyncResponse{Status: SyncOK, Head: &link, Seq: 42}),
			pos("blocks response", "response", &SyncResponse{Status: SyncOK, Blocks: [][]byte{block}}),
			pos("announce acknowledged", "response", &SyncResponse{Status: SyncOK}),
			pos("none", "response", &SyncResponse{Status: SyncNone}),
		},
		Negative: []syncVector{
			neg("unknown kind", "request", enc(&SyncRequest{Kind: "heads", Account: pub}), "unknown kind"),
			neg("short account key", "request", enc(&SyncRequest{Kind: SyncHead, Account: pub[:31]}), "31 bytes"),
			neg("head request with a head", "request", enc(&SyncRequest{Kind: SyncHead, Account: pub, Head: &link}), "unexpected head"),
			neg("blocks request without a head", "request", enc(&SyncRequest{Kind: SyncBlocks}), "head must be"),
			neg("announce with after", "request", enc(&SyncRequest{Kind: SyncAnnounce, Account: pub, Head: &link, After: &after}), "unexpected after"),
			neg("keys not in canonical order", "request", wrongOrder, "canonical"),
			neg("unknown field", "request", enc(map[string]any{"kind": "head", "account": []byte(pub), "extra": 1}), "unknown field"),
			neg("none carrying blocks", "response", enc(&SyncResponse{Status: SyncNone, Blocks: [][]byte{block}}), "carries nothing"),
			neg("unknown status", "response", enc(&SyncResponse{Status: "maybe"}), "unknown status"),
			neg("empty block", "response", enc(&SyncResponse{Status: SyncOK, Blocks: [][]byte{{}}}), "0 bytes"),
		},
	}
}

func TestSyncVectors(t *testing.T) {
	want := syncVectorInputs(t)
	got, err := json.MarshalIndent(want, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	if *updateVectors {
		if err := os.WriteFile(syncVectorsPath, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	stored, err := os.ReadFile(syncVectorsPath)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(stored, got) {
		t.Fatalf("%s differs from what the code produces; run with -update after an intended change", syncVectorsPath)
	}
	var v syncVectors
	if err := json.Unmarshal(stored, &v); err != nil {
		t.Fatal(err)
	}
	decode := func(kind string, b []byte) error {
		if kind == "request" {
			_, err := DecodeSyncRequest(b)
			return err
		}
		_, err := DecodeSyncResponse(b)
		return err
	}
	for _, p := range v.Positive {
		b, _ := hex.DecodeString(p.Encoding)
		if err := decode(p.Kind, b); err != nil {
			t.Errorf("%s: %v", p.Name, err)
		}
		fr, _ := hex.DecodeString(p.Frame)
		body, err := ReadFrame(bufio.NewReader(bytes.NewReader(fr)), MaxSyncResponse)
		if err != nil || !bytes.Equal(body, b) {
			t.Errorf("%s: frame does not hold the encoding (%v)", p.Name, err)
		}
		if err := checkCanonicalAny(b); err != nil {
			t.Errorf("%s: not canonical DAG-CBOR per go-ipld-prime: %v", p.Name, err)
		}
	}
	for _, n := range v.Negative {
		b, _ := hex.DecodeString(n.Encoding)
		err := decode(n.Kind, b)
		if err == nil {
			t.Errorf("%s: decoded, want an error", n.Name)
		} else if !strings.Contains(err.Error(), n.Error) {
			t.Errorf("%s: error %q does not mention %q", n.Name, err, n.Error)
		}
	}
}

func TestReadFrameRejects(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []byte
		want string
	}{
		{"over the limit", []byte{0x81, 0x01}, "too large"},
		{"non-minimal length", []byte{0x81, 0x00, 1}, "not minimally"},
		{"cut inside the length", []byte{0x81}, "unexpected EOF"},
		{"cut inside the body", []byte{3, 1}, "unexpected EOF"},
		{"ten-byte varint", bytes.Repeat([]byte{0xff}, 10), "frame length"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ReadFrame(bufio.NewReader(bytes.NewReader(tc.in)), 100)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one mentioning %q", err, tc.want)
			}
		})
	}
	if _, err := ReadFrame(bufio.NewReader(bytes.NewReader(nil)), 100); !errors.Is(err, io.EOF) {
		t.Fatalf("empty stream: err = %v, want io.EOF", err)
	}
	if !errors.Is(func() error {
		_, err := ReadFrame(bufio.NewReader(bytes.NewReader([]byte{0x81, 0x01})), 100)
		return err
	}(), ErrFrameTooLarge) {
		t.Fatal("over the limit is not ErrFrameTooLarge")
	}
}

func FuzzSyncRequest(f *testing.F) {
	for _, v := range syncVectorInputs(&testing.T{}).Positive {
		b, _ := hex.DecodeString(v.Encoding)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		q, err := DecodeSyncRequest(data)
		if err != nil {
			return
		}
		again, err := EncodeSyncRequest(q)
		if err != nil || !bytes.Equal(again, data) {
			t.Fatalf("accepted request does not re-encode to itself (%v)", err)
		}
	})
}

func FuzzSyncResponse(f *testing.F) {
	for _, v := range syncVectorInputs(&testing.T{}).Positive {
		b, _ := hex.DecodeString(v.Encoding)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := DecodeSyncResponse(data)
		if err != nil {
			return
		}
		again, err := EncodeSyncResponse(p)
		if err != nil || !bytes.Equal(again, data) {
			t.Fatalf("accepted response does not re-encode to itself (%v)", err)
		}
		if p.Head != nil && p.HeadCID() == cid.Undef {
			t.Fatal("head without a CID")
		}
	})
}

func FuzzReadFrame(f *testing.F) {
	f.Add([]byte{0})
	f.Add([]byte{3, 1, 2, 3})
	f.Add([]byte{0x81, 0x00})
	f.Fuzz(func(t *testing.T, data []byte) {
		body, err := ReadFrame(bufio.NewReader(bytes.NewReader(data)), 1<<10)
		if err != nil {
			return
		}
		var buf bytes.Buffer
		WriteFrame(&buf, body)
		if !bytes.HasPrefix(data, buf.Bytes()) {
			t.Fatal("accepted frame is not the minimal encoding of its body")
		}
	})
}
