package ops

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/protocol"
	"github.com/blockmrs/blockmrs/protocol/fhir"
)

// MaxLabValues bounds the values of one lab panel.
const MaxLabValues = 64

// LabFieldList is the result of LabFields.
type LabFieldList struct {
	// Fields are the lab panel's fields, in the order forms show them.
	Fields []fhir.Lab `json:"fields"`
}

// LabFields returns the lab panel's fields (fhir.Labs): their keys,
// names, LOINC codes, units, bounds and coded answers.
func LabFields() LabFieldList {
	return LabFieldList{Fields: slices.Clone(fhir.Labs)}
}

// LabPanel is the argument of AddLabs: values measured for a patient at
// one time.
type LabPanel struct {
	// For names the patient (NAME, ID or ID suffix of a known account).
	For string `json:"for"`
	// Effective is when the values were measured: a date (2026-12-01)
	// or an RFC 3339 date-time; default now.
	Effective string `json:"effective,omitempty"`
	// Values are the measured values, at least one, at most
	// MaxLabValues.
	Values []LabValue `json:"values"`
}

// LabValue is one value of a lab panel: a panel field (Test) or a free
// row (Name, with an optional Unit).
type LabValue struct {
	// Test is a panel field's key (fasting-glucose, pp-glucose,
	// creatinine, blood-group, cholesterol, hdl, ldl, rbc, pulse; see
	// fhir.Labs); empty for a free row.
	Test string `json:"test,omitempty"`
	// Name is a free row's name (it gets a text code, no LOINC).
	Name string `json:"name,omitempty"`
	// Value is a number in the field's unit ("95", "1.1"), a blood group
	// ("A+", "O-"), or a free row's number or text.
	Value string `json:"value"`
	// Unit is a free row's unit, as written (no UCUM code).
	Unit string `json:"unit,omitempty"`
}

// LabsWritten is the result of AddLabs.
type LabsWritten struct {
	// Records are the records written, one FHIR Observation per value,
	// in the order of the values.
	Records []LabRecord `json:"records"`
}

// LabRecord is one Observation record written by AddLabs.
type LabRecord struct {
	AddedRecord
	// Test is the panel field's key ("" for a free row).
	Test string `json:"test,omitempty"`
	// Code is the LOINC code ("" for a free row); Name the value's name.
	Code string `json:"code,omitempty"`
	Name string `json:"name"`
	// Value and Unit are the value as recorded.
	Value string `json:"value"`
	Unit  string `json:"unit,omitempty"`
	// Effective is the Observation's effectiveDateTime.
	Effective string `json:"effective"`
}

// AddLabs writes one FHIR R4 Observation record per value for the
// patient, authored and signed by keys' account as every record is (see
// AddRecord: kind fhir, the record key wrapped for the patient, the
// author and the patient's standing grantees). Every value is checked
// and its Observation built before the first record is written, so a bad
// value writes nothing; a one-line error names the field.
func AddLabs(ctx context.Context, repo *keyshare.Repo, keys *keyshare.Keys, req LabPanel) (LabsWritten, error) {
	if req.For == "" {
		return LabsWritten{}, invalidf("for: name the patient the values are for")
	}
	if len(req.Values) == 0 {
		return LabsWritten{}, invalidf("values: none given")
	}
	if len(req.Values) > MaxLabValues {
		return LabsWritten{}, invalidf("values: %d, more than %d in one panel", len(req.Values), MaxLabValues)
	}
	now := time.Now()
	effective := now.UTC().Truncate(time.Second).Format(time.RFC3339)
	if req.Effective != "" {
		e, _, err := fhir.ParseEffective(req.Effective, now)
		if err != nil {
			return LabsWritten{}, invalidf("effective: %v", err)
		}
		effective = e
	}
	patient, err := repo.Resolve(ctx, req.For, false)
	if err != nil {
		if errors.Is(err, keyshare.ErrUnknownAccount) {
			return LabsWritten{}, fmt.Errorf("for: %v: %w", err, ErrNotFound)
		}
		return LabsWritten{}, invalidf("for: %v", err)
	}
	type built struct {
		rec      LabRecord
		data     []byte
		clinical *protocol.Clinical
	}
	all := make([]built, 0, len(req.Values))
	for i, v := range req.Values {
		var o fhir.Observation
		var err error
		switch {
		case v.Test != "" && (v.Name != "" || v.Unit != ""):
			return LabsWritten{}, invalidf("values[%d]: a panel field (%s) takes no name or unit", i, truncate(v.Test))
		case v.Test != "":
			lab, ok := fhir.LabByKey(v.Test)
			if !ok {
				return LabsWritten{}, invalidf("values[%d]: %q is not a panel field (%s)", i, truncate(v.Test), strings.Join(fhir.Keys(), ", "))
			}
			o, err = lab.Observation(v.Value, effective, string(patient.ID), string(keys.ID))
		default:
			o, err = fhir.FreeObservation(v.Name, v.Value, v.Unit, effective, string(patient.ID), string(keys.ID))
		}
		if err != nil {
			return LabsWritten{}, invalidf("%v", err)
		}
		data, err := fhir.Marshal(o)
		if err != nil {
			return LabsWritten{}, invalidf("values[%d]: %v", i, err)
		}
		val, unit := labValue(o)
		all = append(all, built{data: data, clinical: labClinical(data), rec: LabRecord{
			Test: strings.ToLower(v.Test), Code: o.Code.Code, Name: o.Name(), Value: val, Unit: unit, Effective: effective,
		}})
	}
	out := LabsWritten{Records: make([]LabRecord, 0, len(all))}
	for _, b := range all {
		title := b.rec.Name + " " + b.rec.Value
		if b.rec.Unit != "" {
			title += " " + b.rec.Unit
		}
		title += " — " + b.rec.Effective[:len("2006-01-02")]
		added, err := AddRecord(ctx, repo, keys, NewRecord{
			Title: title, Kind: protocol.KindFHIR, MediaType: "application/fhir+json", For: string(patient.ID), FHIR: b.clinical,
		}, bytes.NewReader(b.data))
		if err != nil {
			return out, fmt.Errorf("write %s (%d of %d written): %w", b.rec.Name, len(out.Records), len(all), err)
		}
		b.rec.AddedRecord = added
		out.Records = append(out.Records, b.rec)
	}
	return out, nil
}

// labClinical is what the envelope of a lab panel's Observation record
// says of it (fhir.Extract: resource type, clinical date, code, name,
// category — so that listings and standing grants, a laboratory scope or
// a vital-signs one, judge it without opening it), and the digest of its
// bytes.
func labClinical(data []byte) *protocol.Clinical {
	c := fhir.Extract(data).Clinical
	sum := sha256.Sum256(data)
	c.Digest = sum[:]
	return &c
}

// labValue is an Observation's value and unit as a table shows them: a
// quantity's decimal and unit, a blood group's short form ("O+"), a
// coded value's display, a text value.
func labValue(o fhir.Observation) (string, string) {
	switch {
	case o.Quantity != nil:
		return o.Quantity.Value, o.Quantity.Unit
	case o.Concept != nil:
		if lab, ok := fhir.LabByLOINC(o.Code.Code); ok && o.Code.System == fhir.LOINC && o.Concept.System == fhir.SNOMED {
			for _, a := range lab.Answers {
				if a.Code == o.Concept.Code {
					return a.Text, ""
				}
			}
		}
		return cmp.Or(o.Concept.Display, o.Concept.Code), ""
	}
	return o.String, ""
}

// ListLabs is the argument of Labs.
type ListLabs struct {
	// Code, when set, keeps the values of one test: a LOINC code
	// (1558-6), a panel field's key (fasting-glucose), or a free row's
	// name (ignoring case).
	Code string `json:"code,omitempty"`
	// For, when set, keeps the values about one account (NAME, ID or ID
	// suffix).
	For string `json:"for,omitempty"`
	// Record, when set, keeps the values of one record (its CID).
	Record string `json:"record,omitempty"`
}

// LabTable is the result of Labs.
type LabTable struct {
	// Values are the lab values, oldest first (by effective time, then
	// record CID).
	Values []LabRow `json:"values"`
	// Skipped counts the FHIR records the account can read that could
	// not be read as Observations with a value (unreadable, invalid);
	// Problems says why, for the first MaxLabProblems of them. Valid FHIR
	// of other resource types is neither a value nor skipped.
	Skipped  int      `json:"skipped"`
	Problems []string `json:"problems,omitempty"`
}

// MaxLabProblems bounds LabTable.Problems.
const MaxLabProblems = 20

// LabRow is one lab value, read from an Observation record.
type LabRow struct {
	// CID is the record's CID; Title its title.
	CID   string `json:"cid"`
	Title string `json:"title"`
	// Effective is the Observation's effectiveDateTime as written
	// (2026-12-01, 2026-12-01T08:30:00Z).
	Effective string `json:"effective"`
	// Name is what was measured, as people say it; Code and System the
	// coding (LOINC), empty for a free row with a text code only; Display
	// the coding's display.
	Name    string `json:"name"`
	Code    string `json:"code,omitempty"`
	System  string `json:"system,omitempty"`
	Display string `json:"display,omitempty"`
	// Category is laboratory or vital-signs.
	Category string `json:"category,omitempty"`
	// Value and Unit are the value as a table shows it; Number is the
	// value as a number, for a chart, when it is one.
	Value  string   `json:"value"`
	Number *float64 `json:"number,omitempty"`
	Unit   string   `json:"unit,omitempty"`
	// Author is the account that signed the record (from the chain, not
	// the Observation's performer); Subject the account it is about.
	Author  protocol.AccountID `json:"author"`
	Subject protocol.AccountID `json:"subject"`
}

// Labs reads every FHIR Observation record keys' account can read (not
// hidden) with the FHIR library and returns its values, filtered by test,
// subject and record. Records that cannot be read are skipped and
// counted, with the reason.
func Labs(ctx context.Context, repo *keyshare.Repo, keys *keyshare.Keys, req ListLabs) (LabTable, error) {
	if req.Code != "" {
		if err := fhir.CheckText(req.Code); err != nil {
			return LabTable{}, invalidf("code: %v", err)
		}
	}
	code := req.Code
	if lab, ok := fhir.LabByKey(code); ok {
		code = lab.LOINC
	}
	var subject protocol.AccountID
	if req.For != "" {
		s, err := repo.Resolve(ctx, req.For, false)
		if err != nil {
			if errors.Is(err, keyshare.ErrUnknownAccount) {
				return LabTable{}, fmt.Errorf("for: %v: %w", err, ErrNotFound)
			}
			return LabTable{}, invalidf("for: %v", err)
		}
		subject = s.ID
	}
	if req.Record != "" {
		if _, err := ParseRecordCID(req.Record); err != nil {
			return LabTable{}, err
		}
	}
	list, err := repo.List(ctx, keys, false)
	if err != nil {
		return LabTable{}, fmt.Errorf("list records: %w", err)
	}
	// A corrected value replaces the one it supersedes: only the newest
	// version of each Observation is a point of the table (one record's
	// own values are shown whatever its version).
	if req.Record == "" {
		list = keyshare.FoldVersions(list)
	}
	out := LabTable{Values: []LabRow{}}
	type dated struct {
		row LabRow
		at  time.Time
	}
	var rows []dated
	skip := func(l keyshare.Listed, why string) {
		out.Skipped++
		if len(out.Problems) < MaxLabProblems {
			out.Problems = append(out.Problems, l.Record.String()+": "+why)
		}
	}
	for _, l := range list {
		if l.Kind != protocol.KindFHIR || !l.Readable {
			continue
		}
		if subject != "" && l.Subject != subject {
			continue
		}
		if req.Record != "" && l.Record.String() != req.Record {
			continue
		}
		// The envelope names the resource type (records imported or
		// written since it does): other resources are not opened.
		if l.FHIR != nil && l.FHIR.ResourceType != "Observation" {
			continue
		}
		if l.Error != "" {
			skip(l, l.Error)
			continue
		}
		o, err := readObservation(ctx, repo, keys, l)
		if errors.Is(err, fhir.ErrNotObservation) {
			continue
		}
		if err != nil {
			if ctx.Err() != nil {
				return LabTable{}, ctx.Err()
			}
			skip(l, err.Error())
			continue
		}
		if code != "" && o.Code.Code != code && !(o.Code.System == "" && strings.EqualFold(o.Name(), code)) {
			continue
		}
		val, unit := labValue(o)
		row := LabRow{
			CID: l.Record.String(), Title: l.Title, Effective: o.Effective,
			Name: o.Name(), Code: o.Code.Code, System: o.Code.System, Display: o.Code.Display, Category: o.Category,
			Value: val, Unit: unit, Author: l.Author, Subject: l.Subject,
		}
		if o.Quantity != nil {
			if n, err := fhir.ParseDecimal(o.Quantity.Value); err == nil {
				row.Number = &n
			}
		}
		rows = append(rows, dated{row, o.Time})
	}
	slices.SortFunc(rows, func(a, b dated) int {
		return cmp.Or(a.at.Compare(b.at), strings.Compare(a.row.CID, b.row.CID))
	})
	for _, r := range rows {
		out.Values = append(out.Values, r.row)
	}
	return out, nil
}

// readObservation decrypts record l and parses it as an Observation.
func readObservation(ctx context.Context, repo *keyshare.Repo, keys *keyshare.Keys, l keyshare.Listed) (fhir.Observation, error) {
	_, body, err := repo.OpenRecord(ctx, keys, l.Record)
	if err != nil {
		return fhir.Observation{}, err
	}
	defer body.Close()
	data, err := io.ReadAll(io.LimitReader(body, fhir.MaxSize+1))
	if err != nil {
		return fhir.Observation{}, fmt.Errorf("read: %w", err)
	}
	if len(data) > fhir.MaxSize {
		return fhir.Observation{}, fmt.Errorf("over %d bytes, too large for an Observation", fhir.MaxSize)
	}
	return fhir.Parse(data)
}
