package protocol

import (
	"bytes"
	"strings"
	"testing"

	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"
)

func TestRekeyEntry(t *testing.T) {
	sum := func(s string, codec uint64) cid.Cid {
		h, _ := mh.Sum([]byte(s), mh.SHA2_256, -1)
		return cid.NewCidV1(codec, h)
	}
	old, nw, blk := sum("old", cid.Raw), sum("new", cid.Raw), sum("block", DagCBORCodec)
	author := bytes.Repeat([]byte{7}, 32)
	good := Rekey{Record: NewLink(old), Author: author, Block: NewLink(blk), New: NewLink(nw)}
	raw, err := NewEntry(&good).MarshalCBOR()
	if err != nil {
		t.Fatal(err)
	}
	var e Entry
	if err := e.UnmarshalCBOR(raw); err != nil {
		t.Fatal(err)
	}
	got, ok := e.Body.(*Rekey)
	if !ok || e.Type != TypeRekey || !got.Record.Equals(old) || !got.New.Equals(nw) || !got.Block.Equals(blk) || !bytes.Equal(got.Author, author) {
		t.Fatalf("round trip: %+v", e)
	}
	again, err := e.MarshalCBOR()
	if err != nil || !bytes.Equal(again, raw) {
		t.Fatalf("re-encoding differs: %v", err)
	}
	for _, tc := range []struct {
		name string
		edit func(r *Rekey)
		want string
	}{
		{"no new", func(r *Rekey) { r.New = Link{} }, "required"},
		{"block not a chain block", func(r *Rekey) { r.Block = NewLink(old) }, "chain-block CID"},
		{"new is old", func(r *Rekey) { r.New = r.Record }, "the new record is the old one"},
		{"short author", func(r *Rekey) { r.Author = author[:5] }, "32-byte"},
	} {
		bad := good
		tc.edit(&bad)
		if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
}
