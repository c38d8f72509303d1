package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestWebGuardiansInChromium: on the guardians page a mother creates
// her son's account on her node (she is his guardian), acts for him —
// shares his record with her contact Dr Grey as his guardian, which the
// node then shows as Dr Grey reading under her grant — and, switched to
// the son's account, sees her listed as his guardian and removes her;
// her side then lists the appointment as removed and offers no acting
// for him. At 390 px nothing is wider than the window; no dialog, no
// console error.
func TestWebGuardiansInChromium(t *testing.T) {
	m, c := newNode(t, ""), newNode(t, "")
	mumID := m.initAccount("--name", "Mum", "--role", "patient", "--no-passphrase")
	drID := c.initAccount("--name", "Dr Grey", "--role", "clinician", "--no-passphrase")
	profile := filepath.Join(t.TempDir(), "dr.car")
	c.ok("id", "--export", profile)
	m.ok("contact", "add", profile)
	startAPIDaemon(t, m)
	b := newBrowser(t)
	link := strings.TrimSpace(m.ok("open", "--print"))
	b.do(t, "log in", chromedp.Navigate(link), chromedp.WaitVisible(chromedp.CSS("#screen-records")))
	b.do(t, "guardians page",
		navTo("guardians"),
		chromedp.WaitVisible(chromedp.CSS("#minor-form")))
	if got := b.text(t, "#screen-guardians .empty-wards"); got != "You act for nobody." {
		t.Fatalf("before any ward: %q", got)
	}

	// A child's account, with her as guardian, its keys under a
	// passphrase of its own: two that differ are refused, and nothing is
	// made.
	b.do(t, "mistyped passphrase",
		chromedp.SendKeys(chromedp.CSS("#minor-name"), "Sam"),
		chromedp.SendKeys(chromedp.CSS("#minor-pass"), "sam pass"),
		chromedp.SendKeys(chromedp.CSS("#minor-pass2"), "sam pas"),
		chromedp.Click(chromedp.CSS("#minor-button")),
		chromedp.WaitVisible(chromedp.CSS("#guardians-error")))
	if got := b.text(t, "#guardians-error"); got != "The two passphrases differ: type the same one twice." {
		t.Fatalf("mistyped passphrase: %q", got)
	}
	b.do(t, "create Sam's account",
		chromedp.SetValue(chromedp.CSS("#minor-pass2"), "sam pass"),
		chromedp.Click(chromedp.CSS("#minor-button")),
		chromedp.WaitVisible(chromedp.CSS(`#my-wards-body tr.ward[data-live=true] a.act-for`)))
	// The row can show (the chain changed) before the session is open.
	b.until(t, "the status says Sam's keys are encrypted and unlocked", `document.querySelector("#guardians-status").textContent === "Created Sam's account, with you as guardian; its keys are encrypted with the passphrase you chose, and it is unlocked on this node."`)
	var accts struct {
		Accounts []struct {
			ID        string `json:"id"`
			Name      string `json:"name"`
			Encrypted bool   `json:"encrypted"`
		} `json:"accounts"`
	}
	m.json(&accts, "accounts", "--json")
	samID := ""
	for _, a := range accts.Accounts {
		if a.Name == "Sam" && a.Encrypted {
			samID = a.ID
		}
	}
	if samID == "" {
		t.Fatalf("no account Sam with encrypted keys on the node: %+v", accts)
	}
	var sess struct {
		Sessions []struct {
			Account string `json:"account"`
		} `json:"sessions"`
	}
	m.json(&sess, "sessions", "--json")
	unlocked := false
	for _, x := range sess.Sessions {
		unlocked = unlocked || x.Account == samID
	}
	if !unlocked {
		t.Fatalf("Sam's account is not unlocked on the node: %+v", sess)
	}
	var rec struct {
		CID string `json:"cid"`
	}
	m.json(&rec, "add", "--json", "--account", "Sam", "--kind", "note", "--title", "Vaccinations", writeTemp(t, "v.txt", []byte("MMR")))

	// Acting for him: his record, shared with Dr Grey as his guardian.
	recSel := `#ward-view li.ward-record[data-cid="` + rec.CID + `"]`
	b.clickWhenThere(t, "act for Sam", `#my-wards-body tr.ward a.act-for`)
	b.do(t, "the ward's records", chromedp.WaitVisible(chromedp.CSS(recSel+" form.ward-share")))
	if got := b.text(t, "#ward-heading"); got != "Acting for Sam" {
		t.Fatalf("ward view heading: %q", got)
	}
	b.clickWhenThere(t, "share as guardian", recSel+" form.ward-share button")
	b.until(t, "the share is confirmed", `(document.querySelector(`+jsString(recSel+" p.ward-status")+`) || {}).textContent === "Shared with Dr Grey as Sam's guardian."`)
	var rd struct {
		Readers []struct {
			Account  string `json:"account"`
			Guardian string `json:"guardian"`
		} `json:"readers"`
	}
	m.json(&rd, "readers", rec.CID, "--json", "--account", "Sam")
	found := false
	for _, r := range rd.Readers {
		found = found || (r.Account == drID && r.Guardian == mumID)
	}
	if !found {
		t.Fatalf("the node does not show Dr Grey reading under the guardian's grant: %+v", rd)
	}
	b.narrow(t, "guardians-1-390px")
	docScreenshot(t, b.screenshot(t, "guardians-2-acting"), "web-guardians.png")
	// The record's page names the guardian beside the reader she shared it
	// with: Mum, who is looking, is "you".
	byGuardian := `#record-readers li[data-account="` + drID + `"] span.guardian`
	b.show(t, rec.CID, byGuardian)
	if got := b.text(t, byGuardian); got != "by guardian you" {
		t.Fatalf("the record page shows Dr Grey's access as %q, not by guardian you (Mum)", got)
	}
	b.screenshot(t, "guardians-2-record-readers")

	// Sam's side: his guardian, removed.
	b.until(t, "Sam is in the account picker", `!!document.querySelector("#account-picker option[value='`+samID+`']")`)
	evalIn[bool](t, b, `(() => { const s = document.querySelector("#account-picker"); s.value = "`+samID+`"; s.dispatchEvent(new Event("change")); return true; })()`)
	evalIn[bool](t, b, `location.hash = "#/guardians", true`)
	row := `#my-guardians-body tr.guardian[data-id="` + mumID + `"]`
	b.do(t, "Sam's guardians", chromedp.WaitVisible(chromedp.CSS(row+`[data-live=true] button.remove`)))
	if got := b.text(t, row+" td.may"); got != "read, grant, revoke, approve" {
		t.Fatalf("Mum may %q", got)
	}
	b.clickWhenThere(t, "remove Mum", row+" button.remove")
	b.clickWhenThere(t, "confirm the removal", row+" button.confirm")
	b.do(t, "Mum removed", chromedp.WaitVisible(chromedp.CSS(row+`[data-live=false]`)))
	if got := b.text(t, row+" td.state"); got != "removed" {
		t.Fatalf("after removal Mum is %q", got)
	}
	// Mum's side: no acting for Sam any more, and the node refuses it.
	evalIn[bool](t, b, `(() => { const s = document.querySelector("#account-picker"); s.value = "`+mumID+`"; s.dispatchEvent(new Event("change")); return true; })()`)
	evalIn[bool](t, b, `location.hash = "#/guardians/`+samID+`", true`)
	b.do(t, "Mum's wards", chromedp.WaitVisible(chromedp.CSS(`#my-wards-body tr.ward[data-live=false]`)))
	b.until(t, "no acting for Sam", `document.querySelector("#ward-view").hidden && !document.querySelector("#my-wards-body tr.ward[data-live=true]")`)
	r := m.fail(1, "guardian", "grant", "--ward", samID, rec.CID, "--to", drID, "--account", "Mum")
	if !strings.Contains(r.stderr, "removed") {
		t.Fatalf("a grant after removal: %q", r.stderr)
	}
	b.screenshot(t, "guardians-3-removed")
	if probs := b.problems(); len(probs) > 0 {
		t.Fatalf("dialogs or console errors: %v", probs)
	}
}
