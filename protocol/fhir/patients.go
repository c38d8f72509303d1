package fhir

import (
	"fmt"
	"slices"
	"strings"
)

// PatientLink is what CheckPatients needs of one resource, collected
// while reading (LinkOf).
type PatientLink struct {
	// Position is the Resource's ("entry[3]"), naming a Patient
	// without id or fullUrl.
	Position     string
	ResourceType string
	ID           string
	FullURL      string
	// PatientRef and AccountIDs are the Resource's.
	PatientRef string
	AccountIDs []string
}

// LinkOf returns the PatientLink of a resource.
func LinkOf(r *Resource) PatientLink {
	return PatientLink{
		Position: r.Position, ResourceType: r.Clinical.ResourceType, ID: r.Clinical.ID, FullURL: r.FullURL,
		PatientRef: r.PatientRef, AccountIDs: r.AccountIDs,
	}
}

// person is one patient the resources are about: a Patient resource, or
// a reference to one that is not among them.
type person struct {
	name     string   // how an error names it: "Patient/a", or the reference
	accounts []string // accounts it names (AccountSystem identifiers)
}

// CheckPatients decides which resources an import for account keeps.
// The resources must be about one person: a Patient and the references
// to it by its fullUrl, by "Patient/ID" (relative or absolute) or by an
// identifier it has are one patient; a reference to a Patient that is
// not among the resources is a patient of its own, and a reference that
// resolves to another resource (a Group) is none. It refuses resources
// of more than one patient, and a patient who names another account
// (an AccountSystem identifier, on the Patient or in a logical
// reference), unless chosen (the --patient ID: a Patient's id or
// fullUrl) names the patient who is the account: then the resources of
// the other patients are not kept. Resources about no patient
// (Practitioner, Organization, Medication) are always kept. keep[i] is
// for rs[i]; an error is one line saying what to do.
func CheckPatients(rs []PatientLink, account, chosen string) ([]bool, error) {
	var people []*person
	alias := map[string]*person{}     // every name of a known patient
	others := map[string]bool{}       // fullUrls of resources that are not Patients
	owner := make([]*person, len(rs)) // the patient each resource is about
	for i, r := range rs {
		if r.ResourceType != "Patient" {
			if r.FullURL != "" {
				others[r.FullURL] = true
			}
			continue
		}
		names := patientAliases(r)
		var p *person
		for _, n := range names {
			if q := alias[n]; q != nil {
				p = q
				break
			}
		}
		if p == nil {
			p = &person{name: names[0]}
			people = append(people, p)
		}
		for _, a := range r.AccountIDs {
			if !slices.Contains(p.accounts, a) {
				p.accounts = append(p.accounts, a)
			}
		}
		for _, n := range names {
			alias[n] = p
		}
		owner[i] = p
	}
	for i, r := range rs {
		if r.ResourceType == "Patient" || r.PatientRef == "" {
			continue
		}
		if p := alias[r.PatientRef]; p != nil {
			owner[i] = p
			continue
		}
		if others[r.PatientRef] {
			continue // a Group or a Device in the input
		}
		p := &person{name: r.PatientRef}
		if a, ok := strings.CutPrefix(r.PatientRef, "Patient?identifier="+AccountSystem+"|"); ok {
			p.accounts = []string{a}
		}
		people = append(people, p)
		alias[r.PatientRef] = p
		owner[i] = p
	}

	keep := make([]bool, len(rs))
	var self *person
	if chosen != "" {
		for _, n := range []string{"Patient/" + chosen, chosen, "urn:uuid:" + chosen} {
			if p := alias[n]; p != nil {
				self = p
				break
			}
		}
		if self == nil {
			return nil, fmt.Errorf("--patient %s: no such Patient among the resources (%s): give the id of one of them", clip(chosen), namesOf(people))
		}
	} else {
		switch {
		case len(people) > 1:
			return nil, fmt.Errorf("the input holds resources of %d patients (%s): say which one is this account with --patient ID", len(people), namesOf(people))
		case len(people) == 1 && len(people[0].accounts) > 0 && !slices.Contains(people[0].accounts, account):
			p := people[0]
			return nil, fmt.Errorf("%s is account %s, not this account %s: import it for that account (--for %s), or say with --patient ID that it is this account",
				clip(p.name), clip(p.accounts[0]), account, clip(p.accounts[0]))
		}
	}
	for i := range rs {
		keep[i] = self == nil || owner[i] == nil || owner[i] == self
	}
	return keep, nil
}

// patientAliases lists the names a Patient is referenced by.
func patientAliases(r PatientLink) []string {
	var names []string
	if r.ID != "" {
		names = append(names, "Patient/"+r.ID)
	}
	if r.FullURL != "" {
		names = append(names, r.FullURL)
		if n := normalizeRef(r.FullURL); n != "" && n != r.FullURL {
			names = append(names, n)
		}
	}
	for _, a := range r.AccountIDs {
		names = append(names, "Patient?identifier="+AccountSystem+"|"+a)
	}
	if len(names) == 0 {
		names = append(names, "the Patient at "+r.Position)
	}
	return names
}

func namesOf(people []*person) string {
	var names []string
	for _, p := range people {
		names = append(names, clip(p.name))
	}
	slices.Sort(names)
	if len(names) > 5 {
		names = append(names[:5], fmt.Sprintf("and %d more", len(names)-5))
	}
	return printable(strings.Join(names, ", "))
}
