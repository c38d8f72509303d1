package fhir

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/blockmrs/blockmrs/protocol/fhir/fhirtest"
)

// libraryValid checks data (a whole Bundle) with the FHIR library.
func libraryValid(t *testing.T, data []byte) {
	t.Helper()
	_, u, err := codecs()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := u.Unmarshal(data); err != nil {
		t.Fatalf("the library refuses the Bundle: %v", err)
	}
}

// An export of what was read gives back, read again, the same resources
// byte for byte with the same fullUrls, in the same order; the Bundle is
// valid R4 as a whole.
func TestExportRoundTrip(t *testing.T) {
	data := fhirtest.Synthea(21, 400)
	in := mustRead(t, data)
	var out bytes.Buffer
	bw := NewBundleWriter(&out, "collection")
	bw.Timestamp = "2026-12-01T12:00:00Z"
	for _, r := range in {
		if err := bw.Add(r.FullURL, r.Raw); err != nil {
			t.Fatal(err)
		}
	}
	if err := bw.Close(); err != nil {
		t.Fatal(err)
	}
	back := mustRead(t, out.Bytes())
	if len(back) != len(in) {
		t.Fatalf("%d resources back, want %d", len(back), len(in))
	}
	for i := range in {
		if !bytes.Equal(back[i].Raw, in[i].Raw) || back[i].FullURL != in[i].FullURL || !bytes.Equal(back[i].Clinical.Digest, in[i].Clinical.Digest) {
			t.Fatalf("resource %d differs after export", i)
		}
	}
	if !bytes.Contains(out.Bytes(), []byte(`"type":"collection","timestamp":"2026-12-01T12:00:00Z","entry":[`)) {
		t.Fatalf("Bundle header: %.120s", out.Bytes())
	}
	libraryValid(t, out.Bytes())
}

// Without a stored fullUrl an entry gets urn:uuid:ID for a UUID id,
// TYPE/ID otherwise, none without an id; white space around a resource
// is not kept, its bytes are.
func TestExportFullURL(t *testing.T) {
	if got := FullURL("Patient", "6A2E7F5C-0D3B-4F1E-9A8C-2B7D4E6F8A1C"); got != "urn:uuid:6a2e7f5c-0d3b-4f1e-9a8c-2b7d4e6f8a1c" {
		t.Fatal(got)
	}
	var out bytes.Buffer
	bw := NewBundleWriter(&out, "collection")
	resources := []string{
		`{"resourceType":"Patient","id":"6a2e7f5c-0d3b-4f1e-9a8c-2b7d4e6f8a1c"}`,
		`{"resourceType":"Observation", "id":"obs-1","status":"final","code":{"text":"x"},"subject":{"reference":"urn:uuid:6a2e7f5c-0d3b-4f1e-9a8c-2b7d4e6f8a1c"}}`,
		`{"resourceType":"Organization"}`,
		`{"resourceType":"Organization","id":"o"}`,
	}
	for i, r := range resources {
		raw := r
		if i == 1 {
			raw = "\n  " + r + "\n"
		}
		url := ""
		if i == 3 {
			url = "https://ehr.example/fhir/Organization/o"
		}
		if err := bw.Add(url, []byte(raw)); err != nil {
			t.Fatal(err)
		}
	}
	if err := bw.Close(); err != nil {
		t.Fatal(err)
	}
	back := mustRead(t, out.Bytes())
	wantURLs := []string{"urn:uuid:6a2e7f5c-0d3b-4f1e-9a8c-2b7d4e6f8a1c", "Observation/obs-1", "", "https://ehr.example/fhir/Organization/o"}
	for i, r := range back {
		if r.FullURL != wantURLs[i] || string(r.Raw) != resources[i] {
			t.Fatalf("entry %d: fullUrl %q raw %s", i, r.FullURL, r.Raw)
		}
	}
	libraryValid(t, out.Bytes())
}

// An empty export is a valid Bundle without entries; a resource twice,
// bytes that are not a resource and a failing writer are errors.
func TestExportRefuses(t *testing.T) {
	var out bytes.Buffer
	bw := NewBundleWriter(&out, "collection")
	if err := bw.Close(); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); got != "{\"resourceType\":\"Bundle\",\"type\":\"collection\"}\n" {
		t.Fatalf("empty Bundle %q", got)
	}
	libraryValid(t, out.Bytes())
	if rs := mustRead(t, out.Bytes()); len(rs) != 0 {
		t.Fatalf("%d resources in an empty Bundle", len(rs))
	}

	bw = NewBundleWriter(&bytes.Buffer{}, "collection")
	p := []byte(`{"resourceType":"Patient","id":"p"}`)
	if err := bw.Add("", p); err != nil {
		t.Fatal(err)
	}
	if err := bw.Add("Patient/p", p); err == nil || !strings.Contains(err.Error(), `fullUrl "Patient/p" is already in the Bundle`) {
		t.Fatalf("twice: %v", err)
	}
	for _, bad := range []string{`not json`, `{"id":"x"}`, `[1]`, `{"resourceType":"Patient"} {}`, `{"resourceType":"Patient","a":1,"a":2}`} {
		if err := bw.Add("", []byte(bad)); err == nil {
			t.Fatalf("%s accepted", bad)
		}
	}

	boom := errors.New("disk full")
	bw = NewBundleWriter(&failing{boom}, "collection")
	for range 3000 {
		if err := bw.Add("", []byte(`{"resourceType":"Basic","code":{"text":"`+strings.Repeat("x", 100)+`"}}`)); err != nil {
			break
		}
	}
	if err := bw.Close(); !errors.Is(err, boom) {
		t.Fatalf("close after a write error: %v", err)
	}
}

// failing is also an io.Writer that fails.
func (f *failing) Write([]byte) (int, error) { return 0, f.err }
