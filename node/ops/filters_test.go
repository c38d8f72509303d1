package ops

import (
	"strings"
	"testing"
	"time"

	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/protocol"
)

func filterRow(title, typ, code, date string, created time.Time, author protocol.AccountID) *keyshare.Listed {
	l := &keyshare.Listed{Access: &keyshare.Access{Author: author, Created: created}, Listing: keyshare.Listing{Title: title, Kind: protocol.KindFile}}
	if typ != "" {
		l.Kind = protocol.KindFHIR
		l.FHIR = &protocol.Clinical{ResourceType: typ, Code: code, Date: date}
	}
	return l
}

func TestRecordFilters(t *testing.T) {
	doc, pat := protocol.AccountID("Doc"), protocol.AccountID("Pat")
	a1c := filterRow("Hemoglobin A1c 5.4 % — 2019-03-02", "Observation", "http://loinc.org|4548-4", "2019-03-02T09:30:00Z", time.Now(), doc)
	cond := filterRow("Hypertension — 2018", "Condition", "http://snomed.info/sct|38341003", "2018", time.Now(), doc)
	scan := filterRow("Knee MRI", "", "", "", time.Date(2020, 5, 1, 12, 0, 0, 0, time.UTC), pat)
	rows := []*keyshare.Listed{a1c, cond, scan}
	for _, tc := range []struct {
		req  ListRecords
		want string
	}{
		{ListRecords{Type: "Observation"}, "Hemoglobin"},
		{ListRecords{Code: "4548-4"}, "Hemoglobin"},
		{ListRecords{Code: "http://loinc.org|4548-4"}, "Hemoglobin"},
		{ListRecords{Code: "http://snomed.info/sct|4548-4"}, ""},
		{ListRecords{Code: "548-4"}, ""},
		{ListRecords{Since: "2019-01-01"}, "Hemoglobin,Knee"},
		{ListRecords{Since: "2019-03-02", Until: "2019-03-02"}, "Hemoglobin"},
		{ListRecords{Until: "2018-12"}, "Hypertension"},
		{ListRecords{Since: "2018-06", Until: "2018-06"}, "Hypertension"}, // "2018" is neither before nor after June 2018
		{ListRecords{Since: "2020-05-01", Until: "2020-05-01"}, "Knee"},   // no clinical date: the day it was written
		{ListRecords{Author: pat}, "Knee"},
		{ListRecords{Type: "Observation", Author: pat}, ""},
		{ListRecords{Query: "hyper"}, "Hypertension"},
		{ListRecords{Kind: protocol.KindFile}, "Knee"},
	} {
		if err := tc.req.check(); err != nil && !strings.Contains(err.Error(), "author") {
			t.Fatalf("%+v: %v", tc.req, err)
		}
		var got []string
		for _, l := range rows {
			if tc.req.matches(l, strings.ToLower(tc.req.Query)) {
				got = append(got, strings.Fields(l.Title)[0])
			}
		}
		if strings.Join(got, ",") != tc.want {
			t.Errorf("%+v: got %v, want %s", tc.req, got, tc.want)
		}
	}
}

func TestRecordFiltersRefuseBadInput(t *testing.T) {
	for _, req := range []ListRecords{
		{Type: "observation"}, {Type: "<script>"}, {Since: "yesterday"}, {Until: "2019-13-45x"},
		{Code: strings.Repeat("x", MaxQuery+1)}, {Author: "not-an-account"}, {Kind: "pdf"}, {Query: "\xff"},
	} {
		err := req.check()
		if err == nil {
			t.Errorf("%+v accepted", req)
			continue
		}
		if msg := err.Error(); strings.Contains(msg, "\n") || !strings.Contains(msg, ":") {
			t.Errorf("%+v: error %q is not one line naming the field", req, msg)
		}
	}
}
