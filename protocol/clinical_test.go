package protocol

import (
	"bytes"
	"crypto/ed25519"
	"strings"
	"testing"
)

func clinicalEnvelope() *Envelope {
	key := make([]byte, ed25519.PublicKeySize)
	return &Envelope{Title: "Hemoglobin A1c 5.4 % — 2019-03-02", Kind: KindFHIR, MediaType: "application/fhir+json",
		Author: key, Subject: key, Created: 1,
		FHIR: &Clinical{ResourceType: "Observation", ID: "a1c-1", Date: "2019-03-02", Code: "http://loinc.org|4548-4",
			Display: "Hemoglobin A1c", Category: []string{"laboratory"}, Digest: bytes.Repeat([]byte{7}, 32)}}
}

func TestClinicalEnvelopeRoundTrips(t *testing.T) {
	env := clinicalEnvelope()
	hdr, err := env.Header()
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseEnvelope(hdr)
	if err != nil {
		t.Fatal(err)
	}
	if got.FHIR == nil || got.FHIR.Code != env.FHIR.Code || got.FHIR.Category[0] != "laboratory" || !bytes.Equal(got.FHIR.Digest, env.FHIR.Digest) {
		t.Fatalf("clinical fields did not survive: %+v", got.FHIR)
	}
	// An envelope without them still encodes as before (no "fhir" key).
	env.FHIR = nil
	plain, _ := env.Header()
	if bytes.Count(plain, []byte("\x64fhir")) != 1 { // the kind only
		t.Fatal("an envelope without clinical fields carries a fhir key")
	}
}

func TestClinicalEnvelopeRefusesBadFields(t *testing.T) {
	for name, mutate := range map[string]func(e *Envelope){
		"not fhir kind":  func(e *Envelope) { e.Kind = KindFile },
		"resource type":  func(e *Envelope) { e.FHIR.ResourceType = "observation" },
		"id":             func(e *Envelope) { e.FHIR.ID = "a/b" },
		"long display":   func(e *Envelope) { e.FHIR.Display = strings.Repeat("x", MaxClinicalText+1) },
		"empty category": func(e *Envelope) { e.FHIR.Category = []string{""} },
		"many categories": func(e *Envelope) {
			e.FHIR.Category = strings.Split(strings.Repeat("a,", MaxCategories)+"a", ",")
		},
		"digest": func(e *Envelope) { e.FHIR.Digest = []byte{1} },
	} {
		env := clinicalEnvelope()
		mutate(env)
		if _, err := env.Header(); err == nil {
			t.Errorf("%s: accepted", name)
		} else if !strings.HasPrefix(err.Error(), "envelope: ") {
			t.Errorf("%s: error %q lacks context", name, err)
		}
	}
}
