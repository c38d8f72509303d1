package main

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/blockmrs/blockmrs/node/api"
	"github.com/blockmrs/blockmrs/protocol"
)

// The recovery page in Chromium against a real daemon: Pat names Cam as
// her recovery contact; Cam (the other account of the node, through the
// picker) approves a recovery request a new repo made and gets the
// response, which finishes the recovery on the new repo; a stranger's
// request token pasted by mistake is refused with one line.
func TestWebRecoveryInChromium(t *testing.T) {
	n := newNode(t, "")
	patID := n.initAccount("--name", "Pat", "--no-passphrase")
	camID := n.initAccount("--name", "Cam", "--no-passphrase")
	startAPIDaemon(t, n)
	b := newBrowser(t)
	link := strings.TrimSpace(n.ok("open", "--print"))
	b.do(t, "log in", chromedp.Navigate(link), chromedp.WaitVisible(chromedp.CSS("#screen-records")))
	evalIn[bool](t, b, `(() => { const s = document.querySelector("#account-picker"); s.value = "`+patID+`"; s.dispatchEvent(new Event("change")); return true; })()`)

	// Pat names Cam, by keyboard-labelled fields.
	b.do(t, "recovery page",
		navTo("recovery"),
		chromedp.WaitVisible(chromedp.CSS("#recovery-form")))
	if got := b.text(t, "#recovery-setup"); got != "No recovery contacts yet." {
		t.Fatalf("setup before: %q", got)
	}
	b.do(t, "save contacts",
		chromedp.SendKeys(chromedp.CSS("#recovery-contacts"), "Cam"),
		chromedp.SendKeys(chromedp.CSS("#recovery-threshold"), "1"),
		chromedp.Click(chromedp.CSS("#recovery-form-button")),
		chromedp.WaitVisible(chromedp.CSS("#recovery-contact-list li.contact")))
	if got := b.text(t, "#recovery-contact-list"); got != "Cam" {
		t.Fatalf("contacts shown %q", got)
	}
	if got := b.text(t, "#recovery-status"); !strings.Contains(got, "1 of 1 contacts") {
		t.Fatalf("status %q", got)
	}

	// A new repo starts recovering Pat from her chain.
	fresh := newNode(t, "")
	chain := filepath.Join(t.TempDir(), "pat.car")
	n.ok("export", chain, "--account", "Pat")
	var started struct {
		Token string `json:"token"`
	}
	fresh.json(&started, "recovery", "start", patID, "--chain", chain, "--json")

	// Cam approves in the web app.
	evalIn[bool](t, b, `(() => { const s = document.querySelector("#account-picker"); s.value = "`+camID+`"; s.dispatchEvent(new Event("change")); return true; })()`)
	b.do(t, "recovery page as Cam",
		navTo("recovery"),
		chromedp.WaitVisible(chromedp.CSS("#recovery-approve-form")))
	b.do(t, "a malformed request",
		chromedp.SendKeys(chromedp.CSS("#recovery-request"), "not hex"),
		chromedp.Click(chromedp.CSS("#recovery-approve-form-button")),
		chromedp.WaitVisible(chromedp.CSS("#recovery-error")))
	if got := b.text(t, "#recovery-error"); !strings.Contains(got, "not a hex token") {
		t.Fatalf("error line %q", got)
	}
	b.do(t, "approve",
		chromedp.SetValue(chromedp.CSS("#recovery-request"), started.Token),
		chromedp.Click(chromedp.CSS("#recovery-approve-form-button")),
		chromedp.WaitVisible(chromedp.CSS("#recovery-response-out-box")))
	resp := evalIn[string](t, b, `document.querySelector("#recovery-response-out").value`)
	if len(resp) < 100 {
		t.Fatalf("response %q", resp)
	}
	b.screenshot(t, "recovery-approved")
	b.fits390(t, "recovery-390px")

	// The command line and the typed API answer the same.
	pc, err := api.NewClient(n.dir)
	if err != nil {
		t.Fatal(err)
	}
	shown, err := pc.Recovery(t.Context(), "Pat")
	if err != nil || shown.Setup == nil || shown.Setup.Threshold != 1 {
		t.Fatalf("API recovery: %+v %v", shown, err)
	}
	sameJSON(t, "recovery show", n.ok("recovery", "show", "--account", "Pat", "--json"), shown)

	// The response finishes the recovery on the new repo, through its
	// daemon's typed API.
	startAPIDaemon(t, fresh)
	fc, err := api.NewClient(fresh.dir)
	if err != nil {
		t.Fatal(err)
	}
	st, err := fc.RespondRecovery(t.Context(), patID, resp)
	if err != nil || !st.Ready {
		t.Fatalf("respond: %+v %v", st, err)
	}
	sameJSON(t, "recovery status", fresh.ok("recovery", "status", patID, "--json"), st)
	done, err := fc.FinishRecovery(t.Context(), patID, "")
	if err != nil || done.Account != protocol.AccountID(patID) || !done.Signing.ThisDevice {
		t.Fatalf("finish: %+v %v", done, err)
	}
	if _, err := fc.RecoveryStatus(t.Context(), patID); err == nil {
		t.Fatal("a finished recovery still has a status")
	}
	if p := b.problems(); len(p) != 0 {
		t.Fatalf("browser problems: %v", p)
	}
}

// The recovery inbox in Chromium: Pat (on a node with Cam) names Cam as
// her contact; a new device's daemon starts recovering her and delivers
// the request to the node; Cam's recovery page lists it with the safety
// code the new device shows and the instruction, and approving it there
// sends the response to the new device, whose recovery is then ready.
func TestWebRecoveryInboxInChromium(t *testing.T) {
	n := newNode(t, "")
	patID := n.initAccount("--name", "Pat", "--no-passphrase")
	camID := n.initAccount("--name", "Cam", "--no-passphrase")
	d := startDaemon(t, n)
	n.ok("recovery", "setup", "--account", "Pat", "--contacts", "Cam", "--threshold", "1")
	chain := filepath.Join(t.TempDir(), "pat.car")
	n.ok("export", chain, "--account", "Pat")

	fresh := newNode(t, "")
	fd := startDaemon(t, fresh)
	var started struct {
		Request    string `json:"request"`
		SafetyCode string `json:"safety_code"`
	}
	fresh.json(&started, "recovery", "start", patID, "--chain", chain, "--via", d.addr(), "--json")
	waitUntil(t, 60*time.Second, "the request reaches the contact's node", func() bool {
		return strings.Contains(n.ok("recovery", "requests"), started.SafetyCode)
	}, d, fd)
	// A second request for Pat, from another node holding her chain (a
	// thief, say): both faces warn beside each that only one can be hers.
	thief := newNode(t, "")
	td := startDaemon(t, thief)
	var stolen struct {
		SafetyCode string `json:"safety_code"`
	}
	thief.json(&stolen, "recovery", "start", patID, "--chain", chain, "--via", d.addr(), "--json")
	waitUntil(t, 60*time.Second, "the second request reaches the contact's node", func() bool {
		return strings.Contains(n.ok("recovery", "requests"), stolen.SafetyCode)
	}, d, td)
	if out := n.ok("recovery", "requests"); strings.Count(out, "WARNING      1 other request(s) for this account") != 2 {
		t.Fatalf("recovery requests with two requests for Pat does not warn beside each:\n%s", out)
	}

	b := newBrowser(t)
	link := strings.TrimSpace(n.ok("open", "--print"))
	b.do(t, "log in", chromedp.Navigate(link), chromedp.WaitVisible(chromedp.CSS("#screen-records")))
	evalIn[bool](t, b, `(() => { const s = document.querySelector("#account-picker"); s.value = "`+camID+`"; s.dispatchEvent(new Event("change")); return true; })()`)
	b.do(t, "recovery page as Cam",
		navTo("recovery"),
		chromedp.WaitVisible(chromedp.CSS("#recovery-inbox li.recovery-request")))
	item := b.text(t, "#recovery-inbox li.recovery-request")
	if !strings.Contains(item, started.SafetyCode) || !strings.Contains(item, "Call them and compare this code before approving") {
		t.Fatalf("inbox item %q, want the safety code %s and the instruction", item, started.SafetyCode)
	}
	if w := evalIn[int](t, b, `Array.from(document.querySelectorAll("#recovery-inbox li.recovery-request .recovery-warning")).filter(p => p.textContent.includes("only one can be theirs")).length`); w != 2 {
		t.Fatalf("the Recovery page warns beside %d of the two requests for Pat", w)
	}
	b.screenshot(t, "recovery-inbox")
	b.fits390(t, "recovery-inbox-390px")
	b.do(t, "approve",
		chromedp.Click(chromedp.CSS("#recovery-inbox button.recovery-approve")),
		chromedp.WaitVisible(chromedp.CSS("#recovery-status")))
	waitUntil(t, 60*time.Second, "the new device fetches the approval", func() bool {
		var s struct {
			Ready bool `json:"ready"`
		}
		fresh.json(&s, "recovery", "status", patID, "--json")
		return s.Ready
	}, d, fd)
	if got := b.text(t, "#recovery-inbox li.recovery-request"); !strings.Contains(got, "Approved by you") {
		t.Fatalf("inbox after approving %q", got)
	}
	if p := b.problems(); len(p) != 0 {
		t.Fatalf("browser problems: %v", p)
	}
}

// The record page's verify panel at a clinic that holds a thief's branch
// of Pat's chain and then the recovered chain (the fork choice's scene,
// newTheftScene): the record verifies, with no problems, and the panel
// lists the thief's branch as superseded by recovery; Mal, whom the
// thief granted the record to, is not among its readers.
func TestWebVerifySupersededInChromium(t *testing.T) {
	s := newTheftScene(t)
	s.clinic.ok("import", s.recovered)
	startAPIDaemon(t, s.clinic)
	b := newBrowser(t)
	link := strings.TrimSpace(s.clinic.ok("open", "--print"))
	b.do(t, "log in", chromedp.Navigate(link), chromedp.WaitVisible(chromedp.CSS("#screen-records")))
	b.show(t, s.record, "#verify-button")
	b.clickWhenThere(t, "verify", "#verify-button")
	// It re-checks every chain: slow under -race on a busy machine.
	b.untilWithin(t, time.Minute, "the verification or its error", `!document.querySelector("#verify-result").hidden || !document.querySelector("#verify-error").hidden`)
	if msg := evalIn[string](t, b, `document.querySelector("#verify-error").hidden ? "" : document.querySelector("#verify-error").textContent`); msg != "" {
		t.Fatalf("verify failed in the page: %s", msg)
	}
	if got := b.text(t, "#verify-badge"); got != "✓ Verified" {
		t.Fatalf("verify badge %q", got)
	}
	if n := evalIn[int](t, b, `document.querySelectorAll("#verify-problems li").length`); n != 0 {
		t.Fatalf("%d problems listed: %q", n, b.text(t, "#verify-problems"))
	}
	sup := evalIn[[]string](t, b, `(() => { const u = document.querySelector("#verify-superseded"); return u.hidden ? [] : [...u.querySelectorAll("li")].map(li => li.textContent); })()`)
	// The account by name, not by its raw ID.
	if len(sup) != 1 || !strings.HasPrefix(sup[0], "Chain of Pat, block ") || !strings.Contains(sup[0], "superseded by the recovery") || strings.Contains(sup[0], string(s.patID)) {
		t.Fatalf("the panel's superseded list %q", sup)
	}
	if got := b.text(t, "#verify-fields dd.v-readers"); got != "Pat (wrote it)you (shared with them)" {
		t.Fatalf("readers %q: want Pat and the clinic, not Mal", got)
	}
	b.screenshot(t, "record-verify-superseded")
	if p := b.problems(); len(p) != 0 {
		t.Fatalf("browser problems: %v", p)
	}
}
