package fhir

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"slices"
	"strings"
	"time"

	"github.com/blockmrs/blockmrs/protocol"
)

// Codes of the International Patient Summary (HL7 IPS, on FHIR R4).
const (
	// IPSDocument is the LOINC code of a patient summary document.
	IPSDocument = "60591-5"
	// IPSMedications, IPSAllergies and IPSProblems are the required
	// sections; IPSResults the optional results section.
	IPSMedications = "10160-0"
	IPSAllergies   = "48765-2"
	IPSProblems    = "11450-4"
	IPSResults     = "30954-2"
	// EmptyReasonSystem is FHIR's list-empty-reason code system.
	EmptyReasonSystem = "http://terminology.hl7.org/CodeSystem/list-empty-reason"
)

// SummaryResource is one of the patient's records offered to Summary.
type SummaryResource struct {
	// FullURL is the resource's stored fullUrl ("" for none).
	FullURL string
	// Raw is the resource's JSON as stored.
	Raw []byte
	// Clinical is the record envelope's clinical fields.
	Clinical protocol.Clinical
}

// SummaryInput is what a summary is built from.
type SummaryInput struct {
	// Patient is the patient's Patient resource as stored, with its
	// fullUrl; when nil a Patient is built from Account and Name.
	Patient        []byte
	PatientFullURL string
	// Account is the account the summary is of (an AccountSystem
	// identifier of the built Patient); Name its name for people.
	Account, Name string
	// Resources are the patient's records; those of the summary's
	// sections are included, the rest left out.
	Resources []SummaryResource
	// Now is the summary's timestamp and the Composition's date.
	Now time.Time
}

// section is one section of the summary.
type section struct {
	code, display, title, empty string
	required                    bool
	takes                       func(r *SummaryResource) bool
}

var sections = []section{
	{IPSMedications, "History of Medication use Narrative", "Medication Summary", "No information about medications", true,
		func(r *SummaryResource) bool {
			return r.Clinical.ResourceType == "MedicationStatement" || r.Clinical.ResourceType == "MedicationRequest"
		}},
	{IPSAllergies, "Allergies and adverse reactions Document", "Allergies and Intolerances", "No information about allergies", true,
		func(r *SummaryResource) bool { return r.Clinical.ResourceType == "AllergyIntolerance" }},
	{IPSProblems, "Problem list - Reported", "Problem List", "No information about problems", true,
		func(r *SummaryResource) bool { return r.Clinical.ResourceType == "Condition" }},
	{IPSResults, "Relevant diagnostic tests/laboratory data Narrative", "Results", "", false,
		func(r *SummaryResource) bool {
			return r.Clinical.ResourceType == "Observation" && slices.Contains(r.Clinical.Category, Laboratory)
		}},
}

// Summary builds an International Patient Summary: a FHIR R4 document
// Bundle (identifier, timestamp) whose first entry is a Composition
// (status final, type LOINC 60591-5, subject and author the Patient,
// date, title) with the Medications (10160-0: MedicationStatement and
// MedicationRequest), Allergies (48765-2: AllergyIntolerance) and
// Problems (11450-4: Condition) sections, each with its entries or an
// emptyReason, and a Results section (30954-2: the latest laboratory
// Observation of each code) when there are any; then the Patient, then
// every resource a section references, byte-exact. Resources entered in
// error are left out. Each section's narrative lists its entries by
// title, escaped: nothing from a record is markup. The output is the
// same for the same input.
func Summary(in SummaryInput) ([]byte, error) {
	if in.Now.IsZero() {
		return nil, errors.New("summary: no time given")
	}
	now := in.Now.UTC().Format(time.RFC3339)
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00%s\x00", now, in.Account, in.PatientFullURL)
	h.Write(in.Patient)

	patient, patientURL := bytes.TrimSpace(in.Patient), in.PatientFullURL
	if patient != nil {
		rt, id, err := checkJSON(patient, MaxDepth)
		if err != nil || rt != "Patient" {
			return nil, fmt.Errorf("summary: the patient's record is not a Patient resource (%s)", clip(rt))
		}
		if patientURL == "" {
			patientURL = FullURL(rt, id)
		}
	}

	// Sort the resources into sections; the latest result of a code wins.
	type placed struct {
		r      *SummaryResource
		url    string
		status string
	}
	chosen := make([][]placed, len(sections))
	latest := map[string]int{} // result code -> index in chosen[results]
	seen := map[string]bool{}
	for i := range in.Resources {
		r := &in.Resources[i]
		raw := bytes.TrimSpace(r.Raw)
		if r.Clinical.ResourceType == "Patient" {
			continue
		}
		status, inError := recordStatus(raw)
		if inError {
			continue
		}
		for s, sec := range sections {
			if !sec.takes(r) {
				continue
			}
			url := r.FullURL
			if url == "" {
				url = FullURL(r.Clinical.ResourceType, r.Clinical.ID)
			}
			if url == "" {
				sum := sha256.Sum256(raw)
				url = "urn:uuid:" + uuidOf(sum[:])
			}
			if seen[url] {
				break
			}
			p := placed{r: r, url: url, status: status}
			if sec.code == IPSResults && r.Clinical.Code != "" {
				if j, ok := latest[r.Clinical.Code]; ok {
					if chosen[s][j].r.Clinical.Date < r.Clinical.Date {
						delete(seen, chosen[s][j].url)
						chosen[s][j] = p
						seen[url] = true
					}
					break
				}
				latest[r.Clinical.Code] = len(chosen[s])
			}
			seen[url] = true
			chosen[s] = append(chosen[s], p)
			break
		}
	}
	for _, c := range chosen {
		for _, p := range c {
			fmt.Fprintf(h, "%s\x00", p.url)
			h.Write(p.r.Raw)
		}
	}
	sum := h.Sum(nil)
	second := sha256.Sum256(sum)
	docID, compID, patientID := uuidOf(sum[0:16]), uuidOf(sum[16:32]), uuidOf(second[0:16])

	if patient == nil {
		if in.Account == "" {
			return nil, errors.New("summary: neither a Patient record nor an account to build one from")
		}
		p := ipsPatient{ResourceType: "Patient", ID: patientID, Identifier: []identifier{{System: AccountSystem, Value: in.Account}}}
		if name := strings.TrimSpace(printable(in.Name)); name != "" {
			p.Name = []humanName{{Text: name}}
		}
		var err error
		if patient, err = json.Marshal(p); err != nil {
			return nil, fmt.Errorf("summary: %w", err)
		}
		patientURL = "urn:uuid:" + patientID
	}
	if patientURL == "" {
		patientURL = "urn:uuid:" + patientID
	}

	comp := ipsComposition{
		ResourceType: "Composition",
		ID:           compID,
		Status:       "final",
		Type:         concept{Coding: []Coding{{System: LOINC, Code: IPSDocument, Display: "Patient summary Document"}}},
		Subject:      ref{patientURL},
		Date:         now,
		Author:       []ref{{patientURL}},
		Title:        "International Patient Summary",
	}
	for s, sec := range sections {
		if len(chosen[s]) == 0 && !sec.required {
			continue
		}
		js := ipsSection{Title: sec.title, Code: concept{Coding: []Coding{{System: LOINC, Code: sec.code, Display: sec.display}}}}
		var items []string
		for _, p := range chosen[s] {
			js.Entry = append(js.Entry, ref{p.url})
			line := Extract(p.r.Raw).Title
			if p.status != "" && p.r.Clinical.ResourceType != "Observation" {
				line += " (" + p.status + ")"
			}
			items = append(items, "<li>"+html.EscapeString(printable(line))+"</li>")
		}
		if len(js.Entry) > 0 {
			js.Text = narrative("<ul>" + strings.Join(items, "") + "</ul>")
		} else {
			js.Text = narrative("<p>" + html.EscapeString(sec.empty) + "</p>")
			js.EmptyReason = &concept{Coding: []Coding{{System: EmptyReasonSystem, Code: "unavailable", Display: "Unavailable"}}, Text: sec.empty}
		}
		comp.Section = append(comp.Section, js)
	}
	compJSON, err := json.Marshal(comp)
	if err != nil {
		return nil, fmt.Errorf("summary: %w", err)
	}

	var out bytes.Buffer
	bw := NewBundleWriter(&out, "document")
	bw.Timestamp, bw.identifier = now, "urn:uuid:"+docID
	if err := bw.Add("urn:uuid:"+compID, compJSON); err != nil {
		return nil, fmt.Errorf("summary: %w", err)
	}
	if err := bw.Add(patientURL, patient); err != nil {
		return nil, fmt.Errorf("summary: the Patient: %w", err)
	}
	for _, c := range chosen {
		for _, p := range c {
			if err := bw.Add(p.url, p.r.Raw); err != nil {
				return nil, fmt.Errorf("summary: %s %s: %w", p.r.Clinical.ResourceType, clip(p.r.Clinical.ID), err)
			}
		}
	}
	if err := bw.Close(); err != nil {
		return nil, fmt.Errorf("summary: %w", err)
	}
	return out.Bytes(), nil
}

// The parts of the resources Summary writes, in FHIR's element order.
type (
	ref struct {
		Reference string `json:"reference"`
	}
	concept struct {
		Coding []Coding `json:"coding"`
		Text   string   `json:"text,omitempty"`
	}
	narrativeText struct {
		Status string `json:"status"`
		Div    string `json:"div"`
	}
	identifier struct {
		System string `json:"system"`
		Value  string `json:"value"`
	}
	humanName struct {
		Text string `json:"text"`
	}
	ipsPatient struct {
		ResourceType string       `json:"resourceType"`
		ID           string       `json:"id"`
		Identifier   []identifier `json:"identifier"`
		Name         []humanName  `json:"name,omitempty"`
	}
	ipsSection struct {
		Title       string        `json:"title"`
		Code        concept       `json:"code"`
		Text        narrativeText `json:"text"`
		Entry       []ref         `json:"entry,omitempty"`
		EmptyReason *concept      `json:"emptyReason,omitempty"`
	}
	ipsComposition struct {
		ResourceType string       `json:"resourceType"`
		ID           string       `json:"id"`
		Status       string       `json:"status"`
		Type         concept      `json:"type"`
		Subject      ref          `json:"subject"`
		Date         string       `json:"date"`
		Author       []ref        `json:"author"`
		Title        string       `json:"title"`
		Section      []ipsSection `json:"section"`
	}
)

// narrative is a generated Narrative holding body, already escaped.
func narrative(body string) narrativeText {
	return narrativeText{Status: "generated", Div: `<div xmlns="http://www.w3.org/1999/xhtml">` + body + `</div>`}
}

// recordStatus reads a resource's status for people (a Condition's or
// AllergyIntolerance's clinical status, else its status) and whether it
// was entered in error.
func recordStatus(raw []byte) (string, bool) {
	var r struct {
		Status         string          `json:"status"`
		ClinicalStatus codeableConcept `json:"clinicalStatus"`
		Verification   codeableConcept `json:"verificationStatus"`
	}
	if json.Unmarshal(raw, &r) != nil {
		return "", false
	}
	for _, c := range r.Verification.Coding {
		if c.Code == "entered-in-error" {
			return "", true
		}
	}
	if r.Status == "entered-in-error" {
		return "", true
	}
	for _, c := range r.ClinicalStatus.Coding {
		if c.Code != "" {
			return c.Code, false
		}
	}
	return r.Status, false
}

// uuidOf formats 16 bytes of a hash as a UUID (version 8: custom).
func uuidOf(b []byte) string {
	var u [16]byte
	copy(u[:], b)
	u[6] = u[6]&0x0f | 0x80
	u[8] = u[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}
