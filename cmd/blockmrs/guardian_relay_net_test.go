package main

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// relayedRequest is a request as `requests --json` lists it, with who
// answered it.
type relayedRequest struct {
	ID         string `json:"id"`
	To         string `json:"to"`
	State      string `json:"state"`
	AnsweredBy string `json:"answered_by"`
	ByGuardian bool   `json:"answered_by_guardian"`
	// NoLongerYours: still new, but no account here may answer it now.
	NoLongerYours bool `json:"no_longer_yours"`
}

// box returns the inbox (or the outbox) of n as its CLI lists it.
func box(n *node, outbox bool, args ...string) []relayedRequest {
	var l struct {
		Inbox  []relayedRequest `json:"inbox"`
		Outbox []relayedRequest `json:"outbox"`
	}
	n.json(&l, append([]string{"requests", "--json"}, args...)...)
	if outbox {
		return l.Outbox
	}
	return l.Inbox
}

func findRequest(qs []relayedRequest, id string) (relayedRequest, bool) {
	i := slices.IndexFunc(qs, func(q relayedRequest) bool { return q.ID == id })
	if i < 0 {
		return relayedRequest{}, false
	}
	return qs[i], true
}

// TestGuardianRelayOverTheNetwork: an adult ward, Wanda, on her own node
// appointed Gail, on hers, guardian with approve; Dr Cole knows only
// Wanda's node. Cole's request reaches Gail's node through Wanda's; Gail
// approves; Cole reads the record and sees Gail granted it as guardian;
// both Wanda's and Gail's inboxes show it answered by Gail (guardian).
// A request Wanda denies herself shows as answered by her on Gail's node.
// Once Wanda takes the approve right away, a new request is not relayed
// to Gail, Gail's approval is refused, and Wanda approves it herself.
func TestGuardianRelayOverTheNetwork(t *testing.T) {
	wanda, gail, cole := newNode(t, ""), newNode(t, ""), newNode(t, "")
	wandaID := wanda.initAccount("--name", "Wanda", "--role", "patient", "--no-passphrase")
	gailID := gail.initAccount("--name", "Gail", "--role", "patient", "--no-passphrase")
	coleID := cole.initAccount("--name", "Dr Cole", "--role", "clinician", "--no-passphrase")
	wd, gd, cd := startDaemon(t, wanda), startDaemon(t, gail), startDaemon(t, cole)
	all := []*daemonProc{wd, gd, cd}

	var rec struct {
		CID string `json:"cid"`
	}
	wanda.json(&rec, "add", "--json", "--kind", "note", "--title", "Blood pressure", writeTemp(t, "bp.txt", []byte("140/90")))
	// They exchange contacts, then Wanda appoints Gail: her chain's new
	// head is announced to Gail's node, entitled to it as her guardian's.
	gail.ok("contact", "add", wd.addr(), wandaID)
	wanda.ok("contact", "add", gd.addr(), gailID)
	wanda.ok("guardian", "add", gailID, "--may", "read,grant,revoke,approve")
	cole.ok("contact", "add", wd.addr(), wandaID)
	waitUntil(t, 60*time.Second, "Gail's node sees Wanda's offer", func() bool {
		return strings.Contains(gail.ok("guardian", "ls"), "Wanda appointed you guardian (read,grant,revoke,approve): accept or decline")
	}, all...)
	// Until Gail accepts, Wanda's node relays nothing to hers, and hers
	// does not fetch Wanda's note though the appointment's read right
	// wraps it for her (want/guardian-unaccepted); the accept is on
	// Gail's chain, which her node now gives Wanda's, and makes hers
	// fetch it.
	gailReads := func() bool {
		return gail.run("get", rec.CID, "-o", filepath.Join(t.TempDir(), "out")).code == 0
	}
	if gailReads() {
		t.Fatal("Gail's node fetched Wanda's note before Gail accepted")
	}
	gail.ok("guardian", "accept", wandaID)
	waitUntil(t, 60*time.Second, "Gail's node fetches Wanda's note once she accepted", gailReads, all...)
	waitUntil(t, 60*time.Second, "Wanda's node sees Gail accepted", func() bool {
		var ls struct {
			Guardians []struct {
				Guardian string `json:"guardian"`
				Consent  string `json:"consent"`
			} `json:"guardians"`
		}
		wanda.json(&ls, "guardian", "ls", "--json")
		return len(ls.Guardians) == 1 && ls.Guardians[0].Guardian == gailID && ls.Guardians[0].Consent == "accepted"
	}, all...)

	ask := func(reason string) string {
		var q struct {
			ID string `json:"id"`
		}
		cole.json(&q, "request", wandaID, "--reason", reason, "--records", rec.CID, "--json")
		waitUntil(t, 60*time.Second, "the request reaches Wanda's node", func() bool {
			_, ok := findRequest(box(wanda, false), q.ID)
			return ok
		}, all...)
		return q.ID
	}
	coleReads := func() bool {
		return cole.run("get", rec.CID, "-o", filepath.Join(t.TempDir(), "out")).code == 0
	}

	// 1. Relayed to Gail, approved by her, read by Cole.
	first := ask("blood pressure review")
	waitUntil(t, 60*time.Second, "the request is relayed to Gail's node", func() bool {
		q, ok := findRequest(box(gail, false), first)
		return ok && q.To == wandaID && q.State == "new"
	}, all...)
	if coleReads() {
		t.Fatal("Cole reads before any approval")
	}
	gail.ok("approve", first)
	waitUntil(t, 90*time.Second, "Cole reads the record Gail granted", coleReads, all...)
	var rd struct {
		Readers []struct {
			Account  string `json:"account"`
			Guardian string `json:"guardian"`
		} `json:"readers"`
	}
	cole.json(&rd, "readers", rec.CID, "--json")
	if !slices.ContainsFunc(rd.Readers, func(r struct {
		Account  string `json:"account"`
		Guardian string `json:"guardian"`
	}) bool {
		return r.Account == coleID && r.Guardian == gailID
	}) {
		t.Fatalf("Cole's node does not show Gail's grant as guardian: %+v", rd)
	}
	answeredByGail := func(n *node, outbox bool) func() bool {
		return func() bool {
			q, ok := findRequest(box(n, outbox), first)
			return ok && q.State == "approved" && q.AnsweredBy == gailID && q.ByGuardian
		}
	}
	waitUntil(t, 60*time.Second, "Wanda's inbox shows the request answered by Gail", answeredByGail(wanda, false), all...)
	waitUntil(t, 60*time.Second, "Cole's outbox shows the request answered by Gail", answeredByGail(cole, true), all...)
	if !answeredByGail(gail, false)() {
		t.Fatalf("Gail's inbox: %+v", box(gail, false))
	}
	for _, n := range []*node{wanda, gail} {
		if out := n.ok("requests"); !strings.Contains(out, "answered by Gail (guardian)") {
			t.Fatalf("requests does not say who answered:\n%s", out)
		}
	}
	// Wanda's web app says who answered, on the Requests page.
	b := newBrowser(t)
	b.do(t, "log in to Wanda's node", chromedp.Navigate(strings.TrimSpace(wanda.ok("open", "--print"))),
		chromedp.WaitVisible(chromedp.CSS("#screen-records")))
	b.do(t, "requests page", navTo("requests"),
		chromedp.WaitVisible(chromedp.CSS(`#inbox li.request[data-id="`+first+`"]`)))
	if got := b.text(t, `#inbox li.request[data-id="`+first+`"] .state`); !strings.Contains(got, "answered by Gail (guardian)") {
		t.Fatalf("the Requests page shows the request as %q", got)
	}
	r := wanda.fail(1, "approve", first)
	if !strings.Contains(r.stderr, "approved already") {
		t.Fatalf("Wanda approving what Gail answered: %q", r.stderr)
	}

	// 2. Wanda answers a relayed request herself: Gail's node is told,
	// and her inbox shows it answered by Wanda.
	own := ask("Wanda decides this one")
	waitUntil(t, 60*time.Second, "the request is relayed to Gail's node", func() bool {
		_, ok := findRequest(box(gail, false), own)
		return ok
	}, all...)
	wanda.ok("deny", own, "--reason", "I decide")
	waitUntil(t, 60*time.Second, "Gail's inbox shows the request answered by Wanda", func() bool {
		q, ok := findRequest(box(gail, false), own)
		return ok && q.State == "denied" && q.AnsweredBy == wandaID && !q.ByGuardian
	}, all...)
	if r := gail.fail(1, "approve", own); !strings.Contains(r.stderr, "denied already") {
		t.Fatalf("Gail approving what Wanda denied: %q", r.stderr)
	}

	// 3. Wanda keeps Gail for reading only: a request relayed before
	// stays new on Gail's node but shows as no longer hers to answer; the
	// next request is not relayed, Gail's approval is refused, Wanda
	// approves herself.
	stale := ask("relayed before the right goes")
	waitUntil(t, 60*time.Second, "the request is relayed to Gail's node", func() bool {
		q, ok := findRequest(box(gail, false), stale)
		return ok && q.State == "new" && !q.NoLongerYours
	}, all...)
	wanda.ok("guardian", "add", gailID, "--may", "read")
	waitUntil(t, 60*time.Second, "Gail's node sees her approve right gone", func() bool {
		var ls struct {
			Wards []struct {
				Ward string   `json:"ward"`
				May  []string `json:"may"`
				Live bool     `json:"live"`
			} `json:"wards"`
		}
		gail.json(&ls, "guardian", "ls", "--json")
		return slices.ContainsFunc(ls.Wards, func(w struct {
			Ward string   `json:"ward"`
			May  []string `json:"may"`
			Live bool     `json:"live"`
		}) bool {
			return w.Ward == wandaID && w.Live && slices.Equal(w.May, []string{"read"})
		})
	}, all...)
	if q, _ := findRequest(box(gail, false), stale); q.State != "new" || !q.NoLongerYours {
		t.Fatalf("Gail's inbox, the request relayed before her right went: %+v", q)
	}
	if out := gail.ok("requests"); !strings.Contains(out, "new, no longer yours to answer") {
		t.Fatalf("requests does not say the relayed request is no longer Gail's:\n%s", out)
	}
	if r := gail.fail(1, "approve", stale); r.code == 0 {
		t.Fatal("Gail approved a request no longer hers")
	}
	second := ask("second review")
	wanda.ok("approve", second)
	waitUntil(t, 60*time.Second, "Cole's outbox shows Wanda's approval", func() bool {
		q, ok := findRequest(box(cole, true), second)
		return ok && q.State == "approved" && q.AnsweredBy == wandaID && !q.ByGuardian
	}, all...)
	if _, ok := findRequest(box(gail, false), second); ok {
		t.Fatal("a request was relayed to a guardian without the approve right")
	}
	var l struct {
		Inbox []struct {
			ID        string   `json:"id"`
			RelayedTo []string `json:"relayed_to"`
		} `json:"inbox"`
	}
	wanda.json(&l, "requests", "--json")
	for _, q := range l.Inbox {
		if want := q.ID != second; want != slices.Equal(q.RelayedTo, []string{gailID}) {
			t.Fatalf("Wanda's node relayed %s to %v", q.ID, q.RelayedTo)
		}
	}
	r = gail.fail(1, "approve", second)
	if !strings.Contains(r.stderr, "no request") {
		t.Fatalf("Gail approving a request not relayed to her: %q", r.stderr)
	}
	if !coleReads() {
		t.Fatal("Cole no longer reads")
	}
	wanda.verifyOK()
	gail.verifyOK()
	cole.verifyOK()
}
