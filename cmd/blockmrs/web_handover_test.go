package main

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestWebHandoverInChromium: on the guardians page a mother hands her
// daughter's account over with the ward row's Hand over button: the page
// shows the code, its QR code and the command; the grown-up's node takes
// the account over with that code; the page then says this node no longer
// holds the keys, and the row offers no hand-over any more. At 390 px
// nothing is wider than the window; no dialog, no console error.
func TestWebHandoverInChromium(t *testing.T) {
	mum, kim := newNode(t, ""), newNode(t, "kim pass")
	mum.initAccount("--name", "Mum", "--role", "patient", "--no-passphrase")
	var minor struct {
		Ward string `json:"ward"`
	}
	mum.json(&minor, "guardian", "create", "Kim", "--no-passphrase", "--json")
	kimID := minor.Ward
	d := startAPIDaemon(t, mum)
	startDaemon(t, kim)
	b := newBrowser(t)
	link := strings.TrimSpace(mum.ok("open", "--print"))
	b.do(t, "log in", chromedp.Navigate(link), chromedp.WaitVisible(chromedp.CSS("#screen-records")))
	row := `#my-wards-body tr.ward[data-id="` + kimID + `"]`
	b.do(t, "guardians page",
		navTo("guardians"),
		chromedp.WaitVisible(chromedp.CSS(row+` button.handover`)))
	if got := evalIn[string](t, b, `document.querySelector(`+jsString(row+` button.handover`)+`).getAttribute("aria-label")`); got != "Hand Kim's account over to their own node" {
		t.Fatalf("button label %q", got)
	}
	// Clicked from the page's script: a live redraw may replace the row
	// under chromedp's click.
	evalIn[bool](t, b, `(() => { document.querySelector(`+jsString(row+` button.handover`)+`).click(); return true; })()`)
	b.do(t, "the hand-over code", chromedp.WaitVisible(chromedp.CSS("#handover-code")))
	waitUntil(t, 10*time.Second, "the QR code image loads", func() bool {
		return evalIn[bool](t, b, `(() => { const i = document.querySelector("#handover-qr"); return i.complete && i.naturalWidth > 100; })()`)
	})
	code := b.text(t, "#handover-code")
	secret := strings.TrimPrefix(b.text(t, "#handover-secret"), "Code: ")
	if !strings.HasSuffix(code, " "+secret) || !strings.Contains(code, "/p2p/"+d.peer) {
		t.Fatalf("hand-over code %q, secret %q", code, secret)
	}
	if got := b.text(t, "#handover"); !strings.Contains(got, "blockmrs device join --takeover '"+code+"'") {
		t.Fatalf("the command is not shown: %q", got)
	}
	b.fits390(t, "1-handover-390px")
	b.do(t, "wide again", chromedp.EmulateViewport(1200, 900))

	out := kim.ok("device", "join", "--takeover", "--name", "kim-laptop", code)
	if !strings.Contains(out, "took over") || !strings.Contains(out, kimID) {
		t.Fatalf("takeover:\n%s", out)
	}
	// What the page said last is in the failure (a status that lost the
	// joining state once made the page say "no node joined" here).
	var said string
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(said, "no longer holds its keys") {
		if time.Now().After(deadline) {
			t.Fatalf("the page never said the keys left this node; status and error lines: %q", said)
		}
		time.Sleep(200 * time.Millisecond)
		said = b.textNow(t, "#guardians-status") + " | " + b.textNow(t, "#guardians-error")
	}
	waitUntil(t, 20*time.Second, "the row offers no hand-over any more", func() bool {
		return evalIn[bool](t, b, `(() => { const r = document.querySelector(`+jsString(row)+`); return !!r && !r.querySelector("button.handover"); })()`)
	})
	b.screenshot(t, "2-handed-over")
	if p := b.problems(); len(p) != 0 {
		t.Fatalf("dialogs or console errors: %v", p)
	}
}
