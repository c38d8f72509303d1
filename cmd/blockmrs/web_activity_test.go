package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/blockmrs/blockmrs/node/ops"
)

// The activity, devices and account pages in Chromium against a real
// daemon: the chain log made readable (a hostile record title as text),
// updated live; this node listed, a replica declared and withdrawn; a
// second account made the default, and the account picker switching the
// records shown.
func TestWebAppActivityDevicesAccountsInChromium(t *testing.T) {
	start := time.Now()
	const hostile = `<img src=x onerror=alert(1)>`
	n := newNode(t, "")
	patID := n.initAccount("--name", "Pat", "--no-passphrase")
	kimID := n.initAccount("--name", "Kim", "--no-passphrase")
	doc := newNode(t, "")
	doc.initAccount("--name", "Dr Grey", "--role", "clinician", "--no-passphrase")
	if r := n.exec(strings.NewReader(doc.ok("id", "--export", "-")), "contact", "add", "-"); r.code != 0 {
		t.Fatalf("contact add: %+v", r)
	}
	dir := t.TempDir()
	addFile := func(name, title string, extra ...string) string {
		t.Helper()
		file := filepath.Join(dir, name)
		if err := os.WriteFile(file, []byte(title+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(n.ok(append([]string{"add", "--title", title, file}, extra...)...))
	}
	bad := addFile("x.txt", hostile)
	blood := addFile("blood.txt", "Blood test")
	kims := addFile("kim.txt", "Kim's allergy list", "--account", "Kim")
	n.ok("grant", bad, "--to", "Dr Grey", "--expires", "2027-01-01T12:00:00Z")
	n.ok("hide", blood)
	d := startAPIDaemon(t, n)
	b := newBrowser(t)

	link := strings.TrimSpace(n.ok("open", "--print"))
	b.do(t, "log in", chromedp.Navigate(link), chromedp.WaitVisible(chromedp.CSS("#screen-records")))

	// Activity: newest first, each entry a sentence; titles are text.
	b.do(t, "activity page",
		navTo("activity"),
		chromedp.WaitVisible(chromedp.CSS("#activity-body tr.entry")))
	types := evalIn[[]string](t, b, `[...document.querySelectorAll("#activity-body tr.entry")].map(r => r.dataset.type)`)
	if want := []string{"hide", "grant", "record", "record", "device", "profile"}; strings.Join(types, " ") != strings.Join(want, " ") {
		t.Fatalf("activity rows %v, want %v", types, want)
	}
	what := func(typ string) string {
		t.Helper()
		return b.text(t, `#activity-body tr[data-type=`+typ+`] td.what`)
	}
	// (Titles and names are <q> elements: the quotes are the browser's.)
	if got, want := what("grant"), "shared "+hostile+" with Dr Grey until 2027-01-01"; got != want {
		t.Fatalf("grant row %q, want %q", got, want)
	}
	if got := b.text(t, `#activity-body tr[data-type=grant] td.what q.title`); got != hostile {
		t.Fatalf("grant's record title %q", got)
	}
	if got := what("hide"); got != "hid Blood test" {
		t.Fatalf("hide row %q", got)
	}
	if got := what("device"); !strings.HasPrefix(got, "declared device ") || !strings.HasSuffix(got, "(this node)") {
		t.Fatalf("device row %q", got)
	}
	if got := what("profile"); got != "created the account Pat" {
		t.Fatalf("profile row %q", got)
	}
	if got := b.text(t, `#activity-body tr[data-type=grant] td.by`); got != "you" {
		t.Fatalf("grant by %q", got)
	}
	// The block: short, the whole CID in its title.
	block := evalIn[string](t, b, `document.querySelector("#activity-body tr[data-type=grant]").dataset.block`)
	short := b.text(t, `#activity-body tr[data-type=grant] td.block code`)
	full := evalIn[string](t, b, `document.querySelector("#activity-body tr[data-type=grant] td.block code").title`)
	if full != block || !strings.HasPrefix(block, "bafy") || len(short) >= len(block) || !strings.HasPrefix(block, short[:6]) {
		t.Fatalf("block shown %q, title %q, entry's block %q", short, full, block)
	}
	// The title of the hostile record is a text node, not an element.
	if imgs := evalIn[int](t, b, "document.images.length"); imgs != 0 {
		t.Fatalf("a title became markup: %d images", imgs)
	}
	time.Sleep(300 * time.Millisecond) // room for an onerror to fire
	keepScreenshot(t, b.screenshot(t, "1-activity"), "web-activity.png")

	// Live: an unhide from the command line appears on top, no reload.
	evalIn[bool](t, b, `window.notReloaded = true`)
	n.ok("unhide", blood)
	b.do(t, "the unhide appears", chromedp.WaitVisible(chromedp.CSS(`#activity-body tr.entry:first-child[data-type=unhide]`)))
	if got := what("unhide"); got != "showed again Blood test" {
		t.Fatalf("unhide row %q", got)
	}
	if !evalIn[bool](t, b, `window.notReloaded === true`) {
		t.Fatal("the page reloaded")
	}

	b.fits390(t, "2-activity-390px")

	// Devices: this node, marked; a replica declared from the form.
	b.do(t, "devices page",
		navTo("devices"),
		chromedp.WaitVisible(chromedp.CSS("#devices-body tr.this-node")))
	if got := evalIn[string](t, b, `document.querySelector("#devices-body tr.this-node").dataset.peer`); got != d.peer {
		t.Fatalf("this node's row is %q, want %s", got, d.peer)
	}
	for _, id := range []string{"replica-peer", "replica-name"} {
		if l := evalIn[int](t, b, `document.querySelectorAll("label[for=`+id+`]").length`); l != 1 {
			t.Fatalf("field %s has %d labels", id, l)
		}
	}
	if !evalIn[bool](t, b, `document.querySelector("#replicas").hidden && !document.querySelector("#replicas-empty").hidden`) {
		t.Fatal("no 'No replicas' before any")
	}
	const backup = "12D3KooWHHzSeKaY8xuZVzkLbKFfvNgPPeKhFBGrMbNzbm5akpqu"
	b.do(t, "bad peer ID",
		chromedp.SendKeys(chromedp.CSS("#replica-peer"), "not-a-peer"),
		chromedp.Click(chromedp.CSS("#replica-button")),
		chromedp.WaitVisible(chromedp.CSS("#devices-error")))
	if got := b.text(t, "#devices-error"); !strings.Contains(got, "peer_id") {
		t.Fatalf("bad peer ID says %q", got)
	}
	evalIn[bool](t, b, `document.querySelector("#replica-peer").value = "", true`)
	b.do(t, "declare a replica",
		chromedp.SendKeys(chromedp.CSS("#replica-peer"), backup),
		chromedp.SendKeys(chromedp.CSS("#replica-name"), "home "+hostile),
		chromedp.Click(chromedp.CSS("#replica-button")),
		chromedp.WaitVisible(chromedp.CSS(`#replicas-body tr[data-peer="`+backup+`"]`)))
	if got := b.text(t, `#replicas-body tr[data-peer="`+backup+`"] td.name`); got != "home "+hostile {
		t.Fatalf("replica named %q", got)
	}
	var list ops.NodeList
	n.json(&list, "replica", "ls", "--json")
	if len(list.Replicas) != 1 || list.Replicas[0].PeerID != backup {
		t.Fatalf("replica ls after the form: %+v", list)
	}
	if imgs := evalIn[int](t, b, "document.images.length"); imgs != 0 {
		t.Fatalf("a name became markup: %d images", imgs)
	}
	keepScreenshot(t, b.screenshot(t, "3-devices"), "web-devices.png")

	// Withdraw it: the row asks first, then the replica is gone.
	row := `#replicas-body tr[data-peer="` + backup + `"]`
	b.do(t, "withdraw asks", chromedp.Click(chromedp.CSS(row+` button.withdraw`)), chromedp.WaitVisible(chromedp.CSS(row+` button.confirm`)))
	b.screenshot(t, "4-devices-withdraw")
	b.do(t, "withdraw", chromedp.Click(chromedp.CSS(row+` button.confirm`)), chromedp.WaitVisible(chromedp.CSS("#replicas-empty")))
	if got := b.text(t, "#devices-status"); !strings.Contains(got, "Withdrew replica") {
		t.Fatalf("status after withdrawing %q", got)
	}
	n.json(&list, "replica", "ls", "--json")
	if len(list.Replicas) != 0 {
		t.Fatalf("replica ls after withdrawing: %+v", list)
	}
	b.fits390(t, "5-devices-390px")

	// Make Kim the default on the Account page.
	b.do(t, "account page",
		navTo("account"),
		chromedp.WaitVisible(chromedp.CSS(`#accounts li[data-id="`+kimID+`"] button.make-default`)))
	if evalIn[int](t, b, `document.querySelectorAll("#accounts button.make-default").length`) != 1 {
		t.Fatal("want one Make default button (for Kim)")
	}
	b.do(t, "make default",
		chromedp.Click(chromedp.CSS(`#accounts li[data-id="`+kimID+`"] button.make-default`)),
		chromedp.WaitVisible(chromedp.CSS(`#accounts li[data-id="`+patID+`"] button.make-default`)))
	if got := b.text(t, `#accounts li[data-id="`+kimID+`"] .badge`); got != "default" {
		t.Fatalf("Kim's badge %q", got)
	}
	var accts ops.AccountList
	if err := json.Unmarshal([]byte(n.ok("accounts", "--json")), &accts); err != nil {
		t.Fatal(err)
	}
	for _, a := range accts.Accounts {
		if a.Default != (string(a.ID) == kimID) {
			t.Fatalf("after Make default: %+v", accts.Accounts)
		}
	}
	b.screenshot(t, "6-account-default")

	// The picker (the tab still acts as Pat) switches to Kim: the
	// records list is Kim's.
	b.do(t, "records as Pat", navTo("records"),
		chromedp.WaitVisible(chromedp.CSS(`#records-body tr[data-cid="`+bad+`"]`)))
	if !evalIn[bool](t, b, `!document.querySelector("#picker").hidden`) {
		t.Fatal("no account picker with two accounts")
	}
	evalIn[bool](t, b, `(() => { const s = document.querySelector("#account-picker"); s.value = "`+kimID+`"; s.dispatchEvent(new Event("change")); return true; })()`)
	b.do(t, "records as Kim", chromedp.WaitVisible(chromedp.CSS(`#records-body tr[data-cid="`+kims+`"]`)))
	cids := evalIn[[]string](t, b, `[...document.querySelectorAll("#records-body tr.record")].map(r => r.dataset.cid)`)
	if len(cids) != 1 || cids[0] != kims {
		t.Fatalf("records as Kim: %v, want only %s", cids, kims)
	}
	// And the activity page follows the picker.
	b.do(t, "Kim's activity", navTo("activity"),
		chromedp.WaitVisible(chromedp.CSS("#activity-body tr.entry")))
	if got := what("profile"); got != "created the account Kim" {
		t.Fatalf("Kim's activity starts with %q", got)
	}
	b.screenshot(t, "7-records-as-kim")

	if p := b.problems(); len(p) > 0 {
		t.Fatalf("dialogs or console errors: %q", p)
	}
	t.Logf("browser test took %v", time.Since(start).Round(time.Millisecond))
}

// keepScreenshot copies a screenshot to docs/screenshots/name (for the
// README) when the test runs with -update-screenshots.
func keepScreenshot(t *testing.T, path, name string) {
	t.Helper()
	if !*updateScreenshots {
		return
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join("..", "..", "docs", "screenshots", name), data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// fits390 requires the page shown to be no wider than a 390 px phone
// screen, takes the screenshot name there, and widens the window again.
func (b *browser) fits390(t *testing.T, name string) {
	t.Helper()
	b.do(t, "narrow", chromedp.EmulateViewport(390, 800), chromedp.Sleep(100*time.Millisecond))
	if w := evalIn[int](t, b, "document.documentElement.scrollWidth"); w > 390 {
		t.Fatalf("%s: at 390 px the page is %d px wide", name, w)
	}
	b.screenshot(t, name)
	b.do(t, "wide", chromedp.EmulateViewport(1000, 700))
}
