package protocol

// Test vectors for third-party implementations (PROTOCOL.md, "Test
// vectors"). testdata/vectors.json is rebuilt from fixed inputs on every
// run and compared byte for byte with the file (a golden test), so the wire
// format cannot drift unnoticed. Then the file itself is checked: every
// positive block decodes, has its CID, signing bytes and signature, links
// to its predecessor and is canonical DAG-CBOR according to an independent
// implementation (go-ipld-prime); every negative vector fails as stated;
// the age files decrypt; the UnixFS CIDs match boxo's importer.
//
// After an intended format change, rewrite the file with
//
//	go test ./protocol -run TestVectors -update
//
// and review the diff.

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/fxamacker/cbor/v2"
	chunker "github.com/ipfs/boxo/chunker"
	mdag "github.com/ipfs/boxo/ipld/merkledag"
	mdtest "github.com/ipfs/boxo/ipld/merkledag/test"
	"github.com/ipfs/boxo/ipld/unixfs/importer/balanced"
	"github.com/ipfs/boxo/ipld/unixfs/importer/helpers"
	uio "github.com/ipfs/boxo/ipld/unixfs/io"
	"github.com/ipfs/go-cid"
	"github.com/ipld/go-ipld-prime/codec/dagcbor"
	"github.com/ipld/go-ipld-prime/node/basicnode"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	mh "github.com/multiformats/go-multihash"
)

var updateVectors = flag.Bool("update", false, "rewrite testdata/vectors.json from the fixed inputs")

const vectorsPath = "testdata/vectors.json"

// ---------------------------------------------------------------------------
// Fixed inputs.

// vecSeedPrefix: an account's Ed25519 seed is sha256(vecSeedPrefix + name).
const vecSeedPrefix = "blockmrs test vector "

type vecAccountInput struct {
	name        string
	role        Role
	displayName string
	// ageIdentity was generated once with age.GenerateX25519Identity.
	ageIdentity string
}

var vecAccountInputs = []vecAccountInput{
	{"alice", RolePatient, "Alice Example", "AGE-SECRET-KEY-1Q03VDLJU6XMV8LN34GY60JKAE3VWZ87F56EEL4WKE3JD5J2DPPVSDLPCVG"},
	{"bob", RoleClinician, "Dr Bob Example", "AGE-SECRET-KEY-1WAVJ3L58ASEYVKJ3T4T45W54H3ENTQWXX7Z83JLG49RSUHAVUL8SA9R5KW"},
}

// vecRecordInput is one record. Age encryption is randomized, so its
// outputs (ciphertext, sealed envelope, wrapped keys) were generated once
// with filippo.io/age v1.3.2 and are fixed here; the test checks that they
// decrypt to what they should rather than regenerating them.
type vecRecordInput struct {
	name       string
	block      string // the chain block holding the record entry
	author     string
	subject    string
	content    string
	title      string
	kind       Kind
	mediaType  string
	fileName   string
	created    int64
	recordKey  string            // AGE-SECRET-KEY-1…, the record's fresh key
	ciphertext string            // base64: age file of content to recordKey
	meta       string            // base64: age file of the envelope plaintext to recordKey
	wrapped    map[string]string // account name → base64 age file of recordKey to that account
	where      map[string]string // account name → where that wrapped key appears
}

var vecRecordInputs = []vecRecordInput{
	{
		name:       "r1",
		block:      "alice/1",
		author:     "alice",
		subject:    "alice",
		content:    `{"resourceType":"Observation","status":"final","code":{"text":"Haemoglobin"},"valueQuantity":{"value":142,"unit":"g/L"}}`,
		title:      "Haemoglobin 2026-01-05",
		kind:       KindFHIR,
		mediaType:  "application/fhir+json",
		fileName:   "haemoglobin.json",
		created:    tAlice1,
		recordKey:  "AGE-SECRET-KEY-1QSZTVL3YDY9PSZJE2VVDVWHZKJ63WTUAVDUW5NQ2L69P5KZYCRPSF8WVGD",
		ciphertext: "YWdlLWVuY3J5cHRpb24ub3JnL3YxCi0+IFgyNTUxOSBhSE96RVdXazlJOENhUTJtVWRIWG9UL3BGUnl6TzRnZWhVZDVETEg5M1M0CmZ1OWNFTmR2TlQ4dVQzdkRsQUZybklxMHNtbjJ1d0JtYnoyWVpNa01kSVkKLS0tIE02RTJ5ajkxbDV6N21TL0hQblpoNWNMSnpVbE9QcE5Cam92NXo5YTZCSWsKCramPS7gJ7z4qDQIXV998p6y/KfbWQhCj1Eyy1XQq5w8CbA4hbpUsbPnbAE40qhBKzoYimdpi4xv9dR5L+CM7xnknbaqzaFqy7/hpQtDD42Sfdie7tCQ6mUsGgoa4HtykGjab/zxiXg99C24/10F+4KIYvBm+ZsSRSHXmApBLGD75Mo0cNgXnG4zqpLgNbSq0kKM4afB3Ns=",
		meta:       "YWdlLWVuY3J5cHRpb24ub3JnL3YxCi0+IFgyNTUxOSBrUitqQ0FjNE4yempqUjY4bWVjcWRHK2treXEra2huajJjSVlVcHRvMzNrClpZaFVpcnNjSUFkUnVGZ0pwS05nRTM3WlFjdTlra3k2bTNUSEpWTVVjbm8KLS0tIDFyZ2VSdEkvZS95YVIxZEx5QTVSUENxQzRHN2kybkdUeEJCcHNXWDdPZWcK9HMtkilpPwj773wNRd51Skv4rLNP+U1dC8AUJX9x/wvrKN7HGIcBLosW6rXnR0wQNkRIPWiMXbBCEK50RA6alK95o6tVCoRftFJUWrdKPq1+rnPODL+NyA/Hy7ucDcEcDDfqd4pVJsNAHHfQWPt128WxVdvyszuV7Jtb/teySRKroK8MRTruAERep8uk9ZRWcTYQayiDzCmEj0bR2kDS/K0YiUZPgOcIs9TinLYj7RLKvHUXYpYqfk7bx7juPlkNUh93UnTb2ZZcsABhHsljPQ2J3WXhnmp+13UCwmu3L4fkiIMqNwPNiDe8FSuJjDeDSR3GIUHweu4=",
		wrapped: map[string]string{
			"alice": "YWdlLWVuY3J5cHRpb24ub3JnL3YxCi0+IFgyNTUxOSByUS9yalJWbUh3T294MmFzTjIxa3lIeDNvUlVrNm9ORkc1eEdNWlFvZUVFClc2bFp1TGRlL2JpRTlrSk9IK09UWDdQVm1GQWN0L1pNTjA2OGNQdVBGSmMKLS0tIHlZaUdLM05KRituVW5KZ2hLM3M5TlNNNi9kZHpMQjREMmNXUm1RTDJRc00K211WLZNwErGgvMUSf7HBCOOhiWLJ3LDW6tWw+1kxVzjLIPX/h8+PJQDdhXFKai2iOmeG1TZOuXV/gbizgFj7tP9vd5cX25wYA4Wl1UE3laAmDQEvXrvIvMzsZSjT3FTp/cHzwDMcefsqsA==",
			"bob":   "YWdlLWVuY3J5cHRpb24ub3JnL3YxCi0+IFgyNTUxOSB5aFg0TEszU09nbndqd2pjYklLRXI1aW9qUE53eXdFNEJZaVAyc2JDaWlZCnFDekNtc0xkUVBvMGZFTURvdkRzMGEzUHRlV1FBSXBmSU91QVRXZVM3MkkKLS0tIEdaWkxFOXdvTlFTVXhwMDA0bkRPOG5lV285UXZoRnNMYVZCT0FvSjIvWmcK9jESOV1Fw7hQyUWiymGidmCQvE1XWgZXXgAqePFYCYOu1B4Lirk8b6NN1zi1b3bTRPd3ABwTTY3hRt9nvMe9tKiNR2weXK0b080tKz8OyU8p4gQNz6iKDFIOs4oBlQE3FhsLriDXWx6y2g==",
		},
		where: map[string]string{"alice": "alice/1 entries[0].body.keys[0]", "bob": "alice/2 entries[0].body.keys[0] (grant)"},
	},
	{
		name:       "r2",
		block:      "bob/1",
		author:     "bob",
		subject:    "alice",
		content:    "Follow-up in 3 months. Haemoglobin normal.\n",
		title:      "Clinic note 2026-01-10",
		kind:       KindNote,
		mediaType:  "text/plain; charset=utf-8",
		created:    tBob1,
		recordKey:  "AGE-SECRET-KEY-1QHLN4KNRDSCVTWAV4KNF5SUC5GSH3L3CWPMH783CFWK4GL67ZUWQCE9003",
		ciphertext: "YWdlLWVuY3J5cHRpb24ub3JnL3YxCi0+IFgyNTUxOSB3RTA5TFZDNkkza3cwakdhTENrMUl4K0dPTytEOWoyTlhQZUM4T1lxZDMwCjlMNlM1Ui90U2ttVEdXS2RJMmlGQ3FBelZmazJsZi9vOVdFdFlBa0FUVGcKLS0tIGVtUXBmWVRycjJGT3A0ZHJId0EzZXE0VVdUbm9RcDFGdDNFc1AvTzVsU1kKZKZQySnXECz3cUTyb/d1R/NrUZ19NxyDoGYvEISJ+ZaDZpOfElf4XyW35o1ewBK+q532ejgS5tKMZcZiGy2Ff5bFWiO4X8EANCZB",
		meta:       "YWdlLWVuY3J5cHRpb24ub3JnL3YxCi0+IFgyNTUxOSB5dkRsSDMxZ0lYem9TSmROUFlLQ3huaDFCOEh6akI3aUxRVmoxblREeDJjCkh3U2xqM0JkVmpHZURaOVZ6OGFlaXRnZVVhTnorUzNzdktFODR5ZnBJT3MKLS0tIFdaUmtxRkdqNFpFY3hTbldnYWEvUzk0TkZpK215eGJnNFVsZG5kdllIZ00KAsstovlx0LSzojgevkmR9et/gUu+A3t/EklEaYeZ1A1Z7GGbXbTw+wb+K1dhh760MtHsLvG4FbRqfGUTLNID3jSEvBQhQC3D/b9mCT1A5+5nRQZRMrfl713U5JBl6riH05IfOAIUE12vfXan/3T4Mr+5/ruxKHgql7+JOJldzIhKcEihQriYskiblJ2Qck3k7VS4Mqnganvjvhj+PAZVokPS5f5wmxT1N0KeoqsUSnVWmm+YYJzsHYQcarW0v3Aa9iJem2/VLc7IQPIg8DiDsdJWNC3HMU2qz7PbZyVGB+loGcY=",
		wrapped: map[string]string{
			"alice": "YWdlLWVuY3J5cHRpb24ub3JnL3YxCi0+IFgyNTUxOSAzdHFjMGRQOVd1OXE0V1JiUDdodjB2MmxDNVZDL3VzZUFLTm4ycUkweFVvCmQ1NjZoVXpVT1o1NU95OU9aMThPbkZ6UUhRbnMrdkZ4YXRjN1Jkb1VTTmcKLS0tIFpHSEp2OWg0T2twNWZwQ0RhRXBzNnozelgrTjJ1WkF3NWo0MW0rNG5Eb2sKdXvnZS2UMyw9jtyuElu+0lr7m2W3SSAfXuBocLAqWqiz3PUTKGx2F2BFfK9QomTMtUVhAPT4HJdUYZpkbhKudEZ7EsoEgcBxehqM4LtjjYRZ/5Bfa+Slbt924f0AMAby6ddq0ozHLurCaA==",
			"bob":   "YWdlLWVuY3J5cHRpb24ub3JnL3YxCi0+IFgyNTUxOSBuY0hWYmd0REdCOVNuaW92aExRR21JdWJoWnVCZ2xjYkZQSWVmdUhYTVRVCm0wZ2xwSFVXU2dxckh3S1ZpZlF2dDBwN0FhMjBjNmpGTzdHSytKckgyQm8KLS0tIFJzcEdjS2t4T2k3OXF5WFpRMWFtbWYvclBKZE1FekZTYzhQaENIazIyRWcK8dqH6wXT++ApTqDoZwtNUnJ6yAlBqHDBp5riABh/TrjOoRH0NM8uZp/4/rpwKSA5XORMBH07ISqLwxpY0W7fBhMMSVZ3DCO3ad9SHAKWsVwfo6GH/+7SDx7hHSIaU2i+tzSwyxTIjVchhQ==",
		},
		where: map[string]string{"alice": "bob/1 entries[0].body.keys[0]", "bob": "bob/1 entries[0].body.keys[1]"},
	},
}

// Block times (Unix milliseconds, UTC midnights) and the grant's expiry.
const (
	tBob0       = 1764547200000 // 2025-12-01
	tAlice0     = 1767225600000 // 2026-01-01
	tAlice1     = 1767571200000 // 2026-01-05
	tAlice2     = 1767657600000 // 2026-01-06
	tBob1       = 1768003200000 // 2026-01-10
	tAlice3     = 1768262400000 // 2026-01-13
	tAlice4     = 1768348800000 // 2026-01-14
	tBob2       = 1768435200000 // 2026-01-15
	tAlice5     = 1768867200000 // 2026-01-20
	tAlice6     = 1768953600000 // 2026-01-21
	tAlice7     = 1769040000000 // 2026-01-22
	tAlice8     = 1769126400000 // 2026-01-23
	tGrantUntil = 1798761600000 // 2027-01-01
)

// vecUnixFSSize is the size of the multi-chunk UnixFS vector: two full
// 1 MiB chunks and a partial third.
const vecUnixFSSize = 2*1048576 + 12345

// vecStream returns n bytes: sha256("blockmrs unixfs vector" ||
// uint64be(i)) for i = 0, 1, 2, … concatenated and cut at n.
func vecStream(n int) []byte {
	out := make([]byte, 0, n+sha256.Size)
	var ctr [8]byte
	for i := uint64(0); len(out) < n; i++ {
		binary.BigEndian.PutUint64(ctr[:], i)
		s := sha256.Sum256(append([]byte("blockmrs unixfs vector"), ctr[:]...))
		out = append(out, s[:]...)
	}
	return out[:n]
}

// ---------------------------------------------------------------------------
// The file's shape.

type vectorFile struct {
	Description []string       `json:"description"`
	Conventions []string       `json:"conventions"`
	Constants   vecConstants   `json:"constants"`
	Accounts    []vecAccount   `json:"accounts"`
	Records     []vecRecord    `json:"records"`
	Envelopes   []vecEnvelope  `json:"envelopes"`
	Blocks      []vecBlock     `json:"blocks"`
	Negative    []vecNegative  `json:"negative"`
	UnixFS      []vecUnixFSCID `json:"unixfs"`
	Successions vecSuccessions `json:"successions"`
}

// vecSuccessions: alice's chain continues under a successor key
// (PROTOCOL.md §5.14): alice/7 (signed by alice's key) names it, alice/8
// (version 2) is signed by it; the negatives break alice/8.
type vecSuccessions struct {
	Context          string        `json:"successor_block_signature_context"`
	ContextHex       string        `json:"successor_block_signature_context_hex"`
	SuccessorSeedPre string        `json:"successor_seed_preimage"`
	SuccessorPublic  string        `json:"successor_ed25519_public_hex"`
	Blocks           []vecBlock    `json:"blocks"`
	Negative         []vecNegative `json:"negative"`
}

type vecConstants struct {
	BlockSignatureContext    string `json:"block_signature_context"`
	BlockSignatureContextHex string `json:"block_signature_context_hex"`
	EnvelopeMagic            string `json:"envelope_magic"`
	EnvelopeMagicHex         string `json:"envelope_magic_hex"`
	BlockVersion             int    `json:"block_version"`
}

type vecAccount struct {
	Name              string `json:"name"`
	Role              string `json:"role"`
	SeedPreimage      string `json:"seed_preimage"`
	Ed25519Seed       string `json:"ed25519_seed_hex"`
	Ed25519Public     string `json:"ed25519_public_hex"`
	PublicKeyProtobuf string `json:"libp2p_public_key_protobuf_hex"`
	Multihash         string `json:"identity_multihash_hex"`
	AccountID         string `json:"account_id"`
	AgeIdentity       string `json:"age_identity"`
	AgeRecipient      string `json:"age_recipient"`
}

type vecRecord struct {
	Name            string          `json:"name"`
	Entry           string          `json:"entry"`
	Author          string          `json:"author"`
	Subject         string          `json:"subject"`
	Content         string          `json:"content_utf8"`
	RecordKey       string          `json:"record_key"`
	RecordRecipient string          `json:"record_recipient"`
	Ciphertext      string          `json:"ciphertext_hex"`
	CID             string          `json:"cid"`
	SealedEnvelope  string          `json:"sealed_envelope_hex"`
	Envelope        string          `json:"envelope"`
	WrappedKeys     []vecWrappedKey `json:"wrapped_keys"`
	Notes           []string        `json:"notes"`
}

type vecWrappedKey struct {
	To      string `json:"to"`
	Where   string `json:"where"`
	AgeFile string `json:"age_file_hex"`
}

type vecEnvelope struct {
	Name      string `json:"name"`
	Fields    any    `json:"fields"`
	Header    string `json:"header_hex"`
	Plaintext string `json:"plaintext_hex"`
}

type vecBlock struct {
	Name         string   `json:"name"`
	Account      string   `json:"account"`
	Seq          uint64   `json:"seq"`
	Encoded      string   `json:"encoded_hex"`
	CID          string   `json:"cid"`
	SigningBytes string   `json:"signing_bytes_hex"`
	Signature    string   `json:"signature_hex"`
	Decoded      any      `json:"decoded"`
	Notes        []string `json:"notes"`
}

type vecNegative struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	Encoded     string `json:"encoded_hex"`
	// Check is "DecodeBlock" (decoding and static validation must fail)
	// or "CheckSuccessor" (the block decodes, but must be rejected as the
	// successor of the positive block named in After).
	Check string `json:"check"`
	After string `json:"after,omitempty"`
	// ForkOf names a positive block with the same author and seq: the two
	// together are fork evidence.
	ForkOf string `json:"fork_of,omitempty"`
	// Expect is the reason, in words; GoError a substring of the error
	// package protocol returns.
	Expect  string `json:"expect"`
	GoError string `json:"go_error_contains"`
	// DagCBORCanonical says whether go-ipld-prime's strict dag-cbor codec
	// decodes the bytes and re-encodes them unchanged (informative).
	DagCBORCanonical bool `json:"dag_cbor_canonical"`
}

type vecUnixFSCID struct {
	Name    string   `json:"name"`
	Content string   `json:"content"`
	Size    int      `json:"size"`
	SHA256  string   `json:"sha256_hex"`
	Root    string   `json:"root"`
	Leaves  []string `json:"leaves"`
}

// ---------------------------------------------------------------------------
// Generation.

type vecAcct struct {
	in   vecAccountInput
	seed []byte
	priv ed25519.PrivateKey
	pub  ed25519.PublicKey
	id   AccountID
	age  *age.X25519Identity
}

type vecSigned struct {
	name  string
	acct  string
	block *Block
	enc   []byte
	cid   cid.Cid
	notes []string
}

func vecAccounts(t testing.TB) (map[string]*vecAcct, []string) {
	t.Helper()
	m := map[string]*vecAcct{}
	var order []string
	for _, in := range vecAccountInputs {
		s := sha256.Sum256([]byte(vecSeedPrefix + in.name))
		priv := ed25519.NewKeyFromSeed(s[:])
		id, err := age.ParseX25519Identity(in.ageIdentity)
		if err != nil {
			t.Fatal(err)
		}
		pub := priv.Public().(ed25519.PublicKey)
		m[in.name] = &vecAcct{in: in, seed: s[:], priv: priv, pub: pub, id: AccountIDFromKey(pub), age: id}
		order = append(order, in.name)
	}
	return m, order
}

func mustB64(t testing.TB, s string) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func rawCID(data []byte) cid.Cid {
	sum, err := mh.Sum(data, mh.SHA2_256, -1)
	if err != nil {
		panic(err)
	}
	return cid.NewCidV1(cid.Raw, sum)
}

func utc(ms int64) string { return time.UnixMilli(ms).UTC().Format(time.RFC3339) }

func (r *vecRecordInput) envelope(accts map[string]*vecAcct) *Envelope {
	return &Envelope{Title: r.title, Kind: r.kind, MediaType: r.mediaType, FileName: r.fileName,
		Author: accts[r.author].pub, Subject: accts[r.subject].pub, Created: r.created}
}

// buildVectors makes the whole vector file from the fixed inputs.
func buildVectors(t testing.TB) *vectorFile {
	t.Helper()
	accts, order := vecAccounts(t)
	alice, bob := accts["alice"], accts["bob"]
	r1, r2 := &vecRecordInputs[0], &vecRecordInputs[1]
	r1CID, r2CID := rawCID(mustB64(t, r1.ciphertext)), rawCID(mustB64(t, r2.ciphertext))

	sign := func(name, acct string, b *Block, notes ...string) *vecSigned {
		enc, c, err := b.Sign(accts[acct].priv)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return &vecSigned{name: name, acct: acct, block: b, enc: enc, cid: c, notes: notes}
	}
	link := func(c cid.Cid) *Link { l := NewLink(c); return &l }
	profile := func(a *vecAcct) Entry {
		return NewEntry(&Profile{Name: a.in.displayName, Role: a.in.role, Recipient: a.age.Recipient().String()})
	}
	unknownBody := func(v map[string]any) []byte {
		b, err := marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}

	// Bob's chain first: Alice's ack links bob/1.
	bob0 := sign("bob/0", "bob", &Block{Seq: 0, Time: tBob0, Entries: []Entry{profile(bob)}},
		"Genesis block of bob's chain (seq 0, no prev): its first entry is the profile binding bob's age recipient, name and role (clinician) to his signing key.",
		"Time "+utc(tBob0)+".")
	bob1 := sign("bob/1", "bob", &Block{Seq: 1, Prev: link(bob0.cid), Time: tBob1, Entries: []Entry{
		NewEntry(&Record{Record: NewLink(r2CID), Subject: alice.pub, Meta: mustB64(t, r2.meta), Keys: []WrappedKey{
			{To: alice.pub, Key: mustB64(t, r2.wrapped["alice"])},
			{To: bob.pub, Key: mustB64(t, r2.wrapped["bob"])},
		}}),
		NewEntry(&Device{Peer: vectorPeerID(t, "bob's clinic server"), Name: "clinic server"}),
	}},
		"Record entry on the author's (bob's) chain for record r2 about alice: keys[0] is the record key wrapped for the subject (alice), keys[1] for the author (bob).",
		"Entry 1 declares the libp2p node whose Ed25519 key has the seed sha256(\"blockmrs test vector bob's clinic server\") as a device acting for bob: peer is that peer ID's binary form (identity multihash of 08 01 12 20 || public key).",
		"A record entry gives the subject and the author access; further readers come from grants on the subject's chain.",
		"Time "+utc(tBob1)+".")
	bob2 := sign("bob/2", "bob", &Block{Seq: 2, Prev: link(bob1.cid), Time: tBob2, Entries: []Entry{
		{Type: "x-example-note", RawBody: unknownBody(map[string]any{"text": "ignored by v1"})},
		{Type: "x-example-critical", Critical: true, RawBody: unknownBody(map[string]any{"n": 1})},
	}},
		"Forward compatibility: entry 0 has a type v1 does not know and is not critical, so a v1 verifier keeps it (it is signed and replicated) and ignores it.",
		"Entry 1 is of an unknown type and marked critical (crit: true): a v1 verifier accepts the block as valid but stops applying bob's chain from this block on (this whole block included). FirstCriticalUnknown() = 1.",
		"Time "+utc(tBob2)+".")

	alice0 := sign("alice/0", "alice", &Block{Seq: 0, Time: tAlice0, Entries: []Entry{profile(alice)}},
		"Genesis block of alice's chain (seq 0, no prev): profile entry, role patient.",
		"Time "+utc(tAlice0)+".")
	alice1 := sign("alice/1", "alice", &Block{Seq: 1, Prev: link(alice0.cid), Time: tAlice1, Entries: []Entry{
		NewEntry(&Record{Record: NewLink(r1CID), Subject: alice.pub, Meta: mustB64(t, r1.meta), Keys: []WrappedKey{
			{To: alice.pub, Key: mustB64(t, r1.wrapped["alice"])},
		}}),
	}},
		"Record entry: alice is both author (she signs the block) and subject of record r1, so one wrapped key serves both.",
		"meta is the sealed envelope: an age file, encrypted to the record key, of the envelope plaintext (see envelopes[0]).",
		"Time "+utc(tAlice1)+".")
	alice2 := sign("alice/2", "alice", &Block{Seq: 2, Prev: link(alice1.cid), Time: tAlice2, Entries: []Entry{
		NewEntry(&Grant{To: bob.pub, Keys: []RecordKey{{Record: NewLink(r1CID), Key: mustB64(t, r1.wrapped["bob"])}}, Expires: tGrantUntil}),
	}},
		"Grant by the subject (alice, on her own chain) to bob for record r1: the record key wrapped for bob's age recipient.",
		"expires = "+utc(tGrantUntil)+": bob's access ends when the current time reaches it.",
		"Time "+utc(tAlice2)+".")
	alice3 := sign("alice/3", "alice", &Block{Seq: 3, Prev: link(alice2.cid), Time: tAlice3, Entries: []Entry{
		NewEntry(&Revoke{From: bob.pub, Records: []Link{NewLink(r1CID)}}),
		NewEntry(&Hide{Records: []Link{NewLink(r1CID)}}),
	}},
		"Entry 0 revokes bob's access to r1: bob's latest grant/revoke event for r1 in alice's chain order is now a revoke. (He may still hold the key he already unwrapped.)",
		"Entry 1 hides r1 from alice's listings and standing shares; it does not change who may read it.",
		"Time "+utc(tAlice3)+".")
	alice4 := sign("alice/4", "alice", &Block{Seq: 4, Prev: link(alice3.cid), Time: tAlice4, Entries: []Entry{
		NewEntry(&Ack{Record: NewLink(r2CID), Author: bob.pub, Block: NewLink(bob1.cid)}),
	}},
		"Ack: the subject (alice) acknowledges record r2, which bob authored, linking bob's chain block bob/1 that holds its record entry. A CAR export of alice's chain therefore carries bob's chain up to bob/1.",
		"Time "+utc(tAlice4)+".")

	labScope := "patient/Observation.rs?category=laboratory"
	alice5 := sign("alice/5", "alice", &Block{Seq: 5, Prev: link(alice4.cid), Time: tAlice5, Entries: []Entry{
		NewEntry(&Unhide{Records: []Link{NewLink(r1CID)}}),
		NewEntry(&ScopeGrant{To: bob.pub, Scope: labScope, Expires: tGrantUntil}),
		NewEntry(&ScopedKeys{To: bob.pub, Scope: labScope, Keys: []RecordKey{{Record: NewLink(r1CID), Key: mustB64(t, r1.wrapped["bob"])}}}),
	}},
		"Entry 0 shows r1 again (unhide), so standing grants cover it.",
		"Entry 1 is a standing grant (scope): alice gives bob every record of hers in the SMART on FHIR v2 scope "+labScope+", present and future, until "+utc(tGrantUntil)+". The scope is in canonical form (a system-qualified category, ?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory, is written with the code alone).",
		"Entry 2 gives bob r1's key under that scope (scoped): alice's node judged r1 in the scope from its sealed envelope. bob may read r1 while alice's chain holds a live scope grant of exactly this scope to him (his revoke event at alice/3 comes before this entry). An author writes the same entry on its own chain, in the block of its record entry, for the standing grantees it sees on the subject's chain.",
		"Time "+utc(tAlice5)+".")
	alice6 := sign("alice/6", "alice", &Block{Seq: 6, Prev: link(alice5.cid), Time: tAlice6, Entries: []Entry{
		NewEntry(&ScopeEnd{From: bob.pub, Scope: labScope}),
	}},
		"Ends the standing grant (unscope): from here no key given to bob under "+labScope+" counts, by any author, so bob loses r1 and every other record the scope covered, and no record is wrapped for him under it again. (He may still hold what he already unwrapped.)",
		"Time "+utc(tAlice6)+".")

	alice7 := sign("alice/7", "alice", &Block{Seq: 7, Prev: link(alice6.cid), Time: tAlice7, Entries: []Entry{
		NewEntry(&GuardianAppoint{To: bob.pub, May: []GuardianRight{RightRead, RightGrant}, From: 3, Until: tGrantUntil}),
		NewEntry(&ScopeGrant{To: bob.pub, Scope: "patient/*.rs", Expires: tGrantUntil}),
	}},
		"Entry 0 appoints bob alice's guardian (guardian): he may read her records and grant them to others, by wardgrant entries on his own chain in his blocks from seq 3 on (his chain held 0 to 2 when alice's node wrote this), until "+utc(tGrantUntil)+" by his blocks' times. Rights are in canonical order (read, grant, revoke, approve).",
		"Entry 1 is the read right: a standing grant of patient/*.rs to bob with the same end; alice's node wraps her records for him under it.",
		"Time "+utc(tAlice7)+".")
	alice8 := sign("alice/8", "alice", &Block{Seq: 8, Prev: link(alice7.cid), Time: tAlice8, Entries: []Entry{
		NewEntry(&GuardianEnd{From: bob.pub, Before: 3}),
		NewEntry(&ScopeEnd{From: bob.pub, Scope: "patient/*.rs"}),
	}},
		"Entry 0 removes bob as guardian (unguardian): no act in bob's chain blocks of seq 3 or higher counts for alice, whatever their times; so, with the appointment's from = 3, none of his acts ever counts.",
		"Entry 1 ends the read right's standing grant.",
		"Time "+utc(tAlice8)+".")

	positives := []*vecSigned{alice0, alice1, alice2, alice3, alice4, alice5, alice6, alice7, alice8, bob0, bob1, bob2}
	byName := map[string]*vecSigned{}
	for _, p := range positives {
		byName[p.name] = p
	}

	vf := &vectorFile{
		Description: []string{
			"BlockMRS protocol v1 test vectors (see PROTOCOL.md). Generated by `go test ./protocol -run TestVectors -update` from the fixed inputs in protocol/vectors_test.go; the test rebuilds this file on every run and fails if one byte differs.",
			"Ed25519 signatures are deterministic, so every chain block here is reproducible from the seeds. Age encryption is randomized: the age files (record ciphertexts, sealed envelopes, wrapped keys) were produced once with filippo.io/age v1.3.2 and are fixed inputs; check them by decrypting, not by re-encrypting.",
			"Record CIDs: each record ciphertext here is under 1 MiB, so under unixfs-v1-2025 it is one raw block and its CID is CIDv1(raw, sha2-256(ciphertext)), what `ipfs add` with that profile prints. The `unixfs` section has a multi-chunk case.",
		},
		Conventions: []string{
			"*_hex fields are lowercase hex. CIDs are in their default string form (base32 for CIDv1).",
			"In `decoded`, map keys appear in canonical (wire) order; byte strings are shown as lowercase hex strings and CID links (tag 42) as CID strings. PROTOCOL.md gives each field's CBOR type.",
			"signing_bytes_hex = block_signature_context || canonical encoding of the block map without its sig key; signature_hex = Ed25519(seed, signing_bytes).",
			"Times are Unix milliseconds.",
		},
		Constants: vecConstants{
			BlockSignatureContext:    BlockSignatureContext,
			BlockSignatureContextHex: hex.EncodeToString([]byte(BlockSignatureContext)),
			EnvelopeMagic:            EnvelopeMagic,
			EnvelopeMagicHex:         hex.EncodeToString([]byte(EnvelopeMagic)),
			BlockVersion:             BlockVersion,
		},
	}

	for _, name := range order {
		a := accts[name]
		pb := append(append([]byte{}, ed25519KeyProto...), a.pub...)
		m, err := mh.Sum(pb, mh.IDENTITY, -1)
		if err != nil {
			t.Fatal(err)
		}
		vf.Accounts = append(vf.Accounts, vecAccount{
			Name: name, Role: string(a.in.role), SeedPreimage: vecSeedPrefix + name,
			Ed25519Seed: hex.EncodeToString(a.seed), Ed25519Public: hex.EncodeToString(a.pub),
			PublicKeyProtobuf: hex.EncodeToString(pb), Multihash: hex.EncodeToString(m),
			AccountID: string(a.id), AgeIdentity: a.age.String(), AgeRecipient: a.age.Recipient().String(),
		})
	}

	for i := range vecRecordInputs {
		r := &vecRecordInputs[i]
		key, err := age.ParseX25519Identity(r.recordKey)
		if err != nil {
			t.Fatal(err)
		}
		ct := mustB64(t, r.ciphertext)
		rec := vecRecord{
			Name: r.name, Entry: r.block + " entries[0]", Author: r.author, Subject: r.subject,
			Content: r.content, RecordKey: r.recordKey, RecordRecipient: key.Recipient().String(),
			Ciphertext: hex.EncodeToString(ct), CID: rawCID(ct).String(),
			SealedEnvelope: hex.EncodeToString(mustB64(t, r.meta)), Envelope: r.name,
			Notes: []string{
				"`age -d -i <file holding record_key>` of the ciphertext gives content_utf8; of sealed_envelope_hex it gives the envelope plaintext.",
				"Each wrapped key is a binary age file whose plaintext is record_key (the AGE-SECRET-KEY-1… string, no newline), encrypted to that account's age recipient.",
			},
		}
		names := make([]string, 0, len(r.wrapped))
		for n := range r.wrapped {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			rec.WrappedKeys = append(rec.WrappedKeys, vecWrappedKey{To: n, Where: r.where[n], AgeFile: hex.EncodeToString(mustB64(t, r.wrapped[n]))})
		}
		vf.Records = append(vf.Records, rec)

		env := r.envelope(accts)
		plain, err := env.Header()
		if err != nil {
			t.Fatal(err)
		}
		hdr := plain[len(EnvelopeMagic):]
		_, n := binary.Uvarint(hdr)
		hdr = hdr[n:]
		vf.Envelopes = append(vf.Envelopes, vecEnvelope{Name: r.name, Fields: renderCBOR(t, hdr), Header: hex.EncodeToString(hdr), Plaintext: hex.EncodeToString(plain)})
	}

	for _, p := range positives {
		sb, err := p.block.SigningBytes()
		if err != nil {
			t.Fatal(err)
		}
		vf.Blocks = append(vf.Blocks, vecBlock{
			Name: p.name, Account: p.acct, Seq: p.block.Seq,
			Encoded: hex.EncodeToString(p.enc), CID: p.cid.String(),
			SigningBytes: hex.EncodeToString(sb), Signature: hex.EncodeToString(p.block.Sig),
			Decoded: renderCBOR(t, p.enc), Notes: p.notes,
		})
	}

	vf.Negative = buildNegatives(t, accts, byName)
	vf.Successions = buildSuccessions(t, alice, alice6)

	for _, u := range []struct {
		name, desc string
		data       []byte
	}{
		{"r1-ciphertext", "the ciphertext of record r1 (records[0].ciphertext_hex): one chunk, so the root is the raw leaf itself", mustB64(t, r1.ciphertext)},
		{"stream-2MiB+12345", fmt.Sprintf("%d bytes: sha256(\"blockmrs unixfs vector\" || uint64be(i)) for i = 0, 1, 2, … concatenated, cut at the size; two full 1 MiB raw leaves, a partial third, and a dag-pb (UnixFS file) root", vecUnixFSSize), vecStream(vecUnixFSSize)},
	} {
		root, leaves := unixfsImport(t, u.data)
		sum := sha256.Sum256(u.data)
		v := vecUnixFSCID{Name: u.name, Content: u.desc, Size: len(u.data), SHA256: hex.EncodeToString(sum[:]), Root: root.String()}
		for _, l := range leaves {
			v.Leaves = append(v.Leaves, l.String())
		}
		vf.UnixFS = append(vf.UnixFS, v)
	}
	return vf
}

// kvRaw is one map entry: a text key and its encoded value.
type kvRaw struct {
	k string
	v []byte
}

// mapPairs splits an encoded CBOR map into its entries, in canonical order.
func mapPairs(t testing.TB, enc []byte) []kvRaw {
	t.Helper()
	var m map[string]cbor.RawMessage
	if err := decMode.Unmarshal(enc, &m); err != nil {
		t.Fatal(err)
	}
	out := make([]kvRaw, 0, len(m))
	for k, v := range m {
		out = append(out, kvRaw{k, v})
	}
	sortCanonical(out)
	return out
}

func sortCanonical(p []kvRaw) {
	sort.Slice(p, func(i, j int) bool {
		if len(p[i].k) != len(p[j].k) {
			return len(p[i].k) < len(p[j].k)
		}
		return p[i].k < p[j].k
	})
}

// cborHead is a minimal-length CBOR item head.
func cborHead(major byte, n uint64) []byte {
	m := major << 5
	switch {
	case n < 24:
		return []byte{m | byte(n)}
	case n <= 0xff:
		return []byte{m | 24, byte(n)}
	case n <= 0xffff:
		return []byte{m | 25, byte(n >> 8), byte(n)}
	case n <= 0xffffffff:
		return binary.BigEndian.AppendUint32([]byte{m | 26}, uint32(n))
	}
	return binary.BigEndian.AppendUint64([]byte{m | 27}, n)
}

// writeMap encodes entries in the order given.
func writeMap(t testing.TB, p []kvRaw) []byte {
	t.Helper()
	out := cborHead(5, uint64(len(p)))
	for _, e := range p {
		k, err := marshal(e.k)
		if err != nil {
			t.Fatal(err)
		}
		out = append(append(out, k...), e.v...)
	}
	return out
}

func setPair(p []kvRaw, k string, v []byte) []kvRaw {
	for i := range p {
		if p[i].k == k {
			p[i].v = v
			return p
		}
	}
	return append(p, kvRaw{k, v})
}

func withoutPair(p []kvRaw, k string) []kvRaw {
	out := make([]kvRaw, 0, len(p))
	for _, e := range p {
		if e.k != k {
			out = append(out, e)
		}
	}
	return out
}

// resign canonically encodes the block map p (its sig key ignored), signs
// it with or without the context string and returns the encoded block.
func resign(t testing.TB, priv ed25519.PrivateKey, p []kvRaw, withContext bool) []byte {
	t.Helper()
	p = withoutPair(p, "sig")
	sortCanonical(p)
	msg := writeMap(t, p)
	if withContext {
		msg = append([]byte(BlockSignatureContext), msg...)
	}
	sig, err := marshal(ed25519.Sign(priv, msg))
	if err != nil {
		t.Fatal(err)
	}
	p = append(p, kvRaw{"sig", sig})
	sortCanonical(p)
	return writeMap(t, p)
}

func buildNegatives(t testing.TB, accts map[string]*vecAcct, byName map[string]*vecSigned) []vecNegative {
	t.Helper()
	alice := accts["alice"]
	b1 := byName["alice/1"]
	p1 := mapPairs(t, b1.enc)
	clone := func(p []kvRaw) []kvRaw { return append([]kvRaw(nil), p...) }
	var out []vecNegative
	add := func(n vecNegative, enc []byte) {
		n.Encoded = hex.EncodeToString(enc)
		n.DagCBORCanonical = ipldRoundTrip(enc) == nil
		out = append(out, n)
	}

	// Map keys in plain bytewise order instead of length-first.
	unsorted := clone(p1)
	sort.Slice(unsorted, func(i, j int) bool { return unsorted[i].k < unsorted[j].k })
	add(vecNegative{Name: "alice/1 map keys unsorted", Check: "DecodeBlock",
		Description: "alice/1 with the same keys and values (signature unchanged, still valid over the canonical form) but the top-level map keys in bytewise order (author, entries, prev, seq, sig, time, v) instead of length-first.",
		Expect:      "not canonical: the bytes do not re-encode to themselves", GoError: ErrNotCanonical.Error()}, writeMap(t, unsorted))

	// seq as a two-byte integer.
	nonMinimal := setPair(clone(p1), "seq", []byte{0x18, 0x01})
	add(vecNegative{Name: "alice/1 non-minimal integer", Check: "DecodeBlock",
		Description: "alice/1 with seq encoded as 0x18 0x01 (uint8 follows) instead of 0x01; the signature is unchanged and verifies over the canonical form, so only the strict re-encoding check catches it.",
		Expect:      "not canonical: the bytes do not re-encode to themselves", GoError: ErrNotCanonical.Error()}, writeMap(t, nonMinimal))

	// One signature bit flipped.
	sig := append([]byte(nil), b1.block.Sig...)
	sig[len(sig)-1] ^= 0x01
	sigEnc, err := marshal(sig)
	if err != nil {
		t.Fatal(err)
	}
	add(vecNegative{Name: "alice/1 signature bit flipped", Check: "DecodeBlock",
		Description: "alice/1 with the lowest bit of the signature's last byte flipped.",
		Expect:      "bad signature", GoError: "bad signature"}, writeMap(t, setPair(clone(p1), "sig", sigEnc)))

	// Signed over the encoding alone, without the context string.
	add(vecNegative{Name: "alice/1 signed without context", Check: "DecodeBlock",
		Description: "alice/1 signed by alice's key over the canonical encoding without sig, but without the BlockSignatureContext prefix.",
		Expect:      "bad signature (signatures are domain-separated)", GoError: "bad signature"}, resign(t, alice.priv, p1, false))

	// Trailing byte.
	add(vecNegative{Name: "alice/1 trailing byte", Check: "DecodeBlock",
		Description: "alice/1 followed by one 0x00 byte.",
		Expect:      "trailing data after the block", GoError: "extraneous data"}, append(bytes.Clone(b1.enc), 0x00))

	// A field v1 does not know, properly signed.
	one, _ := marshal(1)
	add(vecNegative{Name: "alice/1 unknown field", Check: "DecodeBlock",
		Description: "alice/1 with an extra top-level key \"x\": 1, correctly signed.",
		Expect:      "unknown field in a known structure", GoError: "unknown field"}, resign(t, alice.priv, setPair(clone(p1), "x", one), true))

	// A future block version, properly signed.
	three, _ := marshal(3)
	add(vecNegative{Name: "alice/1 version 3", Check: "DecodeBlock",
		Description: "alice/1 with v = 3, correctly signed.",
		Expect:      "unsupported block version", GoError: "unsupported version 3"}, resign(t, alice.priv, setPair(clone(p1), "v", three), true))

	// "crit": false written out.
	entryPairs := mapPairs(t, b1.block.Entries[0].mustEncode(t))
	entryPairs = setPair(entryPairs, "crit", []byte{0xf4})
	sortCanonical(entryPairs)
	entries := append(cborHead(4, 1), writeMap(t, entryPairs)...)
	add(vecNegative{Name: "alice/1 explicit crit false", Check: "DecodeBlock",
		Description: "alice/1 whose entry carries \"crit\": false, correctly signed. crit must be omitted when false.",
		Expect:      "not canonical: crit false must be omitted", GoError: ErrNotCanonical.Error()}, resign(t, alice.priv, setPair(clone(p1), "entries", entries), true))

	// Genesis without a profile first.
	hide, err := NewEntry(&Hide{Records: []Link{NewLink(rawCID([]byte("x")))}}).MarshalCBOR()
	if err != nil {
		t.Fatal(err)
	}
	p0 := mapPairs(t, byName["alice/0"].enc)
	var ents []cbor.RawMessage
	if err := decMode.Unmarshal(pairValue(p0, "entries"), &ents); err != nil {
		t.Fatal(err)
	}
	genesis := append(cborHead(4, 2), hide...)
	genesis = append(genesis, ents[0]...)
	add(vecNegative{Name: "alice/0 profile not first", Check: "DecodeBlock",
		Description: "alice/0 with a hide entry ahead of the profile, correctly signed.",
		Expect:      "block 0 must begin with a profile entry", GoError: "first entry must be a profile"}, resign(t, alice.priv, setPair(clone(p0), "entries", genesis), true))

	// alice/2 re-made with prev pointing at alice/0: valid on its own, a
	// broken link in the chain, and a fork of the real alice/2.
	b2 := byName["alice/2"].block
	bad := &Block{Seq: b2.Seq, Time: b2.Time, Entries: b2.Entries}
	l0 := NewLink(byName["alice/0"].cid)
	bad.Prev = &l0
	enc, _, err := bad.Sign(alice.priv)
	if err != nil {
		t.Fatal(err)
	}
	add(vecNegative{Name: "alice/2 prev points to alice/0", Check: "CheckSuccessor", After: "alice/1", ForkOf: "alice/2",
		Description: "alice/2 with prev = CID of alice/0, correctly signed. It decodes and is statically valid, but cannot follow alice/1; with the real alice/2 it is also fork evidence (same author and seq, different blocks).",
		Expect:      "prev does not link the previous block", GoError: "prev link does not point to block 1"}, enc)

	add(vecNegative{Name: "alice/3 after alice/1", Check: "CheckSuccessor", After: "alice/1",
		Description: "The real alice/3 offered as the successor of alice/1.",
		Expect:      "sequence gap", GoError: "sequence gap"}, byName["alice/3"].enc)

	add(vecNegative{Name: "bob/1 after alice/0", Check: "CheckSuccessor", After: "alice/0",
		Description: "The real bob/1 offered as the successor of alice/0.",
		Expect:      "author differs", GoError: "author differs"}, byName["bob/1"].enc)

	early := &Block{Seq: b2.Seq, Time: byName["alice/1"].block.Time - 1, Entries: b2.Entries, Prev: b2.Prev}
	enc, _, err = early.Sign(alice.priv)
	if err != nil {
		t.Fatal(err)
	}
	add(vecNegative{Name: "alice/2 time before alice/1", Check: "CheckSuccessor", After: "alice/1", ForkOf: "alice/2",
		Description: "alice/2 with time one millisecond before alice/1's, correctly signed.",
		Expect:      "time goes backwards", GoError: "time goes backwards"}, enc)
	return out
}

func pairValue(p []kvRaw, k string) []byte {
	for _, e := range p {
		if e.k == k {
			return e.v
		}
	}
	return nil
}

func (e Entry) mustEncode(t testing.TB) []byte {
	t.Helper()
	b, err := e.MarshalCBOR()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// renderCBOR turns canonical DAG-CBOR into the readable JSON form
// described in the file's conventions.
func renderCBOR(t testing.TB, data []byte) any {
	t.Helper()
	dm, err := cbor.DecOptions{DefaultMapType: reflect.TypeOf(map[string]any(nil)), TagsMd: cbor.TagsAllowed}.DecMode()
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := dm.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	out, err := renderValue(v)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

type orderedObject []orderedField

type orderedField struct {
	k string
	v any
}

func (o orderedObject) MarshalJSON() ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteByte('{')
	for i, f := range o {
		if i > 0 {
			buf.WriteByte(',')
		}
		k, err := marshalJSON(f.k, "")
		if err != nil {
			return nil, err
		}
		v, err := marshalJSON(f.v, "")
		if err != nil {
			return nil, err
		}
		buf.Write(k)
		buf.WriteByte(':')
		buf.Write(v)
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}

func renderValue(v any) (any, error) {
	switch x := v.(type) {
	case map[string]any:
		keys := make([]kvRaw, 0, len(x))
		for k := range x {
			keys = append(keys, kvRaw{k: k})
		}
		sortCanonical(keys)
		o := make(orderedObject, 0, len(x))
		for _, k := range keys {
			r, err := renderValue(x[k.k])
			if err != nil {
				return nil, err
			}
			o = append(o, orderedField{k.k, r})
		}
		return o, nil
	case []any:
		out := make([]any, len(x))
		for i := range x {
			r, err := renderValue(x[i])
			if err != nil {
				return nil, err
			}
			out[i] = r
		}
		return out, nil
	case []byte:
		return hex.EncodeToString(x), nil
	case cbor.Tag:
		b, ok := x.Content.([]byte)
		if x.Number != cidTag || !ok || len(b) < 1 || b[0] != 0 {
			return nil, fmt.Errorf("unexpected tag %d", x.Number)
		}
		c, err := cid.Cast(b[1:])
		if err != nil {
			return nil, err
		}
		return c.String(), nil
	case string, bool, uint64, int64, nil:
		return x, nil
	}
	return nil, fmt.Errorf("unexpected CBOR value %T", v)
}

// ipldRoundTrip decodes data with go-ipld-prime's strict dag-cbor codec
// into basicnode and re-encodes it: an implementation independent of the
// one package protocol uses.
func ipldRoundTrip(data []byte) error {
	nb := basicnode.Prototype.Any.NewBuilder()
	if err := dagcbor.Decode(nb, bytes.NewReader(data)); err != nil {
		return err
	}
	var out bytes.Buffer
	if err := dagcbor.Encode(nb.Build(), &out); err != nil {
		return err
	}
	if !bytes.Equal(out.Bytes(), data) {
		return fmt.Errorf("go-ipld-prime re-encodes to different bytes")
	}
	return nil
}

// unixfsImport chunks data as IPIP-499 unixfs-v1-2025 does (CIDv1,
// sha2-256, 1 MiB chunks, 1024 links per node, raw leaves, balanced
// layout) with boxo's importer, and returns the root and the leaves.
func unixfsImport(t testing.TB, data []byte) (cid.Cid, []cid.Cid) {
	t.Helper()
	p := uio.UnixFS_v1_2025
	if mdag.DefaultPBNodeFieldOrder != p.PBNodeFieldOrder {
		t.Fatal("merkledag.DefaultPBNodeFieldOrder is not the profile's")
	}
	ds := mdtest.Mock()
	params := helpers.DagBuilderParams{Dagserv: ds, Maxlinks: p.FileDAGWidth, RawLeaves: p.RawLeaves, CidBuilder: p.CidBuilder()}
	db, err := params.New(chunker.NewSizeSplitter(bytes.NewReader(data), p.ChunkSize))
	if err != nil {
		t.Fatal(err)
	}
	root, err := balanced.Layout(db)
	if err != nil {
		t.Fatal(err)
	}
	var leaves []cid.Cid
	var walk func(c cid.Cid)
	walk = func(c cid.Cid) {
		if c.Prefix().Codec == cid.Raw {
			leaves = append(leaves, c)
			return
		}
		nd, err := ds.Get(context.Background(), c)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range nd.Links() {
			walk(l.Cid)
		}
	}
	walk(root.Cid())
	return root.Cid(), leaves
}

// ---------------------------------------------------------------------------
// The test.

func TestVectors(t *testing.T) {
	gen, err := marshalJSON(buildVectors(t), "  ")
	if err != nil {
		t.Fatal(err)
	}
	if *updateVectors {
		if err := os.WriteFile(vectorsPath, gen, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s (%d bytes)", vectorsPath, len(gen))
	}
	file, err := os.ReadFile(vectorsPath)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	t.Run("golden", func(t *testing.T) {
		if !bytes.Equal(file, gen) {
			t.Errorf("%s differs from what the code generates at line %d; if the format change is intended, run `go test ./protocol -run TestVectors -update` and review the diff", vectorsPath, firstDiffLine(file, gen))
		}
	})

	var vf struct {
		Constants   vecConstants   `json:"constants"`
		Accounts    []vecAccount   `json:"accounts"`
		Records     []vecRecord    `json:"records"`
		Envelopes   []vecEnvelope  `json:"envelopes"`
		Blocks      []vecBlock     `json:"blocks"`
		Negative    []vecNegative  `json:"negative"`
		UnixFS      []vecUnixFSCID `json:"unixfs"`
		Successions vecSuccessions `json:"successions"`
	}
	dec := json.NewDecoder(bytes.NewReader(file))
	if err := dec.Decode(&vf); err != nil {
		t.Fatalf("parse %s: %v", vectorsPath, err)
	}

	ids := map[string]*age.X25519Identity{}
	pubs := map[string]ed25519.PublicKey{}
	t.Run("accounts", func(t *testing.T) {
		for _, a := range vf.Accounts {
			seed := sha256.Sum256([]byte(a.SeedPreimage))
			if hex.EncodeToString(seed[:]) != a.Ed25519Seed {
				t.Errorf("%s: seed is not sha256 of its preimage", a.Name)
			}
			pub := ed25519.NewKeyFromSeed(seed[:]).Public().(ed25519.PublicKey)
			if hex.EncodeToString(pub) != a.Ed25519Public {
				t.Errorf("%s: public key", a.Name)
			}
			pubs[a.Name] = pub
			lpub, err := crypto.UnmarshalEd25519PublicKey(pub)
			if err != nil {
				t.Fatal(err)
			}
			pid, err := peer.IDFromPublicKey(lpub)
			if err != nil {
				t.Fatal(err)
			}
			if pid.String() != a.AccountID {
				t.Errorf("%s: account ID %s, libp2p peer ID %s", a.Name, a.AccountID, pid)
			}
			if got, err := ParseAccountID(a.AccountID); err != nil || !bytes.Equal(got, pub) {
				t.Errorf("%s: ParseAccountID: %v", a.Name, err)
			}
			if want := "08011220" + a.Ed25519Public; a.PublicKeyProtobuf != want {
				t.Errorf("%s: protobuf key", a.Name)
			}
			if want := "0024" + a.PublicKeyProtobuf; a.Multihash != want {
				t.Errorf("%s: multihash", a.Name)
			}
			id, err := age.ParseX25519Identity(a.AgeIdentity)
			if err != nil {
				t.Fatal(err)
			}
			if id.Recipient().String() != a.AgeRecipient {
				t.Errorf("%s: age recipient", a.Name)
			}
			ids[a.Name] = id
		}
	})

	blocks := map[string]*Block{}
	cids := map[string]cid.Cid{}
	t.Run("blocks", func(t *testing.T) {
		byAccount := map[string][]string{}
		for _, v := range vf.Blocks {
			enc := mustHex(t, v.Encoded)
			b, err := DecodeBlock(enc)
			if err != nil {
				t.Errorf("%s: DecodeBlock: %v", v.Name, err)
				continue
			}
			if c := BlockCID(enc); c.String() != v.CID {
				t.Errorf("%s: CID %s, file says %s", v.Name, c, v.CID)
			}
			if b.AuthorID() != AccountIDFromKey(pubs[v.Account]) || b.Seq != v.Seq {
				t.Errorf("%s: author or seq", v.Name)
			}
			sb, err := b.SigningBytes()
			if err != nil || hex.EncodeToString(sb) != v.SigningBytes {
				t.Errorf("%s: signing bytes differ: %v", v.Name, err)
			}
			if !bytes.HasPrefix(sb, []byte(BlockSignatureContext)) {
				t.Errorf("%s: signing bytes lack the context", v.Name)
			}
			if hex.EncodeToString(b.Sig) != v.Signature || !ed25519.Verify(pubs[v.Account], sb, b.Sig) {
				t.Errorf("%s: signature", v.Name)
			}
			if err := ipldRoundTrip(enc); err != nil {
				t.Errorf("%s: not canonical DAG-CBOR according to go-ipld-prime: %v", v.Name, err)
			}
			// The unsigned encoding is canonical DAG-CBOR too.
			if err := ipldRoundTrip(sb[len(BlockSignatureContext):]); err != nil {
				t.Errorf("%s: signed encoding: %v", v.Name, err)
			}
			blocks[v.Name], cids[v.Name] = b, BlockCID(enc)
			byAccount[v.Account] = append(byAccount[v.Account], v.Name)
		}
		for acct, names := range byAccount {
			for i := 1; i < len(names); i++ {
				if err := CheckSuccessor(blocks[names[i-1]], cids[names[i-1]], blocks[names[i]]); err != nil {
					t.Errorf("%s chain: %s after %s: %v", acct, names[i], names[i-1], err)
				}
			}
		}
		for name, want := range map[string]int{"bob/2": 1, "alice/4": -1, "bob/1": -1} {
			if b := blocks[name]; b != nil && b.FirstCriticalUnknown() != want {
				t.Errorf("%s: FirstCriticalUnknown = %d, want %d", name, b.FirstCriticalUnknown(), want)
			}
		}
		if b := blocks["bob/2"]; b != nil && (b.Entries[0].Body != nil || b.Entries[0].Type != "x-example-note" || b.Entries[0].Critical) {
			t.Errorf("bob/2: unknown entry not kept as unknown")
		}
		// The entries say what the notes say.
		if b := blocks["alice/2"]; b != nil {
			g, ok := b.Entries[0].Body.(*Grant)
			if !ok || !bytes.Equal(g.To, pubs["bob"]) || g.Expires != tGrantUntil {
				t.Errorf("alice/2: not a grant to bob with the expiry")
			}
		}
		if b := blocks["alice/4"]; b != nil {
			a, ok := b.Entries[0].Body.(*Ack)
			if !ok || !a.Block.Equals(cids["bob/1"]) || !bytes.Equal(a.Author, pubs["bob"]) {
				t.Errorf("alice/4: ack does not link bob/1")
			}
		}
	})

	t.Run("negative", func(t *testing.T) {
		for _, v := range vf.Negative {
			enc := mustHex(t, v.Encoded)
			if got := ipldRoundTrip(enc) == nil; got != v.DagCBORCanonical {
				t.Errorf("%s: dag_cbor_canonical is %v, go-ipld-prime says %v", v.Name, v.DagCBORCanonical, got)
			}
			b, err := DecodeBlock(enc)
			switch v.Check {
			case "DecodeBlock":
				if err == nil {
					t.Errorf("%s: DecodeBlock accepted it", v.Name)
				} else if !strings.Contains(err.Error(), v.GoError) {
					t.Errorf("%s: DecodeBlock: %v; want an error containing %q", v.Name, err, v.GoError)
				}
			case "CheckSuccessor":
				if err != nil {
					t.Errorf("%s: DecodeBlock: %v (the block itself must be valid)", v.Name, err)
					continue
				}
				prev := blocks[v.After]
				if prev == nil {
					t.Fatalf("%s: no positive block %q", v.Name, v.After)
				}
				err := CheckSuccessor(prev, cids[v.After], b)
				if err == nil {
					t.Errorf("%s: CheckSuccessor accepted it after %s", v.Name, v.After)
				} else if !strings.Contains(err.Error(), v.GoError) {
					t.Errorf("%s: CheckSuccessor: %v; want an error containing %q", v.Name, err, v.GoError)
				}
				if v.ForkOf != "" {
					other := blocks[v.ForkOf]
					if other == nil || !bytes.Equal(other.Author, b.Author) || other.Seq != b.Seq || cids[v.ForkOf].Equals(BlockCID(enc)) {
						t.Errorf("%s: not a fork of %s", v.Name, v.ForkOf)
					}
				}
			default:
				t.Errorf("%s: unknown check %q", v.Name, v.Check)
			}
		}
	})

	t.Run("successions", func(t *testing.T) {
		succ := vecSuccessorKey().Public().(ed25519.PublicKey)
		if vf.Successions.Context != SuccessorBlockSignatureContext || vf.Successions.SuccessorPublic != hex.EncodeToString(succ) {
			t.Fatal("successions: context or successor key")
		}
		prev, prevCID := blocks["alice/6"], cids["alice/6"]
		for _, v := range vf.Successions.Blocks {
			enc := mustHex(t, v.Encoded)
			b, err := DecodeBlock(enc)
			if err != nil {
				t.Fatalf("%s: DecodeBlock: %v", v.Name, err)
			}
			if BlockCID(enc).String() != v.CID || b.AuthorID() != AccountIDFromKey(pubs["alice"]) {
				t.Errorf("%s: CID or author", v.Name)
			}
			if prev != nil {
				if err := CheckSuccessor(prev, prevCID, b); err != nil {
					t.Errorf("%s: %v", v.Name, err)
				}
			}
			sb, _ := b.SigningBytes()
			signer, ctx := pubs["alice"], BlockSignatureContext
			if b.Version == BlockVersionSuccessor {
				signer, ctx = succ, SuccessorBlockSignatureContext
			}
			if !bytes.HasPrefix(sb, []byte(ctx)) || !ed25519.Verify(signer, sb, b.Sig) || hex.EncodeToString(sb) != v.SigningBytes {
				t.Errorf("%s: signature or signing bytes", v.Name)
			}
			if s := b.Succession(); s != nil && (!bytes.Equal(s.Key, succ) || !b.Entries[0].Critical) {
				t.Errorf("%s: succession entry", v.Name)
			}
			prev, prevCID = b, BlockCID(enc)
		}
		for _, v := range vf.Successions.Negative {
			_, err := DecodeBlock(mustHex(t, v.Encoded))
			if err == nil || !strings.Contains(err.Error(), v.GoError) {
				t.Errorf("%s: DecodeBlock: %v; want an error containing %q", v.Name, err, v.GoError)
			}
		}
	})

	t.Run("records", func(t *testing.T) {
		envs := map[string]vecEnvelope{}
		for _, e := range vf.Envelopes {
			envs[e.Name] = e
		}
		for _, r := range vf.Records {
			ct := mustHex(t, r.Ciphertext)
			if rawCID(ct).String() != r.CID {
				t.Errorf("%s: CID", r.Name)
			}
			key, err := age.ParseX25519Identity(r.RecordKey)
			if err != nil {
				t.Fatal(err)
			}
			if key.Recipient().String() != r.RecordRecipient {
				t.Errorf("%s: record recipient", r.Name)
			}
			if got := ageDecrypt(t, ct, key); string(got) != r.Content {
				t.Errorf("%s: ciphertext decrypts to %q", r.Name, got)
			}
			plain := ageDecrypt(t, mustHex(t, r.SealedEnvelope), key)
			ev := envs[r.Envelope]
			if hex.EncodeToString(plain) != ev.Plaintext {
				t.Errorf("%s: sealed envelope does not decrypt to envelopes[%s].plaintext_hex", r.Name, r.Envelope)
			}
			env, err := ParseEnvelope(plain)
			if err != nil {
				t.Errorf("%s: ParseEnvelope: %v", r.Name, err)
			} else {
				again, err := env.Header()
				if err != nil || !bytes.Equal(again, plain) {
					t.Errorf("%s: envelope does not re-encode: %v", r.Name, err)
				}
				if !bytes.Equal(env.Author, pubs[r.Author]) || !bytes.Equal(env.Subject, pubs[r.Subject]) {
					t.Errorf("%s: envelope author or subject", r.Name)
				}
				if env.Kind == KindFHIR {
					if _, err := ValidateFHIR([]byte(r.Content)); err != nil {
						t.Errorf("%s: %v", r.Name, err)
					}
				}
			}
			if err := ipldRoundTrip(mustHex(t, ev.Header)); err != nil {
				t.Errorf("%s: envelope header: %v", r.Name, err)
			}
			for _, w := range r.WrappedKeys {
				got := ageDecrypt(t, mustHex(t, w.AgeFile), ids[w.To])
				if string(got) != r.RecordKey {
					t.Errorf("%s: key wrapped for %s unwraps to %q", r.Name, w.To, got)
				}
				if k, to := wrappedKeyAt(t, blocks, w.Where); hex.EncodeToString(k) != w.AgeFile || !bytes.Equal(to, pubs[w.To]) {
					t.Errorf("%s: key wrapped for %s is not at %s", r.Name, w.To, w.Where)
				}
			}
			// The record entry carries this CID, meta and these keys.
			b := blocks[strings.Fields(r.Entry)[0]]
			if b == nil {
				t.Fatalf("%s: no block for %q", r.Name, r.Entry)
			}
			rec, ok := b.Entries[0].Body.(*Record)
			if !ok || rec.Record.String() != r.CID || hex.EncodeToString(rec.Meta) != r.SealedEnvelope ||
				!bytes.Equal(rec.Subject, pubs[r.Subject]) || !bytes.Equal(b.Author, pubs[r.Author]) {
				t.Errorf("%s: record entry in %s does not match", r.Name, r.Entry)
			}
		}
	})

	t.Run("unixfs", func(t *testing.T) {
		for _, u := range vf.UnixFS {
			var data []byte
			switch u.Name {
			case "r1-ciphertext":
				data = mustHex(t, vf.Records[0].Ciphertext)
				if u.Root != vf.Records[0].CID {
					t.Errorf("%s: root differs from the record CID", u.Name)
				}
			default:
				data = vecStream(u.Size)
			}
			sum := sha256.Sum256(data)
			if hex.EncodeToString(sum[:]) != u.SHA256 {
				t.Errorf("%s: content hash", u.Name)
			}
			root, leaves := unixfsImport(t, data)
			if root.String() != u.Root || len(leaves) != len(u.Leaves) {
				t.Errorf("%s: root %s with %d leaves", u.Name, root, len(leaves))
			}
			for i, l := range leaves {
				chunk := data[i*1048576 : min(len(data), (i+1)*1048576)]
				if i < len(u.Leaves) && (l.String() != u.Leaves[i] || !l.Equals(rawCID(chunk))) {
					t.Errorf("%s: leaf %d", u.Name, i)
				}
			}
		}
	})
}

// marshalJSON encodes v without escaping <, > and &, indented when indent
// is not empty, with a final newline only when indented.
func marshalJSON(v any, indent string) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if indent != "" {
		enc.SetIndent("", indent)
	}
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	if indent == "" {
		return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
	}
	return buf.Bytes(), nil
}

// wrappedKeyAt returns the wrapped key at "<block> entries[i].body.keys[j]"
// and the account it is for.
func wrappedKeyAt(t testing.TB, blocks map[string]*Block, where string) (key, to []byte) {
	t.Helper()
	var name string
	var i, j int
	if _, err := fmt.Sscanf(where, "%s entries[%d].body.keys[%d]", &name, &i, &j); err != nil {
		t.Fatalf("where %q: %v", where, err)
	}
	b := blocks[name]
	if b == nil || i >= len(b.Entries) {
		t.Fatalf("where %q: no such entry", where)
	}
	switch body := b.Entries[i].Body.(type) {
	case *Record:
		if j < len(body.Keys) {
			return body.Keys[j].Key, body.Keys[j].To
		}
	case *Grant:
		if j < len(body.Keys) {
			return body.Keys[j].Key, body.To
		}
	}
	t.Fatalf("where %q: no such key", where)
	return nil, nil
}

func ageDecrypt(t testing.TB, file []byte, id age.Identity) []byte {
	t.Helper()
	r, err := age.Decrypt(bytes.NewReader(file), id)
	if err != nil {
		t.Fatalf("age: %v", err)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("age: %v", err)
	}
	return b
}

func firstDiffLine(a, b []byte) int {
	la, lb := bytes.Split(a, []byte("\n")), bytes.Split(b, []byte("\n"))
	for i := range min(len(la), len(lb)) {
		if !bytes.Equal(la[i], lb[i]) {
			return i + 1
		}
	}
	return min(len(la), len(lb)) + 1
}

// vectorPeerID is the binary peer ID of the Ed25519 key seeded with
// sha256(vecSeedPrefix + name).
func vectorPeerID(t testing.TB, name string) []byte {
	t.Helper()
	seed := sha256.Sum256([]byte(vecSeedPrefix + name))
	pub := ed25519.NewKeyFromSeed(seed[:]).Public().(ed25519.PublicKey)
	b, err := ParsePeerID(string(AccountIDFromKey(pub)))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// vecSuccessorPreimage: the successor key's seed is its sha256.
const vecSuccessorPreimage = vecSeedPrefix + "alice successor"

func vecSuccessorKey() ed25519.PrivateKey {
	seed := sha256.Sum256([]byte(vecSuccessorPreimage))
	return ed25519.NewKeyFromSeed(seed[:])
}

func buildSuccessions(t testing.TB, alice *vecAcct, alice6 *vecSigned) vecSuccessions {
	t.Helper()
	succ := vecSuccessorKey()
	succPub := succ.Public().(ed25519.PublicKey)
	l6 := NewLink(alice6.cid)
	b7 := &Block{Seq: 7, Prev: &l6, Time: tAlice6 + 1000, Entries: []Entry{NewSuccessionEntry(&Succession{Key: succPub})}}
	enc7, c7, err := b7.Sign(alice.priv)
	if err != nil {
		t.Fatal(err)
	}
	l7 := NewLink(c7)
	r1 := rawCID(mustB64(t, vecRecordInputs[0].ciphertext))
	b8 := &Block{Seq: 8, Prev: &l7, Time: tAlice6 + 2000, Entries: []Entry{NewEntry(&Hide{Records: []Link{NewLink(r1)}})}}
	enc8, c8, err := b8.SignAs(alice.pub, succ)
	if err != nil {
		t.Fatal(err)
	}
	out := vecSuccessions{
		Context: SuccessorBlockSignatureContext, ContextHex: hex.EncodeToString([]byte(SuccessorBlockSignatureContext)),
		SuccessorSeedPre: vecSuccessorPreimage, SuccessorPublic: hex.EncodeToString(succPub),
	}
	for _, p := range []struct {
		b     *Block
		enc   []byte
		c     cid.Cid
		notes []string
	}{
		{b7, enc7, c7, []string{"Version 1, signed by alice's account key: entry 0 is a succession (critical, the first entry of its block) naming the successor key. A verifier that does not know successions stops applying alice's chain here.", "Time " + utc(b7.Time) + "."}},
		{b8, enc8, c8, []string{"Version 2: author is still alice's account key (her ID does not change), signer the successor, and the signature covers successor_block_signature_context || the encoding without sig. A version-1 verifier rejects it (unsupported version). Entry: hide r1.", "Time " + utc(b8.Time) + "."}},
	} {
		sb, err := p.b.SigningBytes()
		if err != nil {
			t.Fatal(err)
		}
		out.Blocks = append(out.Blocks, vecBlock{Name: fmt.Sprintf("alice/%d", p.b.Seq), Account: "alice", Seq: p.b.Seq,
			Encoded: hex.EncodeToString(p.enc), CID: p.c.String(), SigningBytes: hex.EncodeToString(sb), Signature: hex.EncodeToString(p.b.Sig),
			Decoded: renderCBOR(t, p.enc), Notes: p.notes})
	}
	p8 := mapPairs(t, enc8)
	clone := func(p []kvRaw) []kvRaw { return append([]kvRaw(nil), p...) }
	add := func(n vecNegative, enc []byte) {
		n.Encoded = hex.EncodeToString(enc)
		n.DagCBORCanonical = ipldRoundTrip(enc) == nil
		out.Negative = append(out.Negative, n)
	}
	one, _ := marshal(1)
	add(vecNegative{Name: "alice/8 under the v1 context", Check: "DecodeBlock",
		Description: "alice/8 signed by the successor over block_signature_context (v1) instead of the successor context.",
		Expect:      "bad signature (the contexts are distinct)", GoError: "bad signature"}, resign(t, succ, p8, true))
	add(vecNegative{Name: "alice/8 as version 1 with a signer", Check: "DecodeBlock",
		Description: "alice/8 with v = 1 but the signer field kept, signed by alice's key over the v1 context.",
		Expect:      "a version-1 block has no signer", GoError: "version 1 has no signer field"}, resign(t, alice.priv, setPair(clone(p8), "v", one), true))
	authorAsSigner, _ := marshal([]byte(alice.pub))
	add(vecNegative{Name: "alice/8 signer = author", Check: "DecodeBlock",
		Description: "alice/8 (v = 2) naming alice's own key as signer.",
		Expect:      "a version-2 block is signed by another key than the author's", GoError: "signed by a key other than the author's"}, writeMap(t, setPair(clone(p8), "signer", authorAsSigner)))
	noCrit := &Block{Seq: 7, Prev: &l6, Time: tAlice6 + 1000, Entries: []Entry{NewEntry(&Succession{Key: succPub})}}
	noCrit.Version, noCrit.Author = BlockVersion, alice.pub
	pairs := mapPairs(t, mustMarshal(t, noCrit))
	add(vecNegative{Name: "alice/7 succession not critical", Check: "DecodeBlock",
		Description: "alice/7 with its succession entry not marked critical, signed by alice's key.",
		Expect:      "a succession entry must be critical", GoError: "must be critical"}, resign(t, alice.priv, pairs, true))
	return out
}

func mustMarshal(t testing.TB, v any) []byte {
	t.Helper()
	b, err := marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
