package fhir

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/blockmrs/blockmrs/protocol/fhir/fhirtest"
)

const me = "12D3KooWMe"

func pat(id, url string, accounts ...string) PatientLink {
	return PatientLink{Position: "entry[?]", ResourceType: "Patient", ID: id, FullURL: url, AccountIDs: accounts}
}

func about(typ, ref string) PatientLink {
	return PatientLink{ResourceType: typ, ID: typ + "1", PatientRef: ref}
}

func TestCheckPatients(t *testing.T) {
	cases := []struct {
		name    string
		rs      []PatientLink
		chosen  string
		keep    []bool
		wantErr string
	}{
		{"one patient by fullUrl and id", []PatientLink{
			pat("a", "urn:uuid:aa"), about("Observation", "urn:uuid:aa"), about("Condition", "Patient/a"), about("Practitioner", ""),
		}, "", []bool{true, true, true, true}, ""},
		{"absolute fullUrl is Patient/ID", []PatientLink{
			pat("a", "https://ehr.example/fhir/Patient/a"), about("Observation", "Patient/a"),
		}, "", []bool{true, true}, ""},
		{"resources without a Patient, one reference", []PatientLink{
			about("Observation", "Patient/x"), about("Observation", "Patient/x"),
		}, "", []bool{true, true}, ""},
		{"a reference to a Group in the input is no patient", []PatientLink{
			pat("a", "urn:uuid:aa"), {ResourceType: "Group", FullURL: "urn:uuid:gg"}, about("Observation", "urn:uuid:gg"),
		}, "", []bool{true, true, true}, ""},
		{"no patient at all", []PatientLink{about("Organization", ""), about("Medication", "")}, "", []bool{true, true}, ""},
		{"the Patient is this account", []PatientLink{pat("a", "urn:uuid:aa", me), about("Observation", "urn:uuid:aa")}, "", []bool{true, true}, ""},
		{"two patients", []PatientLink{
			pat("a", "urn:uuid:aa"), pat("b", "urn:uuid:bb"), about("Observation", "urn:uuid:bb"),
		}, "", nil, "the input holds resources of 2 patients (Patient/a, Patient/b): say which one is this account with --patient ID"},
		{"a patient only referenced", []PatientLink{
			pat("a", "urn:uuid:aa"), about("Observation", "Patient/zz"),
		}, "", nil, "2 patients (Patient/a, Patient/zz)"},
		{"choose one of two", []PatientLink{
			pat("a", "urn:uuid:aa"), pat("b", "urn:uuid:bb"), about("Observation", "urn:uuid:bb"), about("Observation", "Patient/a"), about("Organization", ""),
		}, "b", []bool{false, true, true, false, true}, ""},
		{"choose by fullUrl", []PatientLink{
			pat("a", "urn:uuid:aa"), pat("b", "urn:uuid:bb"), about("Observation", "urn:uuid:bb"),
		}, "urn:uuid:aa", []bool{true, false, false}, ""},
		{"choose an unknown one", []PatientLink{pat("a", "urn:uuid:aa"), pat("b", "urn:uuid:bb")}, "c", nil,
			"--patient c: no such Patient among the resources (Patient/a, Patient/b): give the id of one of them"},
		{"the Patient is another account", []PatientLink{pat("a", "urn:uuid:aa", "12D3KooWOther"), about("Observation", "urn:uuid:aa")}, "", nil,
			"Patient/a is account 12D3KooWOther, not this account 12D3KooWMe: import it for that account (--for 12D3KooWOther), or say with --patient ID that it is this account"},
		{"another account, said to be this one", []PatientLink{pat("a", "urn:uuid:aa", "12D3KooWOther"), about("Observation", "urn:uuid:aa")}, "a", []bool{true, true}, ""},
		{"a logical reference to another account", []PatientLink{
			about("Observation", "Patient?identifier="+AccountSystem+"|12D3KooWOther"),
		}, "", nil, "is account 12D3KooWOther, not this account"},
		{"a logical reference to this account is the Patient", []PatientLink{
			pat("a", "urn:uuid:aa", me), about("Observation", "Patient?identifier="+AccountSystem+"|"+me), about("Observation", "Patient/a"),
		}, "", []bool{true, true, true}, ""},
		{"a Patient twice (same id) is one", []PatientLink{pat("a", "urn:uuid:aa"), pat("a", "")}, "", []bool{true, true}, ""},
		{"Patients without id or fullUrl are two", []PatientLink{
			{Position: "entry[0]", ResourceType: "Patient"}, {Position: "entry[1]", ResourceType: "Patient"},
		}, "", nil, "2 patients (the Patient at entry[0], the Patient at entry[1])"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			keep, err := CheckPatients(c.rs, me, c.chosen)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("error %v, want %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(keep, c.keep) {
				t.Fatalf("keep %v, want %v", keep, c.keep)
			}
		})
	}
}

// A Synthea bundle is one patient: every resource is kept; with a second
// patient's bundle appended the import is refused, and --patient keeps
// exactly the first patient's resources.
func TestCheckPatientsSynthea(t *testing.T) {
	links := func(data []byte) []PatientLink {
		var out []PatientLink
		if err := ReadResources(context.Background(), bytes.NewReader(data), func(r *Resource) error {
			out = append(out, LinkOf(r))
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return out
	}
	one := links(fhirtest.Synthea(1, 200))
	keep, err := CheckPatients(one, me, "")
	if err != nil || slices.Contains(keep, false) {
		t.Fatalf("one patient: %v %v", keep, err)
	}
	a, b := fhirtest.SyntheaEntries(1, 200), fhirtest.SyntheaEntries(2, 100)
	both := links(fhirtest.Bundle("collection", append(slices.Clone(a), b...)))
	if _, err := CheckPatients(both, me, ""); err == nil || !strings.Contains(err.Error(), "2 patients") {
		t.Fatalf("two patients: %v", err)
	}
	keep, err = CheckPatients(both, me, a[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	for i, k := range keep {
		if k != (i < len(a)) {
			t.Fatalf("resource %d (%s) kept %v", i, both[i].ResourceType, k)
		}
	}
}
