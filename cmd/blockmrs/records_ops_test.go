package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/blockmrs/blockmrs/node/api"
	"github.com/blockmrs/blockmrs/node/ops"
)

// blockmrs ls --json through a running daemon prints the rows that GET
// /api/v1/records answers, with and without --all, and hide --json the
// same result as the API's hide.
func TestRecordsThroughCLIAndAPI(t *testing.T) {
	ctx := t.Context()
	p := newNode(t, "")
	p.initAccount("--name", "Pat", "--role", "patient", "--no-passphrase")
	startAPIDaemon(t, p)
	pc, err := api.NewClient(p.dir)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var cids []string
	for i, name := range []string{"results.pdf", "notes.txt"} {
		file := filepath.Join(dir, name)
		if err := os.WriteFile(file, []byte(strings.Repeat("x", 10+i)), 0o600); err != nil {
			t.Fatal(err)
		}
		cids = append(cids, strings.TrimSpace(p.ok("add", "--title", "Record "+name, file)))
	}
	rows, err := pc.Records(ctx, "", ops.ListRecords{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rows.Records) != 2 {
		t.Fatalf("API rows %d", len(rows.Records))
	}
	sameJSON(t, "ls", p.ok("ls", "--json"), rows)

	var hid struct {
		Block string `json:"block"`
	}
	p.json(&hid, "hide", cids[0], "--json")
	if hid.Block == "" {
		t.Fatal("hide --json: no block")
	}
	if rows, err = pc.Records(ctx, "Pat", ops.ListRecords{}); err != nil || len(rows.Records) != 1 {
		t.Fatalf("after hide: %d rows, %v", len(rows.Records), err)
	}
	sameJSON(t, "ls after hide", p.ok("ls", "--json"), rows)
	if rows, err = pc.Records(ctx, "", ops.ListRecords{All: true}); err != nil || len(rows.Records) != 2 {
		t.Fatalf("--all after hide: %d rows, %v", len(rows.Records), err)
	}
	sameJSON(t, "ls --all after hide", p.ok("ls", "--all", "--json"), rows)
	// One record's row, the hidden one too: ls CID is GET /records/{cid}.
	one, err := pc.Record(ctx, "", cids[0])
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(one), `"status":"hidden"`) {
		t.Fatalf("the hidden record's row: %s", one)
	}
	sameJSON(t, "ls CID", p.ok("ls", "--json", cids[0]), map[string]any{"records": []any{one}})
	r := p.fail(2, "ls", "not-a-cid")
	if !strings.Contains(r.stderr, "bad CID") {
		t.Fatalf("ls not-a-cid: %q", r.stderr)
	}
	// The text output still has its columns.
	if out := p.ok("ls", "--all"); !strings.HasPrefix(out, "CID\tTITLE") && !strings.HasPrefix(out, "CID ") {
		t.Fatalf("ls text %q", out)
	}
}
