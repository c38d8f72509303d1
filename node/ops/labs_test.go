package ops

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/protocol"
)

type labParty struct {
	repo *keyshare.Repo
	keys *keyshare.Keys
}

func newLabParty(t *testing.T, name string, role protocol.Role) labParty {
	t.Helper()
	r, err := keyshare.Open(t.Context(), t.TempDir(), keyshare.Options{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	k, err := r.CreateAccount(t.Context(), name, role, nil)
	if err != nil {
		t.Fatal(err)
	}
	return labParty{r, k}
}

// hand moves from's chain (all of it, or its profile only) into to.
func hand(t *testing.T, from, to labParty, profile bool) {
	t.Helper()
	var b bytes.Buffer
	var err error
	if profile {
		err = from.repo.ExportProfile(t.Context(), &b, from.keys.ID)
	} else {
		_, err = from.repo.ExportCAR(t.Context(), &b, from.keys.ID)
	}
	if err != nil {
		t.Fatal(err)
	}
	if _, err := to.repo.ImportCAR(t.Context(), &b); err != nil {
		t.Fatal(err)
	}
}

// A clinician writes a panel for a patient: one signed fhir record per
// value, titled with name, value, unit and date; the patient, once the
// clinician's chain arrives, reads the values oldest first, filtered by
// code, key, free name and record.
func TestAddLabsAndRead(t *testing.T) {
	ctx := t.Context()
	pat := newLabParty(t, "Pat", protocol.RolePatient)
	doc := newLabParty(t, "Dr Grey", protocol.RoleClinician)
	hand(t, pat, doc, true)

	const hostile = `<img src=x onerror=alert(1)>`
	first, err := AddLabs(ctx, doc.repo, doc.keys, LabPanel{For: "Pat", Effective: "2026-11-02", Values: []LabValue{
		{Test: "fasting-glucose", Value: "95"}, {Test: "LDL", Value: "110"}, {Test: "blood-group", Value: "o neg"},
		{Name: hostile, Value: "30", Unit: "ng/mL"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if len(first.Records) != 4 {
		t.Fatalf("%d records", len(first.Records))
	}
	r0 := first.Records[0]
	if r0.Title != "Glucose [fasting] 95 mg/dL — 2026-11-02" || r0.Kind != protocol.KindFHIR || r0.MediaType != "application/fhir+json" ||
		r0.Subject != pat.keys.ID || r0.Author != doc.keys.ID || r0.Code != "1558-6" || r0.Test != "fasting-glucose" {
		t.Fatalf("first record %+v", r0)
	}
	if r := first.Records[1]; r.Test != "ldl" || r.Code != "13457-7" {
		t.Fatalf("ldl record %+v", r)
	}
	if r := first.Records[2]; r.Value != "O-" || r.Title != "Blood group O- — 2026-11-02" {
		t.Fatalf("blood group record %+v", r)
	}
	if r := first.Records[3]; r.Name != hostile || r.Code != "" || r.Unit != "ng/mL" {
		t.Fatalf("free record %+v", r)
	}
	if _, err := AddLabs(ctx, doc.repo, doc.keys, LabPanel{For: string(pat.keys.ID), Effective: "2026-12-01T08:30:00Z", Values: []LabValue{
		{Test: "fasting-glucose", Value: "101"},
	}}); err != nil {
		t.Fatal(err)
	}
	hand(t, doc, pat, false)

	all, err := Labs(ctx, pat.repo, pat.keys, ListLabs{})
	if err != nil {
		t.Fatal(err)
	}
	if len(all.Values) != 5 || all.Skipped != 0 {
		t.Fatalf("patient reads %d values, %d skipped: %+v", len(all.Values), all.Skipped, all)
	}
	for _, code := range []string{"1558-6", "fasting-glucose"} {
		got, err := Labs(ctx, pat.repo, pat.keys, ListLabs{Code: code})
		if err != nil {
			t.Fatal(err)
		}
		if len(got.Values) != 2 || got.Values[0].Value != "95" || got.Values[1].Value != "101" ||
			got.Values[0].Effective != "2026-11-02" || got.Values[1].Effective != "2026-12-01T08:30:00Z" {
			t.Fatalf("code %s: %+v", code, got.Values)
		}
		v := got.Values[0]
		if v.Unit != "mg/dL" || v.Number == nil || *v.Number != 95 || v.Author != doc.keys.ID || v.Subject != pat.keys.ID ||
			v.System != "http://loinc.org" || v.Category != "laboratory" || v.Name != "Glucose [fasting]" || v.CID != first.Records[0].CID {
			t.Fatalf("row %+v", v)
		}
	}
	free, err := Labs(ctx, pat.repo, pat.keys, ListLabs{Code: strings.ToUpper(hostile)})
	if err != nil || len(free.Values) != 1 || free.Values[0].Name != hostile || free.Values[0].Code != "" {
		t.Fatalf("free row by name: %+v %v", free, err)
	}
	one, err := Labs(ctx, pat.repo, pat.keys, ListLabs{Record: first.Records[2].CID})
	if err != nil || len(one.Values) != 1 || one.Values[0].Value != "O-" || one.Values[0].Number != nil {
		t.Fatalf("one record: %+v %v", one, err)
	}
	mine, err := Labs(ctx, doc.repo, doc.keys, ListLabs{For: "Pat", Code: "ldl"})
	if err != nil || len(mine.Values) != 1 || mine.Values[0].Value != "110" {
		t.Fatalf("the author reads: %+v %v", mine, err)
	}
	none, err := Labs(ctx, doc.repo, doc.keys, ListLabs{For: "Dr Grey"})
	if err != nil || len(none.Values) != 0 {
		t.Fatalf("values about the clinician: %+v %v", none, err)
	}
}

// Records that are not readable Observations are skipped and counted; a
// FHIR resource of another type is neither a value nor skipped.
func TestLabsSkipsUnreadable(t *testing.T) {
	ctx := t.Context()
	pat := newLabParty(t, "Pat", protocol.RolePatient)
	// Written through the repo, which checks structure only: AddRecord
	// refuses an invalid resource, but one can still arrive from another
	// node.
	add := func(body string) {
		t.Helper()
		if _, err := pat.repo.AddRecord(ctx, pat.keys, keyshare.NewRecord{Kind: protocol.KindFHIR, Title: "x", MediaType: "application/fhir+json", Body: strings.NewReader(body)}); err != nil {
			t.Fatal(err)
		}
	}
	add(`{"resourceType":"Patient","active":true}`)
	add(`{"resourceType":"Observation","status":"bogus","code":{"text":"x"},"valueString":"1","effectiveDateTime":"2026-11-02"}`)
	add(`{"resourceType":"Observation","status":"final","code":{"text":"<b>x</b>"},"valueQuantity":{"value":3},"effectiveDateTime":"2026-11-02"}`)
	if _, err := AddRecord(ctx, pat.repo, pat.keys, NewRecord{Title: "a note", Kind: protocol.KindNote}, strings.NewReader("hello")); err != nil {
		t.Fatal(err)
	}
	got, err := Labs(ctx, pat.repo, pat.keys, ListLabs{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Values) != 1 || got.Values[0].Name != "<b>x</b>" || got.Skipped != 1 || len(got.Problems) != 1 || !strings.Contains(got.Problems[0], "status") {
		t.Fatalf("%+v", got)
	}
}

// Refusals: one line, ErrInvalid (or ErrNotFound for an unknown
// patient), naming the field, and nothing written.
func TestAddLabsRefuses(t *testing.T) {
	ctx := t.Context()
	pat := newLabParty(t, "Pat", protocol.RolePatient)
	doc := newLabParty(t, "Dr Grey", protocol.RoleClinician)
	hand(t, pat, doc, true)
	ok := LabValue{Test: "pulse", Value: "72"}
	many := make([]LabValue, MaxLabValues+1)
	for i := range many {
		many[i] = ok
	}
	cases := []struct {
		req  LabPanel
		want string
	}{
		{LabPanel{Values: []LabValue{ok}}, "for: "},
		{LabPanel{For: "Pat"}, "values: none"},
		{LabPanel{For: "Pat", Values: many}, "values: 65"},
		{LabPanel{For: "Pat", Effective: "soon", Values: []LabValue{ok}}, "effective: "},
		{LabPanel{For: "Pat", Effective: "2099-01-01", Values: []LabValue{ok}}, "effective: "},
		{LabPanel{For: "Pat", Values: []LabValue{ok, {Test: "glucose", Value: "1"}}}, `"glucose" is not a panel field`},
		{LabPanel{For: "Pat", Values: []LabValue{ok, {Test: "pulse", Value: "-1"}}}, "pulse: "},
		{LabPanel{For: "Pat", Values: []LabValue{ok, {Test: "ldl", Value: "NaN"}}}, "ldl: "},
		{LabPanel{For: "Pat", Values: []LabValue{ok, {Test: "ldl", Value: "100", Unit: "mmol/L"}}}, "takes no name or unit"},
		{LabPanel{For: "Pat", Values: []LabValue{ok, {Name: "x\ny", Value: "1"}}}, "name: "},
		{LabPanel{For: "Pat", Values: []LabValue{ok, {Name: "Vit D", Value: "high", Unit: "ng/mL"}}}, "unit needs a number"},
	}
	for _, c := range cases {
		_, err := AddLabs(ctx, doc.repo, doc.keys, c.req)
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%+v: %v, want ErrInvalid with %q", c.req.Values, err, c.want)
		}
	}
	if _, err := AddLabs(ctx, doc.repo, doc.keys, LabPanel{For: "Nobody", Values: []LabValue{ok}}); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown patient: %v", err)
	}
	list, err := doc.repo.List(ctx, doc.keys, true)
	if err != nil || len(list) != 0 {
		t.Fatalf("refused panels wrote %d records (%v)", len(list), err)
	}
	for _, req := range []ListLabs{{Code: "x\x00"}, {For: "Nobody"}, {Record: "notacid"}} {
		if _, err := Labs(ctx, doc.repo, doc.keys, req); err == nil || strings.Contains(err.Error(), "\n") {
			t.Errorf("labs %+v: %v", req, err)
		}
	}
}

// A corrected value (a new version that supersedes the first) replaces it
// in the table: one point, the new value; the old record's own values are
// still shown for its page.
func TestLabsShowTheNewestVersion(t *testing.T) {
	ctx := t.Context()
	pat := newLabParty(t, "Pat", protocol.RolePatient)
	first, err := AddLabs(ctx, pat.repo, pat.keys, LabPanel{For: "Pat", Effective: "2026-11-02", Values: []LabValue{{Test: "ldl", Value: "110"}}})
	if err != nil {
		t.Fatal(err)
	}
	old := first.Records[0].CID
	oldCID := mustCID(t, old)
	_, body, err := pat.repo.OpenRecord(ctx, pat.keys, oldCID)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	b.ReadFrom(body)
	body.Close()
	fixed := strings.Replace(b.String(), `"value":110}`, `"value":101}`, 1)
	if fixed == b.String() {
		t.Fatalf("no value to correct in %s", b.String())
	}
	if _, err := pat.repo.AddRecord(ctx, pat.keys, keyshare.NewRecord{Title: "LDL corrected", Kind: protocol.KindFHIR,
		MediaType: "application/fhir+json", Supersedes: oldCID, Body: strings.NewReader(fixed)}); err != nil {
		t.Fatal(err)
	}
	all, err := Labs(ctx, pat.repo, pat.keys, ListLabs{})
	if err != nil {
		t.Fatal(err)
	}
	if len(all.Values) != 1 || all.Values[0].Value != "101" {
		t.Fatalf("table %+v, want the corrected value alone", all.Values)
	}
	one, err := Labs(ctx, pat.repo, pat.keys, ListLabs{Record: old})
	if err != nil || len(one.Values) != 1 || one.Values[0].Value != "110" {
		t.Fatalf("the old record's own values: %+v, %v", one.Values, err)
	}
}
