package protocol

import (
	"bytes"
	"strings"
	"testing"
)

func TestParseScope(t *testing.T) {
	for _, tc := range []struct{ in, canonical string }{
		{"patient/*.rs", "patient/*.rs"},
		{"patient/Observation.rs", "patient/Observation.rs"},
		{"patient/Observation.r", "patient/Observation.rs"},
		{"patient/Observation.read", "patient/Observation.rs"},
		{"patient/Observation.rs?category=laboratory", "patient/Observation.rs?category=laboratory"},
		{"patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory", "patient/Observation.rs?category=laboratory"},
		{"patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category%7Cvital-signs", "patient/Observation.rs?category=vital-signs"},
		{"patient/Condition.rs?category=http://terminology.hl7.org/CodeSystem/condition-category|problem-list-item", "patient/Condition.rs?category=problem-list-item"},
		{"patient/Binary.rs", "patient/Binary.rs"},
		{"patient/DocumentReference.rs", "patient/DocumentReference.rs"},
	} {
		got, err := CanonicalScope(tc.in)
		if err != nil || got != tc.canonical {
			t.Errorf("%s: got %q, %v; want %q", tc.in, got, err, tc.canonical)
		}
		if err := checkCanonicalScope(tc.canonical); err != nil {
			t.Errorf("%s: canonical form refused: %v", tc.canonical, err)
		}
	}
	for _, tc := range []struct{ in, says string }{
		{"", "empty scope"},
		{"patient/Observation.cruds", "only lets the grantee read"},
		{"patient/Observation.c", "only lets the grantee read"},
		{"patient/Observation.u", "only lets the grantee read"},
		{"patient/Observation.d", "only lets the grantee read"},
		{"patient/Observation.s", "only lets the grantee read"},
		{"patient/Observation.sr", "only lets the grantee read"},
		{"patient/Observation.write", "only lets the grantee read"},
		{"patient/Observation.*", "only lets the grantee read"},
		{"user/Observation.rs", "user/ scopes are not supported"},
		{"system/*.rs", "system/ scopes are not supported"},
		{"launch/patient", "unknown context"},
		{"openid", "not CONTEXT/TYPE.PERMISSIONS"},
		{"patient/observation.rs", "not a FHIR resource type"},
		{"patient/Observation", "no permissions"},
		{"patient/Observation.rs?code=http://loinc.org|4548-4", `parameter "code" is not supported`},
		{"patient/Observation.rs?category=laboratory&status=final", "one parameter at most"},
		{"patient/Observation.rs?category=laboratory,vital-signs", "one category per scope"},
		{"patient/Observation.rs?category=http://example.org/cats|laboratory", "category system"},
		{"patient/Observation.rs?category=", "category code must be"},
		{"patient/Observation.rs?", "empty parameters"},
		{"patient/Observation.rs?category=%zz", "category"},
		{"patient/Observation.rs category=x", "without spaces"},
		{"patient/" + strings.Repeat("A", MaxScopeLen) + ".rs", "at most"},
	} {
		_, err := ParseScope(tc.in)
		if err == nil || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("%q: got %v, want an error saying %q", tc.in, err, tc.says)
			continue
		}
		if strings.Contains(err.Error(), "\n") {
			t.Errorf("%q: error is more than one line: %v", tc.in, err)
		}
	}
	if err := checkCanonicalScope("patient/Observation.read"); err == nil || !strings.Contains(err.Error(), "canonical") {
		t.Errorf("a non-canonical scope in an entry: %v", err)
	}
}

func TestScopeMatches(t *testing.T) {
	lab := &Clinical{ResourceType: "Observation", Category: []string{"laboratory"}}
	vitals := &Clinical{ResourceType: "Observation", Category: []string{"vital-signs"}}
	cond := &Clinical{ResourceType: "Condition", Category: []string{"problem-list-item"}}
	docRef := &Clinical{ResourceType: "DocumentReference"}
	type rec struct {
		kind Kind
		c    *Clinical
	}
	recs := map[string]rec{
		"lab": {KindFHIR, lab}, "vitals": {KindFHIR, vitals}, "condition": {KindFHIR, cond},
		"docref": {KindFHIR, docRef}, "bundle": {KindFHIR, nil}, "file": {KindFile, nil}, "note": {KindNote, nil},
	}
	for scope, want := range map[string][]string{
		"patient/*.rs":                               {"lab", "vitals", "condition", "docref", "bundle", "file", "note"},
		"patient/Observation.rs":                     {"lab", "vitals"},
		"patient/Observation.rs?category=laboratory": {"lab"},
		"patient/*.rs?category=problem-list-item":    {"condition"},
		"patient/Condition.rs":                       {"condition"},
		"patient/Binary.rs":                          {"file"},
		"patient/DocumentReference.rs":               {"note", "docref"},
		"patient/Binary.rs?category=laboratory":      {},
	} {
		sc, err := ParseScope(scope)
		if err != nil {
			t.Fatal(err)
		}
		for name, r := range recs {
			in := false
			for _, w := range want {
				in = in || w == name
			}
			if got := sc.Matches(r.kind, r.c); got != in {
				t.Errorf("%s matches %s: %v, want %v", scope, name, got, in)
			}
		}
	}
}

// The standing-grant entries round-trip through the strict decoder, and
// their rules refuse what they must.
func TestScopeEntries(t *testing.T) {
	to := bytes.Repeat([]byte{7}, 32)
	rec := NewLink(testCID("scoped record"))
	good := []EntryBody{
		&ScopeGrant{To: to, Scope: "patient/Observation.rs?category=laboratory", Expires: 1798761600000},
		&ScopeEnd{From: to, Scope: "patient/*.rs"},
		&ScopedKeys{To: to, Scope: "patient/Binary.rs", Keys: []RecordKey{{Record: rec, Key: []byte("wrapped")}}},
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
	bad := map[string]EntryBody{
		"short grantee":       &ScopeGrant{To: to[:31], Scope: "patient/*.rs"},
		"write scope":         &ScopeGrant{To: to, Scope: "patient/*.cruds"},
		"non-canonical":       &ScopeGrant{To: to, Scope: "patient/*.read"},
		"negative expiry":     &ScopeGrant{To: to, Scope: "patient/*.rs", Expires: -1},
		"end without account": &ScopeEnd{Scope: "patient/*.rs"},
		"end of a bad scope":  &ScopeEnd{From: to, Scope: "user/*.rs"},
		"keys without keys":   &ScopedKeys{To: to, Scope: "patient/*.rs"},
		"keys, bad scope":     &ScopedKeys{To: to, Scope: "patient/*.rs?x=1", Keys: []RecordKey{{Record: rec, Key: []byte("k")}}},
		"keys, record twice":  &ScopedKeys{To: to, Scope: "patient/*.rs", Keys: []RecordKey{{Record: rec, Key: []byte("k")}, {Record: rec, Key: []byte("k")}}},
	}
	for name, b := range bad {
		if err := b.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func FuzzParseScope(f *testing.F) {
	for _, s := range []string{"patient/*.rs", "patient/Observation.rs?category=laboratory", "user/x.c", "patient/A.rs?category=a|b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sc, err := ParseScope(s)
		if err != nil {
			return
		}
		// What parses has a canonical form that parses to itself.
		c := sc.String()
		again, err := ParseScope(c)
		if err != nil || again != sc || checkCanonicalScope(c) != nil {
			t.Fatalf("%q: canonical %q does not parse back: %v", s, c, err)
		}
	})
}
