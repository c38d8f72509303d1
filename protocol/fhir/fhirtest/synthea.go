// Package fhirtest generates FHIR R4 data shaped like real exports, for
// tests and benchmarks in any package: Synthea is a transaction Bundle
// like one patient's Synthea R4 export (urn:uuid fullUrls and
// references, the Patient first, then encounter after encounter with
// their conditions, vital signs and laboratory observations with LOINC
// codes and valueQuantity, diagnostic reports, medication requests,
// immunizations, procedures, allergies, claims and explanations of
// benefit). Every resource is valid R4 for the FHIR library, and the
// output is the same for the same seed.
//
// The data is made up: names, codes and values are plausible, not
// clinical truth.
package fhirtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"
)

// Entry is one generated resource with its Bundle entry's fullUrl.
type Entry struct {
	FullURL      string
	ResourceType string
	ID           string
	// Resource is the resource's compact JSON.
	Resource []byte
}

// Synthea returns a transaction Bundle of n resources (n >= 1) shaped
// like a Synthea R4 export of one patient, pretty-printed as Synthea
// writes it.
func Synthea(seed int64, n int) []byte {
	return Bundle("transaction", SyntheaEntries(seed, n))
}

// SyntheaRich returns a Bundle like Synthea's of the same resources with
// what fuller exports carry besides (SyntheaRichEntries): about 3.5 KB a
// resource as written, so that 1,111 resources make a 3.9 MB Bundle, the
// size of a real Synthea export of that many.
func SyntheaRich(seed int64, n int) []byte {
	return Bundle("transaction", SyntheaRichEntries(seed, n))
}

// SyntheaNDJSON returns the same resources as Synthea, one per line
// (Bulk Data NDJSON).
func SyntheaNDJSON(seed int64, n int) []byte {
	return NDJSON(SyntheaEntries(seed, n))
}

// Bundle writes entries as a Bundle of type typ, indented with two
// spaces: a transaction or batch entry has a POST request, a searchset
// entry a search mode.
func Bundle(typ string, entries []Entry) []byte {
	g := &gen{}
	es := make([]any, 0, len(entries))
	for _, e := range entries {
		entry := obj{{"fullUrl", e.FullURL}, {"resource", json.RawMessage(e.Resource)}}
		switch typ {
		case "transaction", "batch":
			entry = append(entry, kv{"request", obj{{"method", "POST"}, {"url", e.ResourceType}}})
		case "searchset":
			entry = append(entry, kv{"search", obj{{"mode", "match"}}})
		}
		es = append(es, entry)
	}
	b := obj{{"resourceType", "Bundle"}, {"type", typ}}
	if typ == "document" || typ == "searchset" || typ == "collection" {
		b = append(b, kv{"timestamp", "2020-06-01T12:00:00Z"})
	}
	b = append(b, kv{"entry", es})
	var out bytes.Buffer
	if err := json.Indent(&out, g.marshal(b), "", "  "); err != nil {
		panic(err)
	}
	out.WriteByte('\n')
	return out.Bytes()
}

// NDJSON writes entries' resources one per line.
func NDJSON(entries []Entry) []byte {
	var out bytes.Buffer
	for _, e := range entries {
		out.Write(e.Resource)
		out.WriteByte('\n')
	}
	return out.Bytes()
}

// kv and obj are a JSON object with its keys in order, as Synthea
// writes them (resourceType first).
type kv struct {
	k string
	v any
}
type obj []kv

// MarshalJSON writes the object with its keys in order.
func (o obj) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	encode(&b, o)
	return b.Bytes(), nil
}

// encode writes v as JSON: objects in key order, without going through
// encoding/json's reflection for each nested level.
func encode(b *bytes.Buffer, v any) {
	switch v := v.(type) {
	case obj:
		b.WriteByte('{')
		for i, f := range v {
			if i > 0 {
				b.WriteByte(',')
			}
			encode(b, f.k)
			b.WriteByte(':')
			encode(b, f.v)
		}
		b.WriteByte('}')
	case []any:
		b.WriteByte('[')
		for i, e := range v {
			if i > 0 {
				b.WriteByte(',')
			}
			encode(b, e)
		}
		b.WriteByte(']')
	case json.RawMessage:
		b.Write(v)
	case json.Number:
		b.WriteString(string(v))
	case int:
		b.WriteString(strconv.Itoa(v))
	case bool:
		b.WriteString(strconv.FormatBool(v))
	default: // strings, with <, > and & as they are (as Synthea writes narratives)
		enc := json.NewEncoder(b)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(v); err != nil {
			panic(err) // only our own values are encoded
		}
		b.Truncate(b.Len() - 1) // Encode's newline
	}
}

type gen struct {
	rng *rand.Rand
	// rich adds a generated narrative to every resource, and reference
	// ranges and interpretations to laboratory observations.
	rich    bool
	entries []Entry
	n       int
	patient string // the Patient's fullUrl
	name    string
}

func (g *gen) marshal(v any) []byte {
	var b bytes.Buffer
	encode(&b, v)
	return b.Bytes()
}

func (g *gen) uuid() string {
	var b [16]byte
	for i := range b {
		b[i] = byte(g.rng.Uint32())
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// add appends a resource; false once n resources are there.
func (g *gen) add(rt string, build func(id string) obj) (string, bool) {
	if len(g.entries) >= g.n {
		return "", false
	}
	id := g.uuid()
	fields := build(id)
	if g.rich {
		fields = withNarrative(rt, id, fields)
	}
	body := append(obj{{"resourceType", rt}, {"id", id}}, fields...)
	url := "urn:uuid:" + id
	g.entries = append(g.entries, Entry{FullURL: url, ResourceType: rt, ID: id, Resource: g.marshal(body)})
	return url, true
}

func (g *gen) pick(n int) int { return g.rng.IntN(n) }

func num(v float64, decimals int) json.Number {
	return json.Number(strconv.FormatFloat(v, 'f', decimals, 64))
}

func coding(system, code, display string) obj {
	return obj{{"system", system}, {"code", code}, {"display", display}}
}

func concept(system, code, display string) obj {
	return obj{{"coding", []any{coding(system, code, display)}}, {"text", display}}
}

func ref(url string) obj { return obj{{"reference", url}} }

func profile(name string) obj {
	return obj{{"profile", []any{"http://hl7.org/fhir/us/core/StructureDefinition/" + name}}}
}

const (
	synthea  = "https://github.com/synthetichealth/synthea"
	snomed   = "http://snomed.info/sct"
	loinc    = "http://loinc.org"
	ucum     = "http://unitsofmeasure.org"
	rxnorm   = "http://www.nlm.nih.gov/research/umls/rxnorm"
	cvx      = "http://hl7.org/fhir/sid/cvx"
	obsCat   = "http://terminology.hl7.org/CodeSystem/observation-category"
	practRef = "Practitioner?identifier=http://hl7.org/fhir/sid/us-npi|9999977"
	orgRef   = "Organization?identifier=" + synthea + "|ef58ea08-d883-3957-8300-150554edc8fb"
	locRef   = "Location?identifier=" + synthea + "|a7b7e9b2-7d5a-3a1f-b7f2-08cbfc3c5a7d"
)

// lab is a laboratory test Synthea's panels report.
type lab struct {
	code, display, unit string
	lo, hi              float64
	decimals            int
}

var metabolic = []lab{
	{"2339-0", "Glucose", "mg/dL", 65, 140, 1},
	{"6299-2", "Urea Nitrogen", "mg/dL", 7, 20, 1},
	{"38483-4", "Creatinine", "mg/dL", 0.6, 1.3, 2},
	{"49765-1", "Calcium", "mg/dL", 8.5, 10.3, 1},
	{"2947-0", "Sodium", "mmol/L", 136, 145, 1},
	{"6298-4", "Potassium", "mmol/L", 3.5, 5.1, 1},
	{"2069-3", "Chloride", "mmol/L", 98, 107, 1},
	{"20565-8", "Carbon Dioxide", "mmol/L", 22, 29, 1},
}

var lipids = []lab{
	{"2093-3", "Total Cholesterol", "mg/dL", 150, 240, 1},
	{"2571-8", "Triglycerides", "mg/dL", 80, 200, 1},
	{"18262-6", "Low Density Lipoprotein Cholesterol", "mg/dL", 70, 160, 1},
	{"2085-9", "High Density Lipoprotein Cholesterol", "mg/dL", 35, 80, 1},
}

var hba1c = lab{"4548-4", "Hemoglobin A1c/Hemoglobin.total in Blood", "%", 4.5, 7.5, 1}

var conditions = [][2]string{
	{"44054006", "Diabetes"}, {"38341003", "Hypertension"}, {"444814009", "Viral sinusitis (disorder)"},
	{"195662009", "Acute viral pharyngitis (disorder)"}, {"10509002", "Acute bronchitis (disorder)"},
	{"162864005", "Body mass index 30+ - obesity (finding)"}, {"15777000", "Prediabetes"},
}

var medications = [][2]string{
	{"860975", "24 HR Metformin hydrochloride 500 MG Extended Release Oral Tablet"},
	{"314076", "lisinopril 10 MG Oral Tablet"}, {"313782", "Acetaminophen 325 MG Oral Tablet"},
	{"308182", "Amoxicillin 250 MG Oral Capsule"},
}

var vaccines = [][2]string{
	{"140", "Influenza, seasonal, injectable, preservative free"}, {"113", "Td (adult) preservative free"},
	{"133", "Pneumococcal conjugate PCV 13"}, {"62", "HPV, quadrivalent"},
}

var procedures = [][2]string{
	{"430193006", "Medication Reconciliation (procedure)"}, {"710824005", "Assessment of health and social care needs (procedure)"},
	{"171207006", "Depression screening (procedure)"}, {"428211000124100", "Assessment of substance use (procedure)"},
}

var encounterTypes = [][2]string{
	{"162673000", "General examination of patient (procedure)"}, {"185349003", "Encounter for check up (procedure)"},
	{"185345009", "Encounter for symptom (procedure)"}, {"410620009", "Well child visit (procedure)"},
}

// SyntheaEntries returns the n resources of Synthea(seed, n).
func SyntheaEntries(seed int64, n int) []Entry {
	return syntheaEntries(seed, n, false)
}

// SyntheaRichEntries returns the n resources of SyntheaRich(seed, n):
// those of SyntheaEntries(seed, n), each with a generated narrative
// (text.div, a table of its fields, as exports made by FHIR servers carry),
// and every laboratory Observation with its reference range and
// interpretation.
func SyntheaRichEntries(seed int64, n int) []Entry {
	return syntheaEntries(seed, n, true)
}

func syntheaEntries(seed int64, n int, rich bool) []Entry {
	g := &gen{rng: rand.New(rand.NewPCG(uint64(seed), 0x5917_4ea1)), n: max(n, 1), rich: rich}
	given := []string{"Jane", "Maria", "Aiko", "Fatima", "John", "Wei", "Lars", "Kwame"}[g.pick(8)]
	family := []string{"Smith", "García", "Tanaka", "Okafor", "Müller", "Nguyen", "Kowalski"}[g.pick(7)]
	g.name = given + " " + family
	birth := time.Date(1940+g.pick(60), time.Month(1+g.pick(12)), 1+g.pick(28), 0, 0, 0, 0, time.UTC)
	g.patient, _ = g.add("Patient", func(id string) obj { return g.patientBody(id, given, family, birth) })
	when := birth.AddDate(0, 2, 0).Add(time.Duration(9+g.pick(8)) * time.Hour)
	allergy := false
	for len(g.entries) < g.n {
		when = when.AddDate(0, 1+g.pick(14), g.pick(28)).Add(time.Duration(g.pick(3600)) * time.Second)
		g.encounter(when)
		if !allergy {
			allergy = true
			g.add("AllergyIntolerance", func(string) obj {
				return obj{
					{"meta", profile("us-core-allergyintolerance")},
					{"clinicalStatus", obj{{"coding", []any{obj{{"system", "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical"}, {"code", "active"}}}}}},
					{"verificationStatus", obj{{"coding", []any{obj{{"system", "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification"}, {"code", "confirmed"}}}}}},
					{"type", "allergy"}, {"category", []any{"food"}}, {"criticality", "low"},
					{"code", concept(snomed, "91935009", "Allergy to peanuts")},
					{"patient", ref(g.patient)},
					{"recordedDate", stamp(when)},
				}
			})
		}
	}
	return g.entries
}

func stamp(t time.Time) string {
	return t.In(time.FixedZone("", -5*3600)).Format("2006-01-02T15:04:05-07:00")
}

func issued(t time.Time) string {
	return t.In(time.FixedZone("", -5*3600)).Format("2006-01-02T15:04:05.000-07:00")
}

func (g *gen) patientBody(id, given, family string, birth time.Time) obj {
	ext := func(url string, kvs ...kv) obj { return append(obj{{"url", url}}, kvs...) }
	idType := func(code, display string) obj {
		return obj{{"coding", []any{coding("http://terminology.hl7.org/CodeSystem/v2-0203", code, display)}}, {"text", display}}
	}
	gender, sex := "female", "F"
	if g.pick(2) == 0 {
		gender, sex = "male", "M"
	}
	return obj{
		{"meta", profile("us-core-patient")},
		{"text", obj{{"status", "generated"}, {"div", `<div xmlns="http://www.w3.org/1999/xhtml">Generated by <a href="https://github.com/synthetichealth/synthea">Synthea</a>.Version identifier: v3.0.0</div>`}}},
		{"extension", []any{
			ext("http://hl7.org/fhir/us/core/StructureDefinition/us-core-race", kv{"extension", []any{
				obj{{"url", "ombCategory"}, {"valueCoding", coding("urn:oid:2.16.840.1.113883.6.238", "2106-3", "White")}},
				obj{{"url", "text"}, {"valueString", "White"}},
			}}),
			ext("http://hl7.org/fhir/us/core/StructureDefinition/us-core-ethnicity", kv{"extension", []any{
				obj{{"url", "ombCategory"}, {"valueCoding", coding("urn:oid:2.16.840.1.113883.6.238", "2186-5", "Not Hispanic or Latino")}},
				obj{{"url", "text"}, {"valueString", "Not Hispanic or Latino"}},
			}}),
			ext("http://hl7.org/fhir/StructureDefinition/patient-mothersMaidenName", kv{"valueString", "Rosa Ortiz"}),
			ext("http://hl7.org/fhir/us/core/StructureDefinition/us-core-birthsex", kv{"valueCode", sex}),
			ext("http://hl7.org/fhir/StructureDefinition/patient-birthPlace", kv{"valueAddress", obj{{"city", "Springfield"}, {"state", "Massachusetts"}, {"country", "US"}}}),
			ext("http://synthetichealth.github.io/synthea/disability-adjusted-life-years", kv{"valueDecimal", num(g.rng.Float64(), 4)}),
			ext("http://synthetichealth.github.io/synthea/quality-adjusted-life-years", kv{"valueDecimal", num(30+g.rng.Float64()*40, 4)}),
		}},
		{"identifier", []any{
			obj{{"system", synthea}, {"value", id}},
			obj{{"type", idType("MR", "Medical Record Number")}, {"system", "http://hospital.smarthealthit.org"}, {"value", id}},
			obj{{"type", idType("SS", "Social Security Number")}, {"system", "http://hl7.org/fhir/sid/us-ssn"}, {"value", fmt.Sprintf("999-%02d-%04d", g.pick(100), g.pick(10000))}},
			obj{{"type", idType("DL", "Driver's License")}, {"system", "urn:oid:2.16.840.1.113883.4.3.25"}, {"value", fmt.Sprintf("S999%05d", g.pick(100000))}},
		}},
		{"name", []any{obj{{"use", "official"}, {"family", family}, {"given", []any{given}}}}},
		{"telecom", []any{obj{{"system", "phone"}, {"value", fmt.Sprintf("555-%03d-%04d", g.pick(1000), g.pick(10000))}, {"use", "home"}}}},
		{"gender", gender},
		{"birthDate", birth.Format("2006-01-02")},
		{"address", []any{obj{
			{"extension", []any{ext("http://hl7.org/fhir/StructureDefinition/geolocation", kv{"extension", []any{
				obj{{"url", "latitude"}, {"valueDecimal", num(42+g.rng.Float64(), 6)}},
				obj{{"url", "longitude"}, {"valueDecimal", num(-71-g.rng.Float64(), 6)}},
			}})}},
			{"line", []any{fmt.Sprintf("%d Main Street", 1+g.pick(999))}}, {"city", "Boston"}, {"state", "MA"}, {"postalCode", "02101"}, {"country", "US"},
		}}},
		{"maritalStatus", obj{{"coding", []any{coding("http://terminology.hl7.org/CodeSystem/v3-MaritalStatus", "M", "M")}}, {"text", "M"}}},
		{"multipleBirthBoolean", false},
		{"communication", []any{obj{{"language", obj{{"coding", []any{coding("urn:ietf:bcp:47", "en-US", "English")}}, {"text", "English"}}}}}},
	}
}

// encounter adds one encounter and what happened at it.
func (g *gen) encounter(start time.Time) {
	end := start.Add(time.Duration(15+g.pick(45)) * time.Minute)
	et := encounterTypes[g.pick(len(encounterTypes))]
	period := obj{{"start", stamp(start)}, {"end", stamp(end)}}
	enc, ok := g.add("Encounter", func(id string) obj {
		return obj{
			{"meta", profile("us-core-encounter")},
			{"identifier", []any{obj{{"use", "official"}, {"system", synthea}, {"value", id}}}},
			{"status", "finished"},
			{"class", obj{{"system", "http://terminology.hl7.org/CodeSystem/v3-ActCode"}, {"code", "AMB"}}},
			{"type", []any{concept(snomed, et[0], et[1])}},
			{"subject", obj{{"reference", g.patient}, {"display", g.name}}},
			{"participant", []any{obj{
				{"type", []any{obj{{"coding", []any{coding("http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "PPRF", "primary performer")}}, {"text", "primary performer"}}}},
				{"period", period},
				{"individual", obj{{"reference", practRef}, {"display", "Dr. Lee Ann Walker"}}},
			}}},
			{"period", period},
			{"location", []any{obj{{"location", obj{{"reference", locRef}, {"display", "SPRINGFIELD FAMILY CLINIC"}}}}}},
			{"serviceProvider", obj{{"reference", orgRef}, {"display", "SPRINGFIELD FAMILY CLINIC"}}},
		}
	})
	if !ok {
		return
	}
	common := func() obj { return obj{{"subject", ref(g.patient)}, {"encounter", ref(enc)}} }
	var diagnoses []string
	if g.pick(3) == 0 {
		c := conditions[g.pick(len(conditions))]
		url, ok := g.add("Condition", func(string) obj {
			return append(append(obj{
				{"meta", profile("us-core-condition")},
				{"clinicalStatus", obj{{"coding", []any{obj{{"system", "http://terminology.hl7.org/CodeSystem/condition-clinical"}, {"code", "active"}}}}}},
				{"verificationStatus", obj{{"coding", []any{obj{{"system", "http://terminology.hl7.org/CodeSystem/condition-ver-status"}, {"code", "confirmed"}}}}}},
				{"category", []any{obj{{"coding", []any{coding("http://terminology.hl7.org/CodeSystem/condition-category", "encounter-diagnosis", "Encounter Diagnosis")}}}}},
				{"code", concept(snomed, c[0], c[1])},
			}, common()...), kv{"onsetDateTime", stamp(start)}, kv{"recordedDate", stamp(start)})
		})
		if !ok {
			return
		}
		diagnoses = append(diagnoses, url)
	}
	obs := func(category, code, display string, value kv, extra ...kv) (string, bool) {
		return g.add("Observation", func(string) obj {
			o := obj{
				{"meta", profile(map[string]string{"vital-signs": "us-core-vital-signs", "laboratory": "us-core-observation-lab", "survey": "us-core-smokingstatus"}[category])},
				{"status", "final"},
				{"category", []any{obj{{"coding", []any{coding(obsCat, category, category)}}}}},
				{"code", concept(loinc, code, display)},
			}
			return append(append(append(o, common()...), kv{"effectiveDateTime", stamp(start)}, kv{"issued", issued(start)}, value), extra...)
		})
	}
	quantity := func(v float64, decimals int, unit string) kv {
		return kv{"valueQuantity", obj{{"value", num(v, decimals)}, {"unit", unit}, {"system", ucum}, {"code", unit}}}
	}
	height := 150 + g.rng.Float64()*40
	weight := 50 + g.rng.Float64()*50
	vitals := []struct {
		code, display, unit string
		v                   float64
	}{
		{"8302-2", "Body Height", "cm", height},
		{"29463-7", "Body Weight", "kg", weight},
		{"39156-5", "Body mass index (BMI) [Ratio]", "kg/m2", weight / (height * height / 10000)},
		{"8867-4", "Heart rate", "/min", 60 + g.rng.Float64()*40},
		{"9279-1", "Respiratory rate", "/min", 12 + g.rng.Float64()*6},
	}
	for _, v := range vitals {
		if _, ok := obs("vital-signs", v.code, v.display, quantity(v.v, 1, v.unit)); !ok {
			return
		}
	}
	bp := func(code, display string, v float64) obj {
		return obj{{"code", concept(loinc, code, display)}, {"valueQuantity", obj{{"value", num(v, 0)}, {"unit", "mm[Hg]"}, {"system", ucum}, {"code", "mm[Hg]"}}}}
	}
	if _, ok := g.add("Observation", func(string) obj {
		return append(append(obj{
			{"meta", profile("us-core-blood-pressure")},
			{"status", "final"},
			{"category", []any{obj{{"coding", []any{coding(obsCat, "vital-signs", "vital-signs")}}}}},
			{"code", concept(loinc, "85354-9", "Blood pressure panel with all children optional")},
		}, common()...), kv{"effectiveDateTime", stamp(start)}, kv{"issued", issued(start)},
			kv{"component", []any{bp("8462-4", "Diastolic Blood Pressure", 60+g.rng.Float64()*30), bp("8480-6", "Systolic Blood Pressure", 100+g.rng.Float64()*50)}})
	}); !ok {
		return
	}
	if _, ok := obs("survey", "72166-2", "Tobacco smoking status", kv{"valueCodeableConcept", concept(snomed, "266919005", "Never smoked tobacco (finding)")}); !ok {
		return
	}
	// A laboratory panel with its report, at about half the encounters.
	if g.pick(2) == 0 {
		panel, panelCode, panelName := metabolic, "51990-0", "Basic Metabolic Panel"
		if g.pick(2) == 0 {
			panel, panelCode, panelName = lipids, "57698-3", "Lipid Panel"
		}
		if g.pick(3) == 0 {
			panel = append([]lab{hba1c}, panel...)
		}
		var results []any
		for _, l := range panel {
			value := quantity(l.lo+g.rng.Float64()*(l.hi-l.lo), l.decimals, l.unit)
			url, ok := obs("laboratory", l.code, l.display, value, g.labExtras(l)...)
			if !ok {
				return
			}
			results = append(results, obj{{"reference", url}, {"display", l.display}})
		}
		if _, ok := g.add("DiagnosticReport", func(string) obj {
			return append(append(obj{
				{"meta", profile("us-core-diagnosticreport-lab")},
				{"status", "final"},
				{"category", []any{obj{{"coding", []any{coding("http://terminology.hl7.org/CodeSystem/v2-0074", "LAB", "Laboratory")}}}}},
				{"code", concept(loinc, panelCode, panelName)},
			}, common()...), kv{"effectiveDateTime", stamp(start)}, kv{"issued", issued(start)},
				kv{"performer", []any{obj{{"reference", orgRef}, {"display", "SPRINGFIELD FAMILY CLINIC"}}}},
				kv{"result", results})
		}); !ok {
			return
		}
	}
	var items []any
	item := func(code, display string) {
		items = append(items, obj{{"sequence", len(items) + 1}, {"productOrService", concept(snomed, code, display)}, {"encounter", []any{ref(enc)}}})
	}
	item(et[0], et[1])
	if g.pick(3) == 0 {
		m := medications[g.pick(len(medications))]
		if _, ok := g.add("MedicationRequest", func(string) obj {
			return append(append(obj{
				{"meta", profile("us-core-medicationrequest")},
				{"status", "active"}, {"intent", "order"},
				{"medicationCodeableConcept", concept(rxnorm, m[0], m[1])},
			}, common()...), kv{"authoredOn", stamp(start)},
				kv{"requester", obj{{"reference", practRef}, {"display", "Dr. Lee Ann Walker"}}},
				kv{"dosageInstruction", []any{obj{
					{"sequence", 1},
					{"timing", obj{{"repeat", obj{{"frequency", 1}, {"period", 1}, {"periodUnit", "d"}}}}},
					{"asNeededBoolean", false},
					{"doseAndRate", []any{obj{{"type", obj{{"coding", []any{coding("http://terminology.hl7.org/CodeSystem/dose-rate-type", "ordered", "Ordered")}}}}, {"doseQuantity", obj{{"value", 1}}}}}},
				}}})
		}); !ok {
			return
		}
	}
	if g.pick(4) == 0 {
		v := vaccines[g.pick(len(vaccines))]
		if _, ok := g.add("Immunization", func(string) obj {
			return obj{
				{"meta", profile("us-core-immunization")},
				{"status", "completed"},
				{"vaccineCode", concept(cvx, v[0], v[1])},
				{"patient", ref(g.patient)}, {"encounter", ref(enc)},
				{"occurrenceDateTime", stamp(start)}, {"primarySource", true},
				{"location", obj{{"reference", locRef}, {"display", "SPRINGFIELD FAMILY CLINIC"}}},
			}
		}); !ok {
			return
		}
		item(v[0], v[1])
	}
	if g.pick(3) == 0 {
		p := procedures[g.pick(len(procedures))]
		if _, ok := g.add("Procedure", func(string) obj {
			return append(append(obj{
				{"meta", profile("us-core-procedure")},
				{"status", "completed"},
				{"code", concept(snomed, p[0], p[1])},
			}, common()...), kv{"performedPeriod", period},
				kv{"location", obj{{"reference", locRef}, {"display", "SPRINGFIELD FAMILY CLINIC"}}})
		}); !ok {
			return
		}
		item(p[0], p[1])
	}
	total := num(50+g.rng.Float64()*500, 2)
	claim, ok := g.add("Claim", func(string) obj {
		c := obj{
			{"status", "active"},
			{"type", obj{{"coding", []any{obj{{"system", "http://terminology.hl7.org/CodeSystem/claim-type"}, {"code", "professional"}}}}}},
			{"use", "claim"},
			{"patient", obj{{"reference", g.patient}, {"display", g.name}}},
			{"billablePeriod", period},
			{"created", stamp(end)},
			{"provider", obj{{"reference", orgRef}, {"display", "SPRINGFIELD FAMILY CLINIC"}}},
			{"priority", obj{{"coding", []any{obj{{"system", "http://terminology.hl7.org/CodeSystem/processpriority"}, {"code", "normal"}}}}}},
		}
		if len(diagnoses) > 0 {
			c = append(c, kv{"diagnosis", []any{obj{{"sequence", 1}, {"diagnosisReference", ref(diagnoses[0])}}}})
		}
		return append(c,
			kv{"insurance", []any{obj{{"sequence", 1}, {"focal", true}, {"coverage", obj{{"display", "Medicaid"}}}}}},
			kv{"item", items},
			kv{"total", obj{{"value", total}, {"currency", "USD"}}})
	})
	if !ok {
		return
	}
	g.add("ExplanationOfBenefit", func(id string) obj {
		var eobItems []any
		for i, it := range items {
			o := it.(obj)
			eobItems = append(eobItems, obj{
				{"sequence", i + 1},
				{"category", obj{{"coding", []any{coding("https://bluebutton.cms.gov/resources/variables/line_cms_type_srvc_cd", "1", "Medical care")}}}},
				{"productOrService", o[1].v},
				{"servicedPeriod", period},
				{"locationCodeableConcept", obj{{"coding", []any{coding("http://terminology.hl7.org/CodeSystem/ex-serviceplace", "19", "Off Campus-Outpatient Hospital")}}}},
				{"encounter", []any{ref(enc)}},
				{"adjudication", []any{
					obj{{"category", obj{{"coding", []any{coding("https://bluebutton.cms.gov/resources/codesystem/adjudication", "https://bluebutton.cms.gov/resources/variables/line_coinsrnc_amt", "Line Beneficiary Coinsurance Amount")}}}}, {"amount", obj{{"value", num(g.rng.Float64()*30, 2)}, {"currency", "USD"}}}},
					obj{{"category", obj{{"coding", []any{coding("https://bluebutton.cms.gov/resources/codesystem/adjudication", "https://bluebutton.cms.gov/resources/variables/line_prvdr_pmt_amt", "Line Provider Payment Amount")}}}}, {"amount", obj{{"value", num(g.rng.Float64()*120, 2)}, {"currency", "USD"}}}},
				}},
			})
		}
		return obj{
			{"contained", []any{obj{
				{"resourceType", "Coverage"}, {"id", "coverage"}, {"status", "active"},
				{"type", obj{{"text", "Medicaid"}}},
				{"beneficiary", ref(g.patient)},
				{"payor", []any{obj{{"display", "Medicaid"}}}},
			}}},
			{"identifier", []any{obj{{"system", "https://bluebutton.cms.gov/resources/variables/clm_id"}, {"value", id}}}},
			{"status", "active"},
			{"type", obj{{"coding", []any{obj{{"system", "http://terminology.hl7.org/CodeSystem/claim-type"}, {"code", "professional"}}}}}},
			{"use", "claim"},
			{"patient", ref(g.patient)},
			{"billablePeriod", period},
			{"created", stamp(end)},
			{"insurer", obj{{"display", "Medicaid"}}},
			{"provider", obj{{"reference", practRef}}},
			{"claim", ref(claim)},
			{"outcome", "complete"},
			{"careTeam", []any{obj{{"sequence", 1}, {"provider", obj{{"reference", practRef}}}, {"role", obj{{"coding", []any{coding("http://terminology.hl7.org/CodeSystem/claimcareteamrole", "primary", "Primary provider")}}}}}}},
			{"insurance", []any{obj{{"focal", true}, {"coverage", obj{{"reference", "#coverage"}, {"display", "Medicaid"}}}}}},
			{"item", eobItems},
			{"total", []any{obj{{"category", obj{{"coding", []any{coding("http://terminology.hl7.org/CodeSystem/adjudication", "submitted", "Submitted Amount")}}, {"text", "Submitted Amount"}}}, {"amount", obj{{"value", total}, {"currency", "USD"}}}}}},
			{"payment", obj{{"amount", obj{{"value", num(g.rng.Float64()*100, 2)}, {"currency", "USD"}}}}},
		}
	})
}

// labExtras returns, for a rich bundle, a laboratory result's reference
// range and interpretation (the value is in the range: normal).
func (g *gen) labExtras(l lab) []kv {
	if !g.rich {
		return nil
	}
	bound := func(v float64) obj {
		return obj{{"value", num(v, l.decimals)}, {"unit", l.unit}, {"system", ucum}, {"code", l.unit}}
	}
	return []kv{
		{"interpretation", []any{concept("http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation", "N", "Normal")}},
		{"referenceRange", []any{obj{{"low", bound(l.lo)}, {"high", bound(l.hi)},
			{"type", concept("http://terminology.hl7.org/CodeSystem/referencerange-meaning", "normal", "Normal Range")},
			{"text", fmt.Sprintf("%s-%s %s", num(l.lo, l.decimals), num(l.hi, l.decimals), l.unit)}}}},
	}
}

// withNarrative puts a generated narrative after the resource's meta: a
// table of its fields, as a FHIR server writes one.
func withNarrative(rt, id string, fields obj) obj {
	for _, f := range fields {
		if f.k == "text" {
			return fields // its own narrative
		}
	}
	var div strings.Builder
	div.WriteString(`<div xmlns="http://www.w3.org/1999/xhtml"><p><b>Generated Narrative: ` + rt + `</b><a name="` + id + `"> </a></p>`)
	div.WriteString(`<div style="display: inline-block; background-color: #d9e0e7; padding: 6px; margin: 4px; border: 1px solid #8da1b4; border-radius: 5px; line-height: 60%">`)
	div.WriteString(`<p style="margin-bottom: 0px">Resource ` + rt + ` &quot;` + id + `&quot; </p>`)
	if len(fields) > 0 && fields[0].k == "meta" {
		div.WriteString(`<p style="margin-bottom: 0px">Profile: ` + html.EscapeString(summary(fields[0].v)) + `</p>`)
	}
	div.WriteString(`</div><table class="grid">`)
	for _, f := range fields {
		if f.k == "meta" || f.k == "contained" {
			continue
		}
		fmt.Fprintf(&div, "<tr><th>%s</th><td>%s</td></tr>", f.k, html.EscapeString(summary(f.v)))
	}
	div.WriteString("</table></div>")
	text := kv{"text", obj{{"status", "generated"}, {"div", div.String()}}}
	if len(fields) > 0 && fields[0].k == "meta" {
		return append(obj{fields[0], text}, fields[1:]...)
	}
	return append(obj{text}, fields...)
}

// summary says what a field holds, in words: a concept's text or display,
// a reference's display or target, a quantity's value and unit, a list's
// items.
func summary(v any) string {
	switch v := v.(type) {
	case obj:
		get := map[string]any{}
		for _, f := range v {
			get[f.k] = f.v
		}
		for _, k := range []string{"text", "display"} {
			if s, ok := get[k].(string); ok {
				return s
			}
		}
		if c, ok := get["coding"].([]any); ok && len(c) > 0 {
			return summary(c[0])
		}
		if _, ok := get["value"]; ok {
			s := summary(get["value"])
			if u, ok := get["unit"].(string); ok {
				s += " " + u
			}
			return s
		}
		var parts []string
		for _, f := range v {
			parts = append(parts, f.k+": "+summary(f.v))
		}
		return strings.Join(parts, "; ")
	case []any:
		parts := make([]string, len(v))
		for i, e := range v {
			parts[i] = summary(e)
		}
		return strings.Join(parts, ", ")
	case json.Number:
		return string(v)
	case int:
		return strconv.Itoa(v)
	case bool:
		return strconv.FormatBool(v)
	case string:
		return v
	}
	return fmt.Sprint(v)
}
