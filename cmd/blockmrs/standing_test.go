package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/blockmrs/blockmrs/node/api"
	"github.com/blockmrs/blockmrs/node/ops"
)

// Standing grants through the command line and the API, on one daemon:
// grant --scope and POST /api/v1/scopes, grants and GET /api/v1/grants,
// revoke --scope and POST /api/v1/scopes/end answer the same bodies; bad
// scopes and misuse are one line.
func TestStandingGrantsThroughCLIAndAPI(t *testing.T) {
	ctx := t.Context()
	p, c := newNode(t, ""), newNode(t, "")
	p.initAccount("--name", "Pat", "--role", "patient", "--no-passphrase")
	drID := c.initAccount("--name", "Dr Grey", "--role", "clinician", "--no-passphrase")
	profile := filepath.Join(t.TempDir(), "dr.car")
	c.ok("id", "--export", profile)
	p.ok("contact", "add", profile)
	// A lab result and a vital sign (lab add carries their categories in
	// the envelope), and a note.
	p.ok("lab", "add", "--for", "Pat", "--date", "2026-11-30", "fasting-glucose=95", "pulse=70")
	note := strings.TrimSpace(p.ok("add", "--kind", "note", "--title", "Diary", writeTemp(t, "diary.txt", []byte("diary"))))
	startAPIDaemon(t, p)
	pc, err := api.NewClient(p.dir)
	if err != nil {
		t.Fatal(err)
	}

	var g ops.ScopeGranted
	strictJSON(t, p.ok("grant", "--scope", "patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory",
		"--to", "Dr Grey", "--expires", "30d", "--json"), &g)
	if g.Scope != "patient/Observation.rs?category=laboratory" || g.Covered != 1 || string(g.To) != drID || g.ToName != "Dr Grey" || g.Block == "" || g.Expires.IsZero() {
		t.Fatalf("grant --scope --json: %+v", g)
	}
	viaAPI, err := pc.GrantScope(ctx, "", api.ScopeGrantRequest{Scope: "patient/DocumentReference.rs", To: "Dr Grey"})
	if err != nil || viaAPI.Covered != 1 || viaAPI.Scope != "patient/DocumentReference.rs" {
		t.Fatalf("POST /api/v1/scopes: %+v, %v", viaAPI, err)
	}

	list, err := pc.Grants(ctx, "", ops.ListGrants{})
	if err != nil {
		t.Fatal(err)
	}
	sameJSON(t, "grants", p.ok("grants", "--json"), list)
	covers := map[string]ops.StandingRow{}
	for _, s := range list.Standing {
		covers[s.Covers] = s
	}
	if len(list.Standing) != 2 || covers["lab results"].Records != 1 || covers["notes and documents"].Records != 1 || covers["lab results"].Expires.IsZero() {
		t.Fatalf("standing grants: %+v", list.Standing)
	}
	scoped := map[string]string{}
	for _, r := range list.Grants {
		scoped[r.Record] = r.Scope
	}
	if len(list.Grants) != 2 || scoped[note] != "patient/DocumentReference.rs" {
		t.Fatalf("record rows under the standing grants: %+v", list.Grants)
	}
	if out := p.ok("grants"); !strings.Contains(out, "STANDING GRANT") || !strings.Contains(out, "lab results") || !strings.Contains(out, "patient/DocumentReference.rs") {
		t.Fatalf("grants table:\n%s", out)
	}
	var readers ops.Readers
	strictJSON(t, p.ok("readers", note, "--json"), &readers)
	if rd := readers.Readers[len(readers.Readers)-1]; string(rd.Account) != drID || rd.Scope != "patient/DocumentReference.rs" {
		t.Fatalf("readers of the note do not name the standing grant: %+v", readers.Readers)
	}
	if out := p.ok("readers", note); !strings.Contains(out, "grantee under the standing grant patient/DocumentReference.rs") {
		t.Fatalf("readers text:\n%s", out)
	}

	// Refused: a write scope, a user/ scope, CIDs with --scope, a scope
	// to oneself; one line each, through the API too.
	for _, tc := range []struct {
		code int
		args []string
		says string
	}{
		{1, []string{"grant", "--scope", "patient/Observation.cruds", "--to", "Dr Grey"}, "only lets the grantee read"},
		{1, []string{"grant", "--scope", "user/*.rs", "--to", "Dr Grey"}, "user/ scopes are not supported"},
		{1, []string{"grant", "--scope", "patient/*.rs?code=x", "--to", "Dr Grey"}, `parameter "code" is not supported`},
		{2, []string{"grant", note, "--scope", "patient/*.rs", "--to", "Dr Grey"}, "--scope grants a scope, not records"},
		{2, []string{"grant", "--scope", "patient/*.rs"}, "missing --to"},
		{1, []string{"grant", "--scope", "patient/*.rs", "--to", "Pat"}, "cannot grant to the acting account"},
		{1, []string{"revoke", "--scope", "patient/Condition.rs", "--from", "Dr Grey"}, "no live standing grant"},
		{2, []string{"revoke", note, "--scope", "patient/*.rs", "--from", "Dr Grey"}, "--scope ends a standing grant"},
	} {
		r := p.fail(tc.code, tc.args...)
		if !strings.Contains(r.stderr, tc.says) || strings.Count(strings.TrimSpace(r.stderr), "\n") > 1 {
			t.Errorf("%v: %q, want %q", tc.args, r.stderr, tc.says)
		}
	}
	if _, err := pc.GrantScope(ctx, "", api.ScopeGrantRequest{Scope: "patient/Observation.cruds", To: "Dr Grey"}); err == nil || !strings.Contains(err.Error(), "only lets the grantee read") {
		t.Errorf("POST /api/v1/scopes with a write scope: %v", err)
	}
	if _, err := pc.EndScope(ctx, "", api.ScopeEndRequest{Scope: "patient/Condition.rs", From: "Dr Grey"}); err == nil || !strings.Contains(err.Error(), "no live standing grant") {
		t.Errorf("POST /api/v1/scopes/end of no grant: %v", err)
	}

	// Ending them: the CLI (any spelling of the scope), then the API.
	var e ops.ScopeEnded
	strictJSON(t, p.ok("revoke", "--scope", "patient/Observation.read?category=laboratory", "--from", "Dr Grey", "--json"), &e)
	if e.Scope != "patient/Observation.rs?category=laboratory" || string(e.From) != drID || e.Block == "" {
		t.Fatalf("revoke --scope --json: %+v", e)
	}
	if _, err := pc.EndScope(ctx, "", api.ScopeEndRequest{Scope: "patient/DocumentReference.rs", From: drID}); err != nil {
		t.Fatal(err)
	}
	list, err = pc.Grants(ctx, "", ops.ListGrants{})
	if err != nil || len(list.Standing) != 0 || len(list.Grants) != 0 {
		t.Fatalf("grants after the ends: %+v, %v", list, err)
	}
	if out := p.ok("log"); !strings.Contains(out, "end the standing grant of patient/DocumentReference.rs") || !strings.Contains(out, "standing grant of patient/Observation.rs?category=laboratory") {
		t.Fatalf("the log does not show the standing-grant entries:\n%s", out)
	}
	p.verifyOK()
}
