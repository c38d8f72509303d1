package main

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/blockmrs/blockmrs/node/api"
	"github.com/blockmrs/blockmrs/node/ops"
)

// blockmrs grants lists what the patient shared, per account with
// --with, and --json is GET /api/v1/grants; another account's list is
// its own; an unknown account is one line; a revoked grant leaves the
// list.
func TestGrantsThroughCLIAndAPI(t *testing.T) {
	ctx := t.Context()
	p, c := newNode(t, ""), newNode(t, "")
	p.initAccount("--name", "Pat", "--role", "patient", "--no-passphrase")
	drID := c.initAccount("--name", "Dr Grey", "--role", "clinician", "--no-passphrase")
	p.initAccount("--name", "Kim", "--role", "patient", "--no-passphrase")
	profile := filepath.Join(t.TempDir(), "dr.car")
	c.ok("id", "--export", profile)
	p.ok("contact", "add", profile)
	scan := strings.TrimSpace(p.ok("add", "--title", "Scan", writeTemp(t, "scan.txt", []byte("scan"))))
	labs := strings.TrimSpace(p.ok("add", "--title", "Labs", writeTemp(t, "labs.txt", []byte("labs"))))
	p.ok("add", "--title", "Diary", writeTemp(t, "diary.txt", []byte("diary")))
	until := time.Now().Add(72 * time.Hour).UTC().Truncate(time.Second)
	p.ok("grant", scan, "--to", "Dr Grey", "--expires", until.Format(time.RFC3339))
	p.ok("grant", labs, "--to", "Dr Grey")
	startAPIDaemon(t, p)
	pc, err := api.NewClient(p.dir)
	if err != nil {
		t.Fatal(err)
	}

	all, err := pc.Grants(ctx, "", ops.ListGrants{})
	if err != nil {
		t.Fatal(err)
	}
	if len(all.Grants) != 2 {
		t.Fatalf("grants %+v", all.Grants)
	}
	byCID := map[string]ops.GrantRow{}
	for _, g := range all.Grants {
		byCID[g.Record] = g
		if string(g.To) != drID || g.Via.Block == "" {
			t.Fatalf("grant %+v", g)
		}
	}
	if g := byCID[scan]; g.Title != "Scan" || !g.Expires.Equal(until) {
		t.Fatalf("the scan's grant %+v, want until %v", g, until)
	}
	if g := byCID[labs]; g.Title != "Labs" || !g.Expires.IsZero() {
		t.Fatalf("the labs' grant %+v", g)
	}
	sameJSON(t, "grants", p.ok("grants", "--json"), all)
	with, err := pc.Grants(ctx, "", ops.ListGrants{With: "Dr Grey"})
	if err != nil {
		t.Fatal(err)
	}
	sameJSON(t, "grants --with", p.ok("grants", "--with", "Dr Grey", "--json"), with)
	if len(with.Grants) != 2 {
		t.Fatalf("grants with Dr Grey: %+v", with.Grants)
	}
	// Another account of the same repo shared nothing.
	kim, err := pc.Grants(ctx, "Kim", ops.ListGrants{})
	if err != nil || len(kim.Grants) != 0 {
		t.Fatalf("Kim's grants %+v, %v", kim.Grants, err)
	}
	if out := p.ok("grants"); !strings.Contains(out, "Scan") || !strings.Contains(out, "Dr Grey") {
		t.Fatalf("grants table:\n%s", out)
	}
	// An unknown account: one line, exit 1, the same through the API.
	r := p.fail(1, "grants", "--with", "Nobody")
	if !strings.Contains(r.stderr, "with:") || strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 {
		t.Fatalf("grants --with Nobody: %q", r.stderr)
	}
	if _, err := pc.Grants(ctx, "", ops.ListGrants{With: "Nobody"}); err == nil {
		t.Fatal("the API listed grants with an unknown account")
	}

	// Revoked: gone from the list.
	p.ok("revoke", scan, "--from", "Dr Grey")
	after, err := pc.Grants(ctx, "", ops.ListGrants{})
	if err != nil || len(after.Grants) != 1 || after.Grants[0].Record != labs {
		t.Fatalf("after the revoke: %+v, %v", after.Grants, err)
	}
}
