package main

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// The Join form in Chromium over two real daemons on 127.0.0.1: the
// laptop's devices page shows a pairing code; the phone, a fresh node
// with no account, joins with it from its "create your account" screen.
// A wrong code first: the one-line refusal, nothing stored, the form
// still usable. Then the right one: the phone's app starts over as the
// account, reads the laptop's record (its decryption key works) and
// declares a replica the laptop then sees (its signing key works).
// Then a tablet that has an account of its own joins from its devices
// page, with a passphrase: the picker offers the account, locked until
// unlocked with that passphrase.
func TestWebAppJoinFormInChromium(t *testing.T) {
	laptop, phone, tablet := newNode(t, ""), newNode(t, ""), newNode(t, "")
	tablet.initAccount("--name", "Sam", "--no-passphrase")
	id := laptop.initAccount("--name", "Pat", "--no-passphrase")
	laptop.ok("add", writeTemp(t, "diary.txt", []byte("laptop diary")), "--title", "Diary")
	ld := startAPIDaemon(t, laptop)
	pd := startAPIDaemon(t, phone)
	td := startAPIDaemon(t, tablet)
	b := newBrowser(t)

	// The laptop shows a code.
	code, secret := b.showPairingCode(t, strings.TrimSpace(laptop.ok("open", "--print")))
	if !strings.HasSuffix(code, " "+secret) || !strings.Contains(code, "/p2p/"+ld.peer) {
		t.Fatalf("pairing code %q, secret %q", code, secret)
	}

	// The phone has no account: its first screen offers to join one.
	plink := strings.TrimSpace(phone.ok("open", "--print"))
	b.do(t, "log in to the phone", chromedp.Navigate(plink), chromedp.WaitVisible(chromedp.CSS("#join-new #join-form")))
	for _, f := range []string{"join-code", "join-name", "join-pass"} {
		if n := evalIn[int](t, b, `document.querySelectorAll("label[for=`+f+`]").length`); n != 1 {
			t.Fatalf("field %s has %d labels", f, n)
		}
	}

	// A wrong code: one line saying so, nothing stored, the form usable.
	wrong := []byte(secret)
	wrong[0] = map[bool]byte{true: '1', false: '0'}[wrong[0] == '0']
	addr := strings.TrimSuffix(code, " "+secret)
	b.do(t, "join with a wrong code",
		chromedp.SendKeys(chromedp.CSS("#join-code"), addr+" "+string(wrong)),
		chromedp.SendKeys(chromedp.CSS("#join-name"), "phone"),
		chromedp.Click(chromedp.CSS("#join-button")),
		chromedp.WaitVisible(chromedp.CSS("#join-error")))
	b.screenshot(t, "1-join-wrong-code")
	b.fits390(t, "1-join-wrong-code-390px")
	got := b.text(t, "#join-error")
	if !strings.Contains(got, "wrong pairing code") || !strings.Contains(got, "nothing was stored") || strings.Contains(got, "\n") {
		t.Fatalf("wrong code says %q", got)
	}
	if out := phone.ok("accounts"); strings.Contains(out, id) {
		t.Fatalf("the phone stored the account after a wrong code:\n%s", out)
	}
	if evalIn[bool](t, b, `document.querySelector("#join-button").disabled`) {
		t.Fatal("the Join button stays disabled after the refusal")
	}

	// The right code: the app starts over as Pat and reads her record.
	evalIn[bool](t, b, `document.querySelector("#join-code").value = "", true`)
	b.do(t, "enter the code shown", chromedp.SendKeys(chromedp.CSS("#join-code"), code))
	keepScreenshot(t, b.screenshot(t, "2-join-form"), "web-device-join.png")
	b.do(t, "join with it",
		chromedp.Click(chromedp.CSS("#join-button")),
		chromedp.WaitVisible(chromedp.CSS("#screen-records")))
	if !strings.Contains(phone.ok("accounts"), id) {
		t.Fatal("the phone does not list the account after joining")
	}
	b.untilWithin(t, time.Minute, "the phone lists the laptop's record by its title, readable",
		`Array.from(document.querySelectorAll("#records-body tr.record")).some(function (r) {
			return r.querySelector("td.title").textContent === "Diary" && r.querySelector("td.status").textContent === "readable";
		})`)
	b.screenshot(t, "3-joined-records")

	// Its signing key works: a replica declared on the phone reaches the
	// laptop's chain.
	const backup = "12D3KooWHHzSeKaY8xuZVzkLbKFfvNgPPeKhFBGrMbNzbm5akpqu"
	b.do(t, "phone: devices page",
		navTo("devices"),
		chromedp.WaitVisible(chromedp.CSS(`#devices-body tr.this-node`)))
	if got := evalIn[string](t, b, `document.querySelector("#devices-body tr.this-node").dataset.peer`); got != pd.peer {
		t.Fatalf("the phone's own row is %q, want %s", got, pd.peer)
	}
	b.do(t, "phone: declare a replica",
		chromedp.SendKeys(chromedp.CSS("#replica-peer"), backup),
		chromedp.SendKeys(chromedp.CSS("#replica-name"), "home backup"),
		chromedp.Click(chromedp.CSS("#replica-button")),
		chromedp.WaitVisible(chromedp.CSS(`#replicas-body tr[data-peer="`+backup+`"]`)))
	if got := b.text(t, "#devices-status"); !strings.Contains(got, "Declared replica home backup") {
		t.Fatalf("status after declaring %q", got)
	}
	waitUntil(t, time.Minute, "the laptop's chain has the replica the phone signed", func() bool {
		return strings.Contains(laptop.ok("device", "ls", "--json"), backup)
	})
	b.fits390(t, "4-joined-devices-390px")

	// The tablet joins from its devices page, with a passphrase.
	code, _ = b.showPairingCode(t, ld.api+"/")
	tlink := strings.TrimSpace(tablet.ok("open", "--print"))
	b.do(t, "tablet: devices page",
		chromedp.Navigate(tlink),
		chromedp.WaitVisible(chromedp.CSS("#screen-records")),
		navTo("devices"),
		chromedp.WaitVisible(chromedp.CSS("#join-form")))
	b.do(t, "tablet: join",
		chromedp.SendKeys(chromedp.CSS("#join-code"), code),
		chromedp.SendKeys(chromedp.CSS("#join-name"), "tablet"),
		chromedp.SendKeys(chromedp.CSS("#join-pass"), "tablet passphrase"),
		chromedp.Click(chromedp.CSS("#join-button")))
	b.untilWithin(t, time.Minute, "the tablet's page says it acts for Pat",
		`document.querySelector("#devices-status").textContent.includes("now acts for Pat")`)
	b.until(t, "Pat is in the tablet's account picker", `!!document.querySelector("#account-picker option[value='`+id+`']")`)
	if evalIn[string](t, b, `document.querySelector("#join-code").value`) != "" {
		t.Fatal("the join form keeps the used code")
	}
	b.screenshot(t, "5-tablet-joined")
	evalIn[bool](t, b, `(() => { const s = document.querySelector("#account-picker"); s.value = "`+id+`"; s.dispatchEvent(new Event("change")); return true; })()`)
	b.until(t, "the tablet's devices page shows Pat's devices, the tablet among them",
		`!!document.querySelector("#devices-body tr.this-node[data-peer='`+td.peer+`']")`)
	b.do(t, "tablet: Pat's records are locked",
		navTo("records"),
		chromedp.WaitVisible(chromedp.CSS("#screen-unlock")))
	b.do(t, "tablet: unlock with the passphrase given at the join",
		chromedp.SendKeys(chromedp.CSS("#passphrase"), "tablet passphrase"),
		chromedp.Click(chromedp.CSS("#unlock-button")),
		chromedp.WaitVisible(chromedp.CSS("#screen-records")))
	b.untilWithin(t, time.Minute, "the tablet reads Pat's record",
		`Array.from(document.querySelectorAll("#records-body tr.record")).some(function (r) {
			return r.querySelector("td.title").textContent === "Diary" && r.querySelector("td.status").textContent === "readable";
		})`)
	if p := b.problems(); len(p) != 0 {
		t.Fatalf("dialogs or console errors: %v", p)
	}
}

// showPairingCode opens url (a login link, or the app of a node the
// browser is logged in to), goes to the devices page and shows a pairing
// code: it returns the code and its secret.
func (b *browser) showPairingCode(t *testing.T, url string) (code, secret string) {
	t.Helper()
	b.do(t, "log in", chromedp.Navigate(url), chromedp.WaitVisible(chromedp.CSS("#screen-records")))
	b.do(t, "devices page",
		navTo("devices"),
		chromedp.WaitVisible(chromedp.CSS("#pair-start")))
	b.do(t, "show a pairing code",
		chromedp.Click(chromedp.CSS("#pair-start")),
		chromedp.WaitVisible(chromedp.CSS("#pair-qr")))
	return b.text(t, "#pair-code"), strings.TrimPrefix(b.text(t, "#pair-secret"), "Code: ")
}
