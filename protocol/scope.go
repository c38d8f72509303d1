package protocol

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Standing grants (PROTOCOL.md §5.9). A subject grants an account a scope
// instead of a list of records: every record of hers in the scope, present
// and future, in SMART on FHIR v2 scope syntax restricted to what a
// patient can give, reading her own records:
//
//	patient/*.rs                      every record
//	patient/TYPE.rs                   records holding one FHIR resource of TYPE
//	patient/TYPE.rs?category=CODE     … whose categories include CODE
//
// File records are in patient/Binary.rs and notes in
// patient/DocumentReference.rs (besides FHIR records of those types). A
// FHIR record without clinical fields in its envelope (a whole Bundle
// stored as one file) is only in patient/*.rs.

// ScopeFileType and ScopeNoteType are the resource types whose scopes
// cover the record kinds file and note.
const (
	ScopeFileType = "Binary"
	ScopeNoteType = "DocumentReference"
)

// MaxScopeLen bounds a scope's text, as written and in a chain entry.
const MaxScopeLen = 256

// CategorySystems are the code systems whose category codes a scope's
// category parameter may name with its system ("SYSTEM|CODE"): the HL7
// category systems of the resources that have categories. An envelope
// keeps category codes without their system, so a code under another
// system could not be told apart and is refused.
var CategorySystems = []string{
	"http://terminology.hl7.org/CodeSystem/observation-category",
	"http://terminology.hl7.org/CodeSystem/condition-category",
	"http://terminology.hl7.org/CodeSystem/medicationrequest-category",
	"http://terminology.hl7.org/CodeSystem/medication-statement-category",
}

// Scope is a parsed standing-grant scope.
type Scope struct {
	// ResourceType is a FHIR resource type name, or "*" for every record.
	ResourceType string
	// Category, when set, is a category code every record in the scope has.
	Category string
}

const scopeSupported = "supported: patient/*.rs, patient/TYPE.rs, patient/TYPE.rs?category=CODE"

// ParseScope parses a scope in SMART on FHIR v2 syntax. It accepts the
// read scopes of the patient context — .rs, .r (read alone is what a
// grantee does) and SMART v1's .read, all meaning .rs — with at most one
// parameter, category, whose value is a code or SYSTEM|CODE for one of
// CategorySystems. Everything else (write permissions, user/ and system/
// contexts, other parameters, several categories) is refused with a
// one-line error saying what is supported.
func ParseScope(s string) (Scope, error) {
	if s == "" {
		return Scope{}, fmt.Errorf("empty scope (%s)", scopeSupported)
	}
	if len(s) > MaxScopeLen || !utf8.ValidString(s) || strings.ContainsFunc(s, unicode.IsSpace) || strings.ContainsFunc(s, unicode.IsControl) {
		return Scope{}, fmt.Errorf("scope %q: must be at most %d bytes of UTF-8 without spaces", truncate(s), MaxScopeLen)
	}
	ctxName, rest, ok := strings.Cut(s, "/")
	if !ok {
		return Scope{}, fmt.Errorf("scope %q: not CONTEXT/TYPE.PERMISSIONS (%s)", truncate(s), scopeSupported)
	}
	switch ctxName {
	case "patient":
	case "user", "system":
		return Scope{}, fmt.Errorf("scope %q: %s/ scopes are not supported: a standing grant gives the patient's own records (%s)", truncate(s), ctxName, scopeSupported)
	default:
		return Scope{}, fmt.Errorf("scope %q: unknown context %q (%s)", truncate(s), truncate(ctxName), scopeSupported)
	}
	resource, query, hasQuery := strings.Cut(rest, "?")
	dot := strings.LastIndexByte(resource, '.')
	if dot < 0 {
		return Scope{}, fmt.Errorf("scope %q: no permissions after the resource type (%s)", truncate(s), scopeSupported)
	}
	typ, perms := resource[:dot], resource[dot+1:]
	if typ != "*" && !fhirTypeRe.MatchString(typ) {
		return Scope{}, fmt.Errorf("scope %q: %q is not a FHIR resource type or * (%s)", truncate(s), truncate(typ), scopeSupported)
	}
	switch perms {
	case "rs", "r", "read":
	default:
		return Scope{}, fmt.Errorf("scope %q: permissions %q are not supported: a standing grant only lets the grantee read (.rs; .r and v1 .read mean the same) (%s)", truncate(s), truncate(perms), scopeSupported)
	}
	sc := Scope{ResourceType: typ}
	if !hasQuery {
		return sc, nil
	}
	if query == "" {
		return Scope{}, fmt.Errorf("scope %q: empty parameters after ? (%s)", truncate(s), scopeSupported)
	}
	if strings.Contains(query, "&") {
		return Scope{}, fmt.Errorf("scope %q: one parameter at most, category (%s)", truncate(s), scopeSupported)
	}
	name, value, ok := strings.Cut(query, "=")
	if !ok || name != "category" {
		return Scope{}, fmt.Errorf("scope %q: parameter %q is not supported, only category (%s)", truncate(s), truncate(name), scopeSupported)
	}
	value, err := url.QueryUnescape(value)
	if err != nil {
		return Scope{}, fmt.Errorf("scope %q: category: %v", truncate(s), err)
	}
	if strings.Contains(value, ",") {
		return Scope{}, fmt.Errorf("scope %q: one category per scope (grant one scope for each)", truncate(s))
	}
	code := value
	if system, c, ok := strings.Cut(value, "|"); ok {
		if !slices.Contains(CategorySystems, system) {
			return Scope{}, fmt.Errorf("scope %q: category system %q is not supported: give the code alone, or one of %s", truncate(s), truncate(system), strings.Join(CategorySystems, ", "))
		}
		code = c
	}
	if code == "" || len(code) > MaxCategoryCode || strings.ContainsAny(code, "|?&=,%") || strings.ContainsFunc(code, unicode.IsSpace) {
		return Scope{}, fmt.Errorf("scope %q: category code must be 1 to %d bytes without spaces or |?&=,%%", truncate(s), MaxCategoryCode)
	}
	sc.Category = code
	return sc, nil
}

// String returns the scope's canonical form, the one chain entries carry:
// "patient/TYPE.rs" with "?category=CODE" when it has a category.
func (s Scope) String() string {
	out := "patient/" + s.ResourceType + ".rs"
	if s.Category != "" {
		out += "?category=" + s.Category
	}
	return out
}

// CanonicalScope parses s and returns its canonical form.
func CanonicalScope(s string) (string, error) {
	sc, err := ParseScope(s)
	if err != nil {
		return "", err
	}
	return sc.String(), nil
}

// checkCanonicalScope is the entry rule: a scope in a chain entry is in
// canonical form, so that two entries naming the same scope name it with
// the same bytes.
func checkCanonicalScope(s string) error {
	c, err := CanonicalScope(s)
	if err != nil {
		return err
	}
	if c != s {
		return fmt.Errorf("scope %q is not in canonical form (%q)", truncate(s), c)
	}
	return nil
}

// Matches tells whether a record of kind, with the clinical fields c of
// its envelope (nil when it has none), is in the scope: patient/*.rs
// holds every record; patient/Binary.rs file records and
// patient/DocumentReference.rs notes (and FHIR records of those types);
// patient/TYPE.rs FHIR records whose resource type is TYPE. A category
// must be among the record's categories, which only FHIR records have.
func (s Scope) Matches(kind Kind, c *Clinical) bool {
	typeOK := false
	switch {
	case s.ResourceType == "*":
		typeOK = true
	case c != nil && kind == KindFHIR && c.ResourceType == s.ResourceType:
		typeOK = true
	case s.ResourceType == ScopeFileType:
		typeOK = kind == KindFile
	case s.ResourceType == ScopeNoteType:
		typeOK = kind == KindNote
	}
	if !typeOK {
		return false
	}
	if s.Category == "" {
		return true
	}
	return c != nil && kind == KindFHIR && slices.Contains(c.Category, s.Category)
}

// ScopeGrant (type "scope") is a standing grant: the subject, on her own
// chain, gives account To every record of hers in Scope, present and
// future, until Expires (or until a ScopeEnd). It carries no key: the keys
// come in ScopedKeys entries, by the records' authors as they write them
// and by the subject's node for what they did not cover, and each counts
// only while this grant is live (PROTOCOL.md §6).
type ScopeGrant struct {
	To      []byte `cbor:"to"`
	Scope   string `cbor:"scope"`
	Expires int64  `cbor:"expires,omitempty"` // Unix milliseconds; 0 means no expiry
}

// EntryType implements EntryBody.
func (*ScopeGrant) EntryType() string { return TypeScope }

// Validate implements EntryBody.
func (g *ScopeGrant) Validate() error {
	if len(g.To) != ed25519.PublicKeySize {
		return errors.New("grantee is not a 32-byte Ed25519 key")
	}
	if err := checkCanonicalScope(g.Scope); err != nil {
		return err
	}
	if g.Expires < 0 {
		return errors.New("expiry is negative")
	}
	return nil
}

// ScopeEnd (type "unscope") ends the subject's standing grant of Scope to
// account From: no record is wrapped for it under that scope from then
// on, and every key given under it stops counting, so the grantee loses
// the records the scope covered (a key already delivered cannot be taken
// back).
type ScopeEnd struct {
	From  []byte `cbor:"from"`
	Scope string `cbor:"scope"`
}

// EntryType implements EntryBody.
func (*ScopeEnd) EntryType() string { return TypeUnscope }

// Validate implements EntryBody.
func (e *ScopeEnd) Validate() error {
	if len(e.From) != ed25519.PublicKeySize {
		return errors.New("account is not a 32-byte Ed25519 key")
	}
	return checkCanonicalScope(e.Scope)
}

// ScopedKeys (type "scoped") gives account To record keys under a
// standing grant of Scope: written by a record's author (on the author's
// chain, in the block of the record entry, for the standing grantees it
// sees on the subject's chain) or by the subject (for records no author
// covered). A key counts only while the subject's chain holds a live
// ScopeGrant of exactly that scope to To, and the record is not hidden.
type ScopedKeys struct {
	To    []byte      `cbor:"to"`
	Scope string      `cbor:"scope"`
	Keys  []RecordKey `cbor:"keys"`
}

// EntryType implements EntryBody.
func (*ScopedKeys) EntryType() string { return TypeScoped }

// Validate implements EntryBody.
func (s *ScopedKeys) Validate() error {
	if err := checkCanonicalScope(s.Scope); err != nil {
		return err
	}
	g := Grant{To: s.To, Keys: s.Keys}
	return g.Validate()
}
