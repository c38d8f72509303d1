package transfer

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"testing"

	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"
)

var update = flag.Bool("update", false, "rewrite testdata/vectors.json")

// vectors is the layout of testdata/vectors.json (PROTOCOL.md §10).
type vectors struct {
	Comment  string `json:"comment"`
	Root     string `json:"root"`
	Request  string `json:"request_hex"`
	Block    string `json:"block_hex"`
	BlockCID string `json:"block_cid"`
	Frame    string `json:"frame_hex"`
	End      string `json:"end_hex"`
}

func makeVectors(t *testing.T) vectors {
	data := []byte("BlockMRS DAG stream test vector\n")
	c, err := cid.V1Builder{Codec: cid.Raw, MhType: mh.SHA2_256}.Sum(data)
	if err != nil {
		t.Fatal(err)
	}
	req, err := AppendRequest(nil, c)
	if err != nil {
		t.Fatal(err)
	}
	frame, err := AppendFrame(nil, c, data)
	if err != nil {
		t.Fatal(err)
	}
	return vectors{
		Comment:  "request for root; the one-block response is frame then end (PROTOCOL.md §10)",
		Root:     c.String(),
		Request:  hex.EncodeToString(req),
		Block:    hex.EncodeToString(data),
		BlockCID: c.String(),
		Frame:    hex.EncodeToString(frame),
		End:      hex.EncodeToString(End),
	}
}

func TestVectors(t *testing.T) {
	want := makeVectors(t)
	path := filepath.Join("testdata", "vectors.json")
	if *update {
		b, _ := json.MarshalIndent(want, "", "  ")
		if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var got vectors
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Fatalf("stored vectors differ from the encoder's:\n%+v\n%+v", got, want)
	}
	// The stored bytes decode back.
	req, _ := hex.DecodeString(got.Request)
	c, err := DecodeRequest(req)
	if err != nil || c.String() != got.Root {
		t.Fatalf("request decodes to %s, %v", c, err)
	}
	frame, _ := hex.DecodeString(got.Frame + got.End)
	r := bufio.NewReader(bytes.NewReader(frame))
	fc, data, end, err := ReadFrame(r)
	if err != nil || end || fc.String() != got.BlockCID || hex.EncodeToString(data) != got.Block {
		t.Fatalf("frame decodes to %s %x %v %v", fc, data, end, err)
	}
	if _, _, end, err := ReadFrame(r); err != nil || !end {
		t.Fatalf("end: %v %v", end, err)
	}
}

func TestDecodeRequestStrict(t *testing.T) {
	c, _ := cid.V1Builder{Codec: cid.Raw, MhType: mh.SHA2_256}.Sum([]byte("x"))
	good, _ := AppendRequest(nil, c)
	if got, err := DecodeRequest(good); err != nil || got != c {
		t.Fatalf("good request: %v", err)
	}
	for name, b := range map[string][]byte{
		"empty input":    nil,
		"zero length":    {0},
		"too long":       binary.AppendUvarint(nil, MaxCIDSize+1),
		"huge":           binary.AppendUvarint(nil, 1<<62),
		"not minimal":    append([]byte{0x80 | byte(len(c.Bytes())), 0}, c.Bytes()...),
		"short":          good[:len(good)-1],
		"trailing":       append(bytes.Clone(good), 0),
		"inner trailing": append([]byte{byte(len(c.Bytes()) + 1)}, append(c.Bytes(), 0)...),
		"not a CID":      {3, 0xff, 0xff, 0xff},
	} {
		if _, err := DecodeRequest(b); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestReadFrameLimits(t *testing.T) {
	c, _ := cid.V1Builder{Codec: cid.Raw, MhType: mh.SHA2_256}.Sum([]byte("x"))
	over := binary.AppendUvarint(nil, MaxFrameSize+1)
	if _, _, _, err := ReadFrame(bufio.NewReader(bytes.NewReader(over))); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("oversized frame: %v", err)
	}
	// Within the frame limit but the data over the block limit (a short
	// CID): refused before the data is read or allocated.
	f := binary.AppendUvarint(nil, uint64(len(c.Bytes())+MaxBlockSize+1))
	f = append(f, c.Bytes()...)
	f = append(f, make([]byte, MaxCIDSize)...)
	if _, _, _, err := ReadFrame(bufio.NewReader(bytes.NewReader(f))); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("oversized block: %v", err)
	}
	if _, err := AppendFrame(nil, c, make([]byte, MaxBlockSize+1)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("encoder accepted an oversized block: %v", err)
	}
}

func TestReceiveRejects(t *testing.T) {
	root := blocks.NewBlock([]byte("root, links nothing")) // CIDv0: dag-pb would need valid pb
	rc, _ := cid.V1Builder{Codec: cid.Raw, MhType: mh.SHA2_256}.Sum(root.RawData())
	good, _ := AppendFrame(nil, rc, root.RawData())
	other, _ := cid.V1Builder{Codec: cid.Raw, MhType: mh.SHA2_256}.Sum([]byte("other"))
	stray, _ := AppendFrame(nil, other, []byte("other"))
	bad, _ := AppendFrame(nil, rc, []byte("root, links nothinG"))
	run := func(msg []byte) (int, bool, error) {
		n := 0
		var complete bool
		err := receive(bufio.NewReader(bytes.NewReader(msg)), nil, rc, func(blocks.Block) { n++ }, &complete)
		return n, complete, err
	}
	if n, complete, err := run(append(bytes.Clone(good), 0)); err != nil || n != 1 || !complete {
		t.Fatalf("good response: %d %v %v", n, complete, err)
	}
	if n, complete, err := run([]byte{0}); err != nil || n != 0 || complete {
		t.Fatalf("empty response: %d %v %v", n, complete, err)
	}
	for name, msg := range map[string][]byte{
		"bad hash":   append(bad, 0),
		"stray":      append(stray, 0),
		"twice":      append(append(bytes.Clone(good), good...), 0),
		"good+stray": append(append(bytes.Clone(good), stray...), 0),
		"no end":     good,
	} {
		if _, _, err := run(msg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func FuzzDecodeRequest(f *testing.F) {
	c, _ := cid.V1Builder{Codec: cid.Raw, MhType: mh.SHA2_256}.Sum([]byte("x"))
	good, _ := AppendRequest(nil, c)
	f.Add(good)
	f.Add([]byte{0})
	f.Add([]byte{0x80, 0x01})
	f.Add(append(bytes.Clone(good), 1))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := DecodeRequest(b)
		if err != nil {
			return
		}
		// Whatever decodes re-encodes to the same bytes.
		again, err := AppendRequest(nil, c)
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("%x decoded to %s, which encodes to %x (%v)", b, c, again, err)
		}
	})
}

func FuzzReadFrame(f *testing.F) {
	c, _ := cid.V1Builder{Codec: cid.Raw, MhType: mh.SHA2_256}.Sum([]byte("data"))
	good, _ := AppendFrame(nil, c, []byte("data"))
	f.Add(append(bytes.Clone(good), 0))
	f.Add([]byte{0})
	f.Add(binary.AppendUvarint(nil, MaxFrameSize+1))
	f.Add(good[:len(good)-1])
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bufio.NewReader(bytes.NewReader(b))
		for range 64 {
			c, data, end, err := ReadFrame(r)
			if err != nil || end {
				return
			}
			if len(data) > MaxBlockSize || len(c.Bytes()) > MaxCIDSize {
				t.Fatalf("frame over the limits: %d bytes, CID %d bytes", len(data), len(c.Bytes()))
			}
			again, err := AppendFrame(nil, c, data)
			if err != nil || !bytes.Contains(b, again) {
				t.Fatalf("frame %s does not re-encode to its input (%v)", c, err)
			}
		}
	})
}
