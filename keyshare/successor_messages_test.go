package keyshare

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/blockmrs/blockmrs/protocol"
)

// Access requests and answers signed with a successor key (PROTOCOL.md
// §10.1): the verifier accepts them when its copy of the account's chain
// names that key as the current signing key (messageSigner).

// succeeded returns pat after a succession, her chain (with it) held by
// each of others.
func succeeded(t *testing.T, pat *party, others ...*party) (old *Keys) {
	t.Helper()
	old = pat.keys
	nk, err := pat.repo.Succeed(context.Background(), old, nil, SuccessionOptions{RotateAge: true})
	if err != nil {
		t.Fatal(err)
	}
	pat.keys = nk
	for _, o := range others {
		send(t, pat, o)
	}
	return old
}

// After a succession the patient sends a request, the clinic approves it
// and the patient reads; the patient approves and denies the clinic's.
func TestSuccessorSendsAndAnswersRequests(t *testing.T) {
	ctx := context.Background()
	pat := newParty(t, "Pat", protocol.RolePatient)
	doc := newParty(t, "Dr Who", protocol.RoleClinician)
	send(t, doc, pat)
	succeeded(t, pat, doc)
	if !pat.keys.Successor() {
		t.Fatal("no successor keys")
	}

	// Pat (successor key) asks doc for doc's record.
	r := addNote(t, doc, "lab result")
	req, err := pat.repo.NewRequest(ctx, pat.keys, doc.keys.ID, []cid.Cid{r}, "my lab result", time.Hour)
	if err != nil {
		t.Fatalf("request by a successor key: %v", err)
	}
	deliver(t, pat, doc)
	if _, err := doc.repo.Approve(ctx, doc.keys, req.ID, time.Time{}); err != nil {
		t.Fatal(err)
	}
	polled, _ := pat.repo.AwaitingAnswers(ctx)
	answers, err := doc.repo.AnswersFor(ctx, polled[doc.keys.ID])
	if err != nil || len(answers) != 1 {
		t.Fatalf("answers: %d %v", len(answers), err)
	}
	if got, err := pat.repo.ReceiveAnswer(ctx, answers[0]); err != nil || got.State != StateApproved {
		t.Fatalf("answer to the successor's request: %+v %v", got, err)
	}
	send(t, doc, pat)
	if _, data, err := readAll(t, pat, r); err != nil || string(data) != "lab result" {
		t.Fatalf("pat reads after approval: %q %v", data, err)
	}

	// Doc asks pat twice; pat (successor key) approves one, denies one.
	mine := addNote(t, pat, "pat's note")
	send(t, pat, doc)
	ask := func(reason string) RequestInfo {
		q, err := doc.repo.NewRequest(ctx, doc.keys, pat.keys.ID, []cid.Cid{mine}, reason, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		return q
	}
	yes, no := ask("review"), ask("curiosity")
	deliver(t, doc, pat)
	if _, err := pat.repo.Approve(ctx, pat.keys, yes.ID, time.Time{}); err != nil {
		t.Fatalf("approve by a successor key: %v", err)
	}
	if _, err := pat.repo.Deny(ctx, pat.keys, no.ID, "no"); err != nil {
		t.Fatalf("deny by a successor key: %v", err)
	}
	send(t, pat, doc) // doc's copy names the successor key and holds the grant
	polled, _ = doc.repo.AwaitingAnswers(ctx)
	answers, err = pat.repo.AnswersFor(ctx, polled[pat.keys.ID])
	if err != nil || len(answers) != 2 {
		t.Fatalf("answers: %d %v", len(answers), err)
	}
	states := map[string]bool{}
	for _, a := range answers {
		got, err := doc.repo.ReceiveAnswer(ctx, a)
		if err != nil {
			t.Fatalf("doc takes pat's answer: %v", err)
		}
		states[got.State] = true
	}
	if !states[StateApproved] || !states[StateDenied] {
		t.Fatalf("answer states: %v", states)
	}
	if _, data, err := readAll(t, doc, mine); err != nil || string(data) != "pat's note" {
		t.Fatalf("doc reads after the successor's approval: %q %v", data, err)
	}
	mustVerify(t, doc)
}

// Attacks: after the succession, a request signed by the retired key, or
// by a key the chain never named, is refused; so is a successor-signed
// request at a node that does not hold the chain.
func TestSuccessorMessageSignerRefused(t *testing.T) {
	ctx := context.Background()
	pat := newParty(t, "Pat", protocol.RolePatient)
	doc := newParty(t, "Dr Who", protocol.RoleClinician)
	stranger := newParty(t, "Stranger", protocol.RoleClinician)
	send(t, doc, pat)
	send(t, stranger, pat)
	old := succeeded(t, pat, doc)
	genesis := func() []byte {
		c, _, err := pat.repo.blockAt(ctx, pat.keys.ID, 0)
		if err != nil {
			t.Fatal(err)
		}
		b, err := pat.repo.st.Blockstore().Get(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		return b.RawData()
	}()
	request := func(to *party, priv ed25519.PrivateKey) []byte {
		nonce := make([]byte, protocol.RequestNonceSize)
		rand.Read(nonce)
		q := &protocol.Request{To: to.keys.Public(), Records: []protocol.Link{}, Created: time.Now().UnixMilli(), Nonce: nonce}
		raw, _, err := q.SignAs(pat.keys.Public(), priv)
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	// The retired account key (a lost device, say) signing as before.
	if _, err := doc.repo.ReceiveRequest(ctx, request(doc, old.Sign), nil, "peer"); err == nil || !strings.Contains(err.Error(), string(RuleMessageRetired)) {
		t.Fatalf("request by the retired key: %v", err)
	}
	// A key the chain never named, claimed as pat's signer.
	_, forged, _ := ed25519.GenerateKey(rand.Reader)
	if _, err := doc.repo.ReceiveRequest(ctx, request(doc, forged), nil, "peer"); err == nil || !strings.Contains(err.Error(), "never named") {
		t.Fatalf("request by a key never named: %v", err)
	}
	// The real successor key at a node without pat's chain: refused, and
	// the error says what to do.
	_, err := stranger.repo.ReceiveRequest(ctx, request(stranger, pat.keys.Sign), genesis, "peer")
	if err == nil || !strings.Contains(err.Error(), "sync the chain") || strings.Contains(err.Error(), "\n") {
		t.Fatalf("successor request without the chain: %v", err)
	}
	if inbox, _, _ := stranger.repo.Requests(ctx); len(inbox) != 0 {
		t.Fatalf("refused request stored: %+v", inbox)
	}
	// The same node accepts it once it holds the chain.
	send(t, pat, stranger)
	if _, err := stranger.repo.ReceiveRequest(ctx, request(stranger, pat.keys.Sign), nil, "peer"); err != nil {
		t.Fatalf("successor request with the chain: %v", err)
	}

	// An answer signed by the retired key is refused by the requester.
	q, err := doc.repo.NewRequest(ctx, doc.keys, pat.keys.ID, nil, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	a := &protocol.Answer{Request: protocol.NewLink(cid.MustParse(q.ID)), To: doc.keys.Public(), Decision: protocol.DecisionDeny, Created: time.Now().UnixMilli()}
	raw, _, err := a.Sign(old.Sign)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := doc.repo.ReceiveAnswer(ctx, raw); err == nil || !strings.Contains(err.Error(), string(RuleMessageRetired)) {
		t.Fatalf("answer by the retired key: %v", err)
	}
	_, outbox, _ := doc.repo.Requests(ctx)
	for _, o := range outbox {
		if o.ID == q.ID && o.State != StatePendingDelivery {
			t.Fatalf("refused answer changed the request: %+v", o)
		}
	}
}

// Succeed checks the passphrase against the current key file before it
// writes anything: a typo leaves keys, key file and chain as they were.
func TestSucceedChecksPassphrase(t *testing.T) {
	ctx := context.Background()
	pat := joinedDevice(t, newParty(t, "Pat", protocol.RolePatient), "right horse")
	path := pat.repo.keyPath(pat.keys.ID)
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	head := pat.repo.mustHead(t, pat.keys.ID)
	if _, err := pat.repo.Succeed(ctx, pat.keys, []byte("rigth horse"), SuccessionOptions{}); !errors.Is(err, ErrWrongPassphrase) {
		t.Fatalf("succession with a wrong passphrase: %v", err)
	}
	after, err := os.ReadFile(path)
	if err != nil || !bytes.Equal(before, after) {
		t.Fatalf("key file changed: %v", err)
	}
	if _, err := os.Stat(path + ".next"); !os.IsNotExist(err) {
		t.Fatalf("new key file written: %v", err)
	}
	if h := pat.repo.mustHead(t, pat.keys.ID); h != head {
		t.Fatal("chain changed")
	}
	nk, err := pat.repo.Succeed(ctx, pat.keys, []byte("right horse"), SuccessionOptions{})
	if err != nil {
		t.Fatal(err)
	}
	k, err := pat.repo.Unlock(ctx, pat.keys.ID, []byte("right horse"))
	if err != nil || !bytes.Equal(k.SigningKey(), nk.SigningKey()) {
		t.Fatalf("unlock after succession: %v", err)
	}
}
