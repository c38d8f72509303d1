package main

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// The devices page pairs a new device in Chromium against real daemons:
// the pairing code and its QR code (a screenshot), a phone that joins
// with the code shown, the page that sees it join; then the phone removed
// with its warning, and the keys rotated.
func TestWebAppDevicePairingInChromium(t *testing.T) {
	laptop, phone := newNode(t, ""), newNode(t, "")
	id := laptop.initAccount("--name", "Pat", "--no-passphrase")
	d := startAPIDaemon(t, laptop)
	pd := startDaemon(t, phone)
	b := newBrowser(t)

	code, secret := b.showPairingCode(t, strings.TrimSpace(laptop.ok("open", "--print")))
	waitUntil(t, 10*time.Second, "the QR code image loads", func() bool {
		return evalIn[bool](t, b, `(() => { const i = document.querySelector("#pair-qr"); return i.complete && i.naturalWidth > 100; })()`)
	})
	if !strings.HasSuffix(code, " "+secret) || !strings.Contains(code, "/p2p/"+d.peer) || len(secret) != 14 {
		t.Fatalf("pairing code %q, secret %q", code, secret)
	}
	if got := b.text(t, "#pair-status"); !strings.Contains(got, "Waiting") {
		t.Fatalf("pair status %q", got)
	}
	keepScreenshot(t, b.screenshot(t, "1-device-pairing"), "web-device-pairing.png")
	b.fits390(t, "2-device-pairing-390px")
	b.do(t, "wide again", chromedp.EmulateViewport(1200, 900))

	// The phone joins with the code the page shows; the page sees it.
	out := phone.ok("device", "join", "--no-passphrase", "--name", "phone", code)
	if !strings.Contains(out, id) {
		t.Fatalf("join:\n%s", out)
	}
	b.do(t, "the page sees the phone join", chromedp.WaitVisible(chromedp.CSS(`#devices-body tr[data-peer="`+pd.info.PeerID+`"]`)))
	waitUntil(t, 10*time.Second, "the page says the phone joined", func() bool {
		return strings.Contains(b.textNow(t, "#pair-status"), "phone joined")
	})

	// Removing the phone warns first, then rotates the keys.
	row := `#devices-body tr[data-peer="` + pd.info.PeerID + `"]`
	b.do(t, "remove asks", chromedp.Click(chromedp.CSS(row+` button.remove`)), chromedp.WaitVisible(chromedp.CSS("#remove-warning")))
	if got := b.text(t, "#remove-warning"); !strings.Contains(got, "keys rotate") || !strings.Contains(got, "keeps whatever it already holds") {
		t.Fatalf("warning %q", got)
	}
	b.screenshot(t, "3-device-remove")
	b.do(t, "remove", chromedp.Click(chromedp.CSS(row+` button.confirm`)), chromedp.WaitNotPresent(chromedp.CSS(row)))
	// The row may go on the chain event before the answer comes: wait for
	// the status line the answer writes.
	waitUntil(t, 10*time.Second, "the status says the keys rotated", func() bool {
		return strings.Contains(b.textNow(t, "#devices-status"), "signing and decryption keys rotated")
	})
	if p := b.problems(); len(p) != 0 {
		t.Fatalf("dialogs or console errors: %v", p)
	}
}
