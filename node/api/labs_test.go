package api

import (
	"net/http"
	"testing"

	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/protocol"
)

// POST /api/v1/labs writes a panel (201, one record per value), refuses
// a bad value with one line naming it and writes nothing, 404 for an
// unknown patient, 423 while locked; GET /api/v1/labs returns the values,
// filtered.
func TestLabs(t *testing.T) {
	ctx := t.Context()
	repo, err := keyshare.Open(ctx, t.TempDir(), keyshare.Options{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	defer repo.Close()
	doc, err := repo.CreateAccount(ctx, "Doc", protocol.RoleClinician, nil)
	if err != nil {
		t.Fatal(err)
	}
	pat, err := repo.CreateAccount(ctx, "Pat", protocol.RolePatient, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := repo.CreateAccount(ctx, "Sam", protocol.RoleClinician, []byte("right")); err != nil {
		t.Fatal(err)
	}
	sessions := keyshare.NewSessions(repo)
	defer sessions.Close()
	e := startServer(t, Options{Repo: repo, Sessions: sessions})

	var out LabsWritten
	decode(t, e.postJSON(t, "/api/v1/labs?account=Doc", `{"for":"Pat","effective":"2026-11-02","values":[
		{"test":"fasting-glucose","value":"95"},{"test":"ldl","value":"110"},{"name":"<img src=x onerror=alert(1)>","value":"30","unit":"ng/mL"}]}`),
		http.StatusCreated, &out)
	if len(out.Records) != 3 || out.Records[0].Title != "Glucose [fasting] 95 mg/dL — 2026-11-02" || out.Records[0].Author != doc.ID ||
		out.Records[0].Subject != pat.ID || out.Records[1].Code != "13457-7" || out.Records[2].Code != "" {
		t.Fatalf("written %+v", out)
	}
	decode(t, e.postJSON(t, "/api/v1/labs?account=Doc", `{"for":"Pat","effective":"2026-12-01","values":[{"test":"fasting-glucose","value":"101"}]}`),
		http.StatusCreated, &out)

	wantError(t, e.postJSON(t, "/api/v1/labs?account=Doc", `{"for":"Pat","values":[{"test":"pulse","value":"72"},{"test":"pulse","value":"9000"}]}`),
		http.StatusBadRequest, "pulse: 9000")
	wantError(t, e.postJSON(t, "/api/v1/labs?account=Doc", `{"for":"Nobody","values":[{"test":"pulse","value":"72"}]}`), http.StatusNotFound, "for")
	wantError(t, e.postJSON(t, "/api/v1/labs?account=Doc", `{"for":"Pat","values":[{"test":"pulse","value":"72","script":1}]}`), http.StatusBadRequest, "unknown field")
	wantError(t, e.postJSON(t, "/api/v1/labs?account=Sam", `{"for":"Pat","values":[{"test":"pulse","value":"72"}]}`), http.StatusLocked, "locked")
	wantError(t, e.do(t, req{path: "/api/v1/labs?account=Sam"}), http.StatusLocked, "locked")

	var fields LabFieldList
	decode(t, e.do(t, req{path: "/api/v1/labs/panel"}), http.StatusOK, &fields)
	if len(fields.Fields) != 9 || fields.Fields[0].Key != "fasting-glucose" || fields.Fields[3].Answers[0].Text != "A+" {
		t.Fatalf("panel fields: %+v", fields)
	}
	var table LabTable
	decode(t, e.do(t, req{path: "/api/v1/labs?account=Pat"}), http.StatusOK, &table)
	if len(table.Values) != 4 || table.Skipped != 0 {
		t.Fatalf("patient's values: %+v", table)
	}
	decode(t, e.do(t, req{path: "/api/v1/labs?account=Pat&code=1558-6"}), http.StatusOK, &table)
	if len(table.Values) != 2 || table.Values[0].Value != "95" || table.Values[1].Value != "101" || table.Values[0].Author != doc.ID ||
		table.Values[0].Number == nil || *table.Values[0].Number != 95 || table.Values[0].Unit != "mg/dL" {
		t.Fatalf("glucose values: %+v", table.Values)
	}
	decode(t, e.do(t, req{path: "/api/v1/labs?account=Doc&for=Pat&record=" + out.Records[0].CID}), http.StatusOK, &table)
	if len(table.Values) != 1 || table.Values[0].Value != "101" {
		t.Fatalf("one record: %+v", table.Values)
	}
	wantError(t, e.do(t, req{path: "/api/v1/labs?account=Pat&record=notacid"}), http.StatusBadRequest, "CID")
	wantError(t, e.do(t, req{path: "/api/v1/labs?account=Pat&for=Nobody"}), http.StatusNotFound, "for")
}
