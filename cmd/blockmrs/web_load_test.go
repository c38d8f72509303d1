package main

import (
	"flag"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/blockmrs/blockmrs/internal/benchrepo"
	bmnode "github.com/blockmrs/blockmrs/node"
)

// The records page's load, measured: scripts/bench-web.sh runs the long
// form (-records-page-records 1000 -records-page-loads 10); the test
// command runs the short one, which checks the measurement itself.
var (
	pageRecords = flag.Int("records-page-records", 60, "records in the repo of TestRecordsPageLoadInChromium")
	pageLoads   = flag.Int("records-page-loads", 3, "page loads TestRecordsPageLoadInChromium times")
)

// pageReady is what one load of the records page reports: when the
// records-ready mark was placed (milliseconds after navigation started)
// and the rows then in the table.
type pageReady struct {
	Ms   float64 `json:"ms"`
	Rows int     `json:"rows"`
	// ListStart and ListEnd are when the GET of the records list was
	// sent and its response ended (resource timing), so that the log
	// tells the server's and the network's share from the page's.
	ListStart float64 `json:"list_start"`
	ListEnd   float64 `json:"list_end"`
}

// readyJS waits for the records page's performance mark "records-ready"
// (records.js places it once it has rendered the table's rows) and
// reports it with the number of rows.
const readyJS = `new Promise(function (resolve) {
  (function check() {
    const m = performance.getEntriesByName("records-ready");
    if (m.length > 0) {
      const list = performance.getEntriesByType("resource").filter(function (e) {
        return new URL(e.name).pathname === "/api/v1/records";
      }).pop() || {startTime: 0, responseEnd: 0};
      resolve({ms: m[0].startTime, rows: document.querySelectorAll("#records-body tr.record").length,
        list_start: list.startTime, list_end: list.responseEnd});
      return;
    }
    setTimeout(check, 2);
  })();
})`

// The records page of an unlocked account holding many records, loaded
// again and again in Chromium: every load renders every record, and the
// time from navigation to the rendered rows is logged (never asserted),
// with the median of the loads.
func TestRecordsPageLoadInChromium(t *testing.T) {
	const pass = "correct horse battery staple"
	n := newNode(t, pass)
	n.initAccount("--name", "Robin Patient")
	repo, err := bmnode.OpenRepo(t.Context(), n.dir, false)
	if err != nil {
		t.Fatal(err)
	}
	me, err := repo.Resolve(t.Context(), "", true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := benchrepo.Fill(t.Context(), repo, me, *pageRecords); err != nil {
		t.Fatal(err)
	}
	if err := repo.Close(); err != nil {
		t.Fatal(err)
	}
	delete(n.env, envPassphrase)
	d := startAPIDaemon(t, n)
	b := newBrowser(t)
	link := strings.TrimSpace(n.ok("open", "--print"))
	b.do(t, "log in and unlock", chromedp.Navigate(link), chromedp.WaitVisible(chromedp.CSS("#screen-unlock")),
		chromedp.SendKeys(chromedp.CSS("#passphrase"), pass+"\r"),
		chromedp.WaitVisible(chromedp.CSS("#records-body tr.record")))
	first := evalIn[pageReady](t, b, readyJS) // after the unlock: not a navigation
	if first.Rows != *pageRecords {
		t.Fatalf("after unlock the page shows %d rows, want %d", first.Rows, *pageRecords)
	}

	var times, starts, lists []float64
	for i := range *pageLoads {
		// A new document every time (a navigation within the page, to
		// its own URL with another hash, would not load it again).
		b.do(t, fmt.Sprintf("load %d", i+1), chromedp.Navigate("about:blank"), chromedp.Navigate(d.api+"/#/records"))
		r := evalIn[pageReady](t, b, readyJS)
		if r.Rows != *pageRecords || r.Ms <= 0 {
			t.Fatalf("load %d: %d rows at %.1f ms, want %d rows", i+1, r.Rows, r.Ms, *pageRecords)
		}
		times = append(times, r.Ms)
		starts = append(starts, r.ListStart)
		lists = append(lists, r.ListEnd-r.ListStart)
	}
	if got := b.text(t, "#records-body tr.record td.author"); got != benchrepo.ClinicianName+" ✓ verified" {
		t.Fatalf("the first row's author is %q", got)
	}
	if p := b.problems(); len(p) > 0 {
		t.Fatalf("dialogs or console errors: %q", p)
	}
	median := func(v []float64) float64 { slices.Sort(v); return v[len(v)/2] }
	t.Logf("records page ready: median %.1f ms of %d loads (min %.1f, max %.1f), %d records; "+
		"median GET of the list sent at %.1f ms, taking %.1f ms",
		median(times), len(times), times[0], times[len(times)-1], *pageRecords, median(starts), median(lists))
}
