package fhir

import (
	"encoding/json"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"
)

const (
	patient   = "12D3KooWPatient"
	clinician = "12D3KooWClinician"
)

var now = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

// Every panel field builds an Observation that the library parses back
// with the same code, unit, value, category, date and references, and
// whose JSON has the R4 fields the protocol promises.
func TestPanelObservationsParseBack(t *testing.T) {
	values := map[string]string{
		"fasting-glucose": "95", "pp-glucose": "140", "creatinine": "1.10", "blood-group": "O+",
		"cholesterol": "190", "hdl": "55", "ldl": "110", "rbc": "4.58", "pulse": "72",
	}
	for _, l := range Labs {
		v, ok := values[l.Key]
		if !ok {
			t.Fatalf("no test value for %s", l.Key)
		}
		o, err := l.Observation(v, "2026-12-01", patient, clinician)
		if err != nil {
			t.Fatalf("%s: %v", l.Key, err)
		}
		data, err := Marshal(o)
		if err != nil {
			t.Fatalf("%s: marshal: %v", l.Key, err)
		}
		got, err := Parse(data)
		if err != nil {
			t.Fatalf("%s: parse: %v\n%s", l.Key, err, data)
		}
		if got.Code != (Coding{LOINC, l.LOINC, l.Display}) || got.Text != l.Name || got.Status != "final" || got.Category != l.Category {
			t.Fatalf("%s: parsed %+v", l.Key, got)
		}
		if got.Effective != "2026-12-01" || !got.Time.Equal(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)) {
			t.Fatalf("%s: effective %q %v", l.Key, got.Effective, got.Time)
		}
		if got.Subject != patient || got.Performer != clinician {
			t.Fatalf("%s: subject %q performer %q", l.Key, got.Subject, got.Performer)
		}
		var raw struct {
			ResourceType string `json:"resourceType"`
			Status       string `json:"status"`
			Category     []struct {
				Coding []Coding `json:"coding"`
			} `json:"category"`
			Effective     string `json:"effectiveDateTime"`
			ValueQuantity *struct {
				Value  json.Number `json:"value"`
				Unit   string      `json:"unit"`
				System string      `json:"system"`
				Code   string      `json:"code"`
			} `json:"valueQuantity"`
			ValueCC *struct {
				Coding []Coding `json:"coding"`
			} `json:"valueCodeableConcept"`
			Subject struct {
				Type       string `json:"type"`
				Identifier struct {
					System string `json:"system"`
					Value  string `json:"value"`
				} `json:"identifier"`
			} `json:"subject"`
		}
		if err := json.Unmarshal(data, &raw); err != nil {
			t.Fatal(err)
		}
		if raw.ResourceType != "Observation" || raw.Status != "final" || raw.Effective != "2026-12-01" ||
			len(raw.Category) != 1 || raw.Category[0].Coding[0] != (Coding{System: CategorySystem, Code: l.Category}) ||
			raw.Subject.Type != "Patient" || raw.Subject.Identifier.System != AccountSystem || raw.Subject.Identifier.Value != patient {
			t.Fatalf("%s: JSON %s", l.Key, data)
		}
		if l.UCUM != "" {
			if raw.ValueQuantity == nil || raw.ValueQuantity.System != UCUM || raw.ValueQuantity.Code != l.UCUM || raw.ValueQuantity.Unit != l.Unit || raw.ValueQuantity.Value.String() != v {
				t.Fatalf("%s: valueQuantity in %s", l.Key, data)
			}
			if got.Quantity == nil || got.Quantity.Value != v {
				t.Fatalf("%s: value %+v, want %s", l.Key, got.Quantity, v)
			}
		} else if raw.ValueCC == nil || raw.ValueCC.Coding[0].System != SNOMED || raw.ValueCC.Coding[0].Code != "278147001" ||
			got.Concept == nil || got.Concept.Display != "Blood group O Rh(D) positive" {
			t.Fatalf("%s: coded value in %s, parsed %+v", l.Key, data, got.Concept)
		}
	}
}

// The table itself: unique keys and codes, LOINC codes with their check
// digit right, the category and unit each field must have.
func TestLabTable(t *testing.T) {
	want := map[string][2]string{ // key: LOINC, UCUM
		"fasting-glucose": {"1558-6", "mg/dL"}, "pp-glucose": {"1521-4", "mg/dL"}, "creatinine": {"2160-0", "mg/dL"},
		"blood-group": {"882-1", ""}, "cholesterol": {"2093-3", "mg/dL"}, "hdl": {"2085-9", "mg/dL"},
		"ldl": {"13457-7", "mg/dL"}, "rbc": {"789-8", "10*6/uL"}, "pulse": {"8867-4", "/min"},
	}
	if len(Labs) != len(want) {
		t.Fatalf("%d fields, want %d", len(Labs), len(want))
	}
	keys, codes := map[string]bool{}, map[string]bool{}
	for _, l := range Labs {
		w, ok := want[l.Key]
		if !ok || l.LOINC != w[0] || l.UCUM != w[1] {
			t.Fatalf("%s: LOINC %s UCUM %q, want %v", l.Key, l.LOINC, l.UCUM, w)
		}
		if keys[l.Key] || codes[l.LOINC] {
			t.Fatalf("%s: duplicate", l.Key)
		}
		keys[l.Key], codes[l.LOINC] = true, true
		if !loincCheckDigitOK(l.LOINC) {
			t.Fatalf("%s: %s fails the LOINC check digit", l.Key, l.LOINC)
		}
		wantCat := Laboratory
		if l.Key == "pulse" {
			wantCat = VitalSigns
		}
		if l.Category != wantCat || l.Name == "" || l.Display == "" {
			t.Fatalf("%s: %+v", l.Key, l)
		}
		if got, ok := LabByKey(strings.ToUpper(l.Key)); !ok || got.LOINC != l.LOINC {
			t.Fatalf("LabByKey(%s)", l.Key)
		}
		if got, ok := LabByLOINC(l.LOINC); !ok || got.Key != l.Key {
			t.Fatalf("LabByLOINC(%s)", l.LOINC)
		}
	}
	bg, _ := LabByKey("blood-group")
	if len(bg.Answers) != 8 {
		t.Fatalf("blood group answers: %d", len(bg.Answers))
	}
	for _, in := range []string{"a+", "A POS", "ab neg", " O- "} {
		if _, err := bg.Observation(in, "2026-12-01", patient, clinician); err != nil {
			t.Fatalf("blood group %q: %v", in, err)
		}
	}
}

// loincCheckDigitOK checks a LOINC code's mod-10 check digit (the Luhn
// variant LOINC uses).
func loincCheckDigitOK(code string) bool {
	num, check, ok := strings.Cut(code, "-")
	if !ok || len(check) != 1 {
		return false
	}
	sum := 0
	double := true // from the rightmost digit of num
	for i := len(num) - 1; i >= 0; i-- {
		d := int(num[i] - '0')
		if double {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
		double = !double
	}
	return (10-sum%10)%10 == int(check[0]-'0')
}

// Values outside the field's bounds, non-numbers and hostile text are
// refused with one line naming the field.
func TestHostileValuesRefused(t *testing.T) {
	cases := []struct{ key, value, want string }{
		{"fasting-glucose", "NaN", "fasting-glucose: "},
		{"fasting-glucose", "Inf", "fasting-glucose: "},
		{"fasting-glucose", "1e308", "fasting-glucose: "},
		{"fasting-glucose", "0", "more than 0"},
		{"fasting-glucose", "-5", "more than 0"},
		{"fasting-glucose", "20000", "at most 2000"},
		{"fasting-glucose", "", "fasting-glucose: "},
		{"fasting-glucose", "95 mg/dL", "fasting-glucose: "},
		{"fasting-glucose", "0x5f", "fasting-glucose: "},
		{"fasting-glucose", strings.Repeat("9", 40), "fasting-glucose: "},
		{"pulse", "1000", "pulse: "},
		{"rbc", "45", "rbc: "},
		{"creatinine", "51", "creatinine: "},
		{"blood-group", "C+", "blood-group: "},
		{"blood-group", "<b>A+</b>", "blood-group: "},
	}
	for _, c := range cases {
		l, _ := LabByKey(c.key)
		_, err := l.Observation(c.value, "2026-12-01", patient, clinician)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), c.key+": ") || strings.Contains(err.Error(), "\n") {
			t.Fatalf("%s=%q: %v, want one line with %q", c.key, c.value, err, c.want)
		}
	}
	if _, err := FreeObservation("Vitamin D", "30", "ng/mL", "2026-12-01", patient, clinician); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ name, value, unit string }{
		{"", "30", ""},
		{"X", "", ""},
		{"bell\x07", "30", ""},
		{strings.Repeat("n", MaxText+1), "30", ""},
		{"X", "high", "mg"},
		{"X", "30", "line\nbreak"},
		{"X", "\xff", ""},
	} {
		if _, err := FreeObservation(c.name, c.value, c.unit, "2026-12-01", patient, clinician); err == nil || strings.Contains(err.Error(), "\n") {
			t.Fatalf("free %q=%q %q: %v", c.name, c.value, c.unit, err)
		}
	}
	for _, s := range []string{"yesterday", "2026-13-01", "1800-01-01", "2027-06-01", "2026-12-01 08:00", strings.Repeat("2", 100)} {
		if _, _, err := ParseEffective(s, now); err == nil || strings.Contains(err.Error(), "\n") {
			t.Fatalf("effective %q: %v", s, err)
		}
	}
	if form, tm, err := ParseEffective("2026-11-30T08:30:00+01:00", now); err != nil || form != "2026-11-30T08:30:00+01:00" || tm.UTC().Hour() != 7 {
		t.Fatalf("effective with offset: %q %v %v", form, tm, err)
	}
}

// Markup in a name, a display or a text value is data: it travels into
// the JSON and back unchanged (escaped as JSON, never interpreted), and
// the page escapes it where it shows it.
func TestMarkupIsText(t *testing.T) {
	const hostile = `<img src=x onerror=alert(1)>`
	o, err := FreeObservation(hostile, hostile, "", "2026-12-01T08:30:00Z", patient, clinician)
	if err != nil {
		t.Fatal(err)
	}
	data, err := Marshal(o)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(data), "<img") && !json.Valid(data) {
		t.Fatalf("not JSON: %s", data)
	}
	got, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	if got.Name() != hostile || got.String != hostile || got.Code.System != "" || got.Effective != "2026-12-01T08:30:00Z" {
		t.Fatalf("parsed %+v", got)
	}
	// An Observation from elsewhere with markup in its narrative and its
	// coding's display parses; the markup is returned as text.
	foreign := `{"resourceType":"Observation","status":"final",
	  "text":{"status":"generated","div":"<div xmlns=\"http://www.w3.org/1999/xhtml\"><script>alert(1)</script></div>"},
	  "code":{"coding":[{"system":"http://loinc.org","code":"2093-3","display":"<b onmouseover=alert(1)>Chol</b>"}]},
	  "valueQuantity":{"value":180,"unit":"<i>mg</i>"},"effectiveDateTime":"2026-11-02"}`
	got, err = Parse([]byte(foreign))
	if err != nil {
		t.Fatal(err)
	}
	if got.Name() != "<b onmouseover=alert(1)>Chol</b>" || got.Quantity.Unit != "<i>mg</i>" || got.Quantity.Value != "180" {
		t.Fatalf("foreign parsed %+v", got)
	}
}

// What the library refuses, Parse refuses: wrong types, bad codes, bad
// dates, bad decimals, unknown fields, other resources, size.
func TestParseRefuses(t *testing.T) {
	base := func(extra string) string {
		return `{"resourceType":"Observation","status":"final","code":{"text":"x"},"effectiveDateTime":"2026-11-02"` + extra + `}`
	}
	cases := map[string]string{
		"bad status":      `{"resourceType":"Observation","status":"done","code":{"text":"x"},"valueString":"1","effectiveDateTime":"2026-11-02"}`,
		"no status":       `{"resourceType":"Observation","code":{"text":"x"},"valueString":"1","effectiveDateTime":"2026-11-02"}`,
		"bad date":        `{"resourceType":"Observation","status":"final","code":{"text":"x"},"valueString":"1","effectiveDateTime":"2026-13-45"}`,
		"bad decimal":     base(`,"valueQuantity":{"value":"ninety"}`),
		"unknown field":   base(`,"valueString":"1","script":"alert(1)"`),
		"no value":        base(``),
		"no date":         `{"resourceType":"Observation","status":"final","code":{"text":"x"},"valueString":"1"}`,
		"wrong ref type":  base(`,"valueString":"1","subject":{"reference":"Medication/1"}`),
		"not JSON":        `{"resourceType":"Observation",`,
		"array":           `[]`,
		"duplicate value": base(`,"valueString":"1","valueBoolean":true`),
	}
	for name, in := range cases {
		_, err := Parse([]byte(in))
		if !errors.Is(err, ErrInvalid) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: %v, want ErrInvalid on one line", name, err)
		}
	}
	if _, err := Parse([]byte(`{"resourceType":"Patient","active":true}`)); !errors.Is(err, ErrNotObservation) {
		t.Fatalf("Patient: %v", err)
	}
	big := base(`,"valueString":"` + strings.Repeat("a", MaxSize) + `"`)
	if _, err := Parse([]byte(big)); !errors.Is(err, ErrInvalid) {
		t.Fatalf("oversized: %v", err)
	}
	// Marshal refuses what it cannot write as valid R4.
	for name, o := range map[string]Observation{
		"no value":     {Status: "final", Text: "x", Effective: "2026-12-01"},
		"bad status":   {Status: "done", Text: "x", String: "1", Effective: "2026-12-01"},
		"no code":      {Status: "final", String: "1", Effective: "2026-12-01"},
		"bad date":     {Status: "final", Text: "x", String: "1", Effective: "12/01/2026"},
		"bad category": {Status: "final", Category: "x", Text: "x", String: "1", Effective: "2026-12-01"},
	} {
		if _, err := Marshal(o); !errors.Is(err, ErrInvalid) {
			t.Errorf("marshal %s: %v", name, err)
		}
	}
}

// A date-time keeps its precision and offset through Marshal and Parse.
func TestEffectivePrecision(t *testing.T) {
	for _, s := range []string{"2026-12-01", "2026-12-01T08:30:00Z", "2026-12-01T08:30:00+05:30", "2026-12-01T08:30:00.250Z"} {
		o, err := FreeObservation("x", "1", "", s, "", "")
		if err != nil {
			t.Fatal(err)
		}
		data, err := Marshal(o)
		if err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		if !regexp.MustCompile(`"effectiveDateTime":"` + regexp.QuoteMeta(s) + `"`).Match(data) {
			t.Fatalf("%s written as %s", s, data)
		}
		got, err := Parse(data)
		if err != nil || got.Effective != s {
			t.Fatalf("%s read as %q (%v)", s, got.Effective, err)
		}
	}
}
