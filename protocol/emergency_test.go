package protocol

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"

	"filippo.io/age"
)

// detRand is a deterministic byte stream (SHA-256 in counter mode) for
// the pack ID and nonce.
type detRand struct {
	seed []byte
	n    uint64
	buf  []byte
}

func (d *detRand) Read(p []byte) (int, error) {
	for i := range p {
		if len(d.buf) == 0 {
			h := sha256.Sum256(append(append([]byte(nil), d.seed...), byte(d.n), byte(d.n>>8), byte(d.n>>16)))
			d.n++
			d.buf = h[:]
		}
		p[i] = d.buf[0]
		d.buf = d.buf[1:]
	}
	return len(p), nil
}

const emergencySummary = `{"resourceType":"Bundle","type":"document","entry":[{"resource":{"resourceType":"AllergyIntolerance","code":{"text":"Penicillin"}}}]}`

// testPack builds a 2-of-3 pack of seedKey("patient") for custodians
// c1, c2, c3 with a deterministic random stream; the share values are
// returned in clear alongside.
func testPack(t testing.TB) (*EmergencyPack, [][]byte) {
	t.Helper()
	rnd := &detRand{seed: []byte("blockmrs emergency vector")}
	id := make([]byte, EmergencyIDSize)
	_, _ = rnd.Read(id)
	split, err := SealEmergency(rnd, id, []byte(emergencySummary), 2, 3)
	if err != nil {
		t.Fatal(err)
	}
	p := &EmergencyPack{ID: id, Title: "Emergency summary", MediaType: "application/fhir+json", Threshold: 2,
		Until: 1798761600000, Window: 24 * 3600 * 1000, Commit: split.Commit, Sealed: split.Sealed}
	for i, name := range []string{"c1", "c2", "c3"} {
		// The share files stand for age files; vectors keep the values
		// in clear beside them.
		node, _ := ParsePeerID("12D3KooWGzh3Dk9Ue7ceMDyv7Co5ybDXdEWnJ5S4zfM9pm4MhBnf")
		p.Shares = append(p.Shares, EmergencyShare{To: pub(seedKey(name)), Index: uint64(i + 1), Share: []byte("age file of share " + name), Nodes: [][]byte{node}})
	}
	return p, split.Values
}

func TestEmergencyThreshold(t *testing.T) {
	p, vals := testPack(t)
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, pair := range [][2]uint64{{1, 2}, {1, 3}, {2, 3}} {
		got, err := p.OpenEmergency(map[uint64][]byte{pair[0]: vals[pair[0]-1], pair[1]: vals[pair[1]-1]})
		if err != nil || string(got) != emergencySummary {
			t.Fatalf("shares %v: %q, %v", pair, got, err)
		}
	}
	for i := range uint64(3) {
		if _, err := p.OpenEmergency(map[uint64][]byte{i + 1: vals[i]}); err == nil || !strings.Contains(err.Error(), "1 share(s) of the 2 needed") {
			t.Fatalf("one share (%d) opened the pack: %v", i+1, err)
		}
	}
	bad := bytes.Clone(vals[1])
	bad[0] ^= 1
	if _, err := p.OpenEmergency(map[uint64][]byte{1: vals[0], 2: bad}); !errors.Is(err, ErrEmergencyShare) && (err == nil || !strings.Contains(err.Error(), "scalar")) {
		t.Fatalf("a wrong share was not detected: %v", err)
	}
	// A share presented under another index does not match either.
	if _, err := p.OpenEmergency(map[uint64][]byte{1: vals[0], 3: vals[1]}); !errors.Is(err, ErrEmergencyShare) {
		t.Fatalf("a share under the wrong index: %v", err)
	}
}

func TestEmergencyValidateRefuses(t *testing.T) {
	cases := map[string]func(p *EmergencyPack){
		"threshold 1":       func(p *EmergencyPack) { p.Threshold = 1 },
		"threshold over n":  func(p *EmergencyPack) { p.Threshold = 4 },
		"no expiry":         func(p *EmergencyPack) { p.Until = 0 },
		"no window":         func(p *EmergencyPack) { p.Window = 0 },
		"custodian twice":   func(p *EmergencyPack) { p.Shares[1].To = p.Shares[0].To },
		"index out of line": func(p *EmergencyPack) { p.Shares[2].Index = 7 },
		"short id":          func(p *EmergencyPack) { p.ID = p.ID[:4] },
		"bad commitment":    func(p *EmergencyPack) { p.Commit[0] = bytes.Repeat([]byte{0xff}, 32) },
		"commit count":      func(p *EmergencyPack) { p.Commit = p.Commit[:1] },
		"sealed too short":  func(p *EmergencyPack) { p.Sealed = p.Sealed[:8] },
		"no title":          func(p *EmergencyPack) { p.Title = "" },
		"media type":        func(p *EmergencyPack) { p.MediaType = "json" },
	}
	for name, mod := range cases {
		p, _ := testPack(t)
		mod(p)
		if err := p.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := SealEmergency(&detRand{}, make([]byte, EmergencyIDSize), nil, 1, 3); err == nil {
		t.Error("SealEmergency accepted threshold 1")
	}
	if _, err := SealEmergency(&detRand{}, make([]byte, EmergencyIDSize), make([]byte, MaxEmergencySealed), 2, 3); err == nil {
		t.Error("SealEmergency accepted an oversized summary")
	}
}

func TestEmergencyEntryRoundTrip(t *testing.T) {
	p, _ := testPack(t)
	prev := BlockCID([]byte("prev"))
	b := &Block{Seq: 1, Prev: &Link{prev}, Time: 1, Entries: []Entry{NewEntry(p), NewEntry(&EmergencyEnd{ID: bytes.Repeat([]byte{1}, EmergencyIDSize)})}}
	enc, _, err := b.Sign(seedKey("patient"))
	if err != nil {
		t.Fatal(err)
	}
	back, err := DecodeBlock(enc)
	if err != nil {
		t.Fatal(err)
	}
	got, ok := back.Entries[0].Body.(*EmergencyPack)
	if !ok || !bytes.Equal(got.Sealed, p.Sealed) || got.Threshold != 2 || back.Entries[0].Critical {
		t.Fatalf("pack did not round-trip: %+v", back.Entries[0])
	}
	if _, ok := back.Entries[1].Body.(*EmergencyEnd); !ok {
		t.Fatalf("end did not round-trip: %+v", back.Entries[1])
	}
}

func TestEmergencyRequestSignature(t *testing.T) {
	clin := seedKey("clinician")
	ident, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	rec := ident.Recipient().String()
	q := &EmergencyRequest{Recipient: rec, Patient: pub(seedKey("patient")),
		Pack: bytes.Repeat([]byte{7}, EmergencyIDSize), Reason: "unconscious in A&E", Created: 1, Nonce: bytes.Repeat([]byte{9}, RequestNonceSize)}
	enc, err := q.Sign(clin)
	if err != nil {
		t.Fatal(err)
	}
	back, err := DecodeEmergencyRequest(enc)
	if err != nil || back.ClinicianID() != AccountIDFromKey(pub(clin)) || back.Reason != q.Reason {
		t.Fatalf("%+v, %v", back, err)
	}
	// A signature over other content fails: flip a byte of the reason.
	tampered := bytes.Replace(enc, []byte("A&E"), []byte("A&F"), 1)
	if _, err := DecodeEmergencyRequest(tampered); err == nil || !strings.Contains(err.Error(), "bad signature") {
		t.Fatalf("tampered request: %v", err)
	}
	// Someone else's key signing as the clinician: the signature is by
	// the signer, so Clinician becomes the signer.
	noReason := *q
	noReason.Reason = ""
	if _, err := noReason.Sign(clin); err == nil {
		t.Fatal("a request without a reason was signed")
	}
}

func pub(k ed25519.PrivateKey) []byte { return k.Public().(ed25519.PublicKey) }

// emergencyVector is testdata/emergency.json: a pack whose share values
// are given in clear, so another implementation can recover the secret,
// derive the key and open the summary. circl draws the secret and the
// polynomial from crypto/rand whatever reader it is given, so the file is
// made once with -update and then checked, not regenerated.
type emergencyVector struct {
	Comment   string   `json:"comment"`
	PackHex   string   `json:"pack_cbor_hex"`
	Shares    []string `json:"share_values_hex"`
	Summary   string   `json:"summary"`
	Info      string   `json:"hkdf_info"`
	Threshold uint64   `json:"threshold"`
}

func TestEmergencyVector(t *testing.T) {
	p, vals := testPack(t)
	enc, err := marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	v := emergencyVector{Comment: "BlockMRS emergency pack test vector (PROTOCOL.md §5.12): recover the secret from any 2 shares (Shamir over ristretto255, x = index), key = HKDF-SHA-256(secret, salt = id, info), open sealed = nonce(24) || XChaCha20-Poly1305 with additional data id. Made with go test ./protocol -run TestEmergencyVector -update.",
		PackHex: hex.EncodeToString(enc), Summary: emergencySummary, Info: EmergencySummaryInfo, Threshold: 2}
	for _, s := range vals {
		v.Shares = append(v.Shares, hex.EncodeToString(s))
	}
	const path = "testdata/emergency.json"
	if *updateVectors {
		gen, _ := json.MarshalIndent(v, "", "  ")
		if err := os.WriteFile(path, append(gen, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	file, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	// Check the file on its own: decode the pack and open it from the
	// listed shares.
	var got emergencyVector
	if err := json.Unmarshal(file, &got); err != nil {
		t.Fatal(err)
	}
	raw, _ := hex.DecodeString(got.PackHex)
	var back EmergencyPack
	if err := unmarshalStrict(raw, &back); err != nil {
		t.Fatal(err)
	}
	s1, _ := hex.DecodeString(got.Shares[0])
	s3, _ := hex.DecodeString(got.Shares[2])
	out, err := back.OpenEmergency(map[uint64][]byte{1: s1, 3: s3})
	if err != nil || string(out) != got.Summary {
		t.Fatalf("vector does not open: %q, %v", out, err)
	}
}

func TestEmergencyNotice(t *testing.T) {
	ident, _ := age.GenerateX25519Identity()
	pack := bytes.Repeat([]byte{7}, EmergencyIDSize)
	q := &EmergencyRequest{Recipient: ident.Recipient().String(), Patient: pub(seedKey("patient")), Pack: pack,
		Reason: "unconscious", Created: 1, Nonce: bytes.Repeat([]byte{9}, RequestNonceSize)}
	req, err := q.Sign(seedKey("clinician"))
	if err != nil {
		t.Fatal(err)
	}
	n := &EmergencyNotice{Request: req, Pack: pack, Given: true, Rule: "emergency/share", Decided: 2}
	enc, err := n.Sign(seedKey("c1"))
	if err != nil {
		t.Fatal(err)
	}
	back, bq, err := DecodeEmergencyNotice(enc)
	if err != nil || !back.Given || bq.Reason != "unconscious" || AccountIDFromKey(back.Custodian) != AccountIDFromKey(pub(seedKey("c1"))) {
		t.Fatalf("%+v %+v %v", back, bq, err)
	}
	// The custodian's signature covers the decision: flip given.
	flipped := *back
	flipped.Given = false
	raw, _ := marshal(&flipped)
	if _, _, err := DecodeEmergencyNotice(raw); err == nil || !strings.Contains(err.Error(), "bad signature") {
		t.Fatalf("a notice with its decision changed: %v", err)
	}
	// A notice naming another pack than its request is refused.
	other := &EmergencyNotice{Request: req, Pack: bytes.Repeat([]byte{8}, EmergencyIDSize), Rule: "x", Decided: 2}
	if _, err := other.Sign(seedKey("c1")); err == nil {
		t.Fatal("a notice about another pack was signed")
	}
	// The request inside is checked too.
	bad := bytes.Clone(req)
	bad[len(bad)-1] ^= 1
	n2 := &EmergencyNotice{Request: bad, Pack: pack, Rule: "x", Decided: 2}
	if _, err := n2.Sign(seedKey("c1")); err == nil {
		t.Fatal("a notice quoting a forged request was signed")
	}
}

func TestEmergencyFrameLimits(t *testing.T) {
	ok := &EmergencyFrame{Kind: EmFrameAnswer, Rule: "emergency/share", Shares: []EmergencyGiven{{Custodian: pub(seedKey("c1")), Index: 1, Share: []byte("x")}}}
	enc, err := EncodeEmergencyFrame(ok)
	if err != nil {
		t.Fatal(err)
	}
	if back, err := DecodeEmergencyFrame(enc); err != nil || len(back.Shares) != 1 {
		t.Fatalf("%+v %v", back, err)
	}
	bad := []*EmergencyFrame{
		{Kind: "steal"},
		{Kind: EmFrameAnswer, Shares: []EmergencyGiven{{Custodian: []byte("short"), Index: 1, Share: []byte("x")}}},
		{Kind: EmFrameAnswer, Shares: make([]EmergencyGiven, MaxEmergencyCustodian+1)},
	}
	for i, f := range bad {
		if _, err := EncodeEmergencyFrame(f); err == nil {
			t.Errorf("bad frame %d encoded", i)
		}
	}
	if _, err := DecodeEmergencyFrame(make([]byte, MaxEmergencyFrame+1)); err == nil {
		t.Error("an oversized frame decoded")
	}
	long := &EmergencyFrame{Kind: EmFrameError, Error: strings.Repeat("é", MaxReasonLen)}
	if _, err := EncodeEmergencyFrame(long); err != nil {
		t.Errorf("a long error is cut, not refused: %v", err)
	}
}

func FuzzDecodeEmergency(f *testing.F) {
	p, _ := testPack(f)
	enc, _ := marshal(p)
	f.Add(enc)
	fr, _ := EncodeEmergencyFrame(&EmergencyFrame{Kind: EmFrameOK})
	f.Add(fr)
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = DecodeEmergencyFrame(data)
		_, _ = DecodeEmergencyRequest(data)
		_, _, _ = DecodeEmergencyNotice(data)
		var back EmergencyPack
		if unmarshalStrict(data, &back) == nil && back.Validate() == nil {
			_, _ = back.OpenEmergency(map[uint64][]byte{1: make([]byte, 32), 2: make([]byte, 32)})
		}
	})
}
