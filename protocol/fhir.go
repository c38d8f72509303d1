package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
)

// MaxFHIRSize is the largest FHIR resource or bundle accepted as a record.
const MaxFHIRSize = 64 << 20

var fhirTypeRe = regexp.MustCompile(`^[A-Z][A-Za-z]{1,63}$`)

// ValidateFHIR checks that data is one FHIR R4 JSON resource: a single JSON
// object with a resourceType; a Bundle's entries must each hold a resource
// with a resourceType. It returns the resource type. It checks structure,
// not conformance to every FHIR profile.
func ValidateFHIR(data []byte) (string, error) {
	if len(data) > MaxFHIRSize {
		return "", fmt.Errorf("FHIR: %d bytes, over the %d-byte limit", len(data), MaxFHIRSize)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	var res struct {
		ResourceType string `json:"resourceType"`
		Entry        []struct {
			Resource *struct {
				ResourceType string `json:"resourceType"`
			} `json:"resource"`
		} `json:"entry"`
	}
	if err := dec.Decode(&res); err != nil {
		return "", fmt.Errorf("FHIR: not a JSON object: %v", err)
	}
	if dec.More() {
		return "", errors.New("FHIR: trailing data after the JSON object")
	}
	if _, err := dec.Token(); err == nil {
		return "", errors.New("FHIR: trailing data after the JSON object")
	}
	if !json.Valid(data) {
		return "", errors.New("FHIR: invalid JSON")
	}
	if !fhirTypeRe.MatchString(res.ResourceType) {
		return "", errors.New(`FHIR: missing or invalid "resourceType"`)
	}
	if res.ResourceType == "Bundle" {
		for i, e := range res.Entry {
			if e.Resource != nil && !fhirTypeRe.MatchString(e.Resource.ResourceType) {
				return "", fmt.Errorf(`FHIR: Bundle entry %d: resource without a valid "resourceType"`, i)
			}
		}
	}
	return res.ResourceType, nil
}
