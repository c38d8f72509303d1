package main

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/blockmrs/blockmrs/node/ops"
)

// TestWebStandingGrantsInChromium: on her contacts page the patient
// shares a category with a contact (a preset, with an end date), sees it
// listed with what it covers and its end, is told what a bad scope of her
// own is, shares another by a scope she types, and ends the first; the
// node's grants agree at each step. At 390 px nothing is wider than the
// window; no dialog, no console error.
func TestWebStandingGrantsInChromium(t *testing.T) {
	p, c := newNode(t, ""), newNode(t, "")
	p.initAccount("--name", "Pat", "--role", "patient", "--no-passphrase")
	drID := c.initAccount("--name", "Dr Grey", "--role", "clinician", "--no-passphrase")
	profile := filepath.Join(t.TempDir(), "dr.car")
	c.ok("id", "--export", profile)
	p.ok("contact", "add", profile)
	p.ok("lab", "add", "--for", "Pat", "--date", "2026-11-30", "fasting-glucose=95", "pulse=70")
	p.ok("add", "--kind", "note", "--title", "Diary", writeTemp(t, "diary.txt", []byte("diary")))
	startAPIDaemon(t, p)
	b := newBrowser(t)
	link := strings.TrimSpace(p.ok("open", "--print"))
	b.do(t, "log in", chromedp.Navigate(link), chromedp.WaitVisible(chromedp.CSS("#screen-records")))
	row := `#contacts-body tr.contact[data-id="` + drID + `"]`
	b.do(t, "contacts page",
		navTo("contacts"),
		chromedp.WaitVisible(chromedp.CSS(row)))
	if help := strings.Join(strings.Fields(b.text(t, "#standing-help")), " "); !strings.Contains(help, "every future one") || !strings.Contains(help, "takes back every record it covered") || !strings.Contains(help, "cannot be taken back") {
		t.Fatalf("the page does not say what a standing grant covers and what ending it does: %q", help)
	}

	// Lab results, until a date.
	until := time.Now().AddDate(0, 2, 0).UTC().Format("2006-01-02")
	const labScope = "patient/Observation.rs?category=laboratory"
	labLine := row + ` p.standing[data-scope="` + labScope + `"]`
	b.do(t, "open the form", chromedp.Click(chromedp.CSS(row+" details.share-scope summary")), chromedp.WaitVisible(chromedp.CSS(row+" details.share-scope select")))
	if got := evalIn[string](t, b, `document.querySelector(`+jsString(row+" details.share-scope select")+`).selectedOptions[0].textContent`); got != "Lab results" {
		t.Fatalf("the first preset is %q", got)
	}
	b.setValue(t, row+` details.share-scope input[type=date]`, until)
	b.do(t, "share lab results",
		chromedp.Click(chromedp.CSS(row+` details.share-scope button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(labLine)))
	line := b.textNow(t, labLine)
	if !strings.Contains(line, "lab results") || !strings.Contains(line, labScope) || !strings.Contains(line, "1 record(s) now and future ones") || !strings.Contains(line, "until") {
		t.Fatalf("the standing grant is listed as %q", line)
	}
	if got := b.text(t, "#standing-status"); !strings.HasPrefix(got, "Now sharing lab results with Dr Grey: 1 record(s)") {
		t.Fatalf("status after sharing: %q", got)
	}
	grants := func() ops.GrantList {
		var g ops.GrantList
		p.json(&g, "grants", "--json")
		return g
	}
	if g := grants(); len(g.Standing) != 1 || g.Standing[0].Scope != labScope || g.Standing[0].Expires.Format("2006-01-02") != until || string(g.Standing[0].To) != drID {
		t.Fatalf("the node's standing grants: %+v", g.Standing)
	}

	// A scope of her own that asks to write: the node's one line, in the
	// form; nothing granted.
	b.do(t, "a write scope",
		chromedp.Click(chromedp.CSS(row+" details.share-scope summary")),
		chromedp.WaitVisible(chromedp.CSS(row+` details.share-scope input[type=text]`)),
		chromedp.SendKeys(chromedp.CSS(row+` details.share-scope input[type=text]`), "patient/Observation.cruds"),
		chromedp.Click(chromedp.CSS(row+` details.share-scope button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(row+` details.share-scope p.scope-status.error`)))
	if got := b.text(t, row+` details.share-scope p.scope-status`); !strings.Contains(got, "only lets the grantee read") {
		t.Fatalf("a write scope says %q", got)
	}
	if g := grants(); len(g.Standing) != 1 {
		t.Fatalf("a refused scope was granted: %+v", g.Standing)
	}
	// Notes, by the scope typed in.
	const noteScope = "patient/DocumentReference.rs"
	b.do(t, "share notes by scope",
		chromedp.SetValue(chromedp.CSS(row+` details.share-scope input[type=text]`), noteScope),
		chromedp.Click(chromedp.CSS(row+` details.share-scope button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(row+` p.standing[data-scope="`+noteScope+`"]`)))
	b.do(t, "the form open", chromedp.Click(chromedp.CSS(row+" details.share-scope summary")), chromedp.WaitVisible(chromedp.CSS(row+" details.share-scope select")))
	docScreenshot(t, b.screenshot(t, "standing-1-shared"), "web-standing.png")
	b.narrow(t, "standing-2-390px")

	// End the lab results: the line goes, the status says what it did.
	b.do(t, "end lab results",
		chromedp.Click(chromedp.CSS(labLine+" button.revoke")),
		chromedp.WaitNotPresent(chromedp.CSS(labLine)))
	if got := b.text(t, "#standing-status"); !strings.HasPrefix(got, "Ended: Dr Grey gets no more lab results and can no longer open the 1 record(s) it covered") {
		t.Fatalf("status after ending: %q", got)
	}
	if g := grants(); len(g.Standing) != 1 || g.Standing[0].Scope != noteScope {
		t.Fatalf("after the end the node lists %+v", g.Standing)
	}
	b.screenshot(t, "standing-3-ended")
	if probs := b.problems(); len(probs) > 0 {
		t.Fatalf("dialogs or console errors: %v", probs)
	}
}
