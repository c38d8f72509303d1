package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/node/ops"
)

// TestWebScopeRekeyInChromium: on her contacts page the patient ends a
// standing grant with "Re-key when ending" (explained on the page as the
// record page explains re-keying): the line goes, the status says what
// was re-keyed and what it cannot undo, and the node's job and records
// agree. At 390 px nothing is wider than the window; no dialog, no
// console error.
func TestWebScopeRekeyInChromium(t *testing.T) {
	p, c := newNode(t, ""), newNode(t, "")
	p.initAccount("--name", "Pat", "--role", "patient", "--no-passphrase")
	drID := c.initAccount("--name", "Dr Grey", "--role", "clinician", "--no-passphrase")
	profile := filepath.Join(t.TempDir(), "dr.car")
	c.ok("id", "--export", profile)
	p.ok("contact", "add", profile)
	p.ok("lab", "add", "--for", "Pat", "--date", "2026-11-30", "fasting-glucose=95", "ldl=110")
	const labScope = "patient/Observation.rs?category=laboratory"
	p.ok("grant", "--scope", labScope, "--to", drID)
	before := p.ls()
	startAPIDaemon(t, p)
	b := newBrowser(t)
	link := strings.TrimSpace(p.ok("open", "--print"))
	b.do(t, "log in", chromedp.Navigate(link), chromedp.WaitVisible(chromedp.CSS("#screen-records")))
	row := `#contacts-body tr.contact[data-id="` + drID + `"]`
	labLine := row + ` p.standing[data-scope="` + labScope + `"]`
	b.do(t, "contacts page",
		navTo("contacts"),
		chromedp.WaitVisible(chromedp.CSS(labLine+" input.rekey")))
	note := strings.Join(strings.Fields(b.text(t, "#standing-rekey-note")), " ")
	for _, want := range []string{"new key", "No BlockMRS node then gives out the old copies", "cannot take back what their node already fetched", "one by one stay shared"} {
		if !strings.Contains(note, want) {
			t.Fatalf("the re-key note does not say %q: %q", want, note)
		}
	}
	if got := evalIn[string](t, b, `document.querySelector(`+jsString(labLine+" input.rekey")+`).labels[0].textContent`); got != "Re-key when ending" {
		t.Fatalf("the re-key checkbox is labelled %q", got)
	}
	b.narrow(t, "scope-rekey-1-390px")
	b.do(t, "end with re-key",
		chromedp.Click(chromedp.CSS(labLine+" input.rekey")),
		chromedp.Click(chromedp.CSS(labLine+" button.revoke")),
		chromedp.WaitNotPresent(chromedp.CSS(labLine)))
	b.do(t, "the status", chromedp.Poll[chromedp.Void](`document.getElementById("standing-status").textContent.includes("re-keyed")`))
	status := b.text(t, "#standing-status")
	if !strings.HasPrefix(status, "Ended: Dr Grey gets no more lab results, and the 2 record(s) it covered are re-keyed") || !strings.Contains(status, "stays with them") {
		t.Fatalf("status after ending with re-key: %q", status)
	}
	b.screenshot(t, "scope-rekey-2-ended")
	var jobs ops.JobList
	p.json(&jobs, "jobs", "--json")
	if len(jobs.Jobs) != 1 || jobs.Jobs[0].State != keyshare.JobDone || jobs.Jobs[0].Scope != labScope || jobs.Jobs[0].Done != 2 || string(jobs.Jobs[0].From) != drID {
		t.Fatalf("the node's jobs: %+v", jobs)
	}
	after := p.ls()
	for _, jr := range jobs.Jobs[0].Records {
		if _, ok := before[jr.Record]; !ok {
			t.Fatalf("the job re-keyed %s, not one of the lab results", jr.Record)
		}
		if _, ok := after[jr.Record]; ok {
			t.Errorf("ls still lists the re-keyed %s", jr.Record)
		}
		if _, ok := after[jr.New]; !ok {
			t.Errorf("ls does not list the new version %s", jr.New)
		}
	}
	var g ops.GrantList
	p.json(&g, "grants", "--json")
	if len(g.Standing) != 0 {
		t.Fatalf("the standing grant is still listed: %+v", g.Standing)
	}
	if probs := b.problems(); len(probs) > 0 {
		t.Fatalf("dialogs or console errors: %v", probs)
	}
}
