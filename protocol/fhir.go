package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"unicode/utf8"
)

// MaxFHIRSize is the largest FHIR resource or bundle accepted as a record.
const MaxFHIRSize = 64 << 20

var fhirTypeRe = regexp.MustCompile(`^[A-Z][A-Za-z]{1,63}$`)

// IsResourceTypeName tells whether s has the form of a FHIR resource
// type name ("Observation"); whether R4 defines it is protocol/fhir's to
// say.
func IsResourceTypeName(s string) bool { return fhirTypeRe.MatchString(s) }

// ValidateFHIR checks that data is one FHIR R4 JSON resource: valid UTF-8
// JSON holding a single object, with no duplicate keys in that object, and
// a "resourceType" (exactly that spelling) naming a resource type; every
// entry of a Bundle must hold a resource with a resourceType. It returns
// the resource type. It checks structure, not conformance to every FHIR
// profile.
func ValidateFHIR(data []byte) (string, error) {
	if len(data) > MaxFHIRSize {
		return "", fmt.Errorf("FHIR: %d bytes, over the %d-byte limit", len(data), MaxFHIRSize)
	}
	if !utf8.Valid(data) {
		return "", errors.New("FHIR: not valid UTF-8")
	}
	if !json.Valid(data) {
		return "", errors.New("FHIR: invalid JSON")
	}
	fields, err := objectFields(data)
	if err != nil {
		return "", err
	}
	rt, err := resourceType(fields)
	if err != nil {
		return "", err
	}
	if rt == "Bundle" {
		if raw, ok := fields["entry"]; ok {
			var entries []json.RawMessage
			if err := json.Unmarshal(raw, &entries); err != nil {
				return "", errors.New(`FHIR: Bundle "entry" is not an array`)
			}
			for i, e := range entries {
				ef, err := objectFields(e)
				if err != nil {
					return "", fmt.Errorf("FHIR: Bundle entry %d: %v", i, err)
				}
				res, ok := ef["resource"]
				if !ok {
					continue
				}
				rf, err := objectFields(res)
				if err != nil {
					return "", fmt.Errorf("FHIR: Bundle entry %d resource: %v", i, err)
				}
				if _, err := resourceType(rf); err != nil {
					return "", fmt.Errorf("FHIR: Bundle entry %d: %v", i, err)
				}
			}
		}
	}
	return rt, nil
}

// objectFields splits one JSON object (already known to be valid JSON)
// into its fields, rejecting anything else and duplicate keys.
func objectFields(data []byte) (map[string]json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	tok, err := dec.Token()
	if err != nil {
		return nil, fmt.Errorf("FHIR: %v", err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, errors.New("FHIR: not a JSON object")
	}
	fields := map[string]json.RawMessage{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("FHIR: %v", err)
		}
		key, _ := tok.(string)
		if _, dup := fields[key]; dup {
			return nil, fmt.Errorf("FHIR: duplicate key %q", truncate(key))
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, fmt.Errorf("FHIR: %v", err)
		}
		fields[key] = v
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return nil, fmt.Errorf("FHIR: %v", err)
	}
	if _, err := dec.Token(); err == nil {
		return nil, errors.New("FHIR: trailing data after the JSON object")
	}
	return fields, nil
}

func resourceType(fields map[string]json.RawMessage) (string, error) {
	raw, ok := fields["resourceType"]
	if !ok {
		return "", errors.New(`FHIR: missing "resourceType"`)
	}
	var rt string
	if err := json.Unmarshal(raw, &rt); err != nil || !fhirTypeRe.MatchString(rt) {
		return "", errors.New(`FHIR: "resourceType" is not a resource type name`)
	}
	return rt, nil
}
