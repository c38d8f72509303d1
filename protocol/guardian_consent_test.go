package protocol

import (
	"bytes"
	"encoding/hex"
	"testing"
)

// TestWardConsentEntries pins the encoding of wardaccept and warddecline
// (the ward's key and the appointment block, nothing else), decodes them
// back strictly, and lists the bodies Validate refuses.
func TestWardConsentEntries(t *testing.T) {
	ward := bytes.Repeat([]byte{1}, 32)
	appt := NewLink(testCID("ward block"))
	accept := &WardAccept{WardConsent{Ward: ward, Appointment: appt}}
	decline := &WardDecline{WardConsent{Ward: ward, Appointment: appt}}
	for _, b := range []EntryBody{accept, decline} {
		enc, err := NewEntry(b).MarshalCBOR()
		if err != nil {
			t.Fatalf("%s: %v", b.EntryType(), err)
		}
		// The body is a map of exactly two keys, ward and appointment.
		if !bytes.Contains(enc, append([]byte{0xa2, 0x64}, "ward"...)) || !bytes.Contains(enc, []byte("appointment")) {
			t.Errorf("%s encodes as %s: want a body map {ward, appointment}", b.EntryType(), hex.EncodeToString(enc))
		}
		var e Entry
		if err := e.UnmarshalCBOR(enc); err != nil {
			t.Fatalf("%s: %v", b.EntryType(), err)
		}
		if e.Type != b.EntryType() {
			t.Fatalf("%s: decoded as %q", b.EntryType(), e.Type)
		}
		var got *WardConsent
		switch body := e.Body.(type) {
		case *WardAccept:
			got = &body.WardConsent
		case *WardDecline:
			got = &body.WardConsent
		default:
			t.Fatalf("%s: decoded body %T", b.EntryType(), e.Body)
		}
		if !bytes.Equal(got.Ward, ward) || !got.Appointment.Equals(appt.Cid) {
			t.Errorf("%s: decoded %+v", b.EntryType(), got)
		}
	}
	bad := map[string]EntryBody{
		"short ward":     &WardAccept{WardConsent{Ward: ward[:31], Appointment: appt}},
		"no appointment": &WardDecline{WardConsent{Ward: ward}},
	}
	for name, b := range bad {
		if err := b.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	enc, _ := marshal(map[string]any{"type": TypeWardAccept, "body": map[string]any{"ward": ward, "appointment": appt, "may": []string{"read"}}})
	var e Entry
	if err := e.UnmarshalCBOR(enc); err == nil {
		t.Error("a wardaccept entry with an unknown field decoded")
	}
}
