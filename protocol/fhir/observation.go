package fhir

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/fhir/go/fhirversion"
	"github.com/google/fhir/go/jsonformat"
	cpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/codes_go_proto"
	dpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/datatypes_go_proto"
	rpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/bundle_and_contained_resource_go_proto"
	opb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/observation_go_proto"
)

// Code systems and the identifier system of accounts.
const (
	// LOINC names lab tests and vital signs.
	LOINC = "http://loinc.org"
	// UCUM names units of measure.
	UCUM = "http://unitsofmeasure.org"
	// SNOMED names findings such as a blood group.
	SNOMED = "http://snomed.info/sct"
	// CategorySystem is FHIR's observation-category code system
	// (laboratory, vital-signs).
	CategorySystem = "http://terminology.hl7.org/CodeSystem/observation-category"
	// AccountSystem is the identifier system of a BlockMRS account: an
	// Observation's subject and performer are identifier references
	// {"type": "Patient", "identifier": {"system": AccountSystem,
	// "value": ACCOUNT_ID}}.
	AccountSystem = "urn:blockmrs:account"
)

// Categories of an Observation (CategorySystem codes).
const (
	Laboratory = "laboratory"
	VitalSigns = "vital-signs"
)

// Limits of what Marshal writes and Parse reads.
const (
	// MaxSize is the largest Observation Parse reads, in bytes.
	MaxSize = 1 << 20
	// MaxText bounds a name, a display, a unit or a text value, in
	// bytes.
	MaxText = 256
)

// Errors Parse and Marshal wrap, with context.
var (
	// ErrNotObservation is returned by Parse for valid FHIR that is not
	// an Observation (a Bundle, a Patient, ...).
	ErrNotObservation = errors.New("not an Observation")
	// ErrInvalid wraps bytes or values that are not a valid Observation.
	ErrInvalid = errors.New("invalid Observation")
)

// Coding is one code from a code system: LOINC for what was measured,
// SNOMED for a coded answer. System "" means the name is text only.
type Coding struct {
	System  string `json:"system,omitempty"`
	Code    string `json:"code,omitempty"`
	Display string `json:"display,omitempty"`
}

// Quantity is a measured value: Value is a FHIR decimal in its exact
// text ("95", "1.10"); Unit is the unit as people read it; System and
// Code name the unit in UCUM ("" for a free unit).
type Quantity struct {
	Value  string `json:"value"`
	Unit   string `json:"unit,omitempty"`
	System string `json:"system,omitempty"`
	Code   string `json:"code,omitempty"`
}

// Observation is the part of a FHIR R4 Observation a lab panel writes and
// a lab table shows. Exactly one of Quantity, Concept and String is the
// value.
type Observation struct {
	// Status is the Observation's status code ("final").
	Status string `json:"status"`
	// Category is laboratory or vital-signs ("" if none or another).
	Category string `json:"category,omitempty"`
	// Code is what was measured: a LOINC coding, or System "" and Text.
	Code Coding `json:"code"`
	// Text is code.text, the name as people say it.
	Text string `json:"text,omitempty"`
	// Quantity, Concept or String is the value.
	Quantity *Quantity `json:"quantity,omitempty"`
	Concept  *Coding   `json:"concept,omitempty"`
	String   string    `json:"string,omitempty"`
	// Effective is effectiveDateTime in FHIR's form ("2026-12-01",
	// "2026-12-01T08:30:00Z"); Time is the same instant (the start of
	// the day, or of the month or year, for coarser values).
	Effective string    `json:"effective"`
	Time      time.Time `json:"-"`
	// Subject and Performer are the account IDs of the subject and
	// performer references ("" when absent or not an account).
	Subject   string `json:"subject,omitempty"`
	Performer string `json:"performer,omitempty"`
}

// Name is what people call the observed thing: code.text, else the
// coding's display, else its code.
func (o *Observation) Name() string {
	switch {
	case o.Text != "":
		return o.Text
	case o.Code.Display != "":
		return o.Code.Display
	}
	return o.Code.Code
}

var (
	codecOnce    sync.Once
	marshaller   *jsonformat.Marshaller
	unmarshaller *jsonformat.Unmarshaller
	codecErr     error
)

// codecs returns the library's R4 JSON marshaller and its validating
// unmarshaller (dates without a zone are read as UTC).
func codecs() (*jsonformat.Marshaller, *jsonformat.Unmarshaller, error) {
	codecOnce.Do(func() {
		marshaller, codecErr = jsonformat.NewMarshaller(false, "", "", fhirversion.R4)
		if codecErr == nil {
			unmarshaller, codecErr = jsonformat.NewUnmarshaller("UTC", fhirversion.R4)
		}
	})
	return marshaller, unmarshaller, codecErr
}

// decimalRe is FHIR's decimal without an exponent, at most 18 digits
// before and after the point.
var decimalRe = regexp.MustCompile(`^-?(0|[1-9][0-9]{0,17})(\.[0-9]{1,18})?$`)

// ParseDecimal checks that s is a plain decimal ("95", "1.10", "-2")
// and returns its value; a one-line error says what is wrong.
func ParseDecimal(s string) (float64, error) {
	if !decimalRe.MatchString(s) {
		return 0, fmt.Errorf("%q is not a number like 95 or 1.2", clip(s))
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsInf(v, 0) || math.IsNaN(v) {
		return 0, fmt.Errorf("%q is not a finite number", clip(s))
	}
	return v, nil
}

// CheckText checks a name, display, unit or text value: UTF-8, no
// control characters, 1 to MaxText bytes.
func CheckText(s string) error {
	switch {
	case s == "":
		return errors.New("empty")
	case !utf8.ValidString(s):
		return errors.New("not UTF-8")
	case strings.ContainsFunc(s, unicode.IsControl):
		return errors.New("holds control characters")
	case len(s) > MaxText:
		return fmt.Errorf("longer than %d bytes", MaxText)
	}
	return nil
}

// ParseEffective reads a date ("2026-12-01") or an RFC 3339 date-time
// ("2026-12-01T08:30:00Z", "2026-12-01T08:30:00+01:00") and returns it
// in FHIR's form with its instant. Dates from before 1900 or more than a
// day ahead of now are refused.
func ParseEffective(s string, now time.Time) (string, time.Time, error) {
	var t time.Time
	var err error
	form := s
	if len(s) == len("2006-01-02") {
		t, err = time.Parse("2006-01-02", s)
	} else {
		t, err = time.Parse(time.RFC3339, s)
		if err == nil {
			form = t.Format(time.RFC3339Nano)
			if t.Location() == time.UTC {
				form = strings.Replace(form, "+00:00", "Z", 1)
			}
		}
	}
	if err != nil {
		return "", time.Time{}, fmt.Errorf("%q is not a date (2026-12-01) or a date-time (2026-12-01T08:30:00Z)", clip(s))
	}
	if t.Year() < 1900 || t.After(now.Add(24*time.Hour)) {
		return "", time.Time{}, fmt.Errorf("%s is out of range (from 1900 to today)", form)
	}
	return form, t, nil
}

// Marshal builds o as the JSON of one FHIR R4 Observation, written by the
// FHIR library and read back through its validating parser, so what it
// returns is what Parse accepts. Text fields must pass CheckText, the
// quantity's value ParseDecimal, Effective ParseEffective.
func Marshal(o Observation) ([]byte, error) {
	pb, err := toProto(o)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	m, _, err := codecs()
	if err != nil {
		return nil, fmt.Errorf("FHIR library: %w", err)
	}
	data, err := m.Marshal(&rpb.ContainedResource{OneofResource: &rpb.ContainedResource_Observation{Observation: pb}})
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if _, err := Parse(data); err != nil {
		return nil, err
	}
	return data, nil
}

func toProto(o Observation) (*opb.Observation, error) {
	status, ok := cpb.ObservationStatusCode_Value_value[strings.ToUpper(strings.ReplaceAll(o.Status, "-", "_"))]
	if !ok || o.Status == "" {
		return nil, fmt.Errorf("status %q is not an Observation status", clip(o.Status))
	}
	pb := &opb.Observation{
		Status: &opb.Observation_StatusCode{Value: cpb.ObservationStatusCode_Value(status)},
	}
	if o.Category != "" {
		if o.Category != Laboratory && o.Category != VitalSigns {
			return nil, fmt.Errorf("category %q: want %s or %s", clip(o.Category), Laboratory, VitalSigns)
		}
		pb.Category = []*dpb.CodeableConcept{{Coding: []*dpb.Coding{coding(Coding{System: CategorySystem, Code: o.Category})}}}
	}
	code := &dpb.CodeableConcept{}
	if o.Code.System != "" || o.Code.Code != "" {
		if o.Code.System == "" || o.Code.Code == "" {
			return nil, errors.New("code: a coding needs both a system and a code")
		}
		if err := checkFields("code", o.Code.Code, o.Code.Display); err != nil {
			return nil, err
		}
		code.Coding = []*dpb.Coding{coding(o.Code)}
	}
	if o.Text != "" {
		if err := CheckText(o.Text); err != nil {
			return nil, fmt.Errorf("name: %v", err)
		}
		code.Text = &dpb.String{Value: o.Text}
	}
	if code.Coding == nil && code.Text == nil {
		return nil, errors.New("code: neither a coding nor a name")
	}
	pb.Code = code
	n := 0
	switch {
	case o.Quantity != nil:
		n++
		if _, err := ParseDecimal(o.Quantity.Value); err != nil {
			return nil, fmt.Errorf("value: %v", err)
		}
		q := &dpb.Quantity{Value: &dpb.Decimal{Value: o.Quantity.Value}}
		if o.Quantity.Unit != "" {
			if err := CheckText(o.Quantity.Unit); err != nil {
				return nil, fmt.Errorf("unit: %v", err)
			}
			q.Unit = &dpb.String{Value: o.Quantity.Unit}
		}
		if o.Quantity.System != "" {
			if err := checkFields("unit code", o.Quantity.Code); err != nil {
				return nil, err
			}
			q.System = &dpb.Uri{Value: o.Quantity.System}
			q.Code = &dpb.Code{Value: o.Quantity.Code}
		}
		pb.Value = &opb.Observation_ValueX{Choice: &opb.Observation_ValueX_Quantity{Quantity: q}}
	case o.Concept != nil:
		n++
		if err := checkFields("value", o.Concept.Code, o.Concept.Display); err != nil {
			return nil, err
		}
		pb.Value = &opb.Observation_ValueX{Choice: &opb.Observation_ValueX_CodeableConcept{CodeableConcept: &dpb.CodeableConcept{
			Coding: []*dpb.Coding{coding(*o.Concept)}, Text: &dpb.String{Value: o.Concept.Display},
		}}}
	case o.String != "":
		n++
		if err := CheckText(o.String); err != nil {
			return nil, fmt.Errorf("value: %v", err)
		}
		pb.Value = &opb.Observation_ValueX{Choice: &opb.Observation_ValueX_StringValue{StringValue: &dpb.String{Value: o.String}}}
	}
	if n == 0 {
		return nil, errors.New("value: none given")
	}
	eff, err := dateTime(o.Effective)
	if err != nil {
		return nil, fmt.Errorf("effective: %v", err)
	}
	pb.Effective = &opb.Observation_EffectiveX{Choice: &opb.Observation_EffectiveX_DateTime{DateTime: eff}}
	if o.Subject != "" {
		pb.Subject = accountRef("Patient", o.Subject)
	}
	if o.Performer != "" {
		pb.Performer = []*dpb.Reference{accountRef("Practitioner", o.Performer)}
	}
	return pb, nil
}

func checkFields(field string, values ...string) error {
	for i, v := range values {
		if v == "" && i > 0 {
			continue // a display may be empty
		}
		if err := CheckText(v); err != nil {
			return fmt.Errorf("%s: %v", field, err)
		}
	}
	return nil
}

func coding(c Coding) *dpb.Coding {
	out := &dpb.Coding{System: &dpb.Uri{Value: c.System}, Code: &dpb.Code{Value: c.Code}}
	if c.Display != "" {
		out.Display = &dpb.String{Value: c.Display}
	}
	return out
}

func accountRef(typ, id string) *dpb.Reference {
	return &dpb.Reference{
		Type:       &dpb.Uri{Value: typ},
		Identifier: &dpb.Identifier{System: &dpb.Uri{Value: AccountSystem}, Value: &dpb.String{Value: id}},
	}
}

// dateTime converts FHIR's date or date-time text to the library's
// DateTime: a date has day precision in UTC, a date-time keeps its
// offset and its precision (seconds, milliseconds or microseconds).
func dateTime(s string) (*dpb.DateTime, error) {
	if len(s) == len("2006-01-02") {
		t, err := time.Parse("2006-01-02", s)
		if err != nil {
			return nil, fmt.Errorf("%q is not a date", clip(s))
		}
		return &dpb.DateTime{ValueUs: t.UnixMicro(), Timezone: "UTC", Precision: dpb.DateTime_DAY}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return nil, fmt.Errorf("%q is not a date-time", clip(s))
	}
	prec := dpb.DateTime_SECOND
	if i := strings.IndexByte(s, '.'); i > 0 {
		digits := strings.IndexFunc(s[i+1:], func(r rune) bool { return r < '0' || r > '9' })
		if digits > 3 {
			prec = dpb.DateTime_MICROSECOND
		} else {
			prec = dpb.DateTime_MILLISECOND
		}
	}
	tz := "Z"
	if _, off := t.Zone(); off != 0 || !strings.HasSuffix(s, "Z") {
		tz = t.Format("-07:00")
	}
	return &dpb.DateTime{ValueUs: t.UnixMicro(), Timezone: tz, Precision: prec}, nil
}

// Parse reads data as one FHIR R4 Observation with the FHIR library's
// validating parser and returns what a lab table shows. Valid FHIR of
// another resource type matches ErrNotObservation; anything else the
// library refuses, or an Observation without a value or an
// effectiveDateTime, matches ErrInvalid. Text comes back as written:
// it is hostile, and the caller escapes it where it shows it.
func Parse(data []byte) (Observation, error) {
	if len(data) > MaxSize {
		return Observation{}, fmt.Errorf("%w: %d bytes, over the %d-byte limit", ErrInvalid, len(data), MaxSize)
	}
	_, u, err := codecs()
	if err != nil {
		return Observation{}, fmt.Errorf("FHIR library: %w", err)
	}
	msg, err := u.Unmarshal(data)
	if err != nil {
		return Observation{}, fmt.Errorf("%w: %s", ErrInvalid, oneLine(err.Error()))
	}
	cr, ok := msg.(*rpb.ContainedResource)
	if !ok {
		return Observation{}, fmt.Errorf("%w: unexpected %T", ErrInvalid, msg)
	}
	pb := cr.GetObservation()
	if pb == nil {
		return Observation{}, ErrNotObservation
	}
	return fromProto(pb)
}

func fromProto(pb *opb.Observation) (Observation, error) {
	var o Observation
	o.Status = strings.ToLower(strings.ReplaceAll(pb.GetStatus().GetValue().String(), "_", "-"))
	for _, cat := range pb.GetCategory() {
		for _, c := range cat.GetCoding() {
			if c.GetSystem().GetValue() == CategorySystem {
				if v := c.GetCode().GetValue(); v == Laboratory || v == VitalSigns {
					o.Category = v
				}
			}
		}
	}
	o.Text = pb.GetCode().GetText().GetValue()
	// The first LOINC coding names the test; else the first coding.
	for _, c := range pb.GetCode().GetCoding() {
		got := Coding{System: c.GetSystem().GetValue(), Code: c.GetCode().GetValue(), Display: c.GetDisplay().GetValue()}
		if o.Code.System == "" || (got.System == LOINC && o.Code.System != LOINC) {
			o.Code = got
		}
	}
	if o.Name() == "" {
		return Observation{}, fmt.Errorf("%w: its code has neither a coding nor a text", ErrInvalid)
	}
	v := pb.GetValue()
	switch {
	case v.GetQuantity() != nil:
		q := v.GetQuantity()
		o.Quantity = &Quantity{Value: q.GetValue().GetValue(), Unit: q.GetUnit().GetValue(), System: q.GetSystem().GetValue(), Code: q.GetCode().GetValue()}
		if o.Quantity.Value == "" {
			return Observation{}, fmt.Errorf("%w: its valueQuantity has no value", ErrInvalid)
		}
		if o.Quantity.Unit == "" {
			o.Quantity.Unit = o.Quantity.Code
		}
	case v.GetCodeableConcept() != nil:
		cc := v.GetCodeableConcept()
		o.Concept = &Coding{Display: cc.GetText().GetValue()}
		if cs := cc.GetCoding(); len(cs) > 0 {
			o.Concept.System, o.Concept.Code = cs[0].GetSystem().GetValue(), cs[0].GetCode().GetValue()
			if o.Concept.Display == "" {
				o.Concept.Display = cs[0].GetDisplay().GetValue()
			}
		}
	case v.GetStringValue() != nil:
		o.String = v.GetStringValue().GetValue()
	}
	if o.Quantity == nil && o.Concept == nil && o.String == "" {
		return Observation{}, fmt.Errorf("%w: no value this package shows (valueQuantity, valueCodeableConcept or valueString)", ErrInvalid)
	}
	dt := pb.GetEffective().GetDateTime()
	if dt == nil {
		return Observation{}, fmt.Errorf("%w: no effectiveDateTime", ErrInvalid)
	}
	o.Effective, o.Time = formatDateTime(dt)
	o.Subject = accountOf(pb.GetSubject())
	if ps := pb.GetPerformer(); len(ps) > 0 {
		o.Performer = accountOf(ps[0])
	}
	return o, nil
}

func accountOf(r *dpb.Reference) string {
	if id := r.GetIdentifier(); id.GetSystem().GetValue() == AccountSystem {
		return id.GetValue().GetValue()
	}
	return ""
}

// formatDateTime writes the library's DateTime in FHIR's form at its
// precision, in its own zone.
func formatDateTime(dt *dpb.DateTime) (string, time.Time) {
	loc := time.UTC
	switch tz := dt.GetTimezone(); {
	case tz == "" || tz == "Z" || tz == "UTC":
	default:
		if t, err := time.Parse("-07:00", tz); err == nil {
			_, off := t.Zone()
			loc = time.FixedZone(tz, off)
		} else if l, err := time.LoadLocation(tz); err == nil {
			loc = l
		}
	}
	t := time.UnixMicro(dt.GetValueUs()).In(loc)
	var layout string
	switch dt.GetPrecision() {
	case dpb.DateTime_YEAR:
		layout = "2006"
	case dpb.DateTime_MONTH:
		layout = "2006-01"
	case dpb.DateTime_DAY:
		layout = "2006-01-02"
	case dpb.DateTime_MILLISECOND:
		layout = "2006-01-02T15:04:05.000Z07:00"
	case dpb.DateTime_MICROSECOND:
		layout = "2006-01-02T15:04:05.000000Z07:00"
	default:
		layout = time.RFC3339
	}
	return t.Format(layout), t
}

// oneLine joins an error's lines into one.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// clip shortens s for an error message, at a character boundary.
func clip(s string) string {
	if len(s) > 60 {
		cut := 60
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		return s[:cut] + "…"
	}
	return s
}
