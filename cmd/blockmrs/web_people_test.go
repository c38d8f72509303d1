package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"
)

// waitLong waits, up to a minute, for sel to be visible: for what
// crosses the network between two daemons.
func (b *browser) waitLong(t *testing.T, what, sel string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, time.Minute)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(sel))); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// setValue sets a form field's value as typing would (input and change
// events), for fields SendKeys cannot fill (a datetime-local input).
func (b *browser) setValue(t *testing.T, sel, value string) {
	t.Helper()
	js := `(function(){ const e = document.querySelector(` + jsString(sel) + `); e.value = ` + jsString(value) +
		`; e.dispatchEvent(new Event("input", {bubbles: true})); e.dispatchEvent(new Event("change", {bubbles: true})); return e.value; })()`
	if got := evalIn[string](t, b, js); got != value {
		t.Fatalf("%s holds %q after setting %q", sel, got, value)
	}
}

// textNow reads the text of sel in one evaluation, for parts of a page
// that live events may render anew between a query and a read ("" when
// sel matches nothing).
func (b *browser) textNow(t *testing.T, sel string) string {
	t.Helper()
	return evalIn[string](t, b, `(function(){ const e = document.querySelector(`+jsString(sel)+`); return e ? e.textContent : ""; })()`)
}

func jsString(s string) string {
	data, _ := json.Marshal(s)
	return string(data)
}

// narrow checks the page at 390 px: nothing wider than the window; then
// the window is wide again.
func (b *browser) narrow(t *testing.T, shot string) {
	t.Helper()
	b.do(t, "narrow", chromedp.EmulateViewport(390, 800), chromedp.Sleep(100*time.Millisecond))
	if w := evalIn[int](t, b, "document.documentElement.scrollWidth"); w > 390 {
		t.Fatalf("%s at 390 px is %d px wide", shot, w)
	}
	b.screenshot(t, shot)
	b.do(t, "wide", chromedp.EmulateViewport(1000, 700))
}

// The contacts and requests pages in Chromium against two daemons that
// talk libp2p on 127.0.0.1: a patient (passphrase, unlocked in the page)
// and a clinician, each in a browser of its own. They exchange share
// code and profile file; the clinician asks; the request appears live
// in the patient's inbox and in the nav badge on another page; she
// approves one record until a time she chose, which the clinician then
// reads on its record page; a second request is denied; he writes a lab
// panel for her, which reaches her node over libp2p and shows with a
// verified signature and as a chart point; she revokes and his page
// drops the record. The clinician's name and his reason are markup and
// stay text. This is the web app issue's walk, end to end.
func TestWebAppPeopleInChromium(t *testing.T) {
	start := time.Now()
	const pass = "correct horse battery staple"
	const hostile = `<img src=x onerror=alert(1)>`
	const drName = "Dr " + hostile
	patient, clinic := newNode(t, pass), newNode(t, "")
	patientID := patient.initAccount("--name", "Pat", "--role", "patient")
	clinicID := clinic.initAccount("--name", drName, "--role", "clinician", "--no-passphrase")
	var shared, private struct {
		CID string `json:"cid"`
	}
	patient.json(&shared, "add", writeTemp(t, "glucose.txt", []byte("fasting glucose 92 mg/dL\n")), "--title", "Glucose March", "--json")
	patient.json(&private, "add", writeTemp(t, "diary.txt", []byte("private diary\n")), "--title", "Diary", "--json")
	delete(patient.env, envPassphrase) // the page unlocks
	pd, cd := startDaemon(t, patient), startDaemon(t, clinic)
	pb, cb := newBrowser(t), newBrowser(t)

	// The patient logs in and unlocks.
	link := strings.TrimSpace(patient.ok("open", "--print"))
	if !strings.HasPrefix(link, pd.info.API+"/login?code=") {
		t.Fatalf("open --print: %q (API %s)", link, pd.info.API)
	}
	pb.do(t, "patient logs in", chromedp.Navigate(link), chromedp.WaitVisible(chromedp.CSS("#screen-unlock")))
	pb.do(t, "patient unlocks",
		chromedp.SendKeys(chromedp.CSS("#passphrase"), pass+"\r"),
		chromedp.WaitVisible(chromedp.CSS("#records-body tr.record")))
	if _, err := chromedp.CallBrowser(pb.ctx, cdpbrowser.SetPermission, cdpbrowser.SetPermissionParams{
		Permission: &cdpbrowser.PermissionDescriptor{Name: "clipboard-write"}, Setting: cdpbrowser.PermissionSettingGranted, Origin: pd.info.API}); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.CallBrowser(pb.ctx, cdpbrowser.SetPermission, cdpbrowser.SetPermissionParams{
		Permission: &cdpbrowser.PermissionDescriptor{Name: "clipboard-read"}, Setting: cdpbrowser.PermissionSettingGranted, Origin: pd.info.API}); err != nil {
		t.Fatal(err)
	}

	// Her contacts page: the share code of 'id --share', its QR code
	// loaded from the node, a copy button.
	share := strings.TrimSpace(patient.ok("id", "--share"))
	pb.do(t, "patient's contacts page",
		navTo("contacts"),
		chromedp.WaitVisible(chromedp.CSS("#share-code")),
		chromedp.WaitVisible(chromedp.CSS("#contacts-empty")),
		chromedp.Poll[chromedp.Void](`document.querySelector("#share-qr").complete`))
	if got := pb.text(t, "#share-code"); got != share || !strings.HasSuffix(share, " "+patientID) {
		t.Fatalf("share code shown %q, id --share %q", got, share)
	}
	if w := evalIn[int](t, pb, `document.querySelector("#share-qr").naturalWidth`); w < 100 {
		t.Fatalf("the QR code image is %d px wide", w)
	}
	if src := evalIn[string](t, pb, `document.querySelector("#share-qr").getAttribute("src")`); src != "/api/v1/share-code.png?account="+patientID {
		t.Fatalf("QR code from %q", src)
	}
	pb.do(t, "copy", chromedp.Click(chromedp.CSS("#share-copy")), chromedp.Poll[chromedp.Void](`document.querySelector("#share-status").textContent === "Copied."`))
	if got := evalIn[string](t, pb, "navigator.clipboard.readText()"); got != share {
		t.Fatalf("clipboard holds %q", got)
	}
	pb.screenshot(t, "patient-1-contacts")

	// The clinician logs in (no passphrase) and adds her by pasting her
	// share code.
	clink := strings.TrimSpace(clinic.ok("open", "--print"))
	cb.do(t, "clinician logs in", chromedp.Navigate(clink), chromedp.WaitVisible(chromedp.CSS("#screen-records")))
	cb.do(t, "clinician adds Pat by share code",
		navTo("contacts"),
		chromedp.WaitVisible(chromedp.CSS("#contact-code")),
		chromedp.SendKeys(chromedp.CSS("#contact-code"), share),
		chromedp.Click(chromedp.CSS("#contact-code-button")))
	cb.waitLong(t, "Pat in the clinician's contacts", `#contacts-body tr.contact[data-id="`+patientID+`"]`)
	if got := cb.text(t, "#contacts-body tr.contact td.name"); got != "Pat" {
		t.Fatalf("contact shown as %q", got)
	}
	if got := cb.text(t, "#contact-status"); got != "Added Pat (patient)." {
		t.Fatalf("status after adding: %q", got)
	}
	if got := cb.text(t, "#contacts-body td.role"); got != "patient" {
		t.Fatalf("role shown as %q", got)
	}
	// Where the patient's node listens is kept (the address book) and
	// shown as the contact's last known address.
	listen := strings.TrimSuffix(pd.addr(), "/p2p/"+pd.info.PeerID)
	waitUntil(t, 20*time.Second, "the contact's last known address on the page", func() bool {
		cb.do(t, "clinician's contacts again", navTo("records"),
			navTo("contacts"),
			chromedp.WaitVisible(chromedp.CSS(`#contacts-body tr.contact[data-id="`+patientID+`"] td.addr`)))
		return evalIn[string](t, cb, `(document.querySelector('#contacts-body tr.contact[data-id="`+patientID+`"] td.addr code') || {}).textContent || ""`) == listen
	}, pd, cd)
	cb.screenshot(t, "clinician-1-contacts")

	// A file that is no profile: the node's one line, nothing added.
	junk := writeTemp(t, "junk.car", []byte("not a profile"))
	pb.do(t, "upload junk",
		chromedp.SetUploadFiles(chromedp.CSS("#contact-file"), []string{junk}),
		chromedp.Click(chromedp.CSS("#contact-file-button")),
		chromedp.Poll[chromedp.Void](`document.querySelector("#contact-status").classList.contains("error")`))
	if got := pb.text(t, "#contact-status"); !strings.Contains(got, "profile file") {
		t.Fatalf("junk upload says %q", got)
	}
	if n := evalIn[int](t, pb, `document.querySelectorAll("#contacts-body tr").length`); n != 0 {
		t.Fatalf("%d contacts after a junk upload", n)
	}
	// She adds him from his profile file; his name is markup, shown as
	// text.
	profile := filepath.Join(t.TempDir(), "dr.car")
	clinic.ok("id", "--export", profile)
	pb.do(t, "patient adds the clinician by profile file",
		chromedp.SetUploadFiles(chromedp.CSS("#contact-file"), []string{profile}),
		chromedp.Click(chromedp.CSS("#contact-file-button")),
		chromedp.WaitVisible(chromedp.CSS(`#contacts-body tr.contact[data-id="`+clinicID+`"]`)))
	if got := pb.text(t, "#contacts-body tr.contact td.name"); got != drName {
		t.Fatalf("hostile contact name shown as %q", got)
	}
	if got := pb.text(t, "#contact-status"); got != "Added "+drName+" (clinician)." {
		t.Fatalf("status after the upload: %q", got)
	}
	if imgs := evalIn[int](t, pb, "document.images.length"); imgs != 1 {
		t.Fatalf("%d images on the patient's contacts page, want the QR code alone", imgs)
	}
	pb.screenshot(t, "patient-2-contacts-added")
	pb.narrow(t, "patient-3-contacts-390px")

	// The clinician asks, from her row's link, with a hostile reason.
	evalIn[bool](t, pb, "window.stillLoaded = true")
	pb.do(t, "no badge yet", chromedp.WaitNotVisible(chromedp.CSS("#requests-badge")))
	cb.do(t, "clinician's requests page from the contact's link",
		chromedp.Click(chromedp.CSS(`#contacts-body tr.contact a[href^="#/requests/"]`)),
		chromedp.WaitVisible(chromedp.CSS("#ask-form")))
	if got := evalIn[string](t, cb, `document.querySelector("#ask-to").value`); got != patientID {
		t.Fatalf("ask form has %q chosen, want Pat", got)
	}
	cb.do(t, "send the request",
		chromedp.SendKeys(chromedp.CSS("#ask-reason"), hostile),
		chromedp.SetValue(chromedp.CSS("#ask-duration"), "604800"),
		chromedp.Click(chromedp.CSS("#ask-button")),
		chromedp.WaitVisible(chromedp.CSS("#outbox-body tr.request")))
	if got := cb.textNow(t, "#outbox-body tr.request td.reason"); got != hostile {
		t.Fatalf("outbox reason %q", got)
	}
	if got := cb.textNow(t, "#outbox-body tr.request td.to"); got != "Pat" {
		t.Fatalf("outbox to %q", got)
	}
	if got := cb.textNow(t, "#outbox-body tr.request td.duration"); got != "7 days" {
		t.Fatalf("outbox duration %q", got)
	}
	evalIn[bool](t, cb, "window.stillLoaded = true")
	cb.screenshot(t, "clinician-2-requested")

	// On her contacts page, the badge comes without a reload; then the
	// request is in her inbox.
	pb.waitLong(t, "the badge on the patient's contacts page", "#requests-badge")
	if got := pb.textNow(t, "#requests-badge"); got != "1 new request" {
		t.Fatalf("badge %q", got)
	}
	if s := evalIn[string](t, pb, "document.body.dataset.screen"); s != "contacts" {
		t.Fatalf("the badge came on screen %q", s)
	}
	pb.screenshot(t, "patient-4-badge")
	pb.do(t, "patient's requests page",
		navTo("requests"),
		chromedp.WaitVisible(chromedp.CSS("#inbox li.request form.answer")))
	if !evalIn[bool](t, pb, "window.stillLoaded === true") {
		t.Fatal("the patient's page was reloaded")
	}
	if got := pb.textNow(t, "#inbox li.request .name"); got != drName {
		t.Fatalf("inbox name %q", got)
	}
	if got := pb.textNow(t, "#inbox li.request .reason"); got != hostile {
		t.Fatalf("inbox reason %q", got)
	}
	if got := pb.textNow(t, "#inbox li.request .duration"); got != "7 days" {
		t.Fatalf("inbox duration %q", got)
	}
	// The expiry defaults to the duration asked for; Approve with no
	// record chosen is caught in the page.
	exp := evalIn[string](t, pb, `document.querySelector("#inbox form.answer input[type=datetime-local]").value`)
	if d, err := time.ParseInLocation("2006-01-02T15:04", exp, time.Local); err != nil || d.Sub(time.Now()) < 6*24*time.Hour || d.Sub(time.Now()) > 8*24*time.Hour {
		t.Fatalf("expiry default %q (%v)", exp, err)
	}
	if n := evalIn[int](t, pb, `document.querySelectorAll("#inbox form.answer input[name=record]").length`); n != 2 {
		t.Fatalf("%d records offered, want 2", n)
	}
	pb.do(t, "approve with nothing chosen",
		chromedp.Click(chromedp.CSS("#inbox form.answer button.approve")),
		chromedp.WaitVisible(chromedp.CSS("#inbox form.answer .error")))
	if got := pb.textNow(t, "#inbox form.answer .error"); !strings.Contains(got, "at least one record") {
		t.Fatalf("approve with no record says %q", got)
	}
	pb.screenshot(t, "patient-5-inbox")
	pb.narrow(t, "patient-6-inbox-390px")

	// She approves the glucose record only, until a time she picks.
	until := time.Now().Add(48 * time.Hour).Truncate(time.Minute)
	pb.setValue(t, "#inbox form.answer input[type=datetime-local]", until.Format("2006-01-02T15:04"))
	pb.do(t, "approve",
		chromedp.Click(chromedp.CSS(`#inbox form.answer input[value="`+shared.CID+`"]`)),
		chromedp.Click(chromedp.CSS("#inbox form.answer button.approve")),
		chromedp.WaitVisible(chromedp.CSS(`#inbox li.request[data-state=approved]`)),
		chromedp.WaitNotVisible(chromedp.CSS("#requests-badge")))
	if got := pb.textNow(t, "#inbox li.request .state"); got != "approved, until "+until.Format("2006-01-02 15:04") {
		t.Fatalf("inbox state %q", got)
	}
	// The grant ends when she said, and covers that record alone.
	var list struct {
		Records []struct {
			CID     string `json:"cid"`
			Readers []struct {
				Account string    `json:"account"`
				Expires time.Time `json:"expires"`
			} `json:"readers"`
		} `json:"records"`
	}
	patient.json(&list, "ls", "--json")
	var granted time.Time
	for _, r := range list.Records {
		for _, rd := range r.Readers {
			switch {
			case rd.Account != clinicID:
			case r.CID == shared.CID:
				granted = rd.Expires
			default:
				t.Fatalf("%s was granted too: %+v", r.CID, rd)
			}
		}
	}
	if !granted.Equal(until) {
		t.Fatalf("the grant of %s ends %v, want %v", shared.CID, granted, until)
	}
	pb.screenshot(t, "patient-7-approved")

	// The clinician's outbox says approved, live; the glucose record
	// becomes readable through his page, the diary does not.
	cb.waitLong(t, "approved in the clinician's outbox", `#outbox-body tr.request[data-state=approved]`)
	ctx, cancel := context.WithTimeout(cb.ctx, time.Minute)
	defer cancel()
	readable := `fetch("/api/v1/records").then(r => r.json()).then(l => (l.records || []).filter(r => r.readable).map(r => r.cid).join(" "))`
	if err := chromedp.Do(ctx, chromedp.Poll[chromedp.Void](readable+`.then(s => s === "`+shared.CID+`")`, chromedp.WithPollingInterval(200*time.Millisecond), chromedp.WithPollingTimeout(time.Minute))); err != nil {
		t.Fatalf("the record did not become readable on the clinician's side: %v (readable: %q)", err, evalIn[string](t, cb, readable))
	}
	body := evalIn[string](t, cb, `fetch("/api/v1/records/`+shared.CID+`/content").then(r => r.text())`)
	if body != "fasting glucose 92 mg/dL\n" {
		t.Fatalf("the clinician read %q", body)
	}
	if st := evalIn[int](t, cb, `fetch("/api/v1/records/`+private.CID+`/content").then(r => r.status)`); st == 200 {
		t.Fatal("the clinician read the record she did not share")
	}
	if !evalIn[bool](t, cb, "window.stillLoaded === true") {
		t.Fatal("the clinician's page was reloaded")
	}
	cb.screenshot(t, "clinician-3-approved")
	// Both contacts pages say what is shared, with its end.
	sharing := `#contacts-body tr.contact[data-id="` + patientID + `"] td.sharing`
	cb.do(t, "clinician's contacts: what Pat shares", navTo("contacts"),
		chromedp.WaitVisible(chromedp.CSS(sharing+" a")))
	if got := cb.textNow(t, sharing); got != "shares with you: Glucose March (until "+until.Format("2006-01-02 15:04")+")" {
		t.Fatalf("the clinician's contacts page says %q", got)
	}
	if href := evalIn[string](t, cb, `document.querySelector('`+sharing+` a').getAttribute("href")`); href != "#/record/"+shared.CID {
		t.Fatalf("the shared record's link %q", href)
	}
	pb.do(t, "patient's contacts: what she shares", navTo("contacts"),
		chromedp.WaitVisible(chromedp.CSS(`#contacts-body tr.contact[data-id="`+clinicID+`"] td.sharing a`)))
	if got := pb.textNow(t, `#contacts-body tr.contact[data-id="`+clinicID+`"] td.sharing`); got != "you share: Glucose March (until "+until.Format("2006-01-02 15:04")+")" {
		t.Fatalf("the patient's contacts page says %q", got)
	}
	pb.do(t, "patient's requests again", navTo("requests"), chromedp.WaitVisible(chromedp.CSS("#inbox")))
	cb.do(t, "clinician's records", navTo("records"),
		chromedp.WaitVisible(chromedp.CSS(`#records-body tr.record[data-cid="`+shared.CID+`"]`)))
	cb.screenshot(t, "clinician-4-records")

	// A second request, denied with a reason: it arrives in her open
	// inbox live; his outbox shows the refusal.
	cb.do(t, "second request",
		navTo("requests"),
		chromedp.WaitVisible(chromedp.CSS("#ask-form")),
		chromedp.SendKeys(chromedp.CSS("#ask-reason"), "second opinion"),
		chromedp.Click(chromedp.CSS("#ask-button")),
		chromedp.Poll[chromedp.Void](`document.querySelectorAll("#outbox-body tr.request").length === 2`))
	pb.waitLong(t, "the second request in the open inbox", `#inbox li.request[data-state=new]`)
	if got := pb.textNow(t, "#requests-badge"); got != "1 new request" {
		t.Fatalf("badge %q", got)
	}
	pb.do(t, "deny",
		chromedp.SendKeys(chromedp.CSS("#inbox li.request[data-state=new] input[name=reason]"), "ask me in person"),
		chromedp.Click(chromedp.CSS("#inbox li.request[data-state=new] button.deny")),
		chromedp.WaitVisible(chromedp.CSS(`#inbox li.request[data-state=denied]`)))
	if got := pb.textNow(t, `#inbox li.request[data-state=denied] .state`); got != "denied: ask me in person" {
		t.Fatalf("denied state %q", got)
	}
	if !evalIn[bool](t, pb, "window.stillLoaded === true") {
		t.Fatal("the patient's page was reloaded")
	}
	pb.screenshot(t, "patient-8-denied")
	cb.waitLong(t, "denied in the clinician's outbox", `#outbox-body tr.request[data-state=denied]`)
	if got := cb.textNow(t, `#outbox-body tr.request[data-state=denied] td.state`); got != "denied: ask me in person" {
		t.Fatalf("clinician outbox state %q", got)
	}
	if got := cb.textNow(t, `#outbox-body tr.request[data-state=approved] td.state`); !strings.HasPrefix(got, "approved") {
		t.Fatalf("clinician outbox state %q", got)
	}
	cb.screenshot(t, "clinician-5-denied")
	cb.narrow(t, "clinician-6-requests-390px")

	// The rest of the walk: the clinician opens the shared record on its
	// page, writes a lab panel for her, which reaches her node by itself
	// and shows on her records page with a verified signature and as a
	// point on her chart; she revokes his access and his page drops the
	// record without a reload.
	cb.do(t, "clinician opens the shared record", chromedp.Navigate(cd.info.API+"/#/record/"+shared.CID),
		chromedp.WaitVisible(chromedp.CSS("#record-view pre.content-text")))
	if got := cb.textNow(t, "#record-view pre.content-text"); got != "fasting glucose 92 mg/dL\n" {
		t.Fatalf("the clinician's record page shows %q", got)
	}
	cb.screenshot(t, "clinician-7-record")
	cb.do(t, "clinician's write page", navTo("write"), chromedp.WaitVisible(chromedp.CSS("#lab-form")))
	if got := evalIn[string](t, cb, `document.querySelector("#lab-patient").value`); got != patientID {
		t.Fatalf("the write page has %q chosen, want Pat", got)
	}
	cb.do(t, "write a lab panel",
		chromedp.SendKeys(chromedp.CSS("#lab-f-fasting-glucose"), "97"),
		chromedp.Click(chromedp.CSS("#lab-submit")),
		chromedp.WaitVisible(chromedp.CSS("#lab-written li.written-record")))
	labCID := evalIn[string](t, cb, `document.querySelector("#lab-written li.written-record").dataset.cid`)
	cb.screenshot(t, "clinician-8-lab-panel")

	labRow := `#records-body tr.record[data-cid="` + labCID + `"]`
	pb.do(t, "patient's records", navTo("records"), chromedp.WaitVisible(chromedp.CSS("#screen-records")))
	pb.waitLong(t, "the lab panel on the patient's records page", labRow)
	if got := pb.textNow(t, labRow+" td.author"); got != drName+" ✓ verified" {
		t.Fatalf("the lab record's author shown as %q", got)
	}
	if got := pb.textNow(t, labRow+" td.title"); !strings.HasPrefix(got, "Glucose [fasting] 97 mg/dL") {
		t.Fatalf("the lab record's title %q", got)
	}
	if !evalIn[bool](t, pb, "window.stillLoaded === true") {
		t.Fatal("the patient's page was reloaded")
	}
	pb.screenshot(t, "patient-9-lab-arrived")
	waitUntil(t, time.Minute, "the lab value's content reaches the patient's node", func() bool {
		return evalIn[int](t, pb, `fetch("/api/v1/labs").then(r => r.json()).then(d => d.values.length)`) == 1
	}, pd, cd)
	pb.do(t, "patient's chart", chromedp.Navigate(pd.info.API+"/#/labs/1558-6"), chromedp.WaitVisible(chromedp.CSS("#labs-chart svg .point")))
	if got := evalIn[[]string](t, pb, `Array.from(document.querySelectorAll("#labs-chart .point title")).map(e => e.textContent)`); len(got) != 1 || !strings.HasPrefix(got[0], "97 mg/dL on ") {
		t.Fatalf("chart points %q", got)
	}
	pb.screenshot(t, "patient-10-chart")

	// She revokes his access to the glucose record on its page; his
	// records page, left open, drops it.
	cb.do(t, "clinician's records", navTo("records"),
		chromedp.WaitVisible(chromedp.CSS(`#records-body tr.record[data-cid="`+shared.CID+`"]`)))
	evalIn[bool](t, cb, "window.stillLoaded = true")
	reader := `#record-readers li[data-account="` + clinicID + `"]`
	pb.do(t, "patient's record page", chromedp.Navigate(pd.info.API+"/#/record/"+shared.CID), chromedp.WaitVisible(chromedp.CSS(reader)))
	pb.do(t, "revoke", chromedp.Click(chromedp.CSS(reader+" button.revoke")), chromedp.WaitNotPresent(chromedp.CSS(reader)))
	if got := pb.textNow(t, "#revoke-note"); !strings.Contains(got, "cannot") {
		t.Fatalf("the revocation text %q", got)
	}
	pb.screenshot(t, "patient-11-revoked")
	ctx2, cancel2 := context.WithTimeout(cb.ctx, time.Minute)
	defer cancel2()
	if err := chromedp.Do(ctx2, chromedp.WaitNotPresent(chromedp.CSS(`#records-body tr.record[data-cid="`+shared.CID+`"]`))); err != nil {
		t.Fatalf("the revoked record stays on the clinician's page: %v", err)
	}
	if st := evalIn[int](t, cb, `fetch("/api/v1/records/`+shared.CID+`/content").then(r => r.status)`); st == 200 {
		t.Fatal("the clinician still reads the revoked record")
	}
	if !evalIn[bool](t, cb, "window.stillLoaded === true") {
		t.Fatal("the clinician's page was reloaded")
	}
	cb.screenshot(t, "clinician-9-revoked")

	time.Sleep(300 * time.Millisecond) // room for an onerror to fire
	for who, b := range map[string]*browser{"patient": pb, "clinician": cb} {
		if p := b.problems(); len(p) > 0 {
			t.Fatalf("%s's browser: dialogs or console errors: %q", who, p)
		}
	}
	if *updateScreenshots {
		for name, doc := range map[string]string{"patient-4-badge": "web-contacts.png", "patient-5-inbox": "web-requests.png"} {
			data, err := os.ReadFile(filepath.Join(pb.dir, name+".png"))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join("..", "..", "docs", "screenshots", doc), data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Logf("browser test took %v", time.Since(start).Round(time.Millisecond))
}
