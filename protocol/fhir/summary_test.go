package fhir

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/blockmrs/blockmrs/protocol/fhir/fhirtest"
)

var summaryNow = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

// ipsDoc is the part of a summary the tests look at.
type ipsDoc struct {
	ResourceType string `json:"resourceType"`
	Type         string `json:"type"`
	Timestamp    string `json:"timestamp"`
	Identifier   struct {
		System, Value string
	} `json:"identifier"`
	Entry []struct {
		FullURL  string          `json:"fullUrl"`
		Resource json.RawMessage `json:"resource"`
	} `json:"entry"`
}

type ipsComp struct {
	ResourceType string `json:"resourceType"`
	Status       string `json:"status"`
	Type         concept
	Subject      ref
	Author       []ref
	Date         string
	Title        string
	Section      []struct {
		Title       string
		Code        concept
		Text        narrativeText
		Entry       []ref
		EmptyReason *concept `json:"emptyReason"`
	}
}

// summarize builds a summary and checks what every summary must be:
// valid R4 as a Bundle and resource by resource, a document with an
// identifier and timestamp, the Composition first (final, 60591-5,
// subject and author the Patient, which comes second), the three
// required sections, and every section entry resolving to an entry.
func summarize(t *testing.T, in SummaryInput) (ipsDoc, ipsComp, []byte) {
	t.Helper()
	data, err := Summary(in)
	if err != nil {
		t.Fatal(err)
	}
	libraryValid(t, data)
	rs := mustRead(t, data)
	var doc ipsDoc
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.ResourceType != "Bundle" || doc.Type != "document" || doc.Timestamp != "2026-12-01T12:00:00Z" ||
		doc.Identifier.System != "urn:ietf:rfc:3986" || !strings.HasPrefix(doc.Identifier.Value, "urn:uuid:") {
		t.Fatalf("document %+v", doc)
	}
	if len(rs) < 2 || rs[0].Clinical.ResourceType != "Composition" || rs[1].Clinical.ResourceType != "Patient" {
		t.Fatalf("entries start with %v", rs)
	}
	var comp ipsComp
	if err := json.Unmarshal(rs[0].Raw, &comp); err != nil {
		t.Fatal(err)
	}
	if comp.Status != "final" || comp.Type.Coding[0] != (Coding{LOINC, IPSDocument, "Patient summary Document"}) ||
		comp.Subject.Reference != rs[1].FullURL || comp.Author[0].Reference != rs[1].FullURL || comp.Date != doc.Timestamp || comp.Title == "" {
		t.Fatalf("composition %+v", comp)
	}
	urls := map[string]bool{}
	for _, r := range rs {
		urls[r.FullURL] = true
	}
	var codes []string
	for _, s := range comp.Section {
		codes = append(codes, s.Code.Coding[0].Code)
		if (len(s.Entry) == 0) != (s.EmptyReason != nil) {
			t.Fatalf("section %s: %d entries, emptyReason %v", s.Title, len(s.Entry), s.EmptyReason)
		}
		for _, e := range s.Entry {
			if !urls[e.Reference] {
				t.Fatalf("section %s references %s, not in the Bundle", s.Title, e.Reference)
			}
		}
		if !strings.HasPrefix(s.Text.Div, `<div xmlns="http://www.w3.org/1999/xhtml">`) {
			t.Fatalf("section %s narrative %q", s.Title, s.Text.Div)
		}
	}
	if len(codes) < 3 || !slices.Equal(codes[:3], []string{IPSMedications, IPSAllergies, IPSProblems}) {
		t.Fatalf("sections %v", codes)
	}
	return doc, comp, data
}

// A summary of a Synthea patient's records holds the Patient and every
// resource its sections reference byte-exact, the latest laboratory
// result of each code, and no resource of another kind.
func TestSummarySynthea(t *testing.T) {
	read := mustRead(t, fhirtest.Synthea(5, 800))
	var in SummaryInput
	in.Now = summaryNow
	for _, r := range read {
		if r.Clinical.ResourceType == "Patient" {
			in.Patient, in.PatientFullURL = r.Raw, r.FullURL
			continue
		}
		in.Resources = append(in.Resources, SummaryResource{FullURL: r.FullURL, Raw: r.Raw, Clinical: r.Clinical})
	}
	doc, comp, data := summarize(t, in)
	if len(comp.Section) != 4 || comp.Section[3].Code.Coding[0].Code != IPSResults {
		t.Fatalf("%d sections", len(comp.Section))
	}
	byURL := map[string]*Resource{}
	for _, r := range read {
		byURL[r.FullURL] = r
	}
	for _, e := range doc.Entry[1:] {
		r := byURL[e.FullURL]
		if r == nil || !bytes.Contains(data, r.Raw) {
			t.Fatalf("%s is not an input resource byte-exact", e.FullURL)
		}
	}
	want := map[string]int{}
	labCodes := map[string]string{}
	for _, r := range read {
		switch r.Clinical.ResourceType {
		case "MedicationRequest":
			want[IPSMedications]++
		case "AllergyIntolerance":
			want[IPSAllergies]++
		case "Condition":
			want[IPSProblems]++
		case "Observation":
			if slices.Contains(r.Clinical.Category, Laboratory) && r.Clinical.Date > labCodes[r.Clinical.Code] {
				labCodes[r.Clinical.Code] = r.Clinical.Date
			}
		}
	}
	want[IPSResults] = len(labCodes)
	for _, s := range comp.Section {
		code := s.Code.Coding[0].Code
		if len(s.Entry) != want[code] || want[code] == 0 {
			t.Fatalf("section %s: %d entries, want %d", code, len(s.Entry), want[code])
		}
		if code == IPSResults {
			for _, e := range s.Entry {
				r := byURL[e.Reference]
				if r.Clinical.Date != labCodes[r.Clinical.Code] {
					t.Fatalf("result %s of %s is not the latest", r.Clinical.Date, r.Clinical.Code)
				}
			}
		}
	}
	again, err := Summary(in)
	if err != nil || !bytes.Equal(again, data) {
		t.Fatal("the same input gives another summary")
	}
}

// Without records every required section says why it is empty, there is
// no Results section, and the Patient is built from the account.
func TestSummaryEmpty(t *testing.T) {
	_, comp, data := summarize(t, SummaryInput{Account: "12D3KooWMe", Name: "Aiko Tanaka", Now: summaryNow})
	if len(comp.Section) != 3 {
		t.Fatalf("%d sections", len(comp.Section))
	}
	for _, s := range comp.Section {
		if s.EmptyReason == nil || s.EmptyReason.Coding[0].System != EmptyReasonSystem || s.EmptyReason.Coding[0].Code != "unavailable" {
			t.Fatalf("section %s: emptyReason %+v", s.Title, s.EmptyReason)
		}
	}
	rs := mustRead(t, data)
	x := Extract(rs[1].Raw)
	if !slices.Equal(x.AccountIDs, []string{"12D3KooWMe"}) || x.Title != "Aiko Tanaka" {
		t.Fatalf("built Patient %s", rs[1].Raw)
	}
	if _, err := Summary(SummaryInput{Now: summaryNow}); err == nil {
		t.Fatal("a summary of nobody")
	}
	if _, err := Summary(SummaryInput{Patient: []byte(`{"resourceType":"Observation"}`), Now: summaryNow}); err == nil {
		t.Fatal("an Observation as the Patient")
	}
}

// Markup in a record is text in the narrative; a record entered in error
// is left out.
func TestSummaryEscapes(t *testing.T) {
	hostile := `{"resourceType":"Condition","id":"c1","subject":{"reference":"Patient/p"},` +
		`"code":{"coding":[{"system":"http://snomed.info/sct","code":"1","display":"<script>alert(1)</script> & <b onmouseover=x>"}]},"recordedDate":"2020-01-01"}`
	wrong := `{"resourceType":"AllergyIntolerance","id":"a1","patient":{"reference":"Patient/p"},` +
		`"verificationStatus":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/allergyintolerance-verification","code":"entered-in-error"}]},"code":{"text":"x"}}`
	in := SummaryInput{
		Patient: []byte(`{"resourceType":"Patient","id":"p"}`),
		Now:     summaryNow,
		Resources: []SummaryResource{
			{Raw: []byte(hostile), Clinical: Extract([]byte(hostile)).Clinical},
			{Raw: []byte(wrong), Clinical: Extract([]byte(wrong)).Clinical},
		},
	}
	_, comp, _ := summarize(t, in)
	problems, allergies := comp.Section[2], comp.Section[1]
	if len(problems.Entry) != 1 || problems.Entry[0].Reference != "Condition/c1" {
		t.Fatalf("problems %+v", problems.Entry)
	}
	div := problems.Text.Div
	if strings.Contains(div, "<script") || strings.Contains(div, "<b ") || !strings.Contains(div, "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &lt;b onmouseover=x&gt;") {
		t.Fatalf("narrative %q", div)
	}
	if allergies.EmptyReason == nil || len(allergies.Entry) != 0 {
		t.Fatalf("an allergy entered in error is in the summary: %+v", allergies)
	}
}
