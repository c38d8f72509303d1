package main

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestWebGuardianConsentInChromium: Wanda appoints Gail (another account
// of the node) guardian; Gail's side lists the offer as pending, on the
// command line ("Wanda appointed you guardian (read,approve): accept or
// decline") and on the guardians page, with Accept and Decline and no
// acting for Wanda. Gail accepts in the page: the row shows accepted and
// offers acting for her; she resigns (asked first in the row, Keep
// changes nothing): declined, no acting again; she accepts again from
// the row: accepted. At 390 px nothing is wider than the window; no
// dialog, no console error.
func TestWebGuardianConsentInChromium(t *testing.T) {
	n := newNode(t, "")
	gailID := n.initAccount("--name", "Gail", "--no-passphrase")
	wandaID := n.initAccount("--name", "Wanda", "--no-passphrase")
	n.ok("guardian", "add", gailID, "--account", "Wanda", "--may", "read,grant,approve")
	ls := n.ok("guardian", "ls", "--account", "Gail")
	if !strings.Contains(ls, "Wanda appointed you guardian (read,grant,approve): accept or decline ('blockmrs guardian accept "+wandaID+" --account "+gailID+"'") {
		t.Fatalf("guardian ls shows no pending offer:\n%s", ls)
	}
	if r := n.fail(1, "guardian", "grant", "--ward", wandaID, "--to", wandaID, "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku", "--account", "Gail"); !strings.Contains(r.stderr, "not accepted") {
		t.Fatalf("acting before the accept: %q", r.stderr)
	}

	startAPIDaemon(t, n)
	b := newBrowser(t)
	link := strings.TrimSpace(n.ok("open", "--print"))
	b.do(t, "log in", chromedp.Navigate(link), chromedp.WaitVisible(chromedp.CSS("#screen-records")))
	b.until(t, "Gail is in the account picker", `!!document.querySelector("#account-picker option[value='`+gailID+`']")`)
	evalIn[bool](t, b, `(() => { const s = document.querySelector("#account-picker"); s.value = "`+gailID+`"; s.dispatchEvent(new Event("change")); return true; })()`)
	evalIn[bool](t, b, `location.hash = "#/guardians", true`)
	offer := `#guardian-offers li.offer[data-id="` + wandaID + `"]`
	row := `#my-wards-body tr.ward[data-id="` + wandaID + `"]`
	b.do(t, "the offer", chromedp.WaitVisible(chromedp.CSS(offer+" button.accept")))
	if got := b.text(t, offer+" p.offer-text"); got != "Wanda appointed you guardian (read, grant, approve): accept or decline." {
		t.Fatalf("offer text: %q", got)
	}
	if got := b.text(t, row+" td.consent"); got != "not accepted yet" {
		t.Fatalf("the ward row before the accept: %q", got)
	}
	if n := evalIn[int](t, b, `document.querySelectorAll(`+jsString(row+" a.act-for")+`).length`); n != 0 {
		t.Fatal("acting for Wanda is offered before the accept")
	}
	b.narrow(t, "guardian-consent-1-390px")
	docScreenshot(t, b.screenshot(t, "guardian-consent-2-offer"), "web-guardian-offer.png")

	b.clickWhenThere(t, "accept", offer+" button.accept")
	b.do(t, "accepted", chromedp.WaitVisible(chromedp.CSS(row+`[data-consent=accepted] a.act-for`)))
	b.until(t, "the offer is gone", `document.querySelector("#guardian-offers").hidden`)
	if got := b.text(t, "#guardians-status"); got != "Accepted Wanda's appointment." {
		t.Fatalf("status after the accept: %q", got)
	}
	var l struct {
		Guardians []struct {
			Guardian string `json:"guardian"`
			Consent  string `json:"consent"`
		} `json:"guardians"`
	}
	n.json(&l, "guardian", "ls", "--account", "Wanda", "--json")
	if len(l.Guardians) != 1 || l.Guardians[0].Guardian != gailID || l.Guardians[0].Consent != "accepted" {
		t.Fatalf("Wanda's guardians after the accept: %+v", l)
	}

	// Resign asks first, in the row; Keep puts the row back untouched.
	b.clickWhenThere(t, "resign", row+" button.resign")
	b.do(t, "resign asks", chromedp.WaitVisible(chromedp.CSS(row+" button.confirm")))
	if got := b.text(t, row+" td.actions span.ask"); got != "Resign as Wanda's guardian?" {
		t.Fatalf("the question: %q", got)
	}
	b.clickWhenThere(t, "keep", row+" button.keep")
	b.do(t, "kept", chromedp.WaitVisible(chromedp.CSS(row+" button.resign")))
	if n := evalIn[int](t, b, `document.querySelectorAll(`+jsString(row+` a.act-for, `+row+` button.confirm`)+`).length`); n != 1 {
		t.Fatalf("after Keep the row has %d of acting and a confirm button, want acting only", n)
	}
	n.json(&l, "guardian", "ls", "--account", "Wanda", "--json")
	if len(l.Guardians) != 1 || l.Guardians[0].Consent != "accepted" {
		t.Fatalf("Keep resigned: %+v", l)
	}
	b.clickWhenThere(t, "resign", row+" button.resign")
	b.clickWhenThere(t, "resign now", row+" button.confirm")
	b.do(t, "declined", chromedp.WaitVisible(chromedp.CSS(row+`[data-consent=declined]`)))
	if got := b.text(t, row+" td.consent"); got != "declined" {
		t.Fatalf("after resigning: %q", got)
	}
	if n := evalIn[int](t, b, `document.querySelectorAll(`+jsString(row+" a.act-for")+`).length`); n != 0 {
		t.Fatal("acting for Wanda is offered after resigning")
	}
	b.screenshot(t, "guardian-consent-3-resigned")
	n.json(&l, "guardian", "ls", "--account", "Wanda", "--json")
	if len(l.Guardians) != 1 || l.Guardians[0].Consent != "declined" {
		t.Fatalf("Wanda's guardians after the resignation: %+v", l)
	}

	// A resignation can be taken back while the appointment stands.
	b.clickWhenThere(t, "accept again", row+" button.accept-again")
	b.do(t, "accepted again", chromedp.WaitVisible(chromedp.CSS(row+`[data-consent=accepted] a.act-for`)))
	if got := b.text(t, "#guardians-status"); got != "Accepted Wanda's appointment again." {
		t.Fatalf("status after accepting again: %q", got)
	}
	n.json(&l, "guardian", "ls", "--account", "Wanda", "--json")
	if len(l.Guardians) != 1 || l.Guardians[0].Consent != "accepted" {
		t.Fatalf("Wanda's guardians after accepting again: %+v", l)
	}
	if probs := b.problems(); len(probs) > 0 {
		t.Fatalf("dialogs or console errors: %v", probs)
	}
}
