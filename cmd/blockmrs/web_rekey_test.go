package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// The record page's revoke with "Re-key when revoking" ticked, in
// Chromium against a real daemon: the box says what re-keying protects
// against and what it cannot undo; the progress bar runs; the page then
// shows the new version (re-keyed from the old one, read by those who
// could still read it, not by the revoked doctor), and the old record's
// page points to it.
func TestWebAppRekeyInChromium(t *testing.T) {
	p := newNode(t, "")
	p.initAccount("--name", "Robin Patient", "--no-passphrase")
	doc := newNode(t, "")
	doctor := doc.initAccount("--name", "Dr Lee", "--role", "clinician", "--no-passphrase")
	card := filepath.Join(t.TempDir(), "lee.car")
	doc.ok("id", "--export", card)
	p.ok("contact", "add", card)
	friend := p.initAccount("--name", "Sam", "--no-passphrase")
	rec := strings.TrimSpace(p.ok("add", "--kind", "note", "--title", "Lab note", writeTemp(t, "note.txt", []byte("ferritin 40\n"))))
	p.ok("grant", rec, "--to", doctor)
	p.ok("grant", rec, "--to", friend, "--expires", "30d")

	startAPIDaemon(t, p)
	b := newBrowser(t)
	link := strings.TrimSpace(p.ok("open", "--print"))
	b.do(t, "log in", chromedp.Navigate(link), chromedp.WaitVisible(chromedp.CSS("#records-body tr.record")))
	b.do(t, "open the record", chromedp.Navigate(strings.SplitN(link, "/login", 2)[0]+"/#/record/"+rec),
		chromedp.WaitVisible(chromedp.CSS("#rekey-box")))
	note := b.text(t, "#rekey-note")
	for _, want := range []string{"never fetched", "future versions", "cannot take back what their node already fetched"} {
		if !strings.Contains(note, want) {
			t.Fatalf("the re-key note does not say %q: %q", want, note)
		}
	}
	if got := evalIn[string](t, b, `document.querySelector("label[for=rekey-check]").textContent`); got != "Re-key when revoking" {
		t.Fatalf("checkbox label %q", got)
	}
	b.fits390(t, "1-rekey-390px")
	b.do(t, "wide again", chromedp.EmulateViewport(1000, 700))

	b.do(t, "tick re-key and revoke the doctor", chromedp.Click(chromedp.CSS("#rekey-check")),
		chromedp.Click(chromedp.CSS(`#record-readers li[data-account='`+doctor+`'] button.revoke`)))
	b.untilWithin(t, 30e9, "the new version is shown", `location.hash !== "#/record/`+rec+`" && !!document.querySelector("#record-meta dd.rekey-of a")`)
	nw := strings.TrimPrefix(evalIn[string](t, b, `location.hash`), "#/record/")
	if got := b.text(t, "#record-meta dd.rekey-of a"); got != rec {
		t.Fatalf("re-keyed from %q, want %s", got, rec)
	}
	b.until(t, "the note", `document.querySelector("#share-status").textContent.includes("re-keyed this record")`)
	if s := b.text(t, "#share-status"); !strings.Contains(s, "stays with them") {
		t.Fatalf("status %q", s)
	}
	b.until(t, "readers drawn", `document.querySelectorAll("#record-readers li.reader").length === 2`)
	readers := evalIn[[]string](t, b, `[...document.querySelectorAll("#record-readers li.reader")].map(li => li.dataset.account)`)
	if strings.Contains(strings.Join(readers, " "), doctor) || !strings.Contains(strings.Join(readers, " "), friend) {
		t.Fatalf("readers of the new version %v", readers)
	}
	if got := b.text(t, "#record-view pre.content-text"); got != "ferritin 40\n" {
		t.Fatalf("the new version shows %q", got)
	}
	docScreenshot(t, b.screenshot(t, "2-new-version"), "web-rekey.png")
	// Verify shows where it came from.
	b.do(t, "verify", chromedp.Click(chromedp.CSS("#verify-button")), chromedp.WaitVisible(chromedp.CSS("#verify-fields dd.v-rekey")))
	if v := b.text(t, "#verify-fields dd.v-rekey"); !strings.Contains(v, "from "+rec) {
		t.Fatalf("verify's re-key line %q", v)
	}

	// The old page points to the new one, and offers no re-key.
	b.do(t, "open the old record", chromedp.Navigate(strings.SplitN(link, "/login", 2)[0]+"/#/record/"+rec),
		chromedp.WaitVisible(chromedp.CSS("#record-view p.rekeyed-note")))
	if got := b.text(t, "#record-view p.rekeyed-note a"); got != nw {
		t.Fatalf("the old page points to %q, want %s", got, nw)
	}
	if evalIn[bool](t, b, `!document.querySelector("#rekey-box").hidden`) {
		t.Fatal("the re-keyed record offers a re-key")
	}
	// The activity page tells of it.
	b.do(t, "open the activity", chromedp.Navigate(strings.SplitN(link, "/login", 2)[0]+"/#/activity"),
		chromedp.WaitVisible(chromedp.CSS(`#activity-body tr.entry[data-type=rekey]`)))
	if got := b.text(t, `#activity-body tr.entry[data-type=rekey] td.what`); !strings.HasPrefix(got, "re-keyed ") || !strings.Contains(got, "given out by no node") {
		t.Fatalf("the activity row: %q", got)
	}
	if probs := b.problems(); len(probs) != 0 {
		t.Fatalf("dialogs or console errors: %v", probs)
	}
}
