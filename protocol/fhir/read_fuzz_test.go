package fhir

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/blockmrs/blockmrs/protocol/fhir/fhirtest"
)

// ReadResources never panics; it either refuses the input or hands out
// resources whose Raw is valid JSON found in the input, in order, with
// clinical fields within the envelope's limits. Run it with
// `go test ./protocol/fhir -run ^$ -fuzz FuzzReadResources -fuzzminimizetime 5s`.
func FuzzReadResources(f *testing.F) {
	entries := fhirtest.SyntheaEntries(9, 3)
	for _, seed := range [][]byte{
		fhirtest.Bundle("transaction", entries[:2]),
		fhirtest.Bundle("searchset", entries[1:3]),
		fhirtest.NDJSON(entries),
		entries[1].Resource,
		append([]byte{0xEF, 0xBB, 0xBF}, entries[0].Resource...),
		[]byte(`{"entry":[{"resource":{"resourceType":"Patient"},"fullUrl":"urn:uuid:1"}],"resourceType":"Bundle"}`),
		[]byte(`{"resourceType":"Observation","code":{"coding":[],"coding":[]}}`),
		[]byte(`{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"Patient","id":"p"}}]} x`),
		[]byte(`<Bundle/>`),
		[]byte(`{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"Patient","id":"p","name":[{"given":"A"}]}}`),
		[]byte("{\"resourceType\":\"Patient\"}\n\n{\"resourceType\":\"Foo\"}\n"),
		[]byte(`{"resourceType":"Patient","extension":` + strings.Repeat("[", 120) + strings.Repeat("]", 120) + `}`),
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		at := 0
		err := ReadResources(context.Background(), bytes.NewReader(data), func(r *Resource) error {
			if !json.Valid(r.Raw) {
				t.Fatalf("%s: Raw is not JSON", r.Position)
			}
			j := bytes.Index(data[at:], r.Raw)
			if j < 0 {
				t.Fatalf("%s: Raw is not in the input after %d", r.Position, at)
			}
			at += j + len(r.Raw)
			if err := r.Clinical.Validate(); err != nil {
				t.Fatalf("%s: %v", r.Position, err)
			}
			if len(r.Title) > MaxTitle || strings.ContainsAny(r.Title, "\n\r\t") {
				t.Fatalf("%s: title %q", r.Position, r.Title)
			}
			return nil
		})
		if err != nil {
			if !errors.Is(err, ErrInput) && !errors.Is(err, ErrXML) {
				t.Fatalf("error outside ErrInput: %v", err)
			}
			if strings.ContainsAny(err.Error(), "\n\r") {
				t.Fatalf("error of more than one line: %q", err)
			}
		}
	})
}
