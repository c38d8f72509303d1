package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// The audit page in Chromium against a real daemon: the node's audit
// log as a timeline, newest first (a hostile record title as text),
// filtered by record and by date, updated live when a record is read,
// with the log's check; it fits a 390 px screen.
func TestWebAppAuditInChromium(t *testing.T) {
	const hostile = `<img src=x onerror=alert(1)>`
	n := newNode(t, "")
	n.initAccount("--name", "Pat", "--no-passphrase")
	doc := newNode(t, "")
	doc.initAccount("--name", "Dr Grey", "--role", "clinician", "--no-passphrase")
	if r := n.exec(strings.NewReader(doc.ok("id", "--export", "-")), "contact", "add", "-"); r.code != 0 {
		t.Fatalf("contact add: %+v", r)
	}
	dir := t.TempDir()
	addFile := func(name, title string) string {
		t.Helper()
		file := filepath.Join(dir, name)
		if err := os.WriteFile(file, []byte(title+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(n.ok("add", "--title", title, file))
	}
	bad := addFile("x.txt", hostile)
	blood := addFile("blood.txt", "Blood test")
	n.ok("get", blood, "-o", filepath.Join(dir, "out1"))
	n.ok("grant", bad, "--to", "Dr Grey")
	startAPIDaemon(t, n)
	b := newBrowser(t)

	link := strings.TrimSpace(n.ok("open", "--print"))
	b.do(t, "log in", chromedp.Navigate(link), chromedp.WaitVisible(chromedp.CSS("#screen-records")))
	b.do(t, "audit page",
		navTo("audit"),
		chromedp.WaitVisible(chromedp.CSS("#audit-body tr.entry")))
	kinds := func() string {
		return strings.Join(evalIn[[]string](t, b, `[...document.querySelectorAll("#audit-body tr.entry")].map(r => r.dataset.kind)`), " ")
	}
	if got := kinds(); got != "grant read" {
		t.Fatalf("audit rows %q, want the grant, then the read", got)
	}
	row := func(kind, col string) string {
		t.Helper()
		return b.text(t, `#audit-body tr[data-kind=`+kind+`] td.`+col)
	}
	if got := row("grant", "who"); got != "Dr Grey" {
		t.Fatalf("grant row's who %q", got)
	}
	if got := row("grant", "what"); got != "was given access to "+hostile {
		t.Fatalf("grant row %q", got)
	}
	if got := row("read", "what"); got != "opened Blood test" {
		t.Fatalf("read row %q", got)
	}
	if got := row("read", "rule"); got != "read/author" {
		t.Fatalf("read row's rule %q", got)
	}
	if imgs := evalIn[int](t, b, "document.images.length"); imgs != 0 {
		t.Fatalf("a title became markup: %d images", imgs)
	}
	if got := b.text(t, "#audit-verify"); !strings.Contains(got, "checks out") {
		t.Fatalf("the log's check says %q", got)
	}
	for _, id := range []string{"audit-record", "audit-since"} {
		if l := evalIn[int](t, b, `document.querySelectorAll("label[for=`+id+`]").length`); l != 1 {
			t.Fatalf("field %s has %d labels", id, l)
		}
	}
	keepScreenshot(t, b.screenshot(t, "1-audit"), "web-audit.png")

	// Live: a read from the command line appears on top, no reload.
	evalIn[bool](t, b, `window.notReloaded = true`)
	n.ok("get", bad, "-o", filepath.Join(dir, "out2"))
	b.do(t, "the read appears", chromedp.WaitVisible(chromedp.CSS(`#audit-body tr.entry:first-child[data-kind=read]`)))
	if got := b.text(t, `#audit-body tr.entry:first-child td.what`); got != "opened "+hostile {
		t.Fatalf("the new read row %q", got)
	}
	if !evalIn[bool](t, b, `window.notReloaded === true`) {
		t.Fatal("the page reloaded")
	}

	// By record: the blood test's events only, and the address says so.
	evalIn[bool](t, b, `(() => { document.querySelector("#audit-record").value = "`+blood+`"; return true; })()`)
	b.do(t, "filter by record", chromedp.Click(chromedp.CSS("#audit-apply")),
		chromedp.WaitVisible(chromedp.CSS(`#audit-body tr.entry:only-child[data-kind=read]`)))
	if got := evalIn[string](t, b, `location.hash`); got != "#/audit/"+blood {
		t.Fatalf("hash %q after filtering by record", got)
	}
	if got := row("read", "what"); got != "opened Blood test" {
		t.Fatalf("filtered row %q", got)
	}
	b.screenshot(t, "2-audit-record")

	// Since a day to come: nothing.
	tomorrow := time.Now().UTC().Add(48 * time.Hour).Format("2006-01-02")
	evalIn[bool](t, b, `(() => { document.querySelector("#audit-record").value = ""; document.querySelector("#audit-since").value = "`+tomorrow+`"; return true; })()`)
	b.do(t, "filter by date", chromedp.Click(chromedp.CSS("#audit-apply")), chromedp.WaitVisible(chromedp.CSS("#audit-empty")))
	if !evalIn[bool](t, b, `document.querySelector("#audit").hidden`) {
		t.Fatal("rows shown for a period with no events")
	}

	// The whole log again, on a phone's width.
	evalIn[bool](t, b, `(() => { document.querySelector("#audit-since").value = ""; return true; })()`)
	b.do(t, "every event", chromedp.Click(chromedp.CSS("#audit-apply")), chromedp.WaitVisible(chromedp.CSS("#audit-body tr.entry")))
	if got := kinds(); got != "read grant read" {
		t.Fatalf("audit rows %q after clearing the filters", got)
	}
	b.fits390(t, "3-audit-390px")

	// Live: the end of a standing grant (revoke --scope) appears on top,
	// saying the scope and how many records it covered (the blood test:
	// the other file is granted to Dr Grey one by one).
	n.ok("grant", "--scope", "patient/Binary.rs", "--to", "Dr Grey")
	n.ok("revoke", "--scope", "patient/Binary.rs", "--from", "Dr Grey")
	b.do(t, "the scope end appears", chromedp.WaitVisible(chromedp.CSS(`#audit-body tr.entry:first-child[data-kind=revoke]`)))
	if got := b.text(t, `#audit-body tr.entry:first-child td.what`); !strings.HasPrefix(got, "lost access to Blood test: ended standing grant patient/Binary.rs covering 1 record(s), in chain block ") {
		t.Fatalf("the scope end's row %q", got)
	}
	if p := b.problems(); len(p) > 0 {
		t.Fatalf("dialogs or console errors: %q", p)
	}
}
