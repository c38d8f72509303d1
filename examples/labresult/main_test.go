package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestLabResultExample(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), t.TempDir(), &out); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	for _, want := range []string{"Pat Doe read \"Hemoglobin, 2026-11-20\": a FHIR Observation", "Dr Grey read", "signed by City Lab", "readable by Dr Grey (grantee)", "readable by Pat Doe (subject)"} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
}
