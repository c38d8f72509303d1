package main

// The web app in a real headless Chromium (Debian's chromium, which
// scripts/test.sh installs), driven with chromedp against real daemon
// processes: getting in with `blockmrs open`, single-use links, escaping
// of hostile names, and the server's refusals.

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/blockmrs/blockmrs/node/web"
)

// chromiumPath is Debian's chromium; scripts/test.sh installs it.
const chromiumPath = "/usr/bin/chromium"

var updateScreenshots = flag.Bool("update-screenshots", false, "copy the web app's home, records and record screenshots to docs/screenshots/")

// browser is a headless Chromium with one tab, recording every dialog
// (and dismissing it) and every console message.
type browser struct {
	ctx context.Context
	dir string // screenshots

	mu      sync.Mutex
	dialogs []string
	console []chromedp.ConsoleMessage
}

func newBrowser(t *testing.T) *browser {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Fatalf("no Chromium at %s (scripts/test.sh installs it with apt-get): %v", chromiumPath, err)
	}
	actx, cancelA := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1000, 700),
	)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelA() })
	b := &browser{ctx: ctx}
	// Screenshots go to a folder named for the test that outlives it.
	b.dir = filepath.Join(os.TempDir(), "blockmrs-screenshots", t.Name())
	if err := os.MkdirAll(b.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshots in %s", b.dir)
	if err := chromedp.Listen(ctx, func(ev any) {
		if d, ok := ev.(*page.EventJavascriptDialogOpening); ok {
			b.mu.Lock()
			b.dialogs = append(b.dialogs, string(d.Type)+": "+d.Message)
			b.mu.Unlock()
			go chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: false})
		}
	}); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	msgs := chromedp.Console(ctx)
	go func() {
		for m, err := range msgs {
			if err != nil {
				return
			}
			b.mu.Lock()
			b.console = append(b.console, m)
			b.mu.Unlock()
		}
	}()
	return b
}

// do runs steps with a time limit.
func (b *browser) do(t *testing.T, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 15*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// clickWhenThere waits until sel matches an element and clicks it from
// the page's own script, in one step: a page that redraws on a chain
// event can replace the element between chromedp finding it and clicking
// it ("Could not find node with given id"), which this cannot.
func (b *browser) clickWhenThere(t *testing.T, what, sel string) {
	t.Helper()
	b.until(t, what, clickJS(sel))
}

// clickJS is a script that clicks the first element sel matches and says
// whether there was one.
func clickJS(sel string) string {
	return `(() => { const e = document.querySelector(` + jsString(sel) + `); if (!e) return false; e.click(); return true; })()`
}

// navTo is the step that opens page from the navigation bar, the way
// clickWhenThere clicks: it waits for the link and clicks it from the
// page's own script, so a redraw (an account change, a chain event)
// cannot replace the link between finding and clicking it.
func navTo(page string) chromedp.Action[chromedp.Void] {
	poll := chromedp.Poll[bool](clickJS(`#nav a[data-page=`+page+`]`), chromedp.WithPollingInterval(20*time.Millisecond))
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		if _, err := poll(ctx, tg); err != nil {
			return fmt.Errorf("open the %s page from the navigation bar: %w", page, err)
		}
		return nil
	})
}

func (b *browser) text(t *testing.T, sel string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.TextContent(chromedp.CSS(sel)))
	if err != nil {
		t.Fatalf("text of %s: %v", sel, err)
	}
	return s
}

func evalIn[T any](t *testing.T, b *browser, js string) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("evaluate %s: %v", js, err)
	}
	return v
}

func (b *browser) screenshot(t *testing.T, name string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	path := filepath.Join(b.dir, name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// docScreenshot copies the screenshot at path to docs/screenshots/name
// when the test runs with -update-screenshots.
func docScreenshot(t *testing.T, path, name string) {
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

// problems returns the dialogs and the console errors seen so far, but
// the network errors that the test provokes (a refused login link, the
// 401 of the page without a cookie, a wrong passphrase's 403, the 423 of
// a locked account).
func (b *browser) problems() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := append([]string(nil), b.dialogs...)
	for _, m := range b.console {
		if m.Source == "network" && (strings.Contains(m.Text, "status of 40") || strings.Contains(m.Text, "status of 423")) {
			continue
		}
		if m.Type == chromedp.ConsoleError || m.IsException() {
			out = append(out, string(m.Type)+" "+m.Source+": "+m.Text)
		}
	}
	return out
}

func TestWebAppInChromium(t *testing.T) {
	start := time.Now()
	const hostile = `Pat <img src=x onerror=alert(1)>`
	n := newNode(t, "")
	n.initAccount("--name", hostile, "--no-passphrase")
	d := startAPIDaemon(t, n)
	fresh := newNode(t, "") // a node with no account yet
	fd := startAPIDaemon(t, fresh)
	b := newBrowser(t)

	// Without a cookie: the get-in text.
	b.do(t, "open / without a cookie", chromedp.Navigate(d.api+"/"), chromedp.WaitVisible(chromedp.CSS("#screen-out")))
	if got := b.text(t, "#screen-out"); !strings.Contains(got, "blockmrs open") {
		t.Fatalf("logged-out page says %q", got)
	}
	b.screenshot(t, "1-not-logged-in")

	// blockmrs open --print gives a link; the browser lands on / logged in.
	link := strings.TrimSpace(n.ok("open", "--print"))
	if !strings.HasPrefix(link, d.api+"/login?code=") {
		t.Fatalf("open --print: %q", link)
	}
	b.do(t, "follow the login link", chromedp.Navigate(link), chromedp.WaitVisible(chromedp.CSS("#screen-records")))
	if loc := evalIn[string](t, b, "location.pathname"); loc != "/" {
		t.Fatalf("landed on %q", loc)
	}
	b.do(t, "account page", navTo("account"), chromedp.WaitVisible(chromedp.CSS("#screen-account")))
	if got := b.text(t, "#accounts .name"); got != hostile {
		t.Fatalf("account name shown as %q, want %q", got, hostile)
	}
	if got := b.text(t, "#peer-id"); got != d.peer {
		t.Fatalf("peer ID %q, want %s", got, d.peer)
	}
	if imgs := evalIn[int](t, b, "document.images.length"); imgs != 0 {
		t.Fatalf("the name became markup: %d images on the page", imgs)
	}
	time.Sleep(300 * time.Millisecond) // room for an onerror to fire
	home := b.screenshot(t, "2-home")
	docScreenshot(t, home, "web-home.png")

	// The browser holds the cookie as the server set it.
	cookies, err := chromedp.Call(b.ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{d.api + "/"}})
	if err != nil || len(cookies.Cookies) != 1 {
		t.Fatalf("cookies: %v %v", cookies, err)
	}
	ck := cookies.Cookies[0]
	if !ck.HTTPOnly || ck.SameSite != network.CookieSameSiteStrict || ck.Path != "/" || !strings.HasPrefix(ck.Name, "blockmrs_session_") {
		t.Fatalf("cookie %+v", ck)
	}

	// From the page: a POST with the cookie but without the CSRF header
	// is refused; with it, it goes through.
	status := evalIn[int](t, b, `fetch("/api/v1/sessions/lock", {method: "POST", headers: {"Content-Type": "application/json"}, body: "{}"}).then(r => r.status)`)
	if status != http.StatusForbidden {
		t.Fatalf("POST without %s: %d, want 403", web.CSRFHeader, status)
	}
	status = evalIn[int](t, b, `fetch("/api/v1/sessions/lock", {method: "POST", headers: {"Content-Type": "application/json", "X-BlockMRS-CSRF": "1"}, body: "{}"}).then(r => r.status)`)
	if status != http.StatusOK {
		t.Fatalf("POST with %s: %d, want 200", web.CSRFHeader, status)
	}

	// The same link a second time: refused, with a page saying so.
	b.do(t, "reuse the login link", chromedp.Navigate(link), chromedp.WaitVisible(chromedp.CSS("#message")))
	if got := b.text(t, "h1"); !strings.Contains(got, "already used") {
		t.Fatalf("second use of the link: %q", got)
	}
	if got := b.text(t, "#message"); !strings.Contains(got, "blockmrs open") {
		t.Fatalf("second use does not say what to do: %q", got)
	}
	b.screenshot(t, "3-link-used")

	// A node without an account: "create your account".
	flink := strings.TrimSpace(fresh.ok("open", "--print"))
	b.do(t, "log in to the fresh node", chromedp.Navigate(flink), chromedp.WaitVisible(chromedp.CSS("#no-account")))
	if got := b.text(t, "#no-account"); !strings.Contains(got, "create your account") {
		t.Fatalf("fresh node says %q", got)
	}
	b.screenshot(t, "4-no-account")

	// Create it in the page: passphrases that differ are caught in the
	// page, then the account exists, is unlocked and shows its records.
	b.do(t, "create: passphrases differ",
		chromedp.SendKeys(chromedp.CSS("#create-name"), "Sam Newcomer"),
		chromedp.SendKeys(chromedp.CSS("#create-pass"), "a long passphrase"),
		chromedp.SendKeys(chromedp.CSS("#create-pass2"), "another one"),
		chromedp.Click(chromedp.CSS("#create-button")),
		chromedp.WaitVisible(chromedp.CSS("#create-error")))
	if got := b.text(t, "#create-error"); !strings.Contains(got, "differ") {
		t.Fatalf("differing passphrases: %q", got)
	}
	evalIn[bool](t, b, `document.querySelector("#create-pass2").value = "", true`)
	b.do(t, "create",
		chromedp.SendKeys(chromedp.CSS("#create-pass2"), "a long passphrase"),
		chromedp.Click(chromedp.CSS("#create-button")),
		chromedp.WaitVisible(chromedp.CSS("#records-empty")))
	var accts struct {
		Accounts []struct {
			Name      string `json:"name"`
			Encrypted bool   `json:"encrypted"`
		} `json:"accounts"`
	}
	if err := json.Unmarshal([]byte(fresh.ok("accounts", "--json")), &accts); err != nil {
		t.Fatal(err)
	}
	if len(accts.Accounts) != 1 || accts.Accounts[0].Name != "Sam Newcomer" || !accts.Accounts[0].Encrypted {
		t.Fatalf("after the form the fresh node has %+v", accts.Accounts)
	}
	b.screenshot(t, "5-created")

	// Outside the browser: the headers, and a foreign Origin refused even
	// with a valid cookie.
	cookie := ck.Name + "=" + ck.Value
	for _, p := range []string{"/", "/main.js", "/core.js", "/app.css", "/login?code=x"} {
		resp := httpGet(t, d.api+p, nil)
		if got := resp.Header.Get("Content-Security-Policy"); got != web.CSP {
			t.Errorf("%s: CSP %q", p, got)
		}
		if resp.Header.Get("X-Content-Type-Options") != "nosniff" || resp.Header.Get("Referrer-Policy") != "no-referrer" {
			t.Errorf("%s: headers %v", p, resp.Header)
		}
	}
	if resp := httpGet(t, d.api+"/api/v1/id", map[string]string{"Cookie": cookie}); resp.StatusCode != http.StatusOK || resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("id with the browser's cookie: %d %q", resp.StatusCode, resp.Header.Get("Cache-Control"))
	}
	for _, p := range []string{"/", "/api/v1/id"} {
		if resp := httpGet(t, d.api+p, map[string]string{"Cookie": cookie, "Origin": "http://evil.example"}); resp.StatusCode != http.StatusForbidden {
			t.Fatalf("%s with a foreign Origin: %d, want 403", p, resp.StatusCode)
		}
	}
	u, _ := url.Parse(fd.api)
	if resp := httpGet(t, d.api+"/api/v1/id", map[string]string{"Cookie": cookie, "Origin": "http://" + u.Host}); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("Origin of the other daemon: %d, want 403", resp.StatusCode)
	}

	if p := b.problems(); len(p) > 0 {
		t.Fatalf("dialogs or console errors: %q", p)
	}
	// The listener works: a dialog opened by the test is seen.
	evalIn[bool](t, b, `setTimeout(() => alert("probe"), 0), true`)
	deadline := time.Now().Add(5 * time.Second)
	for len(b.problems()) == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if p := b.problems(); len(p) != 1 || !strings.Contains(p[0], "probe") {
		t.Fatalf("the dialog listener missed a probe: %q", p)
	}
	t.Logf("browser test took %v", time.Since(start).Round(time.Millisecond))
}

// httpGet sends a GET with headers and returns the response (its body
// read and closed).
func httpGet(t *testing.T, u string, h map[string]string) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range h {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

// Without a daemon, open says how to start one; --json gives the link as
// data.
func TestOpenCommand(t *testing.T) {
	n := newNode(t, "")
	n.initAccount("--name", "Solo", "--no-passphrase")
	r := n.run("open", "--print")
	if r.code != 1 || !strings.Contains(r.stderr, "blockmrs daemon") || r.stdout != "" {
		t.Fatalf("open without a daemon: %d %q %q", r.code, r.stdout, r.stderr)
	}
	startAPIDaemon(t, n)
	var link struct {
		URL     string    `json:"url"`
		Expires time.Time `json:"expires"`
	}
	n.json(&link, "open", "--json")
	if !strings.Contains(link.URL, "/login?code=") || time.Until(link.Expires) > 2*time.Minute || time.Until(link.Expires) < time.Minute {
		t.Fatalf("open --json: %+v", link)
	}
	// Without --print and without a desktop: the link, and a line saying
	// what to do with it.
	n.env["DISPLAY"], n.env["WAYLAND_DISPLAY"] = "", ""
	r = n.run("open")
	if r.code != 0 || !strings.Contains(r.stdout, "/login?code=") || !strings.Contains(r.stderr, "open the link above") {
		t.Fatalf("open: %d %q %q", r.code, r.stdout, r.stderr)
	}
}
