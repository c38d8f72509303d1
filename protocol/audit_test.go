package protocol

// Audit entries (PROTOCOL.md, "Audit log and reports"): golden vectors in
// testdata/audit.json (rewrite with go test ./protocol -run
// TestAuditVectors -update), strict decoding, and a fuzzer for the
// decoder.

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"strings"
	"testing"
)

const auditVectorsPath = "testdata/audit.json"

type auditVector struct {
	Name string `json:"name"`
	// Encoding is the entry (hex); Hash its SHA-256, which the next
	// entry's prev holds; SigningBytes what the node signs.
	Encoding     string `json:"encoding"`
	Hash         string `json:"hash,omitempty"`
	SigningBytes string `json:"signing_bytes,omitempty"`
	// Error, for a negative vector, is a fragment of the error a decoder
	// of this implementation gives.
	Error string `json:"error,omitempty"`
}

type auditVectors struct {
	Comment  string        `json:"comment"`
	Node     string        `json:"node"`
	NodeID   string        `json:"node_id"`
	Positive []auditVector `json:"positive"`
	Negative []auditVector `json:"negative"`
	Ack      string        `json:"ack"`
}

func auditVectorInputs(t *testing.T) auditVectors {
	seed := sha256.Sum256([]byte(vecSeedPrefix + "node"))
	priv := ed25519.NewKeyFromSeed(seed[:])
	aliceSeed := sha256.Sum256([]byte(vecSeedPrefix + "alice"))
	bobSeed := sha256.Sum256([]byte(vecSeedPrefix + "bob"))
	alice := AccountIDFromKey(ed25519.NewKeyFromSeed(aliceSeed[:]).Public().(ed25519.PublicKey))
	bob := AccountIDFromKey(ed25519.NewKeyFromSeed(bobSeed[:]).Public().(ed25519.PublicKey))
	rec := BlockCID([]byte{0xa0})
	sign := func(e *AuditEntry) []byte {
		enc, err := e.Sign(priv)
		if err != nil {
			t.Fatal(err)
		}
		return enc
	}
	pos := func(name string, enc []byte, e *AuditEntry) auditVector {
		sb, err := e.SigningBytes()
		if err != nil {
			t.Fatal(err)
		}
		return auditVector{Name: name, Encoding: hex.EncodeToString(enc), Hash: hex.EncodeToString(AuditHash(enc)), SigningBytes: hex.EncodeToString(sb)}
	}
	first := &AuditEntry{Version: AuditVersion, Seq: 0, Time: 1764590400000, Kind: "grant", Account: string(bob), Subject: string(alice),
		Records: []Link{NewLink(rec)}, Reason: "granted in chain block " + rec.String()}
	firstEnc := sign(first)
	second := &AuditEntry{Version: AuditVersion, Seq: 1, Prev: AuditHash(firstEnc), Time: 1764590460000, Kind: "serve", Account: string(bob),
		Peer: string(bob), Subject: string(alice), Records: []Link{NewLink(rec)}, Rule: "read/grantee", Reason: "holds a live grant"}
	secondEnc := sign(second)
	// The second entry as the patient's node keeps it: its own entry 0
	// holding the report.
	kept := &AuditEntry{Version: AuditVersion, Seq: 0, Time: second.Time, Kind: second.Kind, Account: second.Account, Peer: second.Peer,
		Subject: second.Subject, Records: second.Records, Rule: second.Rule, Reason: second.Reason, Report: secondEnc}
	keptEnc := sign(kept)

	flipped := bytes.Replace(secondEnc, []byte("read/grantee"), []byte("read/GRANTEE"), 1)
	unsigned := *second
	unsigned.Sig = nil
	unsignedEnc, err := marshal(&unsigned)
	if err != nil {
		t.Fatal(err)
	}
	noPrev := *second
	noPrev.Prev = nil
	noPrevEnc, err := marshal(&noPrev)
	if err != nil {
		t.Fatal(err)
	}
	unknown, err := marshal(map[string]any{"v": 1, "seq": 0, "extra": 1})
	if err != nil {
		t.Fatal(err)
	}
	ack, err := EncodeAuditAck(AuditAck{Stored: 1, Last: 1})
	if err != nil {
		t.Fatal(err)
	}
	return auditVectors{
		Comment: "Audit entries, PROTOCOL.md \"Audit log and reports\". node is the Ed25519 public key of the node keeping the log (seed sha256(prefix+\"node\")); alice and bob are the accounts of vectors.json; the record is the CID of the byte 0xa0 as a dag-cbor block. The third positive entry is the patient's node keeping the second, reported to it.",
		Node:    hex.EncodeToString(priv.Public().(ed25519.PublicKey)),
		NodeID:  string(AccountIDFromKey(priv.Public().(ed25519.PublicKey))),
		Positive: []auditVector{
			pos("grant, first entry", firstEnc, first),
			pos("serve, linking the first", secondEnc, second),
			pos("a report kept", keptEnc, kept),
		},
		Negative: []auditVector{
			{Name: "edited after signing", Encoding: hex.EncodeToString(flipped), Error: "bad signature"},
			{Name: "unsigned", Encoding: hex.EncodeToString(unsignedEnc), Error: "no signature"},
			{Name: "no previous-entry hash after the first", Encoding: hex.EncodeToString(noPrevEnc), Error: "previous-entry hash"},
			{Name: "unknown field", Encoding: hex.EncodeToString(unknown), Error: "unknown field"},
		},
		Ack: hex.EncodeToString(ack),
	}
}

func TestAuditVectors(t *testing.T) {
	want := auditVectorInputs(t)
	got, err := json.MarshalIndent(want, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	if *updateVectors {
		if err := os.WriteFile(auditVectorsPath, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	stored, err := os.ReadFile(auditVectorsPath)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(stored, got) {
		t.Fatalf("%s differs from what the code produces; run with -update after an intended change", auditVectorsPath)
	}
	var v auditVectors
	if err := json.Unmarshal(stored, &v); err != nil {
		t.Fatal(err)
	}
	var prev []byte
	for i, p := range v.Positive {
		enc, _ := hex.DecodeString(p.Encoding)
		e, err := DecodeAuditEntry(enc)
		if err != nil {
			t.Fatalf("%s: %v", p.Name, err)
		}
		if err := checkCanonicalAny(enc); err != nil {
			t.Fatalf("%s: %v", p.Name, err)
		}
		if hex.EncodeToString(AuditHash(enc)) != p.Hash || string(e.NodeID()) != v.NodeID {
			t.Fatalf("%s: hash or node differs", p.Name)
		}
		if i == 1 && !bytes.Equal(e.Prev, prev) {
			t.Fatalf("%s does not link the first entry", p.Name)
		}
		prev = AuditHash(enc)
	}
	for _, n := range v.Negative {
		enc, _ := hex.DecodeString(n.Encoding)
		if _, err := DecodeAuditEntry(enc); err == nil || !strings.Contains(err.Error(), n.Error) {
			t.Fatalf("%s: %v, want an error with %q", n.Name, err, n.Error)
		}
	}
	ack, _ := hex.DecodeString(v.Ack)
	if a, err := DecodeAuditAck(ack); err != nil || a.Stored != 1 || a.Last != 1 {
		t.Fatalf("ack: %+v, %v", a, err)
	}
}

func FuzzDecodeAuditEntry(f *testing.F) {
	for _, p := range auditVectorInputs(&testing.T{}).Positive {
		enc, _ := hex.DecodeString(p.Encoding)
		f.Add(enc)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := DecodeAuditEntry(data)
		if err != nil {
			return
		}
		// What decodes re-signs to the same bytes' shape: it validates.
		if err := e.validate(); err != nil {
			t.Fatalf("decoded an entry that does not validate: %v", err)
		}
	})
}
