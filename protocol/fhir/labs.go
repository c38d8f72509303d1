package fhir

import (
	"errors"
	"fmt"
	"strings"
)

// Lab is one field of the lab panel: the values the systems BlockMRS
// replaces asked clinicians for, each with its LOINC code and its UCUM
// unit. The codes and units were checked against loinc.org and the FHIR
// R4 and US Core examples (see docs/DESIGN-NOTES.md).
type Lab struct {
	// Key names the field on the command line and in the API
	// ("fasting-glucose").
	Key string `json:"key"`
	// Name is the short name used in record titles and forms.
	Name string `json:"name"`
	// LOINC and Display are the test's LOINC code and long common name.
	LOINC   string `json:"loinc"`
	Display string `json:"display"`
	// Category is laboratory or vital-signs.
	Category string `json:"category"`
	// UCUM is the unit's UCUM code and Unit its form for people; both
	// empty for a coded value (the blood group).
	UCUM string `json:"ucum,omitempty"`
	Unit string `json:"unit,omitempty"`
	// Min and Max bound a plausible value (loosely: they catch a typo or
	// a wrong unit, not an abnormal result); MinExclusive refuses Min
	// itself.
	Min          float64 `json:"min"`
	MinExclusive bool    `json:"min_exclusive,omitempty"`
	Max          float64 `json:"max"`
	// Answers are the coded values of a coded field (SNOMED CT), by the
	// text a clinician types ("A+", "O-").
	Answers []Answer `json:"answers,omitempty"`
}

// Answer is one coded value of a coded lab field.
type Answer struct {
	Text    string `json:"text"`
	Code    string `json:"code"`
	Display string `json:"display"`
}

// Labs is the lab panel, in the order forms show it.
var Labs = []Lab{
	{Key: "fasting-glucose", Name: "Glucose [fasting]", LOINC: "1558-6", Display: "Fasting glucose [Mass/volume] in Serum or Plasma",
		Category: Laboratory, UCUM: "mg/dL", Unit: "mg/dL", Min: 0, MinExclusive: true, Max: 2000},
	{Key: "pp-glucose", Name: "Glucose [2 h post-meal]", LOINC: "1521-4", Display: "Glucose [Mass/volume] in Serum or Plasma --2 hours post meal",
		Category: Laboratory, UCUM: "mg/dL", Unit: "mg/dL", Min: 0, MinExclusive: true, Max: 2000},
	{Key: "creatinine", Name: "Creatinine [serum]", LOINC: "2160-0", Display: "Creatinine [Mass/volume] in Serum or Plasma",
		Category: Laboratory, UCUM: "mg/dL", Unit: "mg/dL", Min: 0, MinExclusive: true, Max: 50},
	{Key: "blood-group", Name: "Blood group", LOINC: "882-1", Display: "ABO and Rh group [Type] in Blood",
		Category: Laboratory, Answers: []Answer{
			{Text: "A+", Code: "278149003", Display: "Blood group A Rh(D) positive"},
			{Text: "A-", Code: "278152006", Display: "Blood group A Rh(D) negative"},
			{Text: "B+", Code: "278150003", Display: "Blood group B Rh(D) positive"},
			{Text: "B-", Code: "278153001", Display: "Blood group B Rh(D) negative"},
			{Text: "AB+", Code: "278151004", Display: "Blood group AB Rh(D) positive"},
			{Text: "AB-", Code: "278154007", Display: "Blood group AB Rh(D) negative"},
			{Text: "O+", Code: "278147001", Display: "Blood group O Rh(D) positive"},
			{Text: "O-", Code: "278148006", Display: "Blood group O Rh(D) negative"},
		}},
	{Key: "cholesterol", Name: "Cholesterol [total]", LOINC: "2093-3", Display: "Cholesterol [Mass/volume] in Serum or Plasma",
		Category: Laboratory, UCUM: "mg/dL", Unit: "mg/dL", Min: 0, MinExclusive: true, Max: 2000},
	{Key: "hdl", Name: "HDL cholesterol", LOINC: "2085-9", Display: "Cholesterol in HDL [Mass/volume] in Serum or Plasma",
		Category: Laboratory, UCUM: "mg/dL", Unit: "mg/dL", Min: 0, MinExclusive: true, Max: 500},
	{Key: "ldl", Name: "LDL cholesterol", LOINC: "13457-7", Display: "Cholesterol in LDL [Mass/volume] in Serum or Plasma by calculation",
		Category: Laboratory, UCUM: "mg/dL", Unit: "mg/dL", Min: 0, Max: 2000},
	{Key: "rbc", Name: "RBC count", LOINC: "789-8", Display: "Erythrocytes [#/volume] in Blood by Automated count",
		Category: Laboratory, UCUM: "10*6/uL", Unit: "10^6/µL", Min: 0, MinExclusive: true, Max: 20},
	{Key: "pulse", Name: "Pulse", LOINC: "8867-4", Display: "Heart rate",
		Category: VitalSigns, UCUM: "/min", Unit: "beats/min", Min: 0, MinExclusive: true, Max: 400},
}

// LabByKey returns the panel field named key (see Lab.Key), ignoring
// case.
func LabByKey(key string) (Lab, bool) {
	for _, l := range Labs {
		if strings.EqualFold(l.Key, key) {
			return l, true
		}
	}
	return Lab{}, false
}

// LabByLOINC returns the panel field with LOINC code code.
func LabByLOINC(code string) (Lab, bool) {
	for _, l := range Labs {
		if l.LOINC == code {
			return l, true
		}
	}
	return Lab{}, false
}

// Keys lists the panel's keys, for help and error messages.
func Keys() []string {
	out := make([]string, len(Labs))
	for i, l := range Labs {
		out[i] = l.Key
	}
	return out
}

// Observation checks value (a decimal, or an answer's text for a coded
// field) against the field and returns the Observation that records it,
// with status final, effective at effective (see ParseEffective), for
// the subject and performer accounts. A one-line error names the field.
func (l Lab) Observation(value, effective, subject, performer string) (Observation, error) {
	o := Observation{
		Status: "final", Category: l.Category,
		Code:      Coding{System: LOINC, Code: l.LOINC, Display: l.Display},
		Text:      l.Name,
		Effective: effective, Subject: subject, Performer: performer,
	}
	if len(l.Answers) > 0 {
		v := strings.ToUpper(strings.TrimSpace(value))
		v = strings.ReplaceAll(strings.ReplaceAll(v, "POS", "+"), "NEG", "-")
		v = strings.ReplaceAll(v, " ", "")
		for _, a := range l.Answers {
			if v == a.Text {
				o.Concept = &Coding{System: SNOMED, Code: a.Code, Display: a.Display}
				return o, nil
			}
		}
		texts := make([]string, len(l.Answers))
		for i, a := range l.Answers {
			texts[i] = a.Text
		}
		return Observation{}, fmt.Errorf("%s: %q is not one of %s", l.Key, clip(value), strings.Join(texts, " "))
	}
	v, err := ParseDecimal(strings.TrimSpace(value))
	if err != nil {
		return Observation{}, fmt.Errorf("%s: %v", l.Key, err)
	}
	if v < l.Min || (l.MinExclusive && v == l.Min) {
		rel := "at least"
		if l.MinExclusive {
			rel = "more than"
		}
		return Observation{}, fmt.Errorf("%s: %s %s is implausible (must be %s %g)", l.Key, strings.TrimSpace(value), l.Unit, rel, l.Min)
	}
	if v > l.Max {
		return Observation{}, fmt.Errorf("%s: %s %s is implausible (at most %g %s; is the unit right?)", l.Key, strings.TrimSpace(value), l.Unit, l.Max, l.Unit)
	}
	o.Quantity = &Quantity{Value: strings.TrimSpace(value), Unit: l.Unit, System: UCUM, Code: l.UCUM}
	return o, nil
}

// FreeObservation records a value the panel has no field for: a name
// (code.text, no coding), and a value that is a number with an optional
// free unit (a valueQuantity without a UCUM code) or else text (a
// valueString). A one-line error names the row.
func FreeObservation(name, value, unit, effective, subject, performer string) (Observation, error) {
	name, value, unit = strings.TrimSpace(name), strings.TrimSpace(value), strings.TrimSpace(unit)
	if err := CheckText(name); err != nil {
		return Observation{}, fmt.Errorf("other value's name: %v", err)
	}
	if err := CheckText(value); err != nil {
		return Observation{}, fmt.Errorf("%s: value: %v", clip(name), err)
	}
	o := Observation{Status: "final", Category: Laboratory, Text: name, Effective: effective, Subject: subject, Performer: performer}
	if _, err := ParseDecimal(value); err == nil {
		if unit != "" {
			if err := CheckText(unit); err != nil {
				return Observation{}, fmt.Errorf("%s: unit: %v", clip(name), err)
			}
		}
		o.Quantity = &Quantity{Value: value, Unit: unit}
		return o, nil
	}
	if unit != "" {
		return Observation{}, errors.New(clip(name) + ": a unit needs a number as the value")
	}
	o.String = value
	return o, nil
}
