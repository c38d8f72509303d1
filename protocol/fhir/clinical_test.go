package fhir

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/blockmrs/blockmrs/protocol"
)

// Each resource type gives its clinical date, code, display, categories
// and title from the elements it has, first in dateFields' order.
func TestExtractPerType(t *testing.T) {
	cases := []struct {
		name, json                 string
		date, code, display, title string
		category                   []string
	}{
		{"Observation quantity", `{"resourceType":"Observation","id":"o","status":"final",
			"category":[{"coding":[{"system":"` + CategorySystem + `","code":"laboratory"}]}],
			"code":{"coding":[{"system":"http://loinc.org","code":"4548-4","display":"Hemoglobin A1c"}],"text":"HbA1c"},
			"effectiveDateTime":"2019-03-02T09:30:00-05:00","issued":"2019-03-03T10:00:00Z",
			"valueQuantity":{"value":5.4,"unit":"%","system":"http://unitsofmeasure.org","code":"%"}}`,
			"2019-03-02T09:30:00-05:00", "http://loinc.org|4548-4", "Hemoglobin A1c", "Hemoglobin A1c 5.4 % — 2019-03-02", []string{"laboratory"}},
		{"Observation unit from code, exact decimal", `{"resourceType":"Observation","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"2160-0","display":"Creatinine"}]},
			"effectiveDateTime":"2020-01-05","valueQuantity":{"value":1.10,"code":"mg/dL"}}`,
			"2020-01-05", "http://loinc.org|2160-0", "Creatinine", "Creatinine 1.10 mg/dL — 2020-01-05", nil},
		{"Observation period, text only", `{"resourceType":"Observation","status":"final","code":{"text":"Mood"},
			"effectivePeriod":{"start":"2021-06-01","end":"2021-06-02"},"valueString":"good"}`,
			"2021-06-01", "", "Mood", "Mood — 2021-06-01", nil},
		{"Observation issued only", `{"resourceType":"Observation","status":"final","code":{"text":"X"},"issued":"2021-07-01T08:00:00Z"}`,
			"2021-07-01T08:00:00Z", "", "X", "X — 2021-07-01", nil},
		{"Condition onset before recorded", `{"resourceType":"Condition","id":"c","subject":{"reference":"Patient/p"},
			"category":[{"coding":[{"code":"encounter-diagnosis"},{"code":"problem-list-item"}]},{"coding":[{"code":"encounter-diagnosis"}]}],
			"code":{"coding":[{"system":"http://snomed.info/sct","code":"44054006","display":"Diabetes"}]},
			"onsetPeriod":{"start":"2001-02-03"},"recordedDate":"2005-01-01"}`,
			"2001-02-03", "http://snomed.info/sct|44054006", "Diabetes", "Diabetes — 2001-02-03", []string{"encounter-diagnosis", "problem-list-item"}},
		{"Condition recorded only", `{"resourceType":"Condition","subject":{"reference":"Patient/p"},"code":{"text":"Asthma"},"recordedDate":"2005-01-01"}`,
			"2005-01-01", "", "Asthma", "Asthma — 2005-01-01", nil},
		{"Immunization", `{"resourceType":"Immunization","status":"completed","vaccineCode":{"coding":[{"system":"http://hl7.org/fhir/sid/cvx","code":"140","display":"Influenza"}]},
			"patient":{"reference":"Patient/p"},"occurrenceDateTime":"2018-10-10","recorded":"2018-10-11"}`,
			"2018-10-10", "http://hl7.org/fhir/sid/cvx|140", "Influenza", "Influenza — 2018-10-10", nil},
		{"MedicationRequest", `{"resourceType":"MedicationRequest","status":"active","intent":"order","subject":{"reference":"Patient/p"},
			"medicationCodeableConcept":{"coding":[{"system":"http://www.nlm.nih.gov/research/umls/rxnorm","code":"314076","display":"lisinopril 10 MG"}]},
			"authoredOn":"2017-05-05T10:00:00Z"}`,
			"2017-05-05T10:00:00Z", "http://www.nlm.nih.gov/research/umls/rxnorm|314076", "lisinopril 10 MG", "lisinopril 10 MG — 2017-05-05", nil},
		{"Procedure", `{"resourceType":"Procedure","status":"completed","subject":{"reference":"Patient/p"},"category":{"coding":[{"code":"387713003"}]},
			"code":{"text":"Appendectomy"},"performedDateTime":"2010-10-10"}`,
			"2010-10-10", "", "Appendectomy", "Appendectomy — 2010-10-10", []string{"387713003"}},
		{"Encounter type array, period", `{"resourceType":"Encounter","id":"e","status":"finished","class":{"code":"AMB"},
			"type":[{"coding":[{"system":"http://snomed.info/sct","code":"185349003","display":"Check up"}]}],"period":{"start":"2016-01-01T09:00:00Z"}}`,
			"2016-01-01T09:00:00Z", "http://snomed.info/sct|185349003", "Check up", "Check up — 2016-01-01", nil},
		{"AllergyIntolerance category codes", `{"resourceType":"AllergyIntolerance","patient":{"reference":"Patient/p"},"type":"allergy","category":["food","medication"],
			"code":{"coding":[{"system":"http://snomed.info/sct","code":"91935009","display":"Allergy to peanuts"}]},"recordedDate":"2015-05-05"}`,
			"2015-05-05", "http://snomed.info/sct|91935009", "Allergy to peanuts", "Allergy to peanuts — 2015-05-05", []string{"food", "medication"}},
		{"Claim billable period before created", `{"resourceType":"Claim","id":"cl","status":"active","type":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/claim-type","code":"professional"}]},
			"billablePeriod":{"start":"2014-04-04"},"created":"2014-04-05"}`,
			"2014-04-04", "http://terminology.hl7.org/CodeSystem/claim-type|professional", "", "Claim cl — 2014-04-04", nil},
		{"DocumentReference date", `{"resourceType":"DocumentReference","id":"d","status":"current","date":"2013-03-03T03:03:03Z"}`,
			"2013-03-03T03:03:03Z", "", "", "DocumentReference d — 2013-03-03", nil},
		{"Patient birthDate and name", `{"resourceType":"Patient","id":"p","name":[{"family":"Tanaka","given":["Aiko","M."]}],"birthDate":"1970-01-02"}`,
			"1970-01-02", "", "", "Aiko M. Tanaka — 1970-01-02", nil},
		{"Practitioner, nothing", `{"resourceType":"Practitioner","id":"pr"}`, "", "", "", "Practitioner pr", nil},
		{"no id", `{"resourceType":"Organization"}`, "", "", "", "Organization", nil},
		{"coding without code, then one", `{"resourceType":"Observation","status":"final","code":{"coding":[{"display":"nothing"},{"system":"s","code":"c","display":"D"}]}}`,
			"", "s|c", "D", "D", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			x := Extract([]byte(c.json))
			got := x.Clinical
			if got.Date != c.date || got.Code != c.code || got.Display != c.display || x.Title != c.title || !slices.Equal(got.Category, c.category) {
				t.Fatalf("got date %q code %q display %q title %q category %q\nwant date %q code %q display %q title %q category %q",
					got.Date, got.Code, got.Display, x.Title, got.Category, c.date, c.code, c.display, c.title, c.category)
			}
			if err := got.Validate(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// Titles hold no control or format characters and stay within MaxTitle;
// the envelope's fields stay within its limits whatever the resource
// holds.
func TestExtractBounds(t *testing.T) {
	hostile := "Hb\u202eA1c\n\x1b[31m\ttest"
	display, _ := json.Marshal(hostile)
	x := Extract([]byte(`{"resourceType":"Observation","status":"final","code":{"coding":[{"system":"s","code":"c","display":` +
		string(display) + `}]},"valueQuantity":{"value":1,"unit":"\u0007u"}}`))
	if x.Title != "Hb A1c [31m test 1 u" {
		t.Fatalf("title %q", x.Title)
	}
	long := strings.Repeat("é", 2000)
	var cats []string
	for i := range 40 {
		cats = append(cats, `{"coding":[{"code":"c`+string(rune('a'+i%26))+string(rune('a'+i/26))+`"}]}`)
	}
	cats = append(cats, `{"coding":[{"code":"`+strings.Repeat("x", 100)+`"}]}`)
	x = Extract([]byte(`{"resourceType":"Observation","status":"final","category":[` + strings.Join(cats, ",") + `],
		"code":{"coding":[{"system":"` + strings.Repeat("s", 600) + `","code":"c","display":"` + long + `"}]},
		"effectiveDateTime":"` + strings.Repeat("2", 100) + `","issued":"2020-01-01T00:00:00Z"}`))
	c := x.Clinical
	if len(c.Display) > protocol.MaxClinicalText || !utf8.ValidString(c.Display) || !strings.HasSuffix(c.Display, "…") {
		t.Fatalf("display of %d bytes", len(c.Display))
	}
	if c.Code != "" || len(c.Category) != protocol.MaxCategories || c.Date != "2020-01-01T00:00:00Z" {
		t.Fatalf("code %q, %d categories, date %q", c.Code, len(c.Category), c.Date)
	}
	if len(x.Title) > MaxTitle || !utf8.ValidString(x.Title) {
		t.Fatalf("title of %d bytes", len(x.Title))
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if x := Extract([]byte(`not json`)); x.Clinical.ResourceType != "" || x.Title != "" {
		t.Fatalf("junk extracted as %+v", x)
	}
}

// References to the Patient are normalized; references to other types,
// to contained resources and unknown shapes give "".
func TestPatientRef(t *testing.T) {
	for in, want := range map[string]string{
		`"subject":{"reference":"urn:uuid:0a1b"}`:                                                          "urn:uuid:0a1b",
		`"subject":{"reference":"Patient/p1"}`:                                                             "Patient/p1",
		`"subject":{"reference":"Patient/p1/_history/3"}`:                                                  "Patient/p1",
		`"subject":{"reference":"https://ehr.example/fhir/Patient/p1"}`:                                    "Patient/p1",
		`"subject":{"reference":"https://ehr.example/fhir/Patient/p1/_history/2"}`:                         "Patient/p1",
		`"subject":{"reference":"Group/g"}`:                                                                "",
		`"subject":{"reference":"https://x/fhir/OtherPatient/p"}`:                                          "",
		`"subject":{"reference":"#contained"}`:                                                             "",
		`"subject":{"reference":"urn:uuid:a","type":"Group"}`:                                              "",
		`"subject":{"type":"Patient","identifier":{"system":"` + AccountSystem + `","value":"12D3KooWA"}}`: "Patient?identifier=" + AccountSystem + "|12D3KooWA",
		`"subject":{"identifier":{"system":"s","value":"v"}}`:                                              "",
		`"patient":{"identifier":{"system":"s","value":"v"}}`:                                              "Patient?identifier=s|v",
		`"patient":{"reference":"Patient?identifier=s|v"}`:                                                 "Patient?identifier=s|v",
		`"beneficiary":{"reference":"Patient/b"}`:                                                          "Patient/b",
		`"subject":[{"reference":"Patient/first"},{"reference":"Patient/second"}]`:                         "Patient/first",
		`"subject":{"display":"someone"}`:                                                                  "",
		`"subject":"Patient/p"`:                                                                            "",
	} {
		if got := Extract([]byte(`{"resourceType":"X",` + in + `}`)).PatientRef; got != want {
			t.Errorf("%s: %q, want %q", in, got, want)
		}
	}
	x := Extract([]byte(`{"resourceType":"Patient","id":"p","identifier":[{"system":"` + AccountSystem + `","value":"A1"},{"system":"other","value":"B"},{"system":"` + AccountSystem + `","value":"A2"}]}`))
	if !slices.Equal(x.AccountIDs, []string{"A1", "A2"}) {
		t.Fatalf("account ids %q", x.AccountIDs)
	}
}
