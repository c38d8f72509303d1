package fhirtest_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/blockmrs/blockmrs/protocol/fhir"
	"github.com/blockmrs/blockmrs/protocol/fhir/fhirtest"
)

// The same seed gives the same bytes; another seed other bytes.
func TestSyntheaDeterministic(t *testing.T) {
	a, b := fhirtest.Synthea(42, 300), fhirtest.Synthea(42, 300)
	if !bytes.Equal(a, b) {
		t.Fatal("two runs with one seed differ")
	}
	if bytes.Equal(a, fhirtest.Synthea(43, 300)) {
		t.Fatal("two seeds give the same bundle")
	}
}

// Every generated resource is valid R4 for the FHIR library (through
// fhir.ReadResources, which validates each), the Bundle has exactly n
// resources with the Patient first and the types a Synthea export has,
// and the NDJSON form holds the same resources.
func TestSyntheaValid(t *testing.T) {
	for _, n := range []int{1, 2, 17, 1111} {
		entries := fhirtest.SyntheaEntries(int64(n), n)
		if len(entries) != n || entries[0].ResourceType != "Patient" {
			t.Fatalf("n=%d: %d entries, first %s", n, len(entries), entries[0].ResourceType)
		}
		types := map[string]int{}
		laboratory := 0
		for form, data := range map[string][]byte{"bundle": fhirtest.Synthea(int64(n), n), "ndjson": fhirtest.SyntheaNDJSON(int64(n), n)} {
			i := 0
			err := fhir.ReadResources(context.Background(), bytes.NewReader(data), func(r *fhir.Resource) error {
				if r.Clinical.ID != entries[i].ID {
					t.Fatalf("n=%d %s: resource %d is %q, want %q", n, form, i, r.Clinical.ID, entries[i].ID)
				}
				if form == "bundle" {
					types[r.Clinical.ResourceType]++
					for _, c := range r.Clinical.Category {
						if c == "laboratory" {
							laboratory++
						}
					}
				}
				i++
				return nil
			})
			if err != nil || i != n {
				t.Fatalf("n=%d %s: %d resources: %v", n, form, i, err)
			}
		}
		if n == 1111 {
			for _, typ := range []string{"Patient", "Encounter", "Condition", "Observation", "DiagnosticReport", "MedicationRequest",
				"Immunization", "Procedure", "AllergyIntolerance", "Claim", "ExplanationOfBenefit"} {
				if types[typ] == 0 {
					t.Errorf("no %s among %v", typ, types)
				}
			}
			if laboratory == 0 {
				t.Error("no laboratory Observation")
			}
		}
	}
}

// Bundle writes every type with the entry fields that type has.
func TestBundleTypes(t *testing.T) {
	entries := fhirtest.SyntheaEntries(1, 3)
	for typ, want := range map[string]string{"transaction": `"request"`, "batch": `"method": "POST"`, "searchset": `"mode": "match"`, "collection": `"timestamp"`} {
		if b := fhirtest.Bundle(typ, entries); !bytes.Contains(b, []byte(want)) || !bytes.Contains(b, []byte(`"type": "`+typ+`"`)) {
			t.Errorf("%s bundle lacks %s", typ, want)
		}
	}
}

// The rich form holds the same resources (same IDs, in order), each
// valid R4 with a narrative, laboratory results with reference ranges,
// and 1,111 of them make a Bundle of about 3.9 MiB, as a Synthea export
// of that many does.
func TestSyntheaRich(t *testing.T) {
	const n = 1111
	plain, rich := fhirtest.SyntheaEntries(7, n), fhirtest.SyntheaRichEntries(7, n)
	if len(rich) != n {
		t.Fatalf("%d rich entries, want %d", len(rich), n)
	}
	for i := range rich {
		if rich[i].ID != plain[i].ID || rich[i].ResourceType != plain[i].ResourceType {
			t.Fatalf("entry %d is %s %s, the plain form's %s %s", i, rich[i].ResourceType, rich[i].ID, plain[i].ResourceType, plain[i].ID)
		}
		if !bytes.Contains(rich[i].Resource, []byte(`"div":"<div xmlns=\"http://www.w3.org/1999/xhtml\">`)) {
			t.Fatalf("entry %d (%s) has no narrative: %.300s", i, rich[i].ResourceType, rich[i].Resource)
		}
	}
	bundle := fhirtest.SyntheaRich(7, n)
	if size := float64(len(bundle)) / (1 << 20); size < 3.7 || size > 4.1 {
		t.Errorf("the rich Bundle of %d resources is %.2f MiB, want about 3.9", n, size)
	}
	ranges, i := 0, 0
	err := fhir.ReadResources(context.Background(), bytes.NewReader(bundle), func(r *fhir.Resource) error {
		if r.Clinical.ID != rich[i].ID {
			t.Fatalf("resource %d is %q, want %q", i, r.Clinical.ID, rich[i].ID)
		}
		if bytes.Contains(rich[i].Resource, []byte(`"referenceRange"`)) {
			ranges++
		}
		i++
		return nil
	})
	if err != nil || i != n {
		t.Fatalf("%d resources read: %v", i, err)
	}
	if ranges == 0 {
		t.Error("no laboratory result has a reference range")
	}
}
