package keyshare

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/blockmrs/blockmrs/protocol"
)

// addNote adds a note record about p's own account.
func addNote(t *testing.T, p *party, text string) cid.Cid {
	t.Helper()
	c, err := p.repo.AddRecord(context.Background(), p.keys, NewRecord{Title: text, Kind: protocol.KindNote,
		MediaType: "text/plain", Body: strings.NewReader(text)})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// deliver moves every pending message of from to to, as a node would.
func deliver(t *testing.T, from, to *party) {
	t.Helper()
	ctx := context.Background()
	out, err := from.repo.Pending(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range out {
		switch o.Kind {
		case protocol.ReqFrameRequest:
			if _, err := to.repo.ReceiveRequest(ctx, o.Message, o.Profile, "peer"); err != nil {
				t.Fatal(err)
			}
		case protocol.ReqFrameAnswer:
			if _, err := to.repo.ReceiveAnswer(ctx, o.Message); err != nil {
				t.Fatal(err)
			}
		}
		if err := from.repo.MarkDelivered(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
}

func TestRequestApprove(t *testing.T) {
	ctx := context.Background()
	patient := newParty(t, "Pat", protocol.RolePatient)
	clinic := newParty(t, "Dr Who", protocol.RoleClinician)
	r1 := addNote(t, patient, "first")
	r2 := addNote(t, patient, "second")
	sendProfileOnly(t, patient, clinic)

	req, err := clinic.repo.NewRequest(ctx, clinic.keys, patient.keys.ID, nil, "annual check", 30*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if req.State != StatePendingDelivery || req.Box != Outbox || len(req.Records) != 0 {
		t.Fatalf("new request: %+v", req)
	}
	deliver(t, clinic, patient)
	_, outbox, _ := clinic.repo.Requests(ctx)
	if len(outbox) != 1 || outbox[0].State != StateDelivered {
		t.Fatalf("outbox after delivery: %+v", outbox)
	}
	inbox, _, _ := patient.repo.Requests(ctx)
	if len(inbox) != 1 || inbox[0].ID != req.ID || inbox[0].State != StateNew || inbox[0].FromName != "Dr Who" || inbox[0].Reason != "annual check" {
		t.Fatalf("inbox: %+v", inbox)
	}
	// The requester is no contact until approval.
	if _, err := patient.repo.Account(ctx, clinic.keys.ID); err == nil {
		t.Fatal("requester imported before approval")
	}
	// Polling before the answer gives nothing.
	if got, _ := patient.repo.AnswersFor(ctx, []cid.Cid{cid.MustParse(req.ID)}); len(got) != 0 {
		t.Fatal("answer before approval")
	}

	ans, err := patient.repo.Approve(ctx, patient.keys, req.ID, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if ans.State != StateApproved || ans.Grant == "" || ans.Expires.IsZero() {
		t.Fatalf("approved: %+v", ans)
	}
	if _, err := patient.repo.Approve(ctx, patient.keys, req.ID, time.Time{}); err == nil {
		t.Fatal("approved twice")
	}
	for _, c := range []cid.Cid{r1, r2} {
		a, err := patient.repo.Access(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := a.Reader(clinic.keys.ID); !ok {
			t.Fatalf("%s: clinic is no reader after approval", c)
		}
	}
	// The answer travels back by a poll.
	polled, err := clinic.repo.AwaitingAnswers(ctx)
	if err != nil || len(polled[patient.keys.ID]) != 1 {
		t.Fatalf("awaiting: %v %v", polled, err)
	}
	answers, err := patient.repo.AnswersFor(ctx, polled[patient.keys.ID])
	if err != nil || len(answers) != 1 {
		t.Fatalf("answers: %d %v", len(answers), err)
	}
	got, err := clinic.repo.ReceiveAnswer(ctx, answers[0])
	if err != nil {
		t.Fatal(err)
	}
	if got.State != StateApproved || got.Grant != ans.Grant {
		t.Fatalf("outbox after answer: %+v", got)
	}
	// Replay of the same answer: no change, no error.
	if _, err := clinic.repo.ReceiveAnswer(ctx, answers[0]); err != nil {
		t.Fatal(err)
	}
	if p, _ := patient.repo.Pending(ctx); len(p) != 0 {
		t.Fatalf("patient still has %d to deliver", len(p))
	}
	// The clinic reads the records once it has the patient's chain.
	send(t, patient, clinic)
	if _, data, err := readAll(t, clinic, r1); err != nil || string(data) != "first" {
		t.Fatalf("clinic reads r1: %q %v", data, err)
	}
	mustVerify(t, patient)
}

// sendProfileOnly makes from a contact of to with its first block only.
func sendProfileOnly(t *testing.T, from, to *party) {
	t.Helper()
	var buf bytes.Buffer
	if err := from.repo.ExportProfile(context.Background(), &buf, from.keys.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := to.repo.ImportCAR(context.Background(), &buf); err != nil {
		t.Fatal(err)
	}
}

func TestRequestDenyAndNamedRecords(t *testing.T) {
	ctx := context.Background()
	patient := newParty(t, "Pat", protocol.RolePatient)
	clinic := newParty(t, "Dr Who", protocol.RoleClinician)
	r1 := addNote(t, patient, "first")
	r2 := addNote(t, patient, "second")
	send(t, patient, clinic)

	q1, err := clinic.repo.NewRequest(ctx, clinic.keys, patient.keys.ID, []cid.Cid{r1}, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	q2, err := clinic.repo.NewRequest(ctx, clinic.keys, patient.keys.ID, []cid.Cid{r2}, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	deliver(t, clinic, patient)
	if _, err := patient.repo.Deny(ctx, patient.keys, q2.ID, "not needed"); err != nil {
		t.Fatal(err)
	}
	ok, err := patient.repo.Approve(ctx, patient.keys, q1.ID, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if !ok.Expires.IsZero() {
		t.Fatal("no duration asked, yet an expiry")
	}
	a1, _ := patient.repo.Access(ctx, r1)
	a2, _ := patient.repo.Access(ctx, r2)
	if _, ok := a1.Reader(clinic.keys.ID); !ok {
		t.Fatal("r1 not granted")
	}
	if _, ok := a2.Reader(clinic.keys.ID); ok {
		t.Fatal("r2 granted though not asked for")
	}
	deliver(t, patient, clinic) // answers pushed this time
	_, outbox, _ := clinic.repo.Requests(ctx)
	states := map[string]RequestInfo{}
	for _, q := range outbox {
		states[q.ID] = q
	}
	if states[q1.ID].State != StateApproved || states[q2.ID].State != StateDenied || states[q2.ID].AnswerReason != "not needed" {
		t.Fatalf("outbox: %+v", outbox)
	}
	if f, err := clinic.repo.FindRequest(ctx, Outbox, q2.ID[len(q2.ID)-8:]); err != nil || f.ID != q2.ID {
		t.Fatalf("find by suffix: %v", err)
	}
}

func TestRequestRejects(t *testing.T) {
	ctx := context.Background()
	patient := newParty(t, "Pat", protocol.RolePatient)
	clinic := newParty(t, "Dr Who", protocol.RoleClinician)
	stranger := newParty(t, "Mallory", protocol.RoleClinician)
	addNote(t, patient, "first")
	send(t, patient, clinic)
	send(t, patient, stranger)

	q, err := clinic.repo.NewRequest(ctx, clinic.keys, patient.keys.ID, nil, "x", 0)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := clinic.repo.Pending(ctx)
	raw, profile := out[0].Message, out[0].Profile

	t.Run("forged signature", func(t *testing.T) {
		dq, err := protocol.DecodeRequest(raw)
		if err != nil {
			t.Fatal(err)
		}
		bad := append([]byte(nil), raw...)
		bad[bytes.Index(raw, dq.Sig)+5] ^= 1
		if _, err := patient.repo.ReceiveRequest(ctx, bad, profile, "p"); err == nil || !strings.Contains(err.Error(), "signature") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("wrong to", func(t *testing.T) {
		if _, err := stranger.repo.ReceiveRequest(ctx, raw, profile, "p"); err == nil || !strings.Contains(err.Error(), "not an account of this node") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("profile of someone else", func(t *testing.T) {
		var sp []byte
		sq, err := stranger.repo.NewRequest(ctx, stranger.keys, patient.keys.ID, nil, "", 0)
		if err != nil {
			t.Fatal(err)
		}
		ps, _ := stranger.repo.Pending(ctx)
		for _, o := range ps {
			if o.ID == sq.ID {
				sp = o.Profile
			}
		}
		if _, err := patient.repo.ReceiveRequest(ctx, raw, sp, "p"); err == nil || !strings.Contains(err.Error(), "not the first chain block") {
			t.Fatalf("got %v", err)
		}
		if _, err := patient.repo.ReceiveRequest(ctx, raw, nil, "p"); err == nil || !strings.Contains(err.Error(), "unknown and sent no profile") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("replay", func(t *testing.T) {
		for range 3 {
			if _, err := patient.repo.ReceiveRequest(ctx, raw, profile, "p"); err != nil {
				t.Fatal(err)
			}
		}
		inbox, _, _ := patient.repo.Requests(ctx)
		if len(inbox) != 1 {
			t.Fatalf("inbox holds %d after replays", len(inbox))
		}
		// Replayed after the answer: still answered, no new entry.
		if _, err := patient.repo.Deny(ctx, patient.keys, q.ID, ""); err != nil {
			t.Fatal(err)
		}
		got, err := patient.repo.ReceiveRequest(ctx, raw, profile, "p")
		if err != nil || got.State != StateDenied {
			t.Fatalf("replay after answer: %+v %v", got, err)
		}
	})
	t.Run("answer from wrong account", func(t *testing.T) {
		deliver(t, clinic, patient) // marks the clinic's request delivered
		link := protocol.NewLink(cid.MustParse(q.ID))
		forged := &protocol.Answer{Request: link, To: clinic.keys.Public(), Decision: protocol.DecisionDeny, Created: 1}
		fraw, _, err := forged.Sign(stranger.keys.Sign)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := clinic.repo.ReceiveAnswer(ctx, fraw); err == nil || !strings.Contains(err.Error(), "but the request asked") {
			t.Fatalf("got %v", err)
		}
		// An answer to a request the clinic never made.
		other := &protocol.Answer{Request: protocol.NewLink(protocol.BlockCID([]byte("x"))), To: clinic.keys.Public(), Decision: protocol.DecisionDeny}
		oraw, _, _ := other.Sign(patient.keys.Sign)
		if _, err := clinic.repo.ReceiveAnswer(ctx, oraw); err == nil || !strings.Contains(err.Error(), "no such request") {
			t.Fatalf("got %v", err)
		}
		_, outbox, _ := clinic.repo.Requests(ctx)
		if outbox[0].State != StateDelivered {
			t.Fatalf("outbox changed by forged answers: %+v", outbox[0])
		}
		// The real answer, then a different answer by the right account.
		deliver(t, patient, clinic)
		again := &protocol.Answer{Request: link, To: clinic.keys.Public(), Decision: protocol.DecisionDeny, Reason: "changed my mind", Created: 2}
		araw, _, _ := again.Sign(patient.keys.Sign)
		if _, err := clinic.repo.ReceiveAnswer(ctx, araw); err == nil || !strings.Contains(err.Error(), "already") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("approve by the wrong account", func(t *testing.T) {
		q, err := clinic.repo.NewRequest(ctx, clinic.keys, patient.keys.ID, nil, "", 0)
		if err != nil {
			t.Fatal(err)
		}
		deliver(t, clinic, patient)
		if _, err := patient.repo.Approve(ctx, stranger.keys, q.ID, time.Time{}); err == nil {
			t.Fatal("approved by an account that was not asked")
		}
	})
}

func TestRequestFloodCap(t *testing.T) {
	ctx := context.Background()
	patient := newParty(t, "Pat", protocol.RolePatient)
	clinic := newParty(t, "Dr Who", protocol.RoleClinician)
	send(t, patient, clinic)
	var last error
	accepted := 0
	for range MaxInboxPerRequester + 3 {
		if _, err := clinic.repo.NewRequest(ctx, clinic.keys, patient.keys.ID, nil, "", 0); err != nil {
			t.Fatal(err)
		}
	}
	out, _ := clinic.repo.Pending(ctx)
	for _, o := range out {
		if _, err := patient.repo.ReceiveRequest(ctx, o.Message, o.Profile, "p"); err != nil {
			last = err
		} else {
			accepted++
		}
	}
	if accepted != MaxInboxPerRequester || last == nil || !strings.Contains(last.Error(), "unanswered requests") {
		t.Fatalf("accepted %d of %d, last error %v", accepted, len(out), last)
	}
	// Answering one makes room for one more.
	inbox, _, _ := patient.repo.Requests(ctx)
	if _, err := patient.repo.Deny(ctx, patient.keys, inbox[0].ID, ""); err != nil {
		t.Fatal(err)
	}
	took := 0
	for _, o := range out {
		if _, err := patient.repo.ReceiveRequest(ctx, o.Message, o.Profile, "p"); err == nil {
			took++
		}
	}
	if took != MaxInboxPerRequester+1 {
		t.Fatalf("after one answer %d accepted (dedupe included), want %d", took, MaxInboxPerRequester+1)
	}
}

func TestRequestClockLimits(t *testing.T) {
	ctx := context.Background()
	now := time.Now()
	future := now.Add(2 * time.Hour)
	clinicRepo, err := Open(ctx, t.TempDir(), Options{Create: true, Clock: func() time.Time { return future }})
	if err != nil {
		t.Fatal(err)
	}
	defer clinicRepo.Close()
	ck, err := clinicRepo.CreateAccount(ctx, "Dr Future", protocol.RoleClinician, nil)
	if err != nil {
		t.Fatal(err)
	}
	patient := newParty(t, "Pat", protocol.RolePatient)
	send(t, patient, &party{repo: clinicRepo, keys: ck})
	if _, err := clinicRepo.NewRequest(ctx, ck, patient.keys.ID, nil, "", 0); err != nil {
		t.Fatal(err)
	}
	out, _ := clinicRepo.Pending(ctx)
	if _, err := patient.repo.ReceiveRequest(ctx, out[0].Message, out[0].Profile, "p"); err == nil || !strings.Contains(err.Error(), "future") {
		t.Fatalf("got %v", err)
	}
}
