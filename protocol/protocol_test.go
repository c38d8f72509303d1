package protocol

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"strings"
	"testing"

	"filippo.io/age"
	"github.com/fxamacker/cbor/v2"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	mh "github.com/multiformats/go-multihash"
)

// seedKey derives a deterministic Ed25519 key for tests.
func seedKey(name string) ed25519.PrivateKey {
	s := sha256.Sum256([]byte("blockmrs test key " + name))
	return ed25519.NewKeyFromSeed(s[:])
}

func testCID(s string) cid.Cid {
	sum, _ := mh.Sum([]byte(s), mh.SHA2_256, -1)
	return cid.NewCidV1(cid.Raw, sum)
}

const testRecipient = "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p"

func TestAccountIDMatchesLibp2pPeerID(t *testing.T) {
	for _, name := range []string{"alice", "bob", "clinic"} {
		priv := seedKey(name)
		pub := priv.Public().(ed25519.PublicKey)
		lpub, err := crypto.UnmarshalEd25519PublicKey(pub)
		if err != nil {
			t.Fatal(err)
		}
		pid, err := peer.IDFromPublicKey(lpub)
		if err != nil {
			t.Fatal(err)
		}
		id := AccountIDFromKey(pub)
		if string(id) != pid.String() {
			t.Fatalf("account ID %s, libp2p peer ID %s", id, pid)
		}
		back, err := ParseAccountID(string(id))
		if err != nil || !bytes.Equal(back, pub) {
			t.Fatalf("ParseAccountID round trip: %v", err)
		}
	}
	for _, bad := range []string{"", "12D3KooW", "QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N", "not-base58-0OIl", strings.Repeat("1", 200)} {
		if _, err := ParseAccountID(bad); err == nil {
			t.Errorf("ParseAccountID(%q) succeeded", bad)
		}
	}
}

func signedChain(t testing.TB, priv ed25519.PrivateKey, n int) ([][]byte, []cid.Cid) {
	t.Helper()
	var encs [][]byte
	var cids []cid.Cid
	other := seedKey("other").Public().(ed25519.PublicKey)
	for i := 0; i < n; i++ {
		b := &Block{Seq: uint64(i), Time: int64(1700000000000 + i)}
		if i == 0 {
			b.Entries = []Entry{NewEntry(&Profile{Name: "Alice", Role: RolePatient, Recipient: testRecipient})}
		} else {
			l := NewLink(cids[i-1])
			b.Prev = &l
			b.Entries = []Entry{NewEntry(&Hide{Records: []Link{NewLink(testCID("r"))}}),
				NewEntry(&Grant{To: other, Keys: []RecordKey{{Record: NewLink(testCID("r")), Key: []byte("wrapped")}}, Expires: 5})}
		}
		enc, c, err := b.Sign(priv)
		if err != nil {
			t.Fatal(err)
		}
		encs = append(encs, enc)
		cids = append(cids, c)
	}
	return encs, cids
}

func TestBlockRoundTripAndSuccessor(t *testing.T) {
	priv := seedKey("alice")
	encs, cids := signedChain(t, priv, 3)
	var prev *Block
	for i, enc := range encs {
		b, err := DecodeBlock(enc)
		if err != nil {
			t.Fatalf("block %d: %v", i, err)
		}
		if got := BlockCID(enc); !got.Equals(cids[i]) {
			t.Fatalf("CID mismatch")
		}
		again, err := marshal(b)
		if err != nil || !bytes.Equal(again, enc) {
			t.Fatalf("block %d does not re-encode to itself", i)
		}
		if prev != nil {
			if err := CheckSuccessor(prev, cids[i-1], b); err != nil {
				t.Fatal(err)
			}
			if err := CheckSuccessor(prev, cids[0], b); err == nil && i > 1 {
				t.Fatal("wrong prev link accepted")
			}
		}
		prev = b
	}
}

func TestDecodeBlockRejects(t *testing.T) {
	priv := seedKey("alice")
	encs, _ := signedChain(t, priv, 2)
	good := encs[1]

	// Flip each byte: every variant must be rejected (bad signature, bad
	// encoding or bad shape), never accepted and never panic.
	for i := range good {
		bad := bytes.Clone(good)
		bad[i] ^= 0x01
		if _, err := DecodeBlock(bad); err == nil {
			t.Fatalf("flipped byte %d accepted", i)
		}
	}

	// Re-signed by another key: the signature verifies only for the new
	// author, so the block is a different account's block.
	b, _ := DecodeBlock(good)
	enc, _, err := b.Sign(seedKey("mallory"))
	if err != nil {
		t.Fatal(err)
	}
	b2, err := DecodeBlock(enc)
	if err != nil {
		t.Fatal(err)
	}
	if b2.AuthorID() == AccountIDFromKey(priv.Public().(ed25519.PublicKey)) {
		t.Fatal("re-signed block claims the original author")
	}

	// Non-canonical: same content with map keys out of order.
	var m map[string]any
	dm, _ := cbor.DecOptions{DefaultMapType: nil}.DecMode()
	if err := dm.Unmarshal(good, &m); err != nil {
		t.Fatal(err)
	}
	unsorted, _ := cbor.EncOptions{Sort: cbor.SortNone}.EncMode()
	if enc, err := unsorted.Marshal(m); err == nil && !bytes.Equal(enc, good) {
		if _, err := DecodeBlock(enc); err == nil {
			t.Fatal("non-canonical block accepted")
		}
	}

	// Signature over the block without the domain-separation context.
	b, _ = DecodeBlock(good)
	b.Sig = nil
	raw, _ := marshal(b)
	b.Sig = ed25519.Sign(priv, raw)
	forged, _ := marshal(b)
	if _, err := DecodeBlock(forged); err == nil || !strings.Contains(err.Error(), "bad signature") {
		t.Fatalf("signature without context: %v", err)
	}
}

func TestUnknownEntryTypes(t *testing.T) {
	priv := seedKey("alice")
	body, _ := marshal(map[string]any{"x": 1})
	b := &Block{Seq: 0, Entries: []Entry{
		NewEntry(&Profile{Name: "A", Role: RoleApp, Recipient: testRecipient}),
		{Type: "future-thing", RawBody: body},
		{Type: "future-critical", Critical: true, RawBody: body},
	}}
	enc, _, err := b.Sign(priv)
	if err != nil {
		t.Fatal(err)
	}
	d, err := DecodeBlock(enc)
	if err != nil {
		t.Fatal(err)
	}
	if d.Entries[1].Body != nil || d.Entries[1].Type != "future-thing" {
		t.Fatal("unknown entry not kept as unknown")
	}
	if got := d.FirstCriticalUnknown(); got != 2 {
		t.Fatalf("FirstCriticalUnknown = %d, want 2", got)
	}
}

func TestEnvelopeRoundTrip(t *testing.T) {
	a := seedKey("a").Public().(ed25519.PublicKey)
	s := seedKey("s").Public().(ed25519.PublicKey)
	sup := NewLink(testCID("old"))
	e := &Envelope{Title: "Blood test", Kind: KindFHIR, MediaType: "application/fhir+json", Author: a, Subject: s, Created: 1, Supersedes: &sup}
	hdr, err := e.Header()
	if err != nil {
		t.Fatal(err)
	}
	r := bytes.NewReader(append(hdr, "content"...))
	got, err := ReadEnvelope(r)
	if err != nil {
		t.Fatal(err)
	}
	if got.Title != e.Title || !got.Supersedes.Equals(sup.Cid) {
		t.Fatalf("got %+v", got)
	}
	rest := make([]byte, 100)
	n, _ := r.Read(rest)
	if string(rest[:n]) != "content" {
		t.Fatalf("content after envelope = %q", rest[:n])
	}
	for _, bad := range [][]byte{nil, []byte("BlockMRS"), []byte(EnvelopeMagic), append([]byte(EnvelopeMagic), 0xff, 0xff, 0xff, 0x7f), hdr[:len(hdr)-1]} {
		if _, err := ReadEnvelope(bytes.NewReader(bad)); err == nil {
			t.Errorf("ReadEnvelope(%q) succeeded", bad)
		}
	}
}

func TestValidateFHIR(t *testing.T) {
	good := []string{`{"resourceType":"Observation","status":"final"}`,
		`{"resourceType":"Bundle","type":"collection","entry":[{"resource":{"resourceType":"Patient"}}]}`}
	for _, g := range good {
		if _, err := ValidateFHIR([]byte(g)); err != nil {
			t.Errorf("%s: %v", g, err)
		}
	}
	bad := []string{``, `[]`, `{"status":"final"}`, `{"resourceType":"Observation"`, `{"resourceType":"Observation"} {}`,
		`{"resourceType":"bad type"}`, `{"resourceType":"Bundle","entry":[{"resource":{}}]}`, `null`,
		`{"RESOURCETYPE":"Observation"}`, `{"resourceType":"Observation","resourceType":"Patient"}`, "{\"resourceType\":\"Observation\",\"x\":\"\xff\"}"}
	for _, b := range bad {
		if _, err := ValidateFHIR([]byte(b)); err == nil {
			t.Errorf("%q accepted", b)
		}
	}
}

func TestProfileValidate(t *testing.T) {
	id, _ := age.GenerateX25519Identity()
	if err := (&Profile{Name: "x", Role: RolePatient, Recipient: id.Recipient().String()}).Validate(); err != nil {
		t.Fatal(err)
	}
	for _, p := range []Profile{{Name: "", Role: RolePatient, Recipient: testRecipient}, {Name: "x", Role: "pirate", Recipient: testRecipient}, {Name: "x", Role: RolePatient, Recipient: "age1zzz"}} {
		if err := p.Validate(); err == nil {
			t.Errorf("%+v accepted", p)
		}
	}
}

func FuzzDecodeBlock(f *testing.F) {
	encs, _ := signedChain(f, seedKey("alice"), 2)
	for _, e := range encs {
		f.Add(e)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := DecodeBlock(data)
		if err != nil {
			return
		}
		again, err := marshal(b)
		if err != nil || !bytes.Equal(again, data) {
			t.Fatalf("accepted block does not re-encode to itself")
		}
	})
}

func FuzzReadEnvelope(f *testing.F) {
	a := seedKey("a").Public().(ed25519.PublicKey)
	e := &Envelope{Title: "t", Kind: KindNote, MediaType: "text/plain", Author: a, Subject: a}
	hdr, _ := e.Header()
	f.Add(hdr)
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bytes.NewReader(data)
		env, err := ReadEnvelope(r)
		if err != nil {
			return
		}
		again, err := env.Header()
		if err != nil {
			t.Fatalf("accepted envelope does not re-encode: %v", err)
		}
		if consumed := data[:len(data)-r.Len()]; !bytes.Equal(again, consumed) {
			t.Fatalf("accepted envelope re-encodes to other bytes")
		}
	})
}

func FuzzValidateFHIR(f *testing.F) {
	f.Add([]byte(`{"resourceType":"Observation"}`))
	f.Fuzz(func(t *testing.T, data []byte) { _, _ = ValidateFHIR(data) })
}
