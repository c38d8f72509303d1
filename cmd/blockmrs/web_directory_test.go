package main

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// The directory page in Chromium: the patient's node (which has met only
// the authority) trusts it from the page, searches the clinic's node by
// name, sees Dr Grey as a verified clinician of St Mary's with emergency
// access, and adds him as a contact; the page works at 390 px. The
// clinic's node got the authority's chain by a role proof, as a real one
// would.
func TestWebDirectoryInChromium(t *testing.T) {
	w := newAttestWorld(t)
	ad, cd := startDaemon(t, w.auth), startDaemon(t, w.clinic)
	startDaemon(t, w.pat)
	checkRole(t, w.clinic, w.clinicID, ad.addr())
	w.pat.ok("contact", "add", ad.addr(), w.authID)
	b := newBrowser(t)

	link := strings.TrimSpace(w.pat.ok("open", "--print"))
	b.do(t, "patient logs in", chromedp.Navigate(link), chromedp.WaitVisible(chromedp.CSS("#screen-records")))
	b.do(t, "directory page",
		navTo("directory"),
		chromedp.WaitVisible(chromedp.CSS("#directory-clinic")),
		chromedp.WaitVisible(chromedp.CSS("#trust-empty")))

	// Trust the authority from the page.
	b.do(t, "trust the authority",
		chromedp.SendKeys(chromedp.CSS("#trust-account"), w.authID),
		chromedp.Click(chromedp.CSS("#trust-button")),
		chromedp.WaitVisible(chromedp.CSS(`#trust-body tr.trusted[data-id="`+w.authID+`"]`)))
	if got := b.text(t, `#trust-body tr.trusted td.name`); got != "Health Authority" {
		t.Fatalf("trusted authority shown as %q", got)
	}

	// Search the clinic's node by name.
	b.do(t, "search grey",
		chromedp.SendKeys(chromedp.CSS("#directory-clinic"), cd.addr()),
		chromedp.SendKeys(chromedp.CSS("#directory-query"), "grey"),
		chromedp.Click(chromedp.CSS("#directory-button")))
	b.waitLong(t, "the result", `#directory-results-body tr.result[data-id="`+w.docID+`"]`)
	row := `#directory-results-body tr.result[data-id="` + w.docID + `"]`
	if got := b.text(t, row+" td.name"); got != "Dr Grey" {
		t.Fatalf("result name %q", got)
	}
	if got := b.text(t, row+" td.role"); !strings.Contains(got, "clinician") || !strings.Contains(got, "verified") || strings.Contains(got, "not verified") || !strings.Contains(got, "emergency") {
		t.Fatalf("result role %q", got)
	}
	if got := b.text(t, row+" td.clinic"); got != "St Mary's" {
		t.Fatalf("result clinic %q", got)
	}
	if got := b.text(t, row+" td.department"); got != "Cardiology" {
		t.Fatalf("result department %q", got)
	}
	b.do(t, "add as contact",
		chromedp.Click(chromedp.CSS(row+" button.add-contact")),
		chromedp.Poll[chromedp.Void](`document.querySelector(`+jsString(row+" td.actions")+`).textContent === "a contact"`))
	shot := b.screenshot(t, "directory")
	docScreenshot(t, shot, "web-directory.png")
	b.narrow(t, "directory-narrow")

	// The contact is there, with its badge, on the contacts page.
	b.do(t, "contacts page",
		navTo("contacts"),
		chromedp.WaitVisible(chromedp.CSS(`#contacts-body tr.contact[data-id="`+w.docID+`"]`)))
	if got := b.text(t, `#contacts-body tr.contact[data-id="`+w.docID+`"] td.role`); !strings.Contains(got, "verified") {
		t.Fatalf("contact role %q", got)
	}
	// Searched again, the result says it is a contact now.
	b.do(t, "search again",
		navTo("directory"),
		chromedp.WaitVisible(chromedp.CSS("#directory-button")))
	evalIn[bool](t, b, `(document.querySelector("#directory-results-body").replaceChildren(), true)`)
	b.do(t, "search", chromedp.Click(chromedp.CSS("#directory-button")))
	b.waitLong(t, "the result again", row+" td.actions span.hint")
	time.Sleep(300 * time.Millisecond) // room for an onerror to fire
	if p := b.problems(); len(p) > 0 {
		t.Fatalf("dialogs or console errors: %q", p)
	}
}
