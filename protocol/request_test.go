package protocol

// Tests of access requests and answers, and their test vectors:
// testdata/requests.json is rebuilt from fixed inputs on every run and
// compared byte for byte (a golden test, like vectors.json). After an
// intended format change, rewrite it with
//
//	go test ./protocol -run TestRequestVectors -update

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"sort"
	"strings"
	"testing"

	"github.com/ipfs/go-cid"
)

const requestVectorsPath = "testdata/requests.json"

// Fixed inputs of the request vectors.
const (
	tRequest = 1768521600000 // 2026-01-16
	tAnswer  = 1768608000000 // 2026-01-17
)

func vecNonce() []byte {
	s := sha256.Sum256([]byte("blockmrs request vector nonce"))
	return s[:RequestNonceSize]
}

// vecRequestRecord stands for a record CID (the raw CID of a fixed text).
func vecRequestRecord() cid.Cid { return rawCID([]byte("blockmrs request vector record")) }

// vecSuccessor is the successor signing key of the vectors' messages
// signed by a successor (its seed: SHA-256 of a fixed text).
func vecSuccessor() ed25519.PrivateKey {
	s := sha256.Sum256([]byte("blockmrs request vector successor"))
	return ed25519.NewKeyFromSeed(s[:])
}

// vecGrantBlock stands for the chain block holding the grant.
func vecGrantBlock() cid.Cid { return BlockCID([]byte("blockmrs request vector grant block")) }

type reqVectorFile struct {
	Description []string          `json:"description"`
	Constants   reqVecConstants   `json:"constants"`
	Messages    []reqVecMessage   `json:"messages"`
	Frames      []reqVecFrame     `json:"frames"`
	Negative    []reqVecNegative  `json:"negative"`
	Accounts    map[string]string `json:"accounts"`
}

type reqVecConstants struct {
	RequestSignatureContextHex string `json:"request_signature_context_hex"`
	AnswerSignatureContextHex  string `json:"answer_signature_context_hex"`
	Version                    int    `json:"version"`
	MaxRequestSize             int    `json:"max_request_size"`
	MaxAnswerSize              int    `json:"max_answer_size"`
	MaxRequestFrameSize        int    `json:"max_frame_size"`
	MaxReasonLen               int    `json:"max_reason_bytes"`
	MaxRequestRecords          int    `json:"max_request_records"`
}

type reqVecMessage struct {
	Name         string `json:"name"`
	Type         string `json:"type"`   // "request" or "answer"
	Signer       string `json:"signer"` // the account (from); the key that signed is signer when present
	Encoded      string `json:"encoded_hex"`
	ID           string `json:"id"`
	SigningBytes string `json:"signing_bytes_hex"`
	Signature    string `json:"signature_hex"`
	Decoded      any    `json:"decoded"`
}

type reqVecFrame struct {
	Name    string `json:"name"`
	Encoded string `json:"encoded_hex"` // uvarint length prefix included
	Decoded any    `json:"decoded"`
}

type reqVecNegative struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	Check       string `json:"check"` // DecodeRequest, DecodeAnswer or DecodeRequestFrame
	Encoded     string `json:"encoded_hex"`
	GoError     string `json:"go_error_contains"`
}

func vecRequest(t testing.TB, accts map[string]*vecAcct) (*Request, []byte, cid.Cid) {
	t.Helper()
	q := &Request{To: accts["alice"].pub, Records: Links([]cid.Cid{vecRequestRecord()}),
		Reason: "Follow-up of the January haemoglobin result", Duration: 30 * 24 * 3600, Created: tRequest, Nonce: vecNonce()}
	enc, id, err := q.Sign(accts["bob"].priv)
	if err != nil {
		t.Fatal(err)
	}
	return q, enc, id
}

func vecAnswers(t testing.TB, accts map[string]*vecAcct, reqID cid.Cid) (approve, deny []byte) {
	t.Helper()
	g := NewLink(vecGrantBlock())
	a := &Answer{Request: NewLink(reqID), To: accts["bob"].pub, Decision: DecisionApprove, Grant: &g, Created: tAnswer}
	approve, _, err := a.Sign(accts["alice"].priv)
	if err != nil {
		t.Fatal(err)
	}
	d := &Answer{Request: NewLink(reqID), To: accts["bob"].pub, Decision: DecisionDeny, Reason: "Please ask at the next visit", Created: tAnswer}
	deny, _, err = d.Sign(accts["alice"].priv)
	if err != nil {
		t.Fatal(err)
	}
	return approve, deny
}

// resignWith is resign with a given signature context.
func resignWith(t testing.TB, priv ed25519.PrivateKey, p []kvRaw, context string) []byte {
	t.Helper()
	p = withoutPair(p, "sig")
	sortCanonical(p)
	msg := append([]byte(context), writeMap(t, p)...)
	sig, err := marshal(ed25519.Sign(priv, msg))
	if err != nil {
		t.Fatal(err)
	}
	p = append(p, kvRaw{"sig", sig})
	sortCanonical(p)
	return writeMap(t, p)
}

func frameBytes(t testing.TB, f *RequestFrame) []byte {
	t.Helper()
	enc, err := EncodeRequestFrame(f)
	if err != nil {
		t.Fatal(err)
	}
	return append(reqUvarint(uint64(len(enc))), enc...)
}

func reqUvarint(n uint64) []byte {
	var out []byte
	for n >= 0x80 {
		out = append(out, byte(n)|0x80)
		n >>= 7
	}
	return append(out, byte(n))
}

func buildRequestVectors(t testing.TB) *reqVectorFile {
	t.Helper()
	accts, _ := vecAccounts(t)
	_, reqEnc, reqID := vecRequest(t, accts)
	approve, deny := vecAnswers(t, accts, reqID)
	vf := &reqVectorFile{
		Description: []string{
			"BlockMRS access request and answer test vectors (see PROTOCOL.md, \"Access requests\"). Generated by `go test ./protocol -run TestRequestVectors -update` from the fixed inputs in protocol/request_test.go; the test rebuilds this file on every run and fails if one byte differs.",
			"Accounts are those of vectors.json (alice, patient; bob, clinician). The record and grant-block CIDs are placeholders: the raw CID of the text \"blockmrs request vector record\" and the dag-cbor CID of the text \"blockmrs request vector grant block\".",
			"A message's ID is the CIDv1 (dag-cbor, sha2-256) of its whole encoding, signature included. Its signature is Ed25519 by the from key (by the signer key when the message has one: a successor key of from's account, seed SHA-256 of \"blockmrs request vector successor\" here) over context || the encoding without the sig key.",
		},
		Constants: reqVecConstants{
			RequestSignatureContextHex: hex.EncodeToString([]byte(RequestSignatureContext)),
			AnswerSignatureContextHex:  hex.EncodeToString([]byte(AnswerSignatureContext)),
			Version:                    RequestVersion, MaxRequestSize: MaxRequestSize, MaxAnswerSize: MaxAnswerSize,
			MaxRequestFrameSize: MaxRequestFrameSize, MaxReasonLen: MaxReasonLen, MaxRequestRecords: MaxRequestRecords,
		},
		Accounts: map[string]string{"alice": string(accts["alice"].id), "bob": string(accts["bob"].id)},
	}
	addMsg := func(name, typ, signer string, enc []byte) {
		var sb, sig []byte
		switch typ {
		case "request":
			q, err := DecodeRequest(enc)
			if err != nil {
				t.Fatal(err)
			}
			sb, _ = q.SigningBytes()
			sig = q.Sig
		default:
			a, err := DecodeAnswer(enc)
			if err != nil {
				t.Fatal(err)
			}
			sb, _ = a.SigningBytes()
			sig = a.Sig
		}
		vf.Messages = append(vf.Messages, reqVecMessage{Name: name, Type: typ, Signer: signer, Encoded: hex.EncodeToString(enc),
			ID: BlockCID(enc).String(), SigningBytes: hex.EncodeToString(sb), Signature: hex.EncodeToString(sig), Decoded: renderCBOR(t, enc)})
	}
	addMsg("request", "request", "bob", reqEnc)
	addMsg("approve", "answer", "alice", approve)
	addMsg("deny", "answer", "alice", deny)
	succ := vecSuccessor()
	sq := &Request{To: accts["alice"].pub, Records: Links([]cid.Cid{vecRequestRecord()}),
		Reason: "Follow-up of the January haemoglobin result", Duration: 30 * 24 * 3600, Created: tRequest, Nonce: vecNonce()}
	succReq, succReqID, err := sq.SignAs(accts["bob"].pub, succ)
	if err != nil {
		t.Fatal(err)
	}
	addMsg("request by a successor key", "request", "bob", succReq)
	g := NewLink(vecGrantBlock())
	sa := &Answer{Request: NewLink(succReqID), To: accts["bob"].pub, Decision: DecisionApprove, Grant: &g, Created: tAnswer}
	succAns, _, err := sa.SignAs(accts["alice"].pub, succ)
	if err != nil {
		t.Fatal(err)
	}
	addMsg("approve by a successor key", "answer", "alice", succAns)

	addFrame := func(name string, f *RequestFrame) {
		fb := frameBytes(t, f)
		enc, _ := EncodeRequestFrame(f)
		vf.Frames = append(vf.Frames, reqVecFrame{Name: name, Encoded: hex.EncodeToString(fb), Decoded: renderCBOR(t, enc)})
	}
	addFrame("poll", &RequestFrame{Kind: ReqFramePoll, Poll: Links([]cid.Cid{reqID})})
	addFrame("poll reply", &RequestFrame{Kind: ReqFrameOK, Answers: [][]byte{approve}})
	addFrame("answer", &RequestFrame{Kind: ReqFrameAnswer, Message: deny})

	neg := func(name, desc, check string, enc []byte, goErr string) {
		vf.Negative = append(vf.Negative, reqVecNegative{Name: name, Description: desc, Check: check, Encoded: hex.EncodeToString(enc), GoError: goErr})
	}
	rp := mapPairs(t, reqEnc)
	clone := func(p []kvRaw) []kvRaw { return append([]kvRaw(nil), p...) }
	bad := append([]byte(nil), reqEnc...)
	bad[len(bad)-1] ^= 1
	neg("request bad signature", "the request with the last byte of its signature flipped", "DecodeRequest", bad, "bad signature")
	neg("request signed as a chain block", "the request re-signed by bob with the chain-block context instead of the request context", "DecodeRequest",
		resignWith(t, accts["bob"].priv, clone(rp), BlockSignatureContext), "bad signature")
	neg("request signed by someone else", "the request re-signed by alice (not its from key) with the request context", "DecodeRequest",
		resignWith(t, accts["alice"].priv, clone(rp), RequestSignatureContext), "bad signature")
	unsorted := clone(rp)
	sort.Slice(unsorted, func(i, j int) bool { return unsorted[i].k < unsorted[j].k })
	neg("request map keys unsorted", "the request's map keys in bytewise instead of length-first order", "DecodeRequest", writeMap(t, unsorted), ErrNotCanonical.Error())
	extra, _ := marshal("x")
	neg("request unknown field", "the request with an extra key \"extra\", re-signed", "DecodeRequest",
		resignWith(t, accts["bob"].priv, append(clone(rp), kvRaw{"extra", extra}), RequestSignatureContext), "unknown field")
	short, _ := marshal([]byte{1, 2, 3})
	neg("request short nonce", "the request with a 3-byte nonce, re-signed", "DecodeRequest",
		resignWith(t, accts["bob"].priv, setPair(clone(rp), "nonce", short), RequestSignatureContext), "nonce must be")
	long, _ := marshal(strings.Repeat("x", MaxReasonLen+1))
	neg("request reason too long", "the request with a 1025-byte reason, re-signed", "DecodeRequest",
		resignWith(t, accts["bob"].priv, setPair(clone(rp), "reason", long), RequestSignatureContext), "reason must be")
	ap := mapPairs(t, approve)
	neg("approval without grant", "the approval without its grant link, re-signed", "DecodeAnswer",
		resignWith(t, accts["alice"].priv, withoutPair(clone(ap), "grant"), AnswerSignatureContext), "must link its grant")
	dec, _ := marshal(DecisionDeny)
	neg("denial with grant", "the approval with decision deny but the grant link kept, re-signed", "DecodeAnswer",
		resignWith(t, accts["alice"].priv, setPair(clone(ap), "decision", dec), AnswerSignatureContext), "links no grant")
	neg("answer signed as a request", "the approval re-signed by alice with the request context", "DecodeAnswer",
		resignWith(t, accts["alice"].priv, clone(ap), RequestSignatureContext), "bad signature")
	sp := mapPairs(t, succReq)
	neg("request signer not the signing key", "the successor's request re-signed by bob's account key, the signer field kept", "DecodeRequest",
		resignWith(t, accts["bob"].priv, clone(sp), RequestSignatureContext), "bad signature")
	fromKey, _ := marshal([]byte(accts["bob"].pub))
	neg("request signer equal to from", "the request with a signer field naming its from key, re-signed by it", "DecodeRequest",
		resignWith(t, accts["bob"].priv, append(clone(rp), kvRaw{"signer", fromKey}), RequestSignatureContext), "signer must be")
	neg("answer signer short", "the successor's approval with a 3-byte signer, re-signed", "DecodeAnswer",
		resignWith(t, succ, setPair(mapPairs(t, succAns), "signer", short), AnswerSignatureContext), "signer must be")
	kind, _ := marshal("hello")
	neg("frame unknown kind", "a frame of kind hello", "DecodeRequestFrame", writeMap(t, []kvRaw{{"kind", kind}}), "unknown kind")
	return vf
}

func TestRequestVectors(t *testing.T) {
	gen, err := marshalJSON(buildRequestVectors(t), "  ")
	if err != nil {
		t.Fatal(err)
	}
	if *updateVectors {
		if err := os.WriteFile(requestVectorsPath, gen, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	file, err := os.ReadFile(requestVectorsPath)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(file, gen) {
		t.Errorf("%s differs from what the code generates at line %d; if the format change is intended, run `go test ./protocol -run TestRequestVectors -update` and review the diff", requestVectorsPath, firstDiffLine(file, gen))
	}
	var vf reqVectorFile
	if err := json.Unmarshal(file, &vf); err != nil {
		t.Fatal(err)
	}
	for _, m := range vf.Messages {
		enc := mustHex(t, m.Encoded)
		if BlockCID(enc).String() != m.ID {
			t.Errorf("%s: ID mismatch", m.Name)
		}
		if err := ipldRoundTrip(enc); err != nil {
			t.Errorf("%s: not canonical DAG-CBOR per go-ipld-prime: %v", m.Name, err)
		}
		var signer, from []byte
		switch m.Type {
		case "request":
			q, err := DecodeRequest(enc)
			if err != nil {
				t.Fatalf("%s: %v", m.Name, err)
			}
			signer, from = q.SignerKey(), q.From
		case "answer":
			a, err := DecodeAnswer(enc)
			if err != nil {
				t.Fatalf("%s: %v", m.Name, err)
			}
			signer, from = a.SignerKey(), a.From
		}
		if !ed25519.Verify(signer, mustHex(t, m.SigningBytes), mustHex(t, m.Signature)) {
			t.Errorf("%s: signature does not verify over the signing bytes", m.Name)
		}
		if string(AccountIDFromKey(from)) != vf.Accounts[m.Signer] {
			t.Errorf("%s: signer mismatch", m.Name)
		}
	}
	for _, fr := range vf.Frames {
		b := mustHex(t, fr.Encoded)
		var n, shift uint64
		i := 0
		for ; b[i]&0x80 != 0; i++ {
			n |= uint64(b[i]&0x7f) << shift
			shift += 7
		}
		n |= uint64(b[i]) << shift
		if int(n) != len(b)-i-1 {
			t.Errorf("frame %s: length prefix %d, body %d bytes", fr.Name, n, len(b)-i-1)
		}
		if _, err := DecodeRequestFrame(b[i+1:]); err != nil {
			t.Errorf("frame %s: %v", fr.Name, err)
		}
	}
	for _, n := range vf.Negative {
		enc := mustHex(t, n.Encoded)
		var err error
		switch n.Check {
		case "DecodeRequest":
			_, err = DecodeRequest(enc)
		case "DecodeAnswer":
			_, err = DecodeAnswer(enc)
		case "DecodeRequestFrame":
			_, err = DecodeRequestFrame(enc)
		default:
			t.Fatalf("%s: unknown check %q", n.Name, n.Check)
		}
		if err == nil || !strings.Contains(err.Error(), n.GoError) {
			t.Errorf("%s: got error %v, want one containing %q", n.Name, err, n.GoError)
		}
		if err != nil && strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: error is not one line: %q", n.Name, err)
		}
	}
}

func TestRequestRoundTrip(t *testing.T) {
	accts, _ := vecAccounts(t)
	q, enc, id := vecRequest(t, accts)
	got, err := DecodeRequest(enc)
	if err != nil {
		t.Fatal(err)
	}
	if got.FromID() != accts["bob"].id || got.ToID() != accts["alice"].id || got.Reason != q.Reason ||
		got.Duration != q.Duration || len(got.CIDs()) != 1 || !got.CIDs()[0].Equals(vecRequestRecord()) {
		t.Fatalf("decoded %+v", got)
	}
	if id != BlockCID(enc) || !IsChainBlockCID(id) {
		t.Fatal("request ID is not the CID of its bytes")
	}
	// A request for all records has an empty list, not a missing one.
	all := &Request{To: accts["alice"].pub, Nonce: vecNonce()}
	allEnc, _, err := all.Sign(accts["bob"].priv)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := DecodeRequest(allEnc); err != nil || len(got.Records) != 0 {
		t.Fatalf("all-records request: %v %v", got, err)
	}
	approve, deny := vecAnswers(t, accts, id)
	for _, enc := range [][]byte{approve, deny} {
		a, err := DecodeAnswer(enc)
		if err != nil {
			t.Fatal(err)
		}
		if !a.Request.Equals(id) || a.FromID() != accts["alice"].id || a.ToID() != accts["bob"].id {
			t.Fatalf("decoded %+v", a)
		}
	}
	// A request is no answer and the other way round.
	if _, err := DecodeAnswer(enc); err == nil {
		t.Fatal("request decoded as an answer")
	}
	if _, err := DecodeRequest(approve); err == nil {
		t.Fatal("answer decoded as a request")
	}
	// A chain block is neither.
	if _, err := DecodeRequest(allEnc[:len(allEnc)-1]); err == nil {
		t.Fatal("truncated request decoded")
	}
}

func TestRequestSignRejects(t *testing.T) {
	accts, _ := vecAccounts(t)
	alice, bob := accts["alice"], accts["bob"]
	c := vecRequestRecord()
	cases := map[string]*Request{
		"to self":    {To: bob.pub, Nonce: vecNonce()},
		"no nonce":   {To: alice.pub},
		"bad to":     {To: []byte{1}, Nonce: vecNonce()},
		"duplicate":  {To: alice.pub, Nonce: vecNonce(), Records: Links([]cid.Cid{c, c})},
		"long":       {To: alice.pub, Nonce: vecNonce(), Reason: strings.Repeat("é", MaxReasonLen)},
		"bad utf8":   {To: alice.pub, Nonce: vecNonce(), Reason: "\xff"},
		"too long":   {To: alice.pub, Nonce: vecNonce(), Duration: MaxRequestDuration + 1},
		"negative t": {To: alice.pub, Nonce: vecNonce(), Created: -1},
	}
	for name, q := range cases {
		if _, _, err := q.Sign(bob.priv); err == nil {
			t.Errorf("%s: signed", name)
		}
	}
	many := make([]cid.Cid, MaxRequestRecords+1)
	for i := range many {
		many[i] = rawCID([]byte{byte(i), byte(i >> 8)})
	}
	if _, _, err := (&Request{To: alice.pub, Nonce: vecNonce(), Records: Links(many)}).Sign(bob.priv); err == nil {
		t.Error("too many records signed")
	}
	if _, _, err := (&Request{To: alice.pub, Nonce: vecNonce(), Records: Links(many[:MaxRequestRecords])}).Sign(bob.priv); err != nil {
		t.Errorf("max records: %v", err)
	}
	if _, _, err := (&Answer{Request: NewLink(c), To: bob.pub, Decision: DecisionDeny}).Sign(alice.priv); err == nil {
		t.Error("answer to a raw CID signed")
	}
	if _, _, err := (&Answer{Request: NewLink(vecGrantBlock()), To: bob.pub, Decision: "maybe"}).Sign(alice.priv); err == nil {
		t.Error("unknown decision signed")
	}
}

func TestRequestFrameRejects(t *testing.T) {
	big := bytes.Repeat([]byte{0}, MaxRequestFrameSize+1)
	if _, err := DecodeRequestFrame(big); err == nil {
		t.Fatal("oversized frame decoded")
	}
	if _, err := EncodeRequestFrame(&RequestFrame{Kind: ReqFrameRequest, Profile: make([]byte, MaxProfileBlock+1)}); err == nil {
		t.Fatal("oversized profile encoded")
	}
	f := &RequestFrame{Kind: ReqFrameError, Error: strings.Repeat("é", 300)}
	enc, err := EncodeRequestFrame(f)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := DecodeRequestFrame(enc); err != nil || got.Error != f.Error {
		t.Fatalf("error frame: %v", err)
	}
}

func FuzzDecodeRequest(f *testing.F) {
	accts, _ := vecAccounts(f)
	_, enc, id := vecRequest(f, accts)
	approve, deny := vecAnswers(f, accts, id)
	for _, s := range [][]byte{enc, approve, deny, {0xa0}, nil} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if q, err := DecodeRequest(data); err == nil {
			again, err := marshal(q)
			if err != nil || !bytes.Equal(again, data) {
				t.Fatal("accepted request does not re-encode to itself")
			}
		} else if strings.Contains(err.Error(), "\n") {
			t.Fatalf("error is not one line: %q", err)
		}
		if a, err := DecodeAnswer(data); err == nil {
			again, err := marshal(a)
			if err != nil || !bytes.Equal(again, data) {
				t.Fatal("accepted answer does not re-encode to itself")
			}
		}
	})
}

func FuzzDecodeRequestFrame(f *testing.F) {
	accts, _ := vecAccounts(f)
	_, enc, id := vecRequest(f, accts)
	approve, _ := vecAnswers(f, accts, id)
	for _, fr := range []*RequestFrame{
		{Kind: ReqFrameRequest, Message: enc, Profile: []byte{0xa0}},
		{Kind: ReqFramePoll, Poll: Links([]cid.Cid{id})},
		{Kind: ReqFrameOK, Answers: [][]byte{approve}},
		{Kind: ReqFrameError, Error: "no"},
	} {
		b, err := EncodeRequestFrame(fr)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fr, err := DecodeRequestFrame(data)
		if err != nil {
			return
		}
		again, err := EncodeRequestFrame(fr)
		if err != nil || !bytes.Equal(again, data) {
			t.Fatal("accepted frame does not re-encode to itself")
		}
	})
}
