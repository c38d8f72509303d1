package protocol

import (
	"crypto/ed25519"
	"errors"
)

// Guardian consent (PROTOCOL.md §5.13, "Consent"). A ward's appointment
// asks; the guardian answers on its own chain: wardaccept takes the
// appointment, warddecline refuses it (or, after an accept, resigns it).
// Both name the ward and the ward's chain block holding the guardian
// entry, so an answer binds one appointment: a new appointment that gives
// more rights, or a later end, must be accepted again. The latest answer
// for an appointment stands.
const (
	TypeWardAccept  = "wardaccept"  // a guardian accepts an appointment (WardConsent)
	TypeWardDecline = "warddecline" // a guardian declines or resigns an appointment (WardConsent)
)

// WardConsent is the body of wardaccept and warddecline entries, written
// by the guardian on its own chain: Ward's chain block Appointment holds
// the guardian entry answered.
type WardConsent struct {
	Ward        []byte `cbor:"ward"`
	Appointment Link   `cbor:"appointment"`
}

// WardAccept is a wardaccept entry; WardDecline a warddecline entry.
type (
	WardAccept  struct{ WardConsent }
	WardDecline struct{ WardConsent }
)

// EntryType implements EntryBody.
func (*WardAccept) EntryType() string { return TypeWardAccept }

// EntryType implements EntryBody.
func (*WardDecline) EntryType() string { return TypeWardDecline }

// Validate implements EntryBody.
func (w *WardConsent) Validate() error {
	if len(w.Ward) != ed25519.PublicKeySize {
		return errors.New("ward is not a 32-byte Ed25519 key")
	}
	if !w.Appointment.Defined() {
		return errors.New("no appointment block named")
	}
	return nil
}

// WardID returns the ward's account ID.
func (w *WardConsent) WardID() AccountID { return AccountIDFromKey(w.Ward) }
