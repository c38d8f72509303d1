package main

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestWebEmergencyInChromium: one node hosts a hospital's accounts (the
// authority, the clinic, an emergency clinician) and a patient with her
// guardian. In the page the patient sets up emergency access with two
// custodians (a threshold of 1 is refused with the node's line) and sees,
// per custodian, whether its node took the pack; the
// clinician, picked in the account picker, breaks glass with a reason and
// reads the summary; back as the patient, the banner says who opened it
// and why, and the emergency page lists the uses; she ends the pack. At
// 390 px nothing is wider than the window; no dialog, no console error.
func TestWebEmergencyInChromium(t *testing.T) {
	n := newNode(t, "")
	patID := n.initAccount("--name", "Pat", "--role", "patient", "--no-passphrase")
	n.initAccount("--name", "Gina", "--role", "patient", "--no-passphrase")
	clinicID := n.initAccount("--name", "St Marys", "--role", "clinic", "--no-passphrase")
	authID := n.initAccount("--name", "Health Authority", "--role", "authority", "--no-passphrase")
	greyID := n.initAccount("--name", "Dr Grey", "--role", "clinician", "--no-passphrase")
	n.ok("add", "--kind", "fhir", "--account", "Pat", writeTemp(t, "allergy.json", []byte(allergyJSON)), "--title", "Penicillin allergy")
	startAPIDaemon(t, n)
	n.ok("attest", clinicID, "--role", "clinic", "--account", authID)
	n.ok("attest", greyID, "--role", "clinician", "--emergency", "--account", clinicID)
	n.ok("trust", "add", authID)

	b := newBrowser(t)
	link := strings.TrimSpace(n.ok("open", "--print"))
	b.do(t, "log in", chromedp.Navigate(link), chromedp.WaitVisible(chromedp.CSS("#screen-records")))
	pick := func(id string) {
		evalIn[bool](t, b, `(() => { const s = document.querySelector("#account-picker"); s.value = "`+id+`"; s.dispatchEvent(new Event("change")); return true; })()`)
	}
	pick(patID)
	// The account change redraws the page: click the link from the page's
	// own script, so a redraw between finding it and clicking it cannot
	// leave the click waiting on a node that is gone.
	b.clickWhenThere(t, "the emergency page's link", `#nav a[data-page=emergency]`)
	b.do(t, "emergency page", chromedp.WaitVisible(chromedp.CSS("#emergency-setup")))
	if got := b.text(t, "#emergency-packs"); !strings.Contains(got, "No live emergency pack") {
		t.Fatalf("before setup: %q", got)
	}

	// A threshold of 1: the node's line, nothing set up.
	b.setValue(t, "#emergency-custodians", "Gina, St Marys")
	b.setValue(t, "#emergency-threshold", "1")
	b.do(t, "threshold 1", chromedp.Click(chromedp.CSS("#emergency-setup-button")), chromedp.WaitVisible(chromedp.CSS("#emergency-error")))
	if got := b.text(t, "#emergency-error"); !strings.Contains(got, "no custodian alone") {
		t.Fatalf("threshold 1 says %q", got)
	}
	b.setValue(t, "#emergency-threshold", "2")
	b.do(t, "set up", chromedp.Click(chromedp.CSS("#emergency-setup-button")), chromedp.WaitVisible(chromedp.CSS("#emergency-packs p.pack")))
	if got := b.text(t, "#emergency-packs p.pack"); !strings.Contains(got, "2 of 2 custodians") || !strings.Contains(got, "Gina") {
		t.Fatalf("the pack is shown as %q", got)
	}
	// Per custodian, whether its node took the pack (both are accounts
	// of this node: taken at once, or waiting for the round).
	if got := b.text(t, "#emergency-packs div.delivery"); !strings.Contains(got, "Gina: ") || !strings.Contains(got, "St Marys: ") {
		t.Fatalf("the delivery is shown as %q", got)
	}
	if !evalIn[bool](t, b, `document.querySelector("#emergency-banner").hidden`) {
		t.Fatal("the banner shows before any use")
	}
	b.narrow(t, "emergency-1-setup-390px")

	// Dr Grey breaks glass.
	pick(greyID)
	b.do(t, "as Dr Grey", chromedp.WaitVisible(chromedp.CSS("#emergency-open")))
	b.setValue(t, "#emergency-patient", patID)
	b.setValue(t, "#emergency-reason", "unconscious after a road accident")
	b.do(t, "break glass", chromedp.Click(chromedp.CSS("#emergency-open-button")), chromedp.WaitVisible(chromedp.CSS("#emergency-summary")))
	if got := b.text(t, "#emergency-summary"); !strings.Contains(got, "Penicillin") {
		t.Fatalf("the summary shown: %q", got)
	}
	b.screenshot(t, "emergency-2-opened")

	// Back as Pat: the banner and the uses.
	pick(patID)
	b.do(t, "banner", chromedp.WaitVisible(chromedp.CSS("#emergency-banner")), chromedp.WaitVisible(chromedp.CSS("#emergency-uses-body tr.given")))
	banner := b.text(t, "#emergency-banner")
	if !strings.Contains(banner, "Dr Grey") || !strings.Contains(banner, "unconscious after a road accident") {
		t.Fatalf("the banner says %q", banner)
	}
	b.narrow(t, "emergency-3-banner-390px")
	b.do(t, "end", chromedp.Click(chromedp.CSS("#emergency-end")), chromedp.Click(chromedp.CSS("#emergency-end-now")),
		chromedp.WaitVisible(chromedp.CSS("#emergency-packs p.hint")))
	if got := b.text(t, "#emergency-status"); !strings.Contains(got, "Ended") {
		t.Fatalf("after end: %q", got)
	}
	if probs := b.problems(); len(probs) > 0 {
		t.Fatalf("dialogs or console errors: %v", probs)
	}
}
