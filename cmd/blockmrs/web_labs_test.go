package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// A clinician's daemon and a patient's daemon, real processes talking
// libp2p on 127.0.0.1, in one headless Chromium: the clinician writes two
// lab panels for the patient from the write page (fasting glucose, LDL
// and a free row whose name is markup; then a second fasting glucose on
// another date); they reach the patient's node over libp2p, and the
// patient's labs
// page shows the values in a table and a chart with a point per value,
// the markup as text. No dialog, no console error.
func TestWebLabsInChromium(t *testing.T) {
	const hostile = `<img src=x onerror=alert(1)>`
	patient, clinic := newNode(t, ""), newNode(t, "")
	patientID := patient.initAccount("--name", "Pat Lee", "--role", "patient", "--no-passphrase")
	clinicID := clinic.initAccount("--name", "Dr Grey", "--role", "clinician", "--no-passphrase")
	pd := startDaemon(t, patient)
	cd := startDaemon(t, clinic)
	clinic.ok("contact", "add", pd.addr(), patientID)
	patient.ok("contact", "add", cd.addr(), clinicID)

	now := time.Now()
	first, second := now.AddDate(0, 0, -14).Format("2006-01-02"), now.Format("2006-01-02")
	b := newBrowser(t)

	// The clinician logs in and opens the write page.
	b.do(t, "clinician logs in", chromedp.Navigate(strings.TrimSpace(clinic.ok("open", "--print"))),
		chromedp.WaitVisible(chromedp.CSS("#screen-records")))
	b.do(t, "write page", chromedp.Navigate(cd.info.API+"/#/write"), chromedp.WaitVisible(chromedp.CSS("#lab-form")))
	if got := b.text(t, "#lab-patient option"); got != "Pat Lee" {
		t.Fatalf("patient choice %q", got)
	}
	for id, want := range map[string]string{"lab-f-fasting-glucose": "Glucose [fasting] (mg/dL)", "lab-f-ldl": "LDL cholesterol (mg/dL)",
		"lab-f-pulse": "Pulse (beats/min)", "lab-f-blood-group": "Blood group", "lab-date": "Date measured", "lab-patient": "Patient"} {
		if got := evalIn[string](t, b, `document.querySelector("label[for=`+id+`]").textContent`); got != want {
			t.Fatalf("label of %s: %q, want %q", id, got, want)
		}
	}
	setDate := func(d string) {
		evalIn[bool](t, b, `(document.querySelector("#lab-date").value = "`+d+`", true)`)
	}
	setDate(first)
	b.do(t, "first panel",
		chromedp.SendKeys(chromedp.CSS("#lab-f-fasting-glucose"), "95"),
		chromedp.SendKeys(chromedp.CSS("#lab-f-ldl"), "110"),
		chromedp.Click(chromedp.CSS("#lab-add-row")),
		chromedp.WaitVisible(chromedp.CSS("#lab-free-name-1")),
		chromedp.SendKeys(chromedp.CSS("#lab-free-name-1"), hostile),
		chromedp.SendKeys(chromedp.CSS("#lab-free-value-1"), "30"),
		chromedp.SendKeys(chromedp.CSS("#lab-free-unit-1"), "ng/mL"),
		chromedp.Click(chromedp.CSS("#lab-submit")),
		chromedp.WaitVisible(chromedp.CSS("#lab-written li.written-record")))
	titles := evalIn[[]string](t, b, `Array.from(document.querySelectorAll("#lab-written .title")).map(e => e.textContent)`)
	if len(titles) != 3 || titles[0] != "Glucose [fasting] 95 mg/dL — "+first || titles[1] != "LDL cholesterol 110 mg/dL — "+first ||
		titles[2] != hostile+" 30 ng/mL — "+first {
		t.Fatalf("written: %q", titles)
	}
	if got := b.text(t, "#lab-status"); !strings.Contains(got, "Wrote 3 record(s) for Pat Lee") {
		t.Fatalf("status %q", got)
	}
	b.screenshot(t, "1-clinician-wrote-panel")

	// A bad value: the server's line, nothing written.
	b.do(t, "bad value",
		chromedp.SendKeys(chromedp.CSS("#lab-f-pulse"), "9000"),
		chromedp.Click(chromedp.CSS("#lab-submit")),
		chromedp.WaitVisible(chromedp.CSS("#write-error")))
	if got := b.text(t, "#write-error"); !strings.Contains(got, "pulse: 9000") {
		t.Fatalf("bad value says %q", got)
	}
	evalIn[bool](t, b, `(document.querySelector("#lab-f-pulse").value = "", true)`)

	// The second panel, on another date.
	setDate(second)
	b.do(t, "second panel",
		chromedp.SendKeys(chromedp.CSS("#lab-f-fasting-glucose"), "101"),
		chromedp.Click(chromedp.CSS("#lab-submit")),
		chromedp.WaitVisible(chromedp.CSS("#lab-written li.written-record")))
	if got := b.text(t, "#lab-written .title"); got != "Glucose [fasting] 101 mg/dL — "+second {
		t.Fatalf("second panel: %q", got)
	}

	// A file for the patient, from the same page.
	report := filepath.Join(t.TempDir(), "report.pdf")
	if err := os.WriteFile(report, []byte("%PDF-1.4\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	b.do(t, "upload for the patient",
		chromedp.SetUploadFiles(chromedp.CSS("#patient-file"), []string{report}),
		chromedp.Click(chromedp.CSS("#patient-upload-button")),
		chromedp.WaitVisible(chromedp.CSS("#patient-upload-status")))
	waitUntil(t, 10*time.Second, "the upload is reported", func() bool {
		return strings.HasPrefix(evalIn[string](t, b, `document.querySelector("#patient-upload-status").textContent`), "Added report.pdf for Pat Lee")
	})

	// The records reach the patient's node over libp2p by themselves
	// (her node fetches a contact's records about her, PROTOCOL §6).

	// The patient logs in; the values are at her node.
	b.do(t, "patient logs in", chromedp.Navigate(strings.TrimSpace(patient.ok("open", "--print"))),
		chromedp.WaitVisible(chromedp.CSS("#screen-records")))
	defer func() {
		if t.Failed() {
			t.Logf("labs: %s", evalIn[string](t, b, `fetch("/api/v1/labs").then(r => r.text())`))
			t.Logf("records: %s", evalIn[string](t, b, `fetch("/api/v1/records").then(r => r.text())`))
		}
	}()
	waitUntil(t, 60*time.Second, "the four values reach the patient's node", func() bool {
		return evalIn[int](t, b, `fetch("/api/v1/labs").then(r => r.json()).then(d => d.values.length)`) == 4
	}, pd, cd)
	b.do(t, "labs page", chromedp.Navigate(pd.info.API+"/#/labs/1558-6"), chromedp.WaitVisible(chromedp.CSS("#labs-table")))
	if got := evalIn[int](t, b, `document.querySelectorAll("#labs-chart svg .point").length`); got != 2 {
		t.Fatalf("%d chart points, want 2", got)
	}
	pointTitles := evalIn[[]string](t, b, `Array.from(document.querySelectorAll("#labs-chart .point title")).map(e => e.textContent)`)
	if len(pointTitles) != 2 || pointTitles[0] != "95 mg/dL on "+first || pointTitles[1] != "101 mg/dL on "+second {
		t.Fatalf("point titles %q", pointTitles)
	}
	labels := evalIn[[]string](t, b, `Array.from(document.querySelectorAll("#labs-chart .point text")).map(e => e.textContent)`)
	if strings.Join(labels, "|") != "95|"+first+"|101|"+second {
		t.Fatalf("point labels %q", labels)
	}
	if got := evalIn[string](t, b, `document.querySelector("#labs-chart svg").getAttribute("role") + ":" + document.querySelector("#labs-chart svg > title").textContent`); got != "img:Glucose [fasting] over time" {
		t.Fatalf("chart's accessible name: %q", got)
	}
	cells := evalIn[[]string](t, b, `Array.from(document.querySelectorAll("#labs-table tbody tr")).map(r => Array.from(r.cells).slice(0, 5).map(c => c.textContent).join("|"))`)
	if len(cells) != 2 || cells[0] != first+"|Glucose [fasting]|95|mg/dL|Dr Grey" || cells[1] != second+"|Glucose [fasting]|101|mg/dL|Dr Grey" {
		t.Fatalf("table rows %q", cells)
	}
	b.screenshot(t, "2-patient-labs-glucose")

	// The test chooser holds every test; the free row's markup is text.
	options := evalIn[[]string](t, b, `Array.from(document.querySelectorAll("#labs-code option")).map(o => o.value)`)
	slices.Sort(options)
	if strings.Join(options, "|") != "13457-7|1558-6|"+hostile {
		t.Fatalf("tests to choose: %q", options)
	}
	b.do(t, "choose the free row", chromedp.SetValue(chromedp.CSS("#labs-code"), hostile))
	evalIn[bool](t, b, `document.querySelector("#labs-code").dispatchEvent(new Event("change"))`)
	waitUntil(t, 10*time.Second, "the free row's page shows", func() bool {
		return evalIn[string](t, b, `decodeURIComponent(location.hash)`) == "#/labs/"+hostile &&
			evalIn[string](t, b, `(document.querySelector("#labs-table td.name") || {}).textContent || ""`) == hostile
	})
	if got := evalIn[int](t, b, `document.querySelectorAll("#labs-chart .point").length`); got != 1 {
		t.Fatalf("free row: %d points", got)
	}
	if imgs := evalIn[int](t, b, "document.images.length"); imgs != 0 {
		t.Fatalf("the free row's name became markup: %d images", imgs)
	}

	// The Observation renderer for one record: name, value, date, LOINC
	// code and a link to the values over time.
	var glucose struct {
		Values []struct {
			CID string `json:"cid"`
		} `json:"values"`
	}
	raw := evalIn[string](t, b, `fetch("/api/v1/labs?code=1558-6").then(r => r.text())`)
	if err := json.Unmarshal([]byte(raw), &glucose); err != nil || len(glucose.Values) != 2 {
		t.Fatalf("glucose values %s: %v", raw, err)
	}
	// Its record page shows it through the Observation viewer.
	b.do(t, "an Observation's record page", chromedp.Navigate(pd.info.API+"/#/record/"+glucose.Values[0].CID),
		chromedp.WaitVisible(chromedp.CSS("#record-view dl.observation")))
	shown := evalIn[string](t, b, `(() => { const d = document.querySelector("#record-view dl.observation");
		return Array.from(d.querySelectorAll("dd")).map(e => e.textContent).join("|") + "|" + d.querySelector("a").getAttribute("href") })()`)
	if shown != "Glucose [fasting]|95 mg/dL|"+first+"|1558-6|See Glucose [fasting] over time|#/labs/1558-6" {
		t.Fatalf("the record page shows %q", shown)
	}
	b.screenshot(t, "2b-observation-record")

	// The records page lists the clinician's Observations.
	b.do(t, "records", chromedp.Navigate(pd.info.API+"/#/records"), chromedp.WaitVisible(chromedp.CSS("#records-body tr.record")))
	if n := evalIn[int](t, b, `Array.from(document.querySelectorAll("#records-body td.kind")).filter(c => c.textContent === "Observation").length`); n != 4 { // the kind column names the resource type
		t.Fatalf("%d Observations on the records page", n)
	}
	if got := evalIn[string](t, b, `Array.from(document.querySelectorAll("#records-body td.title")).map(c => c.textContent).filter(s => s === "report.pdf").join()`); got != "report.pdf" {
		t.Fatalf("the uploaded file is not on the patient's records page: %q", got)
	}

	// Back to the chart, at phone width: nothing wider than the window.
	b.do(t, "labs again", chromedp.Navigate(pd.info.API+"/#/labs/1558-6"), chromedp.WaitVisible(chromedp.CSS("#labs-table")))
	time.Sleep(300 * time.Millisecond) // room for an onerror to fire
	shot := b.screenshot(t, "3-patient-labs")
	if *updateScreenshots {
		data, err := os.ReadFile(shot)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join("..", "..", "docs", "screenshots", "web-labs.png"), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b.do(t, "narrow", chromedp.EmulateViewport(390, 800), chromedp.Sleep(100*time.Millisecond))
	if w := evalIn[int](t, b, "document.documentElement.scrollWidth"); w > 390 {
		t.Fatalf("at 390 px the labs page is %d px wide", w)
	}
	b.screenshot(t, "4-patient-labs-390px")
	if p := b.problems(); len(p) > 0 {
		t.Fatalf("dialogs or console errors: %q", p)
	}
}
