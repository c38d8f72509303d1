package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/blockmrs/blockmrs/node/ops"
)

// strictJSON decodes out into v refusing fields v lacks.
func strictJSON(t *testing.T, out string, v any) {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("not the ops type: %v\n%s", err, out)
	}
}

// grant and revoke --json print the API's bodies (ops.Granted and
// ops.Revoked); their text stays as it was.
func TestGrantRevokeJSON(t *testing.T) {
	t.Parallel()
	p, _, _, doctor, rec := pair(t)
	var g ops.Granted
	strictJSON(t, p.ok("grant", rec, "--to", "doctor", "--expires", "30d", "--json"), &g)
	if g.Block == "" || string(g.To) != doctor || g.ToName != "doctor" || len(g.Records) != 1 || g.Records[0] != rec ||
		g.Expires.Before(time.Now().Add(29*24*time.Hour)) {
		t.Fatalf("grant --json: %+v", g)
	}
	r := p.fail(1, "revoke", rec, "--from", "doctor")
	if !strings.Contains(r.stderr, "the record's author, not a grantee") {
		t.Fatalf("revoke from the author: %q", r.stderr)
	}
	other := p.initAccount("--name", "friend", "--no-passphrase")
	p.ok("grant", rec, "--to", "friend")
	var rv ops.Revoked
	strictJSON(t, p.ok("revoke", rec, "--from", "friend", "--json"), &rv)
	if rv.Block == "" || string(rv.From) != other || rv.FromName != "friend" || len(rv.Records) != 1 {
		t.Fatalf("revoke --json: %+v", rv)
	}
	if out := p.ok("grant", rec, "--to", "doctor"); !strings.HasPrefix(out, "granted 1 record(s) to doctor") || !strings.Contains(out, " in block ") {
		t.Fatalf("grant text: %q", out)
	}
}
