package ops

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/protocol"
	"github.com/blockmrs/blockmrs/protocol/fhir"
	"github.com/blockmrs/blockmrs/protocol/fhir/fhirtest"
)

// bundleEntries decodes a Bundle with encoding/json alone: each entry's
// fullUrl and its resource's bytes exactly as they are in the input.
func bundleEntries(t testing.TB, data []byte) []bundleEntry {
	t.Helper()
	var b struct {
		ResourceType string        `json:"resourceType"`
		Type         string        `json:"type"`
		Entry        []bundleEntry `json:"entry"`
	}
	if err := json.Unmarshal(data, &b); err != nil {
		t.Fatalf("not a Bundle: %v", err)
	}
	if b.ResourceType != "Bundle" {
		t.Fatalf("resourceType %q", b.ResourceType)
	}
	return b.Entry
}

type bundleEntry struct {
	FullURL  string          `json:"fullUrl"`
	Resource json.RawMessage `json:"resource"`
}

// fields reads the top-level fields of a resource.
func fields(t testing.TB, raw []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// wantDate is the clinical date of the resource types whose date the
// test knows independently of the importer.
func wantDate(m map[string]any) (string, bool) {
	switch m["resourceType"] {
	case "Observation":
		s, ok := m["effectiveDateTime"].(string)
		return s, ok
	case "Condition":
		s, ok := m["onsetDateTime"].(string)
		return s, ok
	case "Encounter":
		p, _ := m["period"].(map[string]any)
		s, ok := p["start"].(string)
		return s, ok
	case "Immunization":
		s, ok := m["occurrenceDateTime"].(string)
		return s, ok
	case "Patient":
		s, ok := m["birthDate"].(string)
		return s, ok
	}
	return "", false
}

// fhirState is what an import that fails must leave as it was: every
// block, every pin, every chain head.
func fhirState(t testing.TB, r *keyshare.Repo) []string {
	t.Helper()
	ctx := context.Background()
	var out []string
	keys, err := r.Store().Blockstore().AllKeysChan(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for c := range keys {
		out = append(out, "block "+c.String())
	}
	pins, err := r.Store().Pins(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range pins {
		out = append(out, "pin "+c.String())
	}
	accts, err := r.Accounts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range accts {
		out = append(out, fmt.Sprintf("head %s %d %s", a.ID, a.Seq, a.Head))
	}
	slices.Sort(out)
	return out
}

func listFHIR(t testing.TB, p labParty, versions bool) []keyshare.Listed {
	t.Helper()
	l, err := Records(context.Background(), p.repo, p.keys, ListRecords{Kind: protocol.KindFHIR, Versions: versions})
	if err != nil {
		t.Fatal(err)
	}
	return l.Records
}

// A Synthea-shaped bundle imports as one record per resource, with the
// resources' types, ids, fullUrls and dates in the listing; exported
// back, the Bundle holds the same resources byte for byte with their
// fullUrls (so every reference resolves); importing it again adds
// nothing; imported into a fresh repo it gives the same records; and a
// changed resource becomes a new version that supersedes the old.
func TestFHIRImportExportRoundTrip(t *testing.T) {
	ctx := context.Background()
	p := newLabParty(t, "Pat", protocol.RolePatient)
	const n = 300
	input := fhirtest.Synthea(7, n)
	in := bundleEntries(t, input)
	if len(in) != n {
		t.Fatalf("generator gave %d entries", len(in))
	}
	var reads []int
	out, err := FHIRImport(ctx, p.repo, p.keys, FHIRImportRequest{}, bytes.NewReader(input), func(pr ImportProgress) { reads = append(reads, pr.Read) })
	if err != nil {
		t.Fatal(err)
	}
	if out.Resources != n || out.Records != n || len(out.Added) != n || len(out.Unchanged)+len(out.Superseded)+len(out.Skipped) != 0 {
		t.Fatalf("import: %d resources, %d records, %d added, %d unchanged, %d superseded, %d skipped",
			out.Resources, out.Records, len(out.Added), len(out.Unchanged), len(out.Superseded), len(out.Skipped))
	}
	if got := out.Line(); got != "imported 300 resources as 300 records (0 unchanged, 0 superseded)" {
		t.Fatalf("line %q", got)
	}
	if len(reads) != n || reads[n-1] != n {
		t.Fatalf("progress: %d reports, last %v", len(reads), reads[len(reads)-1:])
	}
	rows := listFHIR(t, p, false)
	if len(rows) != n {
		t.Fatalf("listed %d FHIR records, want %d", len(rows), n)
	}
	byCID := map[string]keyshare.Listed{}
	for _, l := range rows {
		byCID[l.Record.String()] = l
	}
	dated := 0
	for i, a := range out.Added {
		m := fields(t, in[i].Resource)
		l, ok := byCID[a.CID]
		if !ok {
			t.Fatalf("%s: record %s not listed", a.Position, a.CID)
		}
		if a.Position != fmt.Sprintf("entry[%d]", i) || l.FHIR == nil || l.FHIR.ResourceType != m["resourceType"] || l.FHIR.ID != m["id"] || l.FHIR.FullURL != in[i].FullURL {
			t.Fatalf("entry %d (%v %v): listed %+v, report %+v", i, m["resourceType"], m["id"], l.FHIR, a)
		}
		if l.Subject != p.keys.ID || l.Author != p.keys.ID || l.MediaType != "application/fhir+json" {
			t.Fatalf("entry %d: subject %s author %s media type %s", i, l.Subject, l.Author, l.MediaType)
		}
		if d, ok := wantDate(m); ok {
			dated++
			if l.FHIR.Date != d {
				t.Fatalf("entry %d (%v): date %q, want %q", i, m["resourceType"], l.FHIR.Date, d)
			}
			if !strings.Contains(l.Title, d[:10]) {
				t.Fatalf("entry %d: title %q lacks the date %s", i, l.Title, d[:10])
			}
		}
	}
	if dated < n/3 {
		t.Fatalf("only %d of %d resources had a date the test checks", dated, n)
	}

	// Exported back: the same resources, byte for byte, as a multiset,
	// with their fullUrls; every urn:uuid reference resolves.
	var exported bytes.Buffer
	ex, err := FHIRExport(ctx, p.repo, p.keys, FHIRExportRequest{}, &exported)
	if err != nil {
		t.Fatal(err)
	}
	if ex.Resources != n || ex.Records != n {
		t.Fatalf("export: %+v", ex)
	}
	outEntries := bundleEntries(t, exported.Bytes())
	if b := fields(t, exported.Bytes()); b["type"] != "collection" {
		t.Fatalf("export Bundle type %v", b["type"])
	}
	key := func(e bundleEntry) string { return e.FullURL + "\x00" + string(e.Resource) }
	want, got := make([]string, len(in)), make([]string, len(outEntries))
	for i, e := range in {
		want[i] = key(e)
	}
	for i, e := range outEntries {
		got[i] = key(e)
	}
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(want, got) {
		t.Fatalf("exported resources differ from the input's (%d and %d entries)", len(got), len(want))
	}
	urls := map[string]bool{}
	for _, e := range outEntries {
		urls[e.FullURL] = true
	}
	refs := regexp.MustCompile(`"reference"\s*:\s*"(urn:uuid:[^"]+)"`).FindAllSubmatch(exported.Bytes(), -1)
	if len(refs) < n/2 {
		t.Fatalf("only %d references in the export", len(refs))
	}
	for _, m := range refs {
		if !urls[string(m[1])] {
			t.Fatalf("reference %s resolves to no entry of the export", m[1])
		}
	}

	// Filters: one type, since the day of the median Observation.
	var obsDates []string
	for _, e := range in {
		if m := fields(t, e.Resource); m["resourceType"] == "Observation" {
			obsDates = append(obsDates, m["effectiveDateTime"].(string)[:10])
		}
	}
	slices.Sort(obsDates)
	since := obsDates[len(obsDates)/2]
	wantObs := len(obsDates) - slices.Index(obsDates, since)
	var obs bytes.Buffer
	exObs, err := FHIRExport(ctx, p.repo, p.keys, FHIRExportRequest{Type: "Observation", Since: since}, &obs)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range bundleEntries(t, obs.Bytes()) {
		m := fields(t, e.Resource)
		if m["resourceType"] != "Observation" || m["effectiveDateTime"].(string)[:10] < since {
			t.Fatalf("export --type Observation --since %s holds %v of %v", since, m["resourceType"], m["effectiveDateTime"])
		}
	}
	if exObs.Resources != wantObs {
		t.Fatalf("export --type Observation --since %s: %+v, want %d resources", since, exObs, wantObs)
	}
	if _, err := FHIRExport(ctx, p.repo, p.keys, FHIRExportRequest{Type: "observation"}, &obs); !errors.Is(err, ErrInvalid) {
		t.Fatalf("export --type observation: %v", err)
	}

	// Importing again adds nothing, from the input or the export.
	before := fhirState(t, p.repo)
	for what, data := range map[string][]byte{"input": input, "export": exported.Bytes()} {
		again, err := FHIRImport(ctx, p.repo, p.keys, FHIRImportRequest{}, bytes.NewReader(data), nil)
		if err != nil {
			t.Fatal(err)
		}
		cidsOf := func(rs []ImportedResource) []string {
			var s []string
			for _, r := range rs {
				s = append(s, r.CID)
			}
			slices.Sort(s)
			return s
		}
		if again.Records != 0 || len(again.Unchanged) != n || !slices.Equal(cidsOf(again.Unchanged), cidsOf(out.Added)) {
			t.Fatalf("re-import of the %s: %s", what, again.Line())
		}
		sameFHIRState(t, "re-import of the "+what, before, fhirState(t, p.repo))
	}

	// The export into a fresh repo gives the same records.
	q := newLabParty(t, "Pat", protocol.RolePatient)
	if _, err := FHIRImport(ctx, q.repo, q.keys, FHIRImportRequest{}, bytes.NewReader(exported.Bytes()), nil); err != nil {
		t.Fatal(err)
	}
	summary := func(p labParty) []string {
		var s []string
		for _, l := range listFHIR(t, p, false) {
			s = append(s, fmt.Sprintf("%s %s %s %s %x %s", l.FHIR.ResourceType, l.FHIR.ID, l.FHIR.FullURL, l.FHIR.Date, l.FHIR.Digest, l.Title))
		}
		slices.Sort(s)
		return s
	}
	if a, b := summary(p), summary(q); !slices.Equal(a, b) {
		t.Fatalf("the export imported elsewhere gives other records:\n%v\n%v", a[:3], b[:3])
	}

	// A changed resource supersedes its record; the rest is unchanged.
	i := slices.IndexFunc(in, func(e bundleEntry) bool { return fields(t, e.Resource)["resourceType"] == "Observation" })
	old := out.Added[i]
	changed := bytes.Replace(input, in[i].Resource, bytes.Replace(in[i].Resource, []byte(`"final"`), []byte(`"amended"`), 1), 1)
	if bytes.Equal(changed, input) {
		t.Fatal("the test did not change the resource")
	}
	v2, err := FHIRImport(ctx, p.repo, p.keys, FHIRImportRequest{}, bytes.NewReader(changed), nil)
	if err != nil {
		t.Fatal(err)
	}
	if v2.Records != 1 || len(v2.Superseded) != 1 || len(v2.Unchanged) != n-1 || v2.Superseded[0].Supersedes != old.CID || v2.Superseded[0].Position != old.Position {
		t.Fatalf("import of a changed resource: %s, superseded %+v", v2.Line(), v2.Superseded)
	}
	if got := v2.Line(); got != "imported 300 resources as 1 record (299 unchanged, 1 superseded)" {
		t.Fatalf("line %q", got)
	}
	versions := listFHIR(t, p, true)
	k := slices.IndexFunc(versions, func(l keyshare.Listed) bool { return l.Record.String() == v2.Superseded[0].CID })
	if k < 0 || versions[k].Supersedes != old.CID || len(versions) != n+1 {
		t.Fatalf("listing of versions: %d rows, the new one %v", len(versions), k)
	}
	folded := listFHIR(t, p, false)
	k = slices.IndexFunc(folded, func(l keyshare.Listed) bool { return l.Record.String() == v2.Superseded[0].CID })
	if len(folded) != n || k < 0 || len(folded[k].History) != 1 || folded[k].History[0].Record != old.CID {
		t.Fatalf("folded listing: %d rows, new version at %d", len(folded), k)
	}
	// The export now holds the new version only; importing the changed
	// input again adds nothing.
	var ex2 bytes.Buffer
	if _, err := FHIRExport(ctx, p.repo, p.keys, FHIRExportRequest{}, &ex2); err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(ex2.Bytes(), []byte(`"amended"`)) || len(bundleEntries(t, ex2.Bytes())) != n {
		t.Fatal("the export does not hold the new version alone")
	}
	again, err := FHIRImport(ctx, p.repo, p.keys, FHIRImportRequest{}, bytes.NewReader(changed), nil)
	if err != nil || again.Records != 0 {
		t.Fatalf("re-import of the changed input: %v %v", again.Line(), err)
	}
}

func sameFHIRState(t testing.TB, what string, before, after []string) {
	t.Helper()
	if !slices.Equal(before, after) {
		t.Fatalf("%s changed the repo: %d entries before, %d after", what, len(before), len(after))
	}
}

// withEntry returns a Synthea bundle of n resources whose entry i is
// changed by edit.
func withEntry(n, i int, edit func(e *fhirtest.Entry)) []byte {
	es := fhirtest.SyntheaEntries(3, n)
	edit(&es[i])
	return fhirtest.Bundle("transaction", es)
}

func setField(raw []byte, field string, v any) []byte {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		panic(err)
	}
	if v == nil {
		delete(m, field)
	} else {
		m[field], _ = json.Marshal(v)
	}
	out, _ := json.Marshal(m)
	return out
}

// Every invalid input is refused with one line naming where and what,
// and nothing is stored: not the 900 resources before the bad one, not a
// block, a pin or a chain entry.
func TestFHIRImportRefusesAndStoresNothing(t *testing.T) {
	ctx := context.Background()
	p := newLabParty(t, "Pat", protocol.RolePatient)
	if _, err := FHIRImport(ctx, p.repo, p.keys, FHIRImportRequest{}, bytes.NewReader(fhirtest.Synthea(1, 20)), nil); err != nil {
		t.Fatal(err)
	}
	before := fhirState(t, p.repo)
	const n, bad = 1000, 900
	obs := func(e *fhirtest.Entry) bool { return e.ResourceType == "Observation" }
	es := fhirtest.SyntheaEntries(3, n)
	at := bad + slices.IndexFunc(es[bad:], func(e fhirtest.Entry) bool { return obs(&e) })
	entry := fmt.Sprintf("entry[%d]", at)
	secondPatient := func() []byte {
		es := fhirtest.SyntheaEntries(3, n)
		other := fhirtest.SyntheaEntries(4, 2) // another Patient and one resource about them
		return fhirtest.Bundle("collection", append(es, other...))
	}
	for _, tc := range []struct {
		name  string
		input []byte
		want  []string
	}{
		{"unknown type", withEntry(n, at, func(e *fhirtest.Entry) { e.Resource = setField(e.Resource, "resourceType", "Observaton") }), []string{entry, "Observaton"}},
		{"wrong type", withEntry(n, at, func(e *fhirtest.Entry) { e.Resource = setField(e.Resource, "status", 5) }), []string{entry, "Observation.status"}},
		{"missing required", withEntry(n, at, func(e *fhirtest.Entry) { e.Resource = setField(e.Resource, "status", nil) }), []string{entry, "Observation.status"}},
		{"XML", []byte(`<?xml version="1.0" encoding="UTF-8"?><Bundle xmlns="http://hl7.org/fhir"><type value="collection"/></Bundle>`), []string{"XML", "JSON"}},
		{"two patients", secondPatient(), []string{"2 patients", "--patient"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := FHIRImport(ctx, p.repo, p.keys, FHIRImportRequest{}, bytes.NewReader(tc.input), nil)
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v, want one matching ErrInvalid", err)
			}
			line := err.Error()
			if strings.Contains(line, "\n") {
				t.Fatalf("error of several lines: %q", line)
			}
			for _, w := range tc.want {
				if !strings.Contains(line, w) {
					t.Fatalf("error %q does not say %q", line, w)
				}
			}
			sameFHIRState(t, tc.name, before, fhirState(t, p.repo))
		})
	}
	// With --patient naming one of the two, the other's resources are
	// skipped; naming none is refused.
	two := secondPatient()
	if _, err := FHIRImport(ctx, p.repo, p.keys, FHIRImportRequest{Patient: "nobody"}, bytes.NewReader(two), nil); !errors.Is(err, ErrInvalid) {
		t.Fatalf("--patient nobody: %v", err)
	}
	sameFHIRState(t, "--patient nobody", before, fhirState(t, p.repo))
	pid := fields(t, fhirtest.SyntheaEntries(3, 1)[0].Resource)["id"].(string)
	out, err := FHIRImport(ctx, p.repo, p.keys, FHIRImportRequest{Patient: pid}, bytes.NewReader(two), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Skipped) != 2 || out.Skipped[0].ResourceType != "Patient" || out.Resources != n+2 || out.Records != n {
		t.Fatalf("--patient: %s, skipped %+v", out.Line(), out.Skipped)
	}
	if !strings.HasSuffix(out.Line(), ", 2 skipped: other patients)") {
		t.Fatalf("line %q", out.Line())
	}
	if rows := listFHIR(t, p, false); len(rows) != 20+n {
		t.Fatalf("%d records after the import with --patient, want %d", len(rows), 20+n)
	}
}

// An import cancelled half way (the process told to stop) stores
// nothing; the crash case (a kill) is keyshare's
// TestBatchInterruptedLeavesNothing.
func TestFHIRImportCancelledStoresNothing(t *testing.T) {
	p := newLabParty(t, "Pat", protocol.RolePatient)
	before := fhirState(t, p.repo)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, err := FHIRImport(ctx, p.repo, p.keys, FHIRImportRequest{}, bytes.NewReader(fhirtest.Synthea(2, 600)), func(pr ImportProgress) {
		if pr.Read == 500 {
			cancel()
		}
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled import: %v", err)
	}
	sameFHIRState(t, "a cancelled import", before, fhirState(t, p.repo))
}

// One record: the whole file, checked the same way; add --kind fhir
// takes the same path (a byte-order mark is fine, the bytes are kept).
func TestFHIRImportOneRecord(t *testing.T) {
	ctx := context.Background()
	p := newLabParty(t, "Pat", protocol.RolePatient)
	input := fhirtest.Synthea(5, 40)
	out, err := FHIRImport(ctx, p.repo, p.keys, FHIRImportRequest{OneRecord: true, FileName: "export.json"}, bytes.NewReader(input), nil)
	if err != nil {
		t.Fatal(err)
	}
	if out.Records != 1 || out.Resources != 40 || len(out.Added) != 1 || out.Added[0].ResourceType != "Bundle" || out.Added[0].Title != "export.json" {
		t.Fatalf("one record: %+v", out)
	}
	obs := []byte("\xef\xbb\xbf" + `{"resourceType":"Observation","id":"a1c","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"4548-4","display":"Hemoglobin A1c"}]},"effectiveDateTime":"2019-03-02","valueQuantity":{"value":5.4,"unit":"%"}}`)
	added, err := AddRecord(ctx, p.repo, p.keys, NewRecord{Kind: protocol.KindFHIR, FileName: "a1c.json"}, bytes.NewReader(obs))
	if err != nil {
		t.Fatal(err)
	}
	l, err := Record(ctx, p.repo, p.keys, mustCID(t, added.CID))
	if err != nil || l.FHIR == nil || l.FHIR.ResourceType != "Observation" || l.FHIR.Date != "2019-03-02" || l.FHIR.ID != "a1c" {
		t.Fatalf("add --kind fhir of one resource: %+v %v", l.FHIR, err)
	}
	_, rc, err := OpenRecord(ctx, p.repo, p.keys, l.Record)
	if err != nil {
		t.Fatal(err)
	}
	var got bytes.Buffer
	got.ReadFrom(rc)
	rc.Close()
	if !bytes.Equal(got.Bytes(), obs) {
		t.Fatal("add --kind fhir did not keep the bytes")
	}
	// Its export carries the resource, without the byte-order mark.
	var ex bytes.Buffer
	if _, err := FHIRExport(ctx, p.repo, p.keys, FHIRExportRequest{Type: "Observation"}, &ex); err != nil {
		t.Fatal(err)
	}
	es := bundleEntries(t, ex.Bytes())
	if !slices.ContainsFunc(es, func(e bundleEntry) bool { return bytes.Equal(e.Resource, obs[3:]) }) {
		t.Fatal("the export lacks the added Observation")
	}
	// add --kind fhir refuses what import refuses.
	before := fhirState(t, p.repo)
	for _, bad := range []string{`{"resourceType":"Observation"}`, `{"resourceType":"Nope"}`, `<Observation xmlns="http://hl7.org/fhir"/>`} {
		if _, err := AddRecord(ctx, p.repo, p.keys, NewRecord{Kind: protocol.KindFHIR}, strings.NewReader(bad)); !errors.Is(err, ErrInvalid) || strings.Contains(err.Error(), "\n") {
			t.Fatalf("add --kind fhir of %s: %v", bad, err)
		}
	}
	sameFHIRState(t, "refused adds", before, fhirState(t, p.repo))
}

func mustCID(t testing.TB, s string) cid.Cid {
	t.Helper()
	parsed, err := ParseRecordCID(s)
	if err != nil {
		t.Fatal(err)
	}
	return parsed
}

// A clinician imports for a patient (--for): the records are about the
// patient, who reads them, and the clinician, who wrote them. A Patient
// naming another account (an AccountSystem identifier) is refused
// unless --patient says it is the account.
func TestFHIRImportForAnotherAccount(t *testing.T) {
	ctx := context.Background()
	pat := newLabParty(t, "Pat", protocol.RolePatient)
	doc := newLabParty(t, "Dr Grey", protocol.RoleClinician)
	hand(t, pat, doc, true)
	es := fhirtest.SyntheaEntries(9, 30)
	out, err := FHIRImport(ctx, doc.repo, doc.keys, FHIRImportRequest{For: "Pat"}, bytes.NewReader(fhirtest.Bundle("batch", es)), nil)
	if err != nil {
		t.Fatal(err)
	}
	if out.Subject != pat.keys.ID || out.Author != doc.keys.ID || out.Records != 30 {
		t.Fatalf("import for Pat: %+v", out.Line())
	}
	l, err := Record(ctx, doc.repo, doc.keys, mustCID(t, out.Added[3].CID))
	if err != nil {
		t.Fatal(err)
	}
	readers := map[protocol.AccountID]bool{}
	for _, r := range l.Readers {
		readers[r.Account] = true
	}
	if l.Subject != pat.keys.ID || !readers[pat.keys.ID] || !readers[doc.keys.ID] || len(readers) != 2 {
		t.Fatalf("record for Pat: subject %s, readers %v", l.Subject, l.Readers)
	}
	if _, err := FHIRImport(ctx, doc.repo, doc.keys, FHIRImportRequest{For: "Nobody"}, bytes.NewReader(fhirtest.Bundle("batch", es)), nil); !errors.Is(err, ErrNotFound) {
		t.Fatalf("--for an unknown account: %v", err)
	}

	// The Patient says it is the clinician's account, not Pat's.
	named := fhirtest.SyntheaEntries(10, 10)
	named[0].Resource = setField(named[0].Resource, "identifier", []map[string]string{{"system": fhir.AccountSystem, "value": string(doc.keys.ID)}})
	before := fhirState(t, doc.repo)
	_, err = FHIRImport(ctx, doc.repo, doc.keys, FHIRImportRequest{For: "Pat"}, bytes.NewReader(fhirtest.Bundle("collection", named)), nil)
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), string(doc.keys.ID)) || !strings.Contains(err.Error(), "--patient") {
		t.Fatalf("a Patient naming another account: %v", err)
	}
	sameFHIRState(t, "a Patient naming another account", before, fhirState(t, doc.repo))
	pid := fields(t, named[0].Resource)["id"].(string)
	if out, err := FHIRImport(ctx, doc.repo, doc.keys, FHIRImportRequest{For: "Pat", Patient: pid}, bytes.NewReader(fhirtest.Bundle("collection", named)), nil); err != nil || out.Records != 10 {
		t.Fatalf("with --patient: %v %v", out.Line(), err)
	}
}

// The patient summary: a document Bundle whose Composition has the IPS
// code and the three required sections, built from the account's own
// records, with every resource a section names in the Bundle, byte for
// byte as imported; an account without records gets the sections with
// an emptyReason.
func TestFHIRSummary(t *testing.T) {
	ctx := context.Background()
	p := newLabParty(t, "Pat", protocol.RolePatient)
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	type composition struct {
		ResourceType string `json:"resourceType"`
		Type         struct {
			Coding []struct{ Code string } `json:"coding"`
		} `json:"type"`
		Section []struct {
			Code struct {
				Coding []struct{ Code string } `json:"coding"`
			} `json:"code"`
			Entry []struct {
				Reference string `json:"reference"`
			} `json:"entry"`
			EmptyReason *json.RawMessage `json:"emptyReason"`
		} `json:"section"`
	}
	parse := func(doc []byte) (composition, map[string]json.RawMessage) {
		t.Helper()
		if b := fields(t, doc); b["type"] != "document" {
			t.Fatalf("summary Bundle type %v", b["type"])
		}
		es := bundleEntries(t, doc)
		var c composition
		if err := json.Unmarshal(es[0].Resource, &c); err != nil || c.ResourceType != "Composition" {
			t.Fatalf("first entry: %v %s", err, es[0].Resource[:80])
		}
		urls := map[string]json.RawMessage{}
		for _, e := range es {
			urls[e.FullURL] = e.Resource
		}
		return c, urls
	}
	sections := func(c composition) map[string]int {
		got := map[string]int{}
		for _, s := range c.Section {
			got[s.Code.Coding[0].Code] = len(s.Entry)
			if len(s.Entry) == 0 && s.EmptyReason == nil {
				t.Fatalf("section %s has neither entries nor an emptyReason", s.Code.Coding[0].Code)
			}
		}
		return got
	}

	empty, err := FHIRSummary(ctx, p.repo, p.keys, now)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := parse(empty)
	if c.Type.Coding[0].Code != "60591-5" {
		t.Fatalf("Composition type %+v", c.Type)
	}
	if got := sections(c); len(got) != 3 || got["10160-0"] != 0 || got["48765-2"] != 0 || got["11450-4"] != 0 {
		t.Fatalf("empty summary's sections: %v", got)
	}

	input := fhirtest.Synthea(13, 400)
	if _, err := FHIRImport(ctx, p.repo, p.keys, FHIRImportRequest{}, bytes.NewReader(input), nil); err != nil {
		t.Fatal(err)
	}
	in := map[string]json.RawMessage{}
	for _, e := range bundleEntries(t, input) {
		in[e.FullURL] = e.Resource
	}
	doc, err := FHIRSummary(ctx, p.repo, p.keys, now)
	if err != nil {
		t.Fatal(err)
	}
	c, urls := parse(doc)
	got := sections(c)
	if got["11450-4"] == 0 || got["10160-0"] == 0 || got["48765-2"] == 0 {
		t.Fatalf("summary of a Synthea patient: sections %v", got)
	}
	for _, s := range c.Section {
		for _, e := range s.Entry {
			res, ok := urls[e.Reference]
			if !ok {
				t.Fatalf("section entry %s is not in the Bundle", e.Reference)
			}
			if !bytes.Equal(res, in[e.Reference]) {
				t.Fatalf("%s: not the imported bytes", e.Reference)
			}
		}
	}
}

// A patient with a standing laboratory grant to a GP imports a Synthea
// bundle: the import wraps every laboratory Observation for the GP in the
// same commit (scoped entries), and nothing else.
func TestFHIRImportCoversStandingGrants(t *testing.T) {
	ctx := context.Background()
	pat := newLabParty(t, "Pat", protocol.RolePatient)
	gp := newLabParty(t, "Dr Grey", protocol.RoleClinician)
	hand(t, gp, pat, true)
	if _, _, err := pat.repo.GrantScope(ctx, pat.keys, gp.keys.ID, "patient/Observation.rs?category=laboratory", time.Time{}); err != nil {
		t.Fatal(err)
	}
	out, err := FHIRImport(ctx, pat.repo, pat.keys, FHIRImportRequest{}, bytes.NewReader(fhirtest.Synthea(17, 200)), nil)
	if err != nil {
		t.Fatal(err)
	}
	hand(t, pat, gp, false)
	labs, others := 0, 0
	for _, a := range out.Added {
		l, err := Record(ctx, pat.repo, pat.keys, mustCID(t, a.CID))
		if err != nil {
			t.Fatal(err)
		}
		lab := l.FHIR.ResourceType == "Observation" && slices.Contains(l.FHIR.Category, "laboratory")
		may, err := MayRead(ctx, gp.repo, l.Record, gp.keys.ID)
		if err != nil {
			t.Fatal(err)
		}
		if may != lab {
			t.Fatalf("%s (%s %v): the GP may read it: %v", a.Position, l.FHIR.ResourceType, l.FHIR.Category, may)
		}
		if lab {
			labs++
		} else {
			others++
		}
	}
	if labs == 0 || others == 0 {
		t.Fatalf("%d laboratory Observations, %d others", labs, others)
	}
}

// TestFHIRImportListsABoundedSample: a big import's report lists at most
// importListed resources of each kind, with the CIDs of real records,
// and counts them all; the re-import of the same input with one resource
// changed adds nothing else and supersedes that one.
func TestFHIRImportListsABoundedSample(t *testing.T) {
	ctx := context.Background()
	p := newLabParty(t, "Pat", protocol.RolePatient)
	old := importListed
	importListed = 3
	t.Cleanup(func() { importListed = old })
	const n = 12
	es := fhirtest.SyntheaEntries(5, n)
	out, err := FHIRImport(ctx, p.repo, p.keys, FHIRImportRequest{}, bytes.NewReader(fhirtest.Bundle("collection", es)), nil)
	if err != nil {
		t.Fatal(err)
	}
	if out.Counts != (ImportCounts{Added: n}) || out.Records != n || out.Resources != n || !out.Truncated || len(out.Added) != 3 {
		t.Fatalf("import: counts %+v, %d records, truncated %v, %d listed", out.Counts, out.Records, out.Truncated, len(out.Added))
	}
	held := map[string]bool{}
	for _, l := range listFHIR(t, p, false) {
		held[l.Record.String()] = true
	}
	if len(held) != n {
		t.Fatalf("%d records after the import, want %d", len(held), n)
	}
	for i, a := range out.Added {
		if a.Position != fmt.Sprintf("entry[%d]", i) || !held[a.CID] {
			t.Fatalf("added[%d] = %+v: not the input's first resources, or not a record held", i, a)
		}
	}
	if got := out.Line(); got != fmt.Sprintf("imported %d resources as %d records (0 unchanged, 0 superseded)", n, n) {
		t.Fatalf("line %q", got)
	}

	// The same input with its last Observation changed (past the
	// listed ones).
	last := n - 1
	for fields(t, es[last].Resource)["resourceType"] != "Observation" {
		last--
	}
	if last < 3 {
		t.Fatalf("the generator's last Observation is entry[%d]: within the listed ones", last)
	}
	es[last].Resource = setField(es[last].Resource, "status", "amended")
	again, err := FHIRImport(ctx, p.repo, p.keys, FHIRImportRequest{}, bytes.NewReader(fhirtest.Bundle("collection", es)), nil)
	if err != nil {
		t.Fatal(err)
	}
	if again.Counts != (ImportCounts{Unchanged: n - 1, Superseded: 1}) || again.Records != 1 || len(again.Unchanged) != 3 || len(again.Superseded) != 1 || !again.Truncated {
		t.Fatalf("re-import: counts %+v, %d records, %d unchanged and %d superseded listed", again.Counts, again.Records, len(again.Unchanged), len(again.Superseded))
	}
	if s := again.Superseded[0]; s.Position != fmt.Sprintf("entry[%d]", last) || !held[s.Supersedes] || held[s.CID] {
		t.Fatalf("superseded %+v: want entry[%d] superseding a held record with a new one", s, last)
	}
	for _, u := range again.Unchanged {
		if !held[u.CID] {
			t.Fatalf("unchanged %+v names no record held", u)
		}
	}
	if rows := listFHIR(t, p, false); len(rows) != n {
		t.Fatalf("%d current records after the re-import, want %d", len(rows), n)
	}
}

// Resources without id are matched by their bytes: a second copy in the
// same input and a copy already stored are unchanged (the first's
// record), a resource with other bytes is added beside them, and a
// resource with an id is matched by its id only.
func TestFHIRImportResourcesWithoutID(t *testing.T) {
	ctx := t.Context()
	p := newLabParty(t, "Pat", protocol.RolePatient)
	a := `{"resourceType":"Observation","status":"final","code":{"text":"A"}}`
	b := `{"resourceType":"Observation","status":"final","code":{"text":"B"}}`
	withID := `{"resourceType":"Observation","id":"x","status":"final","code":{"text":"A"}}`
	input := strings.Join([]string{a, a, b, withID}, "\n") + "\n"
	out, err := FHIRImport(ctx, p.repo, p.keys, FHIRImportRequest{}, strings.NewReader(input), nil)
	if err != nil {
		t.Fatal(err)
	}
	if out.Counts != (ImportCounts{Added: 3, Unchanged: 1}) || out.Unchanged[0].CID != out.Added[0].CID || out.Unchanged[0].Position == out.Added[0].Position {
		t.Fatalf("import: counts %+v, added %+v, unchanged %+v", out.Counts, out.Added, out.Unchanged)
	}
	again, err := FHIRImport(ctx, p.repo, p.keys, FHIRImportRequest{}, strings.NewReader(input), nil)
	if err != nil {
		t.Fatal(err)
	}
	if again.Counts != (ImportCounts{Unchanged: 4}) || again.Records != 0 {
		t.Fatalf("re-import: %s", again.Line())
	}
	for i, u := range again.Unchanged {
		if want := out.Added[min(max(i-1, 0), 2)].CID; u.CID != want {
			t.Fatalf("re-import: resource %d is unchanged as %s, want %s", i, u.CID, want)
		}
	}
	// B changed, without id: a new record beside the old B; the
	// resource with an id changed: it supersedes its record.
	changed := strings.Join([]string{a, strings.Replace(b, `"B"`, `"B2"`, 1), strings.Replace(withID, `"A"`, `"A2"`, 1)}, "\n")
	v2, err := FHIRImport(ctx, p.repo, p.keys, FHIRImportRequest{}, strings.NewReader(changed), nil)
	if err != nil {
		t.Fatal(err)
	}
	if v2.Counts != (ImportCounts{Added: 1, Superseded: 1, Unchanged: 1}) || v2.Superseded[0].Supersedes != out.Added[2].CID {
		t.Fatalf("import of changed resources: counts %+v, superseded %+v", v2.Counts, v2.Superseded)
	}
}
