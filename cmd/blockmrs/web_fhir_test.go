package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/blockmrs/blockmrs/protocol/fhir/fhirtest"
)

// Import a Synthea-shaped bundle from the records page in Chromium: the
// result line gives the counts, the records are listed with their
// clinical titles, resource types and dates, importing the same file
// again adds nothing, a broken file is refused with the server's one
// line, Export FHIR downloads a Bundle holding every resource and Patient
// summary an IPS document.
func TestWebAppFHIRImportInChromium(t *testing.T) {
	start := time.Now()
	n := newNode(t, "")
	n.initAccount("--name", "Robin Patient", "--no-passphrase")
	d := startAPIDaemon(t, n)
	b := newBrowser(t)
	dir := t.TempDir()
	const resources = 120
	bundle := filepath.Join(dir, "synthea.json")
	if err := os.WriteFile(bundle, fhirtest.Synthea(11, resources), 0o644); err != nil {
		t.Fatal(err)
	}
	broken := filepath.Join(dir, "broken.json")
	es := fhirtest.SyntheaEntries(11, 10)
	es[4].Resource = []byte(strings.Replace(string(es[4].Resource), `"resourceType":"`, `"resourceType":"X`, 1))
	if err := os.WriteFile(broken, fhirtest.Bundle("collection", es), 0o644); err != nil {
		t.Fatal(err)
	}

	link := strings.TrimSpace(n.ok("open", "--print"))
	if !strings.HasPrefix(link, d.api+"/login?code=") {
		t.Fatalf("open --print: %q", link)
	}
	b.do(t, "log in", chromedp.Navigate(link), chromedp.WaitVisible(chromedp.CSS("#records-empty")))
	if got := evalIn[string](t, b, `document.querySelector("label[for=fhir-file]").textContent`); got != "FHIR file" {
		t.Fatalf("file label %q", got)
	}

	// A broken file: the server's one line, nothing listed.
	b.do(t, "import a broken file",
		chromedp.SetUploadFiles(chromedp.CSS("#fhir-file"), []string{broken}),
		chromedp.Click(chromedp.CSS("#fhir-import-button")),
		chromedp.WaitVisible(chromedp.CSS("#fhir-import-status.error")))
	if got := b.text(t, "#fhir-import-status"); !strings.Contains(got, "entry[4]") || !strings.Contains(got, "X") || strings.Contains(got, "\n") {
		t.Fatalf("broken file says %q", got)
	}
	if rows := evalIn[int](t, b, `document.querySelectorAll("#records-body tr.record").length`); rows != 0 {
		t.Fatalf("%d rows after a refused import", rows)
	}
	b.screenshot(t, "1-fhir-refused")

	// The bundle: the counts, then one row per resource.
	b.do(t, "import the bundle",
		chromedp.SetUploadFiles(chromedp.CSS("#fhir-file"), []string{bundle}),
		chromedp.Click(chromedp.CSS("#fhir-import-button")),
		chromedp.WaitVisible(chromedp.CSS("#records-body tr.record")))
	waitUntil(t, 30*time.Second, "the import's line", func() bool {
		return strings.HasPrefix(b.text(t, "#fhir-import-status"), "Imported")
	})
	if got := b.text(t, "#fhir-import-status"); got != "Imported 120 resources as 120 records (0 unchanged, 0 superseded)." {
		t.Fatalf("import says %q", got)
	}
	waitUntil(t, 30*time.Second, "every record listed", func() bool {
		return evalIn[int](t, b, `document.querySelectorAll("#records-body tr.record").length`) == resources
	})
	// The Patient is listed by name with its type and birth date; an
	// Observation by its code's text, value and date.
	type row struct{ Title, Kind, Date string }
	rows := evalIn[[]row](t, b, `Array.from(document.querySelectorAll("#records-body tr.record")).map(tr => ({
		Title: tr.querySelector("td.title a").textContent, Kind: tr.querySelector("td.kind").textContent, Date: tr.querySelector("td.date").textContent}))`)
	kinds := map[string]int{}
	for _, r := range rows {
		kinds[r.Kind]++
		if r.Kind == "Observation" && (!strings.Contains(r.Title, " — ") || !strings.HasPrefix(r.Title[strings.LastIndex(r.Title, " — ")+len(" — "):], r.Date[:10])) {
			t.Fatalf("Observation row %+v: the title does not end with its date", r)
		}
	}
	if kinds["Patient"] != 1 || kinds["Observation"] < 10 || kinds["Encounter"] < 5 {
		t.Fatalf("kinds listed: %v", kinds)
	}
	b.screenshot(t, "2-fhir-imported")

	// Again: nothing added.
	b.do(t, "import it again",
		chromedp.SetUploadFiles(chromedp.CSS("#fhir-file"), []string{bundle}),
		chromedp.Click(chromedp.CSS("#fhir-import-button")))
	waitUntil(t, 30*time.Second, "the second import's line", func() bool {
		return strings.Contains(b.text(t, "#fhir-import-status"), "120 unchanged")
	})
	if got := b.text(t, "#fhir-import-status"); got != "Imported 120 resources as 0 records (120 unchanged, 0 superseded)." {
		t.Fatalf("second import says %q", got)
	}

	// Export FHIR: the link is the acting account's export; what it
	// downloads is a collection Bundle of the 120 resources.
	href := evalIn[string](t, b, `document.querySelector("#fhir-export").href`)
	if !strings.HasPrefix(href, d.api+"/api/v1/fhir/export?account=") {
		t.Fatalf("export link %q", href)
	}
	if got := evalIn[string](t, b, `document.querySelector("#fhir-export").getAttribute("download")`); got != "fhir-export.json" {
		t.Fatalf("download name %q", got)
	}
	type resp struct {
		Status int
		Type   string
		Body   string
	}
	got := evalIn[resp](t, b, `fetch(document.querySelector("#fhir-export").href).then(async r => ({Status: r.status, Type: r.headers.get("Content-Type"), Body: await r.text()}))`)
	if got.Status != 200 || got.Type != "application/fhir+json" {
		t.Fatalf("export: %d %q", got.Status, got.Type)
	}
	var exported struct {
		ResourceType, Type string
		Entry              []struct {
			FullURL  string          `json:"fullUrl"`
			Resource json.RawMessage `json:"resource"`
		}
	}
	if err := json.Unmarshal([]byte(got.Body), &exported); err != nil {
		t.Fatalf("export is not JSON: %v", err)
	}
	if exported.ResourceType != "Bundle" || exported.Type != "collection" || len(exported.Entry) != resources || !strings.HasPrefix(exported.Entry[0].FullURL, "urn:uuid:") {
		t.Fatalf("export: %s %s with %d entries", exported.ResourceType, exported.Type, len(exported.Entry))
	}
	// Patient summary: a document Bundle, as the acting account.
	if href := evalIn[string](t, b, `document.querySelector("#fhir-summary").href`); !strings.HasPrefix(href, d.api+"/api/v1/fhir/summary?account=") {
		t.Fatalf("summary link %q", href)
	}
	got = evalIn[resp](t, b, `fetch(document.querySelector("#fhir-summary").href).then(async r => ({Status: r.status, Type: r.headers.get("Content-Type"), Body: await r.text()}))`)
	var summary struct{ ResourceType, Type string }
	if err := json.Unmarshal([]byte(got.Body), &summary); err != nil || got.Status != 200 || summary.Type != "document" {
		t.Fatalf("summary: %d %v %+v", got.Status, err, summary)
	}
	// Finding things: the filters narrow the list by resource type, code
	// and clinical date, as the API does.
	obs := kinds["Observation"]
	b.do(t, "filter by type", chromedp.SendKeys(chromedp.CSS("#records-type"), "Observation"))
	waitUntil(t, 30*time.Second, "only Observations", func() bool {
		return evalIn[int](t, b, `document.querySelectorAll("#records-body tr.record").length`) == obs
	})
	if other := evalIn[int](t, b, `Array.from(document.querySelectorAll("#records-body td.kind")).filter(c => c.textContent !== "Observation").length`); other != 0 {
		t.Fatalf("%d rows of another type under the type filter", other)
	}
	// The first Observation's code and day: every row left has both.
	var first struct{ Code, Date string }
	for _, e := range fhirtest.SyntheaEntries(11, resources) {
		if e.ResourceType != "Observation" {
			continue
		}
		var o struct {
			Code struct {
				Coding []struct{ Code string } `json:"coding"`
			} `json:"code"`
			Effective string `json:"effectiveDateTime"`
		}
		if err := json.Unmarshal(e.Resource, &o); err != nil || len(o.Code.Coding) == 0 || len(o.Effective) < 10 {
			t.Fatalf("generated Observation %s: %v", e.Resource, err)
		}
		first.Code, first.Date = o.Code.Coding[0].Code, o.Effective[:10]
		break
	}
	b.do(t, "filter by code and day",
		chromedp.SendKeys(chromedp.CSS("#records-code"), first.Code),
		chromedp.SetValue(chromedp.CSS("#records-since"), first.Date),
		chromedp.SetValue(chromedp.CSS("#records-until"), first.Date))
	evalIn[bool](t, b, `document.querySelector("#records-until").dispatchEvent(new Event("change"))`)
	// The code filter may apply before the dates do (each is its own
	// request): wait for a list that has both.
	outside := func() int {
		return evalIn[int](t, b, `Array.from(document.querySelectorAll("#records-body td.date")).filter(c => !c.textContent.startsWith(`+"`"+first.Date+"`"+`)).length`)
	}
	waitUntil(t, 30*time.Second, "the code and day filters leave only Observations of "+first.Date, func() bool {
		n := evalIn[int](t, b, `document.querySelectorAll("#records-body tr.record").length`)
		return n > 0 && n < obs && outside() == 0
	})
	docScreenshot(t, b.screenshot(t, "3-fhir-filtered"), "web-fhir.png")

	// A changed resource is a new version: one row, "2 versions", and its
	// page lists both.
	es2 := fhirtest.SyntheaEntries(11, resources)
	changed := -1
	for i, e := range es2 {
		if e.ResourceType == "Observation" && strings.Contains(string(e.Resource), `"status":"final"`) {
			es2[i].Resource = []byte(strings.Replace(string(e.Resource), `"status":"final"`, `"status":"amended"`, 1))
			changed = i
			break
		}
	}
	if changed < 0 {
		t.Fatal("no final Observation to amend")
	}
	amended := filepath.Join(dir, "amended.json")
	if err := os.WriteFile(amended, fhirtest.Bundle("collection", es2), 0o644); err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Superseded []json.RawMessage `json:"superseded"`
	}
	n.json(&rep, "fhir", "import", amended, "--json")
	if len(rep.Superseded) != 1 {
		t.Fatalf("re-import of an amended Observation: %+v", rep)
	}
	evalIn[bool](t, b, `(() => { for (const id of ["records-type", "records-code", "records-since", "records-until"]) { document.getElementById(id).value = ""; }
		return document.querySelector("#records-kind").dispatchEvent(new Event("change")); })()`)
	// The list shown before the filters were cleared has the new version
	// too (the first Observation is the amended one): wait for the whole
	// list, one row per resource, the old version only in its history.
	waitUntil(t, 30*time.Second, "the unfiltered list with the new version's row", func() bool {
		return evalIn[int](t, b, `document.querySelectorAll("#records-body td.title .versions").length`) == 1 &&
			evalIn[int](t, b, `document.querySelectorAll("#records-body tr.record").length`) == resources
	})
	if got := b.text(t, "#records-body td.title .versions"); got != "2 versions" {
		t.Fatalf("versions mark %q", got)
	}
	newest := evalIn[string](t, b, `document.querySelector("#records-body td.title .versions").closest("tr").dataset.cid`)
	b.do(t, "the new version's page", chromedp.Navigate(d.api+"/#/record/"+newest),
		chromedp.WaitVisible(chromedp.CSS("#record-versions li.version")))
	if got := evalIn[int](t, b, `document.querySelectorAll("#record-versions li.version").length`); got != 2 {
		t.Fatalf("%d versions listed", got)
	}
	if got := evalIn[int](t, b, `document.querySelectorAll("#record-versions li.version a").length`); got != 1 {
		t.Fatalf("%d links to other versions, want the old one", got)
	}
	b.screenshot(t, "4-fhir-versions")

	// At 390 px the form fits.
	b.do(t, "back to records", chromedp.Navigate(d.api+"/#/records"), chromedp.WaitVisible(chromedp.CSS("#records-body tr.record")))
	b.do(t, "narrow", chromedp.EmulateViewport(390, 800), chromedp.Sleep(100*time.Millisecond))
	if w := evalIn[int](t, b, "document.documentElement.scrollWidth"); w > 390 {
		t.Fatalf("at 390 px the page is %d px wide", w)
	}
	b.screenshot(t, "5-fhir-390px")
	if p := b.problems(); len(p) > 0 {
		t.Fatalf("dialogs or console errors: %q", p)
	}
	t.Logf("browser test took %v", time.Since(start).Round(time.Millisecond))
}
