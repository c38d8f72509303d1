package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// The unlock and records screens in Chromium against a real daemon whose
// account has a passphrase: unlock (a wrong passphrase first), upload a
// file with a hostile title through the form, hide it, lock.
func TestWebAppRecordsInChromium(t *testing.T) {
	start := time.Now()
	const pass = "correct horse battery staple"
	const hostile = `<img src=x onerror=alert(1)>`
	n := newNode(t, pass)
	n.initAccount("--name", "Robin Patient")
	delete(n.env, envPassphrase) // the daemon holds no passphrase: the page must unlock
	d := startAPIDaemon(t, n)
	b := newBrowser(t)

	link := strings.TrimSpace(n.ok("open", "--print"))
	if !strings.HasPrefix(link, d.api+"/login?code=") {
		t.Fatalf("open --print: %q", link)
	}
	b.do(t, "log in", chromedp.Navigate(link), chromedp.WaitVisible(chromedp.CSS("#screen-unlock")))
	if got := b.text(t, "#unlock-name"); got != "Robin Patient" {
		t.Fatalf("unlock screen names %q", got)
	}
	if got := evalIn[string](t, b, `document.querySelector("label[for=passphrase]").textContent`); got != "Passphrase" {
		t.Fatalf("passphrase label %q", got)
	}
	b.screenshot(t, "1-unlock")

	// A wrong passphrase: the server's line, still on the unlock screen.
	b.do(t, "wrong passphrase",
		chromedp.SendKeys(chromedp.CSS("#passphrase"), "not it"),
		chromedp.Click(chromedp.CSS("#unlock-button")),
		chromedp.WaitVisible(chromedp.CSS("#unlock-error")))
	if got := b.text(t, "#unlock-error"); !strings.Contains(got, "passphrase") || strings.Contains(got, "\n") {
		t.Fatalf("wrong passphrase says %q", got)
	}
	if s := evalIn[string](t, b, "document.body.dataset.screen"); s != "unlock" {
		t.Fatalf("after a wrong passphrase the screen is %q", s)
	}
	b.screenshot(t, "2-unlock-wrong")

	// The right one (typed, submitted with Enter): the records screen.
	evalIn[bool](t, b, `document.querySelector("#passphrase").value = "", true`)
	b.do(t, "right passphrase",
		chromedp.SendKeys(chromedp.CSS("#passphrase"), pass+"\r"),
		chromedp.WaitVisible(chromedp.CSS("#screen-records")),
		chromedp.WaitVisible(chromedp.CSS("#records-empty")))
	if got := b.text(t, "#records-empty"); !strings.Contains(got, "No records") {
		t.Fatalf("empty list says %q", got)
	}

	// Upload a file with a hostile title through the form.
	file := filepath.Join(t.TempDir(), "lab-result.txt")
	if err := os.WriteFile(file, []byte("HbA1c 5.4%\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	b.do(t, "upload",
		chromedp.SetUploadFiles(chromedp.CSS("#upload-file"), []string{file}),
		chromedp.SendKeys(chromedp.CSS("#upload-title"), hostile),
		chromedp.Click(chromedp.CSS("#upload-button")),
		chromedp.WaitVisible(chromedp.CSS("#records-body tr.record")))
	if got := b.text(t, "#records-body tr.record td.title a"); got != hostile {
		t.Fatalf("title shown as %q, want %q", got, hostile)
	}
	if got := b.text(t, "#records-body tr.record td.author .name"); got != "you" {
		t.Fatalf("author shown as %q", got)
	}
	if got := b.text(t, "#records-body tr.record td.kind"); got != "file" {
		t.Fatalf("kind shown as %q", got)
	}
	if got := b.text(t, "#upload-status"); !strings.Contains(got, "Added") {
		t.Fatalf("upload status %q", got)
	}
	href := evalIn[string](t, b, `document.querySelector("#records-body td.title a").getAttribute("href")`)
	cid := evalIn[string](t, b, `document.querySelector("#records-body tr.record").dataset.cid`)
	if href != "#/record/"+cid || cid == "" {
		t.Fatalf("title link %q (cid %q)", href, cid)
	}
	// The content is the file the form sent.
	body := evalIn[string](t, b, `fetch("/api/v1/records/`+cid+`/content").then(r => r.text())`)
	if body != "HbA1c 5.4%\n" {
		t.Fatalf("content: %q", body)
	}
	if imgs := evalIn[int](t, b, "document.images.length"); imgs != 0 {
		t.Fatalf("the title became markup: %d images", imgs)
	}
	time.Sleep(300 * time.Millisecond) // room for an onerror to fire
	records := b.screenshot(t, "3-records")
	docScreenshot(t, records, "web-records.png")
	// At 390 px: nothing wider than the window.
	b.do(t, "narrow", chromedp.EmulateViewport(390, 800), chromedp.Sleep(100*time.Millisecond))
	if w := evalIn[int](t, b, "document.documentElement.scrollWidth"); w > 390 {
		t.Fatalf("at 390 px the page is %d px wide", w)
	}
	b.screenshot(t, "4-records-390px")
	b.do(t, "wide", chromedp.EmulateViewport(1000, 700))

	// Hide: gone from the list.
	b.do(t, "hide",
		chromedp.Click(chromedp.CSS("#records-body button.hide")),
		chromedp.WaitVisible(chromedp.CSS("#records-empty")))
	if rows := evalIn[int](t, b, `document.querySelectorAll("#records-body tr").length`); rows != 0 {
		t.Fatalf("%d rows after hiding", rows)
	}

	// Lock: back to the unlock screen, and the API says locked.
	b.do(t, "lock",
		chromedp.Click(chromedp.CSS("#lock-button")),
		chromedp.WaitVisible(chromedp.CSS("#screen-unlock")))
	if st := evalIn[int](t, b, `fetch("/api/v1/records").then(r => r.status)`); st != 423 {
		t.Fatalf("records after Lock: %d, want 423", st)
	}
	b.screenshot(t, "5-locked")

	if p := b.problems(); len(p) > 0 {
		t.Fatalf("dialogs or console errors: %q", p)
	}
	t.Logf("browser test took %v", time.Since(start).Round(time.Millisecond))
}
