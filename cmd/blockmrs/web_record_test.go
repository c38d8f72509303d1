package main

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/target"
	"github.com/chromedp/chromedp"

	"github.com/blockmrs/blockmrs/node/api"
)

// pdfViewer is the URL prefix of Chromium's built-in PDF viewer, which
// shows a PDF framed in the page.
const pdfViewer = "chrome-extension://mhjfbmdgcfjbbpaeojofohoefgiehjai/"

// The record page in Chromium against a real daemon: the list links to
// it and filters; an image, a text, a FHIR Observation (raw JSON on
// request) and a PDF (in the browser's viewer, framed in the page, once
// asked) are shown; an uploaded HTML file and markup in titles and FHIR
// text run nothing, on the page or at the content's own URL; verify shows
// the chain of custody; share with a contact, revoke (with the text that
// says what revoking cannot do), a grant from the command line arriving
// live, hide and unhide, and the list's toggle for hidden records.
func TestWebAppRecordInChromium(t *testing.T) {
	start := time.Now()
	p := newNode(t, "")
	p.initAccount("--name", "Robin Patient", "--no-passphrase")
	doc := newNode(t, "")
	doctor := doc.initAccount("--name", "Dr Lee", "--role", "clinician", "--no-passphrase")
	card := filepath.Join(t.TempDir(), "lee.car")
	doc.ok("id", "--export", card)
	p.ok("contact", "add", card)

	dir := t.TempDir()
	write := func(name string, data []byte) string {
		t.Helper()
		f := filepath.Join(dir, name)
		if err := os.WriteFile(f, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return f
	}
	add := func(args ...string) string {
		t.Helper()
		return strings.TrimSpace(p.ok(append([]string{"add"}, args...)...))
	}
	const noteText = "HbA1c 5.4%\n<b>not bold</b> & not markup\n"
	const hostileObs = `{"resourceType": "Observation", "status": "final",
  "code": {"text": "<img src=x onerror=alert(3)>Glucose"},
  "text": {"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\"><script>alert(4)</script></div>"},
  "effectiveDateTime": "2026-11-20",
  "valueQuantity": {"value": 5.4, "unit": "mmol/L"}}`
	imgCID := add("--title", "Chest X-ray", write("scan.png", testPNG(t)))
	noteCID := add("--title", "Lab note", write("note.txt", []byte(noteText)))
	obsCID := add("--kind", "fhir", "--title", "Glucose", write("obs.json", []byte(hostileObs)))
	pdfCID := add("--title", "Discharge letter", write("letter.pdf", testPDF("")))
	jsPDFCID := add("--title", "Scripted PDF", write("scripted.pdf", testPDF("app.alert('pdf script ran');")))

	d := startAPIDaemon(t, p)
	b := newBrowser(t)
	if _, err := chromedp.Call(b.ctx, cdpbrowser.SetDownloadBehavior, cdpbrowser.SetDownloadBehaviorParams{Behavior: cdpbrowser.SetDownloadBehaviorBehaviorDeny}); err != nil {
		t.Fatal(err)
	}
	link := strings.TrimSpace(p.ok("open", "--print"))
	b.do(t, "log in", chromedp.Navigate(link), chromedp.WaitVisible(chromedp.CSS("#records-body tr.record")))
	b.until(t, "five records", `document.querySelectorAll("#records-body tr.record").length === 5`)

	// The list: titles link to the record page; who can read it; the
	// author's signature mark.
	row := `document.querySelector("#records-body tr[data-cid='` + imgCID + `']")`
	if href := evalIn[string](t, b, row+`.querySelector("td.title a").getAttribute("href")`); href != "#/record/"+imgCID {
		t.Fatalf("title links to %q", href)
	}
	if got := evalIn[string](t, b, row+`.querySelector("td.readers").textContent`); got != "only you" {
		t.Fatalf("who can read: %q", got)
	}
	if got := evalIn[string](t, b, row+`.querySelector("td.author").textContent`); got != "you ✓ verified" {
		t.Fatalf("author cell: %q", got)
	}
	// Filters: kind, and free text.
	pick := `(v) => { const s = document.querySelector("#records-kind"); s.value = v; s.dispatchEvent(new Event("change")); return s.selectedOptions[0].textContent; }`
	if got := evalIn[string](t, b, "("+pick+`)("fhir")`); got != "FHIR resources" {
		t.Fatalf("kind option %q", got)
	}
	b.until(t, "only the FHIR record", `(() => { const r = document.querySelectorAll("#records-body tr.record"); return r.length === 1 && r[0].dataset.cid === "`+obsCID+`"; })()`)
	if got := evalIn[string](t, b, "("+pick+`)("")`); got != "all kinds" {
		t.Fatalf("kind option %q", got)
	}
	b.do(t, "search", chromedp.SendKeys(chromedp.CSS("#records-q"), "x-RAY"))
	b.until(t, "only the X-ray", `(() => { const r = document.querySelectorAll("#records-body tr.record"); return r.length === 1 && r[0].dataset.cid === "`+imgCID+`"; })()`)
	b.screenshot(t, "1-records-filtered")
	evalIn[bool](t, b, `document.querySelector("#records-q").value = "", document.querySelector("#records-q").dispatchEvent(new Event("input")), true`)
	b.until(t, "all five again", `document.querySelectorAll("#records-body tr.record").length === 5`)

	// Upload an HTML file with a script and an onerror image, under a
	// hostile title, through the form; open its page: its source, as text.
	const evilHTML = "<html><body><script>alert(1)</script><img src=x onerror=alert(2)></body></html>\n"
	const hostile = `<img src=x onerror=alert(5)>`
	b.do(t, "upload the HTML file",
		chromedp.SetUploadFiles(chromedp.CSS("#upload-file"), []string{write("evil.html", []byte(evilHTML))}),
		chromedp.SendKeys(chromedp.CSS("#upload-title"), hostile),
		chromedp.Click(chromedp.CSS("#upload-button")))
	b.until(t, "six records", `document.querySelectorAll("#records-body tr.record").length === 6`)
	htmlCID := evalIn[string](t, b, `document.querySelector("#records-body tr.record").dataset.cid`)
	b.do(t, "open the HTML record", chromedp.Click(chromedp.CSS(`#records-body tr[data-cid='`+htmlCID+`'] td.title a`)),
		chromedp.WaitVisible(chromedp.CSS("#record-view pre.content-text")))
	if got := b.text(t, "#record-view pre.content-text"); got != evilHTML {
		t.Fatalf("the HTML file shown as %q", got)
	}
	if got := b.text(t, "#record-title"); got != hostile {
		t.Fatalf("title %q", got)
	}
	if got := b.text(t, "#record-meta dd.media-type"); !strings.HasPrefix(got, "text/html") {
		t.Fatalf("media type %q", got)
	}
	if n := evalIn[int](t, b, `document.images.length + document.scripts.length`); n != 1 { // main.js
		t.Fatalf("the HTML record became markup: %d images and scripts", n)
	}
	b.screenshot(t, "2-record-html-as-text")
	// Its content URL: an attachment in a sandbox, never a page.
	content := d.api + "/api/v1/records/" + htmlCID + "/content"
	hdr := evalIn[map[string]string](t, b, `fetch("/api/v1/records/`+htmlCID+`/content").then(r => ({
		type: r.headers.get("Content-Type"), disp: r.headers.get("Content-Disposition"),
		csp: r.headers.get("Content-Security-Policy"), frame: r.headers.get("X-Frame-Options")}))`)
	if hdr["type"] != "application/octet-stream" || !strings.HasPrefix(hdr["disp"], "attachment") || hdr["csp"] != api.RecordContentCSP || hdr["frame"] != "DENY" {
		t.Fatalf("the HTML record's content headers: %v", hdr)
	}
	// Opened directly, it is a download (denied here), not a page.
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	_, navErr := chromedp.Run(ctx, chromedp.Navigate(content))
	cancel()
	if loc := evalIn[string](t, b, "location.href"); !strings.HasPrefix(loc, d.api+"/") || strings.Contains(loc, "/content") {
		t.Fatalf("opening the content URL showed %s (navigate: %v)", loc, navErr)
	}

	// The image, inline.
	b.show(t, imgCID, "#record-view img.content-image")
	b.until(t, "the image loaded", `(() => { const i = document.querySelector("#record-view img.content-image"); return i.complete && i.naturalWidth > 0; })()`)
	if w := evalIn[int](t, b, `document.querySelector("#record-view img.content-image").naturalWidth`); w != 40 {
		t.Fatalf("image width %d", w)
	}
	if got := b.text(t, "#record-meta dd.file-name"); got != "scan.png" {
		t.Fatalf("file name %q", got)
	}
	b.screenshot(t, "3-record-image")

	// A text, as text.
	b.show(t, noteCID, "#record-view pre.content-text")
	if got := b.text(t, "#record-view pre.content-text"); got != noteText {
		t.Fatalf("text shown as %q", got)
	}
	b.screenshot(t, "4-record-text")

	// The FHIR Observation: its type, its value through the labs
	// module's viewer with the markup in its name as text, and the raw
	// JSON on request, its markup as text.
	b.show(t, obsCID, "#record-view dl.observation")
	if got := b.text(t, "#record-view dl.observation .obs-value"); got != "5.4 mmol/L" {
		t.Fatalf("the Observation's value shown as %q", got)
	}
	if got := b.text(t, "#record-view dl.observation dd"); got != "<img src=x onerror=alert(3)>Glucose" {
		t.Fatalf("the Observation's name shown as %q", got)
	}
	if got := b.text(t, "#record-meta dd.kind"); got != "fhir · Observation" {
		t.Fatalf("kind %q", got)
	}
	if vis := evalIn[bool](t, b, `!document.querySelector("#record-raw").hidden`); vis {
		t.Fatal("raw JSON shown before it was asked for")
	}
	b.do(t, "show raw JSON", chromedp.Click(chromedp.CSS("#record-view button.raw-toggle")), chromedp.WaitVisible(chromedp.CSS("#record-raw")))
	raw := b.text(t, "#record-raw")
	if !strings.Contains(raw, `"resourceType": "Observation"`) || !strings.Contains(raw, "<img src=x onerror=alert(3)>Glucose") || !strings.Contains(raw, "<script>alert(4)</script>") {
		t.Fatalf("raw JSON %q", raw)
	}
	if got := evalIn[string](t, b, `document.querySelector("#record-view button.raw-toggle").getAttribute("aria-expanded")`); got != "true" {
		t.Fatalf("raw toggle aria-expanded %q", got)
	}
	if n := evalIn[int](t, b, `document.images.length`); n != 0 {
		t.Fatalf("the FHIR text became markup: %d images", n)
	}
	b.screenshot(t, "5-record-fhir-raw")
	b.do(t, "hide raw JSON", chromedp.Click(chromedp.CSS("#record-view button.raw-toggle")))
	if vis := evalIn[bool](t, b, `!document.querySelector("#record-raw").hidden`); vis {
		t.Fatal("raw JSON still shown")
	}

	// Another module's viewer takes the text file; other records are left to
	// the page.
	evalIn[bool](t, b, `import("/record.js").then(m => { m.viewer((rec, json) => rec.file_name === "note.txt",
		(box, rec, json) => { const p = document.createElement("p"); p.className = "test-viewer";
			p.textContent = "note: " + rec.title; box.append(p); }); return true; })`)
	b.show(t, imgCID, "#record-view img")
	b.show(t, noteCID, "#record-view .viewer p.test-viewer")
	if got := b.text(t, "#record-view p.test-viewer"); got != "note: Lab note" {
		t.Fatalf("the registered viewer shows %q", got)
	}
	if n := evalIn[int](t, b, `document.querySelectorAll("#record-view pre.content-text").length`); n != 0 {
		t.Fatalf("with a viewer the default text view is shown too (%d)", n)
	}

	// A PDF with a script of its own is not loaded until asked; a PDF
	// asked for shows in the browser's viewer, framed in the page.
	b.show(t, jsPDFCID, "#record-view button.show-pdf")
	if n := evalIn[int](t, b, `document.querySelectorAll("iframe").length`); n != 0 {
		t.Fatalf("%d frames before the PDF was asked for", n)
	}
	b.show(t, pdfCID, "#record-view button.show-pdf")
	if got := b.text(t, "#record-view .pdf-note"); !strings.Contains(got, "never asks for your passphrase") {
		t.Fatalf("PDF note %q", got)
	}
	b.do(t, "show the PDF", chromedp.Click(chromedp.CSS("#record-view button.show-pdf")), chromedp.WaitVisible(chromedp.CSS("#record-view iframe.content-pdf")))
	waitFor(t, "Chromium's PDF viewer in the frame", func() bool {
		ti, err := chromedp.Call(b.ctx, target.GetTargets, target.GetTargetsParams{})
		if err != nil {
			t.Fatal(err)
		}
		for _, x := range ti.TargetInfos {
			if strings.HasPrefix(x.URL, pdfViewer) {
				return true
			}
		}
		return false
	})
	hdr = evalIn[map[string]string](t, b, `fetch("/api/v1/records/`+pdfCID+`/content").then(r => ({
		type: r.headers.get("Content-Type"), csp: r.headers.get("Content-Security-Policy"), frame: r.headers.get("X-Frame-Options")}))`)
	if hdr["type"] != "application/pdf" || hdr["csp"] != api.RecordFrameCSP || hdr["frame"] != "SAMEORIGIN" {
		t.Fatalf("the PDF's headers: %v", hdr)
	}
	time.Sleep(time.Second) // for the screenshot: the viewer draws the page after it loads
	b.screenshot(t, "6-record-pdf")

	// Verify: the chain of custody and its badge.
	b.show(t, imgCID, "#record-view img.content-image")
	b.do(t, "verify", chromedp.Click(chromedp.CSS("#verify-button")))
	// It re-checks every chain: slow under -race on a busy machine.
	b.untilWithin(t, time.Minute, "the verification or its error", `!document.querySelector("#verify-result").hidden || !document.querySelector("#verify-error").hidden`)
	if msg := evalIn[string](t, b, `document.querySelector("#verify-error").hidden ? "" : document.querySelector("#verify-error").textContent`); msg != "" {
		t.Fatalf("verify failed in the page: %s", msg)
	}
	if got := b.text(t, "#verify-badge"); got != "✓ Verified" {
		t.Fatalf("verify badge %q", got)
	}
	for sel, want := range map[string]string{
		"#verify-fields dd.v-cid":       imgCID,
		"#verify-fields dd.v-author":    "you ",
		"#verify-fields dd.v-signature": "OK: all ",
		"#verify-fields dd.v-content":   "hash-checked against the CID; decrypted and authenticated",
		"#verify-fields dd.v-readers":   "you (wrote it)",
	} {
		if got := b.text(t, sel); !strings.Contains(got, want) {
			t.Fatalf("%s says %q, want %q in it", sel, got, want)
		}
	}
	if got := b.text(t, "#verify-fields dd.v-block code"); !strings.HasPrefix(got, "bafy") {
		t.Fatalf("signing block %q", got)
	}
	verified := b.screenshot(t, "7-record-verified")
	docScreenshot(t, verified, "web-record.png")

	// Share with the contact, until a date: the reader appears.
	b.until(t, "the contact in the share form", `[...document.querySelectorAll("#share-to option")].some(o => o.value === "`+doctor+`")`)
	until := time.Now().AddDate(0, 1, 0).Format("2006-01-02")
	evalIn[bool](t, b, `document.querySelector("#share-until").value = "`+until+`", true`)
	b.do(t, "share", chromedp.Click(chromedp.CSS("#share-button")))
	reader := `#record-readers li[data-account="` + doctor + `"]`
	b.do(t, "the new reader", chromedp.WaitVisible(chromedp.CSS(reader)))
	if got := b.text(t, reader); !strings.Contains(got, "Dr Lee") || !strings.Contains(got, "shared with them") || !strings.Contains(got, "until "+until) {
		t.Fatalf("new reader %q", got)
	}
	if got := b.text(t, "#record-meta dd.readers"); got != "you, Dr Lee" {
		t.Fatalf("who can read it: %q", got)
	}
	b.screenshot(t, "8-record-shared")

	// Revoke: gone from the readers, listed as revoked, and the page
	// says what revoking cannot do.
	b.do(t, "revoke", chromedp.Click(chromedp.CSS(reader+" button.revoke")), chromedp.WaitNotPresent(chromedp.CSS(reader)))
	if got := b.text(t, `#record-gone li[data-account="`+doctor+`"]`); !strings.Contains(got, "access revoked") {
		t.Fatalf("revoked reader %q", got)
	}
	note := b.text(t, "#revoke-note")
	for _, want := range []string{"no BlockMRS node that has seen it serves them this record", "It cannot take back what was already delivered"} {
		if !strings.Contains(note, want) {
			t.Fatalf("revocation text lacks %q: %q", want, note)
		}
	}
	if got := b.text(t, "#share-status"); !strings.Contains(got, "Revoked Dr Lee's access") {
		t.Fatalf("after revoke: %q", got)
	}
	b.screenshot(t, "9-record-revoked")

	// Live: a grant from the command line shows on the open page.
	p.ok("grant", imgCID, "--to", "Dr Lee")
	b.do(t, "the grant arrives live", chromedp.WaitVisible(chromedp.CSS(reader)))

	// Hide, then the list leaves it out but for the toggle; unhide.
	b.do(t, "hide", chromedp.Click(chromedp.CSS("#hide-button")))
	b.until(t, "hidden", `document.querySelector("#hide-button").textContent === "Unhide"`)
	if got := b.text(t, "#record-meta dd.status"); got != "hidden" {
		t.Fatalf("status after hide %q", got)
	}
	b.do(t, "records", navTo("records"), chromedp.WaitVisible(chromedp.CSS("#records-body tr.record")))
	b.until(t, "five rows without the hidden one", `document.querySelectorAll("#records-body tr.record").length === 5 && !document.querySelector("#records-body tr[data-cid='`+imgCID+`']")`)
	b.do(t, "show all", chromedp.Click(chromedp.CSS("#records-all")))
	b.until(t, "the hidden one with the toggle", `!!document.querySelector("#records-body tr[data-cid='`+imgCID+`'][data-status=hidden]")`)
	if got := evalIn[string](t, b, row+`.querySelector("td.readers").textContent`); got != "you, Dr Lee" {
		t.Fatalf("who can read, in the list: %q", got)
	}
	b.screenshot(t, "10-records-all")
	b.show(t, imgCID, "#record-view img.content-image")
	b.do(t, "unhide", chromedp.Click(chromedp.CSS("#hide-button")))
	b.until(t, "unhidden", `document.querySelector("#hide-button").textContent === "Hide"`)
	if got := b.text(t, "#record-meta dd.status"); got != "readable" {
		t.Fatalf("status after unhide %q", got)
	}

	// At 390 px nothing is wider than the window: a record with its raw
	// JSON open, and the list.
	// A new version of the text record: uploaded on its page, it opens
	// on its own page, which links back to the one it replaces; the old
	// one is unchanged.
	b.show(t, noteCID, "#version-form")
	v2 := filepath.Join(t.TempDir(), "note-v2.txt")
	if err := os.WriteFile(v2, []byte("corrected note\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	b.do(t, "new version",
		chromedp.SetUploadFiles(chromedp.CSS("#version-file"), []string{v2}),
		chromedp.SendKeys(chromedp.CSS("#version-title"), "Lab note, corrected"),
		chromedp.Click(chromedp.CSS("#version-button")))
	b.until(t, "the new version's page", `document.body.dataset.screen === "record" && !!document.querySelector("#record-meta dd.supersedes a")`)
	if got := b.text(t, "#record-title"); got != "Lab note, corrected" {
		t.Fatalf("new version's title %q", got)
	}
	if href := evalIn[string](t, b, `document.querySelector("#record-meta dd.supersedes a").getAttribute("href")`); href != "#/record/"+noteCID {
		t.Fatalf("the new version replaces %q, want %s", href, noteCID)
	}
	b.until(t, "the new version's text", `!!document.querySelector("#record-view pre.content-text") && document.querySelector("#record-view pre.content-text").textContent === "corrected note\n"`)
	b.screenshot(t, "10b-record-new-version")
	b.show(t, noteCID, "#record-view p.test-viewer") // the viewer registered above
	if got := b.text(t, "#record-title"); got != "Lab note" {
		t.Fatalf("the old version is now titled %q", got)
	}

	b.do(t, "narrow", chromedp.EmulateViewport(390, 800))
	b.show(t, obsCID, "#record-view button.raw-toggle")
	b.do(t, "raw JSON at 390 px", chromedp.Click(chromedp.CSS("#record-view button.raw-toggle")), chromedp.WaitVisible(chromedp.CSS("#record-raw")))
	if w := evalIn[int](t, b, "document.documentElement.scrollWidth"); w > 390 {
		t.Fatalf("at 390 px the record page is %d px wide", w)
	}
	b.screenshot(t, "11-record-390px")
	b.do(t, "records at 390 px", navTo("records"), chromedp.WaitVisible(chromedp.CSS("#records-body tr.record")))
	if w := evalIn[int](t, b, "document.documentElement.scrollWidth"); w > 390 {
		t.Fatalf("at 390 px the records page is %d px wide", w)
	}
	b.screenshot(t, "12-records-390px")

	if p := b.problems(); len(p) > 0 {
		t.Fatalf("dialogs or console errors: %q", p)
	}
	t.Logf("browser test took %v", time.Since(start).Round(time.Millisecond))
}

// show opens record cid's page and waits for sel.
func (b *browser) show(t *testing.T, cid, sel string) {
	t.Helper()
	evalIn[bool](t, b, `location.hash = "#/record/`+cid+`", true`)
	b.until(t, "record "+cid, `document.body.dataset.screen === "record" && !!document.querySelector("#record-meta dd.cid") &&
		document.querySelector("#record-meta dd.cid").textContent === "`+cid+`" && !!document.querySelector(`+"`"+sel+"`"+`)`)
}

// until waits for the JavaScript expression js to be true.
func (b *browser) until(t *testing.T, what, js string) {
	t.Helper()
	b.untilWithin(t, 10*time.Second, what, js)
}

// untilWithin waits up to d for the JavaScript expression js to be true.
func (b *browser) untilWithin(t *testing.T, d time.Duration, what, js string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, d)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](js, chromedp.WithPollingInterval(20*time.Millisecond))); err != nil {
		t.Fatalf("waiting until %s: %v", what, err)
	}
}

// testPNG is a 40×30 PNG.
func testPNG(t *testing.T) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 40, 30))
	for x := range 40 {
		for y := range 30 {
			img.Set(x, y, color.RGBA{uint8(6 * x), uint8(8 * y), 160, 255})
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// testPDF is a one-page PDF saying "Discharge letter", running script js
// when opened if js is set.
func testPDF(js string) []byte {
	const text = "BT /F1 20 Tf 20 100 Td (Discharge letter) Tj ET"
	catalog := "<< /Type /Catalog /Pages 2 0 R >>"
	objs := []string{
		"",
		"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
		"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 300 200] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>",
		fmt.Sprintf("<< /Length %d >>\nstream\n%s\nendstream", len(text), text),
		"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
	}
	if js != "" {
		catalog = "<< /Type /Catalog /Pages 2 0 R /OpenAction 6 0 R >>"
		js = strings.NewReplacer(`\`, `\\`, "(", `\(`, ")", `\)`).Replace(js)
		objs = append(objs, "<< /Type /Action /S /JavaScript /JS ("+js+") >>")
	}
	objs[0] = catalog
	var b bytes.Buffer
	b.WriteString("%PDF-1.4\n")
	offsets := make([]int, len(objs))
	for i, o := range objs {
		offsets[i] = b.Len()
		fmt.Fprintf(&b, "%d 0 obj\n%s\nendobj\n", i+1, o)
	}
	xref := b.Len()
	fmt.Fprintf(&b, "xref\n0 %d\n0000000000 65535 f \n", len(objs)+1)
	for _, o := range offsets {
		fmt.Fprintf(&b, "%010d 00000 n \n", o)
	}
	fmt.Fprintf(&b, "trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n", len(objs)+1, xref)
	return b.Bytes()
}
