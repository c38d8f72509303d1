package fhir

import (
	"bytes"
	"encoding/json"
	"strings"
	"unicode/utf8"

	"github.com/blockmrs/blockmrs/protocol"
)

// Extracted is what Extract takes from one resource.
type Extracted struct {
	// Clinical has the resource type, id, clinical date, code, display
	// and categories (FullURL and Digest are left to the caller).
	Clinical protocol.Clinical
	// Title is the record title derived from them.
	Title string
	// PatientRef is the normalized reference to the Patient the resource
	// is about, "" if none (see Resource.PatientRef).
	PatientRef string
	// AccountIDs are a Patient's AccountSystem identifier values.
	AccountIDs []string
}

// MaxTitle bounds a derived title, in bytes.
const MaxTitle = 200

// dateFields are the elements a clinical date is taken from, in order:
// the first one the resource has wins. They are named the same in every
// R4 resource type that has them, so one list serves all types: an
// Observation's effective[x] before its issued, a Condition's onset[x]
// before its recordedDate, an Immunization's occurrence[x] before its
// recorded, a Claim's billablePeriod before its created, a Patient's
// birthDate.
var dateFields = []string{
	"effectiveDateTime", "effectiveInstant", "effectivePeriod",
	"occurrenceDateTime", "occurrencePeriod",
	"performedDateTime", "performedPeriod",
	"onsetDateTime", "onsetPeriod",
	"authoredOn", "issued", "recordedDate", "recorded",
	"occurredDateTime", "occurredPeriod",
	"started", "startDate", "period", "billablePeriod",
	"created", "date", "dateAsserted", "birthDate",
}

// codeFields hold the resource's main code, in order.
var codeFields = []string{"code", "vaccineCode", "medicationCodeableConcept", "type"}

// patientFields reference the Patient a resource is about, in order.
var patientFields = []string{"subject", "patient", "beneficiary"}

type codeableConcept struct {
	Coding []struct {
		System  string `json:"system"`
		Code    string `json:"code"`
		Display string `json:"display"`
	} `json:"coding"`
	Text string `json:"text"`
}

type reference struct {
	Reference  string `json:"reference"`
	Type       string `json:"type"`
	Identifier *struct {
		System string `json:"system"`
		Value  string `json:"value"`
	} `json:"identifier"`
}

// Extract reads a resource's clinical fields from its JSON (valid R4, as
// ReadResources has checked): what an envelope says about it, its title,
// the Patient it is about, and a Patient's account identifiers. Every
// field is bounded to the envelope's limits; a field of an unexpected
// shape is left empty.
func Extract(raw []byte) Extracted {
	top, _, _, err := checkMembers(raw, MaxDepth)
	if err != nil {
		return Extracted{}
	}
	return extract(top)
}

// extract is Extract from the resource's top-level members.
func extract(top map[string]json.RawMessage) Extracted {
	var x Extracted
	c := &x.Clinical
	unmarshalString(top["resourceType"], &c.ResourceType)
	unmarshalString(top["id"], &c.ID)
	if len(c.ResourceType) > 64 {
		c.ResourceType = ""
	}
	if len(c.ID) > 64 {
		c.ID = ""
	}
	for _, f := range dateFields {
		if v, ok := top[f]; ok {
			if d := dateOf(v); d != "" && len(d) <= protocol.MaxClinicalDate {
				c.Date = d
				break
			}
		}
	}
	for _, f := range codeFields {
		cc, ok := conceptOf(top[f])
		if !ok {
			continue
		}
		for _, cd := range cc.Coding {
			if cd.Code == "" {
				continue
			}
			if code := cd.System + "|" + cd.Code; len(code) <= protocol.MaxClinicalCode {
				c.Code = code
			}
			c.Display = cd.Display
			break
		}
		if c.Display == "" {
			c.Display = cc.Text
		}
		if c.Code != "" || c.Display != "" {
			break
		}
	}
	c.Display = clipBytes(c.Display, protocol.MaxClinicalText)
	c.Category = categoriesOf(top["category"])
	for _, f := range patientFields {
		if ref := patientRefOf(top[f], f != "subject"); ref != "" {
			x.PatientRef = ref
			break
		}
	}
	if c.ResourceType == "Patient" {
		var ids []struct {
			System string `json:"system"`
			Value  string `json:"value"`
		}
		if json.Unmarshal(top["identifier"], &ids) == nil {
			for _, id := range ids {
				if id.System == AccountSystem && id.Value != "" {
					x.AccountIDs = append(x.AccountIDs, id.Value)
				}
			}
		}
	}
	x.Title = title(top, c)
	return x
}

func unmarshalString(v json.RawMessage, dst *string) {
	if v != nil {
		_ = json.Unmarshal(v, dst)
	}
}

// dateOf reads a date or dateTime, or a Period's start (else its end).
func dateOf(v json.RawMessage) string {
	v = bytes.TrimSpace(v)
	if len(v) == 0 {
		return ""
	}
	var s string
	if v[0] == '"' {
		unmarshalString(v, &s)
		return s
	}
	var p struct{ Start, End string }
	if json.Unmarshal(v, &p) == nil {
		if p.Start != "" {
			return p.Start
		}
		return p.End
	}
	return ""
}

// conceptOf reads a CodeableConcept, or the first of an array of them
// (Encounter.type).
func conceptOf(v json.RawMessage) (codeableConcept, bool) {
	v = bytes.TrimSpace(v)
	var cc codeableConcept
	if len(v) == 0 {
		return cc, false
	}
	if v[0] == '[' {
		var ccs []codeableConcept
		if json.Unmarshal(v, &ccs) != nil || len(ccs) == 0 {
			return cc, false
		}
		return ccs[0], true
	}
	return cc, json.Unmarshal(v, &cc) == nil
}

// categoriesOf reads category: an array of CodeableConcepts
// (Observation), one CodeableConcept (Procedure) or an array of codes
// (AllergyIntolerance). Codes are kept in order, once each, within the
// envelope's limits.
func categoriesOf(v json.RawMessage) []string {
	v = bytes.TrimSpace(v)
	if len(v) == 0 {
		return nil
	}
	var items []json.RawMessage
	if v[0] == '[' {
		if json.Unmarshal(v, &items) != nil {
			return nil
		}
	} else {
		items = []json.RawMessage{v}
	}
	var out []string
	add := func(code string) {
		if code == "" || len(code) > protocol.MaxCategoryCode || len(out) >= protocol.MaxCategories {
			return
		}
		for _, c := range out {
			if c == code {
				return
			}
		}
		out = append(out, code)
	}
	for _, it := range items {
		it = bytes.TrimSpace(it)
		if len(it) > 0 && it[0] == '"' {
			var s string
			unmarshalString(it, &s)
			add(s)
			continue
		}
		var cc codeableConcept
		if json.Unmarshal(it, &cc) == nil {
			for _, cd := range cc.Coding {
				add(cd.Code)
			}
		}
	}
	return out
}

// patientRefOf normalizes a reference to a Patient: "urn:uuid:…" (or
// another urn) as written, "Patient/ID" from a relative or absolute
// reference (a version is dropped), "Patient?identifier=SYSTEM|VALUE"
// from a logical reference or a conditional one. A reference to another
// type (a Group, a Device) or to a contained resource gives "". When
// implied is set the element can only reference a Patient
// (Immunization.patient), so an identifier without a type counts.
func patientRefOf(v json.RawMessage, implied bool) string {
	v = bytes.TrimSpace(v)
	if len(v) == 0 {
		return ""
	}
	if v[0] == '[' { // Account.subject and the like: the first
		var refs []json.RawMessage
		if json.Unmarshal(v, &refs) != nil || len(refs) == 0 {
			return ""
		}
		v = refs[0]
	}
	var r reference
	if json.Unmarshal(v, &r) != nil {
		return ""
	}
	if r.Type != "" && r.Type != "Patient" {
		return ""
	}
	if ref := r.Reference; ref != "" {
		return normalizeRef(ref)
	}
	if r.Identifier != nil && r.Identifier.Value != "" && (r.Type == "Patient" || implied) {
		return "Patient?identifier=" + r.Identifier.System + "|" + r.Identifier.Value
	}
	return ""
}

// normalizeRef normalizes a reference string to a Patient (see
// patientRefOf); "" when it is not one.
func normalizeRef(ref string) string {
	switch {
	case len(ref) > protocol.MaxFullURL || strings.HasPrefix(ref, "#"):
		return ""
	case strings.HasPrefix(ref, "urn:"):
		return ref
	case strings.HasPrefix(ref, "Patient?"):
		return ref
	}
	i := strings.LastIndex(ref, "Patient/")
	if i < 0 || (i > 0 && ref[i-1] != '/') {
		return ""
	}
	id, _, _ := strings.Cut(ref[i+len("Patient/"):], "/")
	if id == "" {
		return ""
	}
	return "Patient/" + id
}

// title derives a record title: "<display> <value> <unit> — <date>" for
// an Observation with a valueQuantity, "<display> — <date>" otherwise,
// where the display falls back to a Patient's name, then to the
// resource type and id, and the date is the clinical date's day.
// Control and format characters become spaces; the title is at most
// MaxTitle bytes.
func title(top map[string]json.RawMessage, c *protocol.Clinical) string {
	name := strings.TrimSpace(c.Display)
	if name == "" && c.ResourceType == "Patient" {
		name = patientName(top["name"])
	}
	if name == "" {
		name = strings.TrimSpace(c.ResourceType + " " + c.ID)
	}
	if c.ResourceType == "Observation" {
		var q struct {
			Value json.Number `json:"value"`
			Unit  string      `json:"unit"`
			Code  string      `json:"code"`
		}
		if v, ok := top["valueQuantity"]; ok && json.Unmarshal(v, &q) == nil && q.Value != "" {
			unit := q.Unit
			if unit == "" {
				unit = q.Code
			}
			name = strings.TrimSpace(name + " " + q.Value.String() + " " + unit)
		}
	}
	t := name
	if d := c.Date; d != "" {
		if len(d) > len("2006-01-02") && d[4] == '-' {
			d = d[:len("2006-01-02")]
		}
		t += " — " + d
	}
	t = strings.Join(strings.Fields(printable(t)), " ")
	return clipBytes(t, MaxTitle)
}

// patientName reads a Patient's first name: its text, else given names
// and family.
func patientName(v json.RawMessage) string {
	var names []struct {
		Text   string   `json:"text"`
		Family string   `json:"family"`
		Given  []string `json:"given"`
	}
	if json.Unmarshal(v, &names) != nil || len(names) == 0 {
		return ""
	}
	n := names[0]
	if n.Text != "" {
		return n.Text
	}
	return strings.TrimSpace(strings.Join(append(n.Given, n.Family), " "))
}

// clipBytes shortens s to at most n bytes at a character boundary,
// ending with "…" when it was cut.
func clipBytes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n - len("…")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
