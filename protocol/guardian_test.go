package protocol

import (
	"bytes"
	"encoding/hex"
	"slices"
	"testing"
)

func TestParseRights(t *testing.T) {
	ok := map[string][]GuardianRight{
		"read":                      {RightRead},
		"approve, read":             {RightRead, RightApprove},
		"revoke":                    {RightRevoke},
		"approve,revoke,grant,read": {RightRead, RightGrant, RightRevoke, RightApprove},
		"read,read,grant":           {RightRead, RightGrant},
	}
	for in, want := range ok {
		got, err := ParseRights(in)
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("ParseRights(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", ",", "write", "grant", "approve,revoke", "read,delete"} {
		if got, err := ParseRights(in); err == nil {
			t.Errorf("ParseRights(%q) = %v, want an error", in, got)
		}
	}
}

// TestGuardianEntries pins the encoding of every guardian entry (the
// format cannot drift), decodes it back strictly, and lists the bodies
// Validate refuses.
func TestGuardianEntries(t *testing.T) {
	ward, guardian := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
	rec := NewLink(testCID("ward record"))
	golden := []struct {
		body EntryBody
		hex  string
	}{
		{&GuardianAppoint{To: guardian, May: []GuardianRight{RightRead, RightApprove}, From: 4, Until: 1798761600000},
			"a264626f6479a462746f58200202020202020202020202020202020202020202020202020202020202020202636d617982647265616467617070726f76656466726f6d0465756e74696c1b000001a2ce8bd400647479706568677561726469616e"},
		{&GuardianEnd{From: guardian, Before: 9},
			"a264626f6479a26466726f6d58200202020202020202020202020202020202020202020202020202020202020202666265666f72650964747970656a756e677561726469616e"},
	}
	for _, g := range golden {
		enc, err := NewEntry(g.body).MarshalCBOR()
		if err != nil {
			t.Fatalf("%s: %v", g.body.EntryType(), err)
		}
		if got := hex.EncodeToString(enc); got != g.hex {
			t.Errorf("%s encodes as\n%s\nwant\n%s", g.body.EntryType(), got, g.hex)
		}
	}
	good := []EntryBody{
		golden[0].body, golden[1].body,
		&WardGrant{Ward: ward, To: bytes.Repeat([]byte{3}, 32), Keys: []RecordKey{{Record: rec, Key: []byte("wrapped")}}},
		&WardRevoke{Ward: ward, From: bytes.Repeat([]byte{3}, 32), Records: []Link{rec}},
	}
	for _, b := range good {
		enc, err := NewEntry(b).MarshalCBOR()
		if err != nil {
			t.Fatalf("%s: %v", b.EntryType(), err)
		}
		var e Entry
		if err := e.UnmarshalCBOR(enc); err != nil {
			t.Fatalf("%s: %v", b.EntryType(), err)
		}
		if e.Body == nil || e.Type != b.EntryType() {
			t.Fatalf("%s: decoded as %q", b.EntryType(), e.Type)
		}
	}
	k := []RecordKey{{Record: rec, Key: []byte("k")}}
	bad := map[string]EntryBody{
		"short guardian":         &GuardianAppoint{To: guardian[:31], May: []GuardianRight{RightRead}},
		"no rights":              &GuardianAppoint{To: guardian},
		"unknown right":          &GuardianAppoint{To: guardian, May: []GuardianRight{"write"}},
		"rights out of order":    &GuardianAppoint{To: guardian, May: []GuardianRight{RightGrant, RightRead}},
		"right twice":            &GuardianAppoint{To: guardian, May: []GuardianRight{RightRead, RightRead}},
		"grant without read":     &GuardianAppoint{To: guardian, May: []GuardianRight{RightGrant}},
		"negative until":         &GuardianAppoint{To: guardian, May: []GuardianRight{RightRead}, Until: -1},
		"end without guardian":   &GuardianEnd{Before: 1},
		"ward grant, no ward":    &WardGrant{To: guardian, Keys: k},
		"ward grant to the ward": &WardGrant{Ward: ward, To: ward, Keys: k},
		"ward grant, no keys":    &WardGrant{Ward: ward, To: guardian},
		"ward revoke, no ward":   &WardRevoke{From: guardian, Records: []Link{rec}},
		"ward revoke, nothing":   &WardRevoke{Ward: ward, From: guardian},
	}
	for name, b := range bad {
		if err := b.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	// A strict decoder refuses an unknown field in a known body.
	enc, _ := marshal(map[string]any{"type": TypeUnguardian, "body": map[string]any{"from": guardian, "before": 1, "x": 1}})
	var e Entry
	if err := e.UnmarshalCBOR(enc); err == nil {
		t.Error("an unguardian entry with an unknown field decoded")
	}
}
