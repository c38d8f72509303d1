package main

import (
	"context"
	"strings"
	"testing"

	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/protocol"
)

// carry moves from's pending request messages into to's repo, as the
// daemons would: both repos are opened in this process between commands.
func carry(t *testing.T, from, to *node) {
	t.Helper()
	ctx := context.Background()
	src, err := keyshare.Open(ctx, from.dir, keyshare.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := keyshare.Open(ctx, to.dir, keyshare.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	out, err := src.Pending(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range out {
		if o.Kind == protocol.ReqFrameRequest {
			_, err = dst.ReceiveRequest(ctx, o.Message, o.Profile, "test")
		} else {
			_, err = dst.ReceiveAnswer(ctx, o.Message)
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := src.MarkDelivered(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
}

type requestsJSON struct {
	Inbox  []keyshare.RequestInfo `json:"inbox"`
	Outbox []keyshare.RequestInfo `json:"outbox"`
}

func TestRequestCommands(t *testing.T) {
	patient := newNode(t, "")
	pat := patient.initAccount("--name", "pat", "--no-passphrase")
	var rec struct {
		CID string `json:"cid"`
	}
	r := patient.exec(strings.NewReader("BP 120/80\n"), "add", "--kind", "note", "--title", "BP", "--json", "-")
	if r.code != 0 {
		t.Fatalf("add: %+v", r)
	}
	rec.CID = cidRe.FindString(r.stdout)
	clinic := newNode(t, "")
	who := clinic.initAccount("--name", "drwho", "--role", "clinician", "--no-passphrase")
	profile := patient.ok("id", "--export", "-")
	if r := clinic.exec(strings.NewReader(profile), "contact", "add", "-"); r.code != 0 {
		t.Fatalf("contact add: %+v", r)
	}

	// Usage errors exit 2 with one line.
	clinic.fail(2, "request")
	clinic.fail(2, "request", "pat", "extra")
	clinic.fail(2, "request", "pat", "--duration", "soon")
	clinic.fail(2, "request", "pat", "--records", "notacid")
	clinic.fail(2, "request", "pat", "--reason", strings.Repeat("x", protocol.MaxReasonLen+1))
	clinic.fail(2, "approve")
	clinic.fail(2, "deny", "a", "b")
	clinic.fail(2, "requests", "extra")
	clinic.fail(1, "request", "nobody")
	clinic.fail(1, "approve", "bafyreiunknown")

	var q keyshare.RequestInfo
	clinic.json(&q, "request", "pat", "--reason", "annual check", "--duration", "30d", "--json")
	if q.State != keyshare.StatePendingDelivery || q.To != protocol.AccountID(pat) || q.From != protocol.AccountID(who) || q.Duration != 30*24*3600 {
		t.Fatalf("request: %+v", q)
	}
	var boxes requestsJSON
	clinic.json(&boxes, "requests", "--json")
	if len(boxes.Outbox) != 1 || len(boxes.Inbox) != 0 || boxes.Outbox[0].ID != q.ID {
		t.Fatalf("clinic requests: %+v", boxes)
	}
	if out := clinic.ok("requests"); !strings.Contains(out, q.ID) || !strings.Contains(out, "pending delivery") {
		t.Fatalf("requests table:\n%s", out)
	}

	carry(t, clinic, patient)
	patient.json(&boxes, "requests", "--json")
	if len(boxes.Inbox) != 1 || boxes.Inbox[0].State != keyshare.StateNew || boxes.Inbox[0].FromName != "drwho" {
		t.Fatalf("patient requests: %+v", boxes)
	}
	if out := patient.ok("requests"); !strings.Contains(out, "drwho") || !strings.Contains(out, "annual check") {
		t.Fatalf("requests table:\n%s", out)
	}
	var ans keyshare.RequestInfo
	patient.json(&ans, "approve", q.ID[len(q.ID)-8:], "--json")
	if ans.State != keyshare.StateApproved || ans.Grant == "" || ans.Expires.IsZero() {
		t.Fatalf("approve: %+v", ans)
	}
	patient.fail(1, "approve", q.ID) // answered already
	ls := patient.ls()
	readers := ls[rec.CID].Readers
	found := false
	for _, rd := range readers {
		found = found || rd.Account == who
	}
	if !found {
		t.Fatalf("drwho is no reader of %s after approve: %+v", rec.CID, readers)
	}
	carry(t, patient, clinic)
	clinic.json(&boxes, "requests", "--json")
	if boxes.Outbox[0].State != keyshare.StateApproved || boxes.Outbox[0].Grant != ans.Grant {
		t.Fatalf("clinic outbox after the answer: %+v", boxes.Outbox)
	}

	// A request for one record, denied with a reason.
	clinic.json(&q, "request", pat[len(pat)-8:], "--records", rec.CID, "--json")
	carry(t, clinic, patient)
	if out := patient.ok("deny", q.ID, "--reason", "ask me in person"); !strings.Contains(out, "denied") {
		t.Fatalf("deny: %q", out)
	}
	carry(t, patient, clinic)
	clinic.json(&boxes, "requests", "--json", "--account", "drwho")
	var got keyshare.RequestInfo
	for _, x := range boxes.Outbox {
		if x.ID == q.ID {
			got = x
		}
	}
	if got.State != keyshare.StateDenied || got.AnswerReason != "ask me in person" || len(got.Records) != 1 {
		t.Fatalf("denied request in the outbox: %+v", got)
	}
}
