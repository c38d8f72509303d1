package fhir

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// Each kind of audit event gives an AuditEvent the FHIR library accepts
// as R4, with the codes the issue asks for; a Bundle of them is valid R4
// as a whole.
func TestAuditEventsAreR4(t *testing.T) {
	at := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	patient, doctor := "12D3KooWPatient", "12D3KooWDoctor"
	var ins []AuditInput
	for i, kind := range []string{"read", "serve", "emergency", "grant", "request"} {
		ins = append(ins, AuditInput{ID: "e" + string(rune('0'+i)), Recorded: at, Kind: kind, Account: doctor, Peer: "12D3KooWNode",
			Patient: patient, Records: []string{"bafyrecord"}, Rule: "read/grantee", Reason: "holds a live grant", Observer: "12D3KooWNode"})
	}
	for _, in := range ins {
		data, err := AuditEvent(in)
		if err != nil {
			t.Fatalf("%s: %v", in.Kind, err)
		}
		var ev struct {
			Type           Coding    `json:"type"`
			Subtype        []Coding  `json:"subtype"`
			PurposeOfEvent []concept `json:"purposeOfEvent"`
			Entity         []auditEntity
		}
		if err := json.Unmarshal(data, &ev); err != nil {
			t.Fatal(err)
		}
		switch in.Kind {
		case "read", "serve":
			if ev.Type.System != AuditEventTypeSystem || ev.Type.Code != "rest" || len(ev.Subtype) != 1 ||
				ev.Subtype[0].System != RestfulSystem || ev.Subtype[0].Code != "read" {
				t.Fatalf("%s: type %+v subtype %+v", in.Kind, ev.Type, ev.Subtype)
			}
		case "emergency":
			if ev.Type.Code != "110113" || ev.Subtype[0].Code != "110127" || ev.PurposeOfEvent[0].Coding[0].Code != "ETREAT" {
				t.Fatalf("emergency: %s", data)
			}
		}
		if ev.Entity[0].What.Identifier.Value != patient || ev.Entity[0].Role.Code != "1" {
			t.Fatalf("%s: the patient is not the first entity: %s", in.Kind, data)
		}
	}
	bundle, err := AuditBundle(ins, at)
	if err != nil {
		t.Fatal(err)
	}
	libraryValid(t, bundle)
	if !strings.Contains(string(bundle), `"fullUrl":"urn:uuid:`) && !strings.Contains(string(bundle), `"fullUrl":`) {
		t.Fatalf("no fullUrl in %s", bundle)
	}
	// A resource the library refuses is not exported.
	if _, err := AuditEvent(AuditInput{ID: "bad id!", Recorded: at, Kind: "read", Account: doctor, Observer: "n"}); err == nil {
		t.Fatal("an AuditEvent with an invalid id was exported")
	}
}
