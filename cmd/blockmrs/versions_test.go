package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/blockmrs/blockmrs/node/api"
	"github.com/blockmrs/blockmrs/node/ops"
)

// A record replaced twice is one row with two earlier versions in its
// history, in ls and GET /api/v1/records alike; --versions lists all
// three; an old version's row names the one that replaced it; --author
// and --since/--until filter through the CLI and the API alike.
func TestVersionsAndFiltersThroughCLIAndAPI(t *testing.T) {
	ctx := t.Context()
	p := newNode(t, "")
	p.initAccount("--name", "Pat", "--role", "patient", "--no-passphrase")
	startAPIDaemon(t, p)
	pc, err := api.NewClient(p.dir)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "letter.txt")
	var v []string
	for i := range 3 {
		if err := os.WriteFile(file, []byte(strings.Repeat("v", i+1)), 0o600); err != nil {
			t.Fatal(err)
		}
		args := []string{"add", "--title", "Letter", file}
		if i > 0 {
			args = append(args, "--supersedes", v[i-1])
		}
		v = append(v, strings.TrimSpace(p.ok(args...)))
	}
	other := strings.TrimSpace(p.ok("add", "--title", "Scan", file))

	rows, err := pc.Records(ctx, "", ops.ListRecords{})
	if err != nil {
		t.Fatal(err)
	}
	sameJSON(t, "ls", p.ok("ls", "--json"), rows)
	var list struct {
		Records []struct {
			CID     string `json:"cid"`
			History []struct {
				CID string `json:"cid"`
			} `json:"history"`
			SupersededBy string `json:"superseded_by"`
		} `json:"records"`
	}
	p.json(&list, "ls", "--json")
	if len(list.Records) != 2 {
		t.Fatalf("%d rows, want the letter and the scan", len(list.Records))
	}
	for _, r := range list.Records {
		switch r.CID {
		case v[2]:
			if len(r.History) != 2 || r.History[0].CID != v[1] || r.History[1].CID != v[0] {
				t.Fatalf("letter's history %+v, want v2 then v1", r.History)
			}
		case other:
			if len(r.History) != 0 {
				t.Fatalf("scan has a history: %+v", r.History)
			}
		default:
			t.Fatalf("unexpected row %s", r.CID)
		}
	}
	if out := p.ok("ls"); !strings.Contains(out, "VERSIONS") || strings.Count(out, "Letter") != 1 {
		t.Fatalf("ls text:\n%s", out)
	}
	all, err := pc.Records(ctx, "", ops.ListRecords{Versions: true})
	if err != nil || len(all.Records) != 4 {
		t.Fatalf("--versions: %d rows, %v", len(all.Records), err)
	}
	sameJSON(t, "ls --versions", p.ok("ls", "--versions", "--json"), all)

	// The oldest version's own row names the one that replaced it.
	p.json(&list, "ls", v[0], "--json")
	if len(list.Records) != 1 || list.Records[0].SupersededBy != v[1] || len(list.Records[0].History) != 2 {
		t.Fatalf("v1's row: %+v", list.Records)
	}
	one, err := pc.Record(ctx, "", v[0])
	if err != nil {
		t.Fatal(err)
	}
	sameJSON(t, "ls v1", p.ok("ls", v[0], "--json"), struct {
		Records []any `json:"records"`
	}{[]any{one}})

	// Filters: every record was written today; nobody else wrote any.
	if rows, err := pc.Records(ctx, "", ops.ListRecords{Until: "2000-01-01"}); err != nil || len(rows.Records) != 0 {
		t.Fatalf("--until 2000: %d rows, %v", len(rows.Records), err)
	}
	if out := p.ok("ls", "--since", "2000-01-01", "--author", "Pat", "--json"); strings.Count(out, `"cid"`) < 2 {
		t.Fatalf("--since 2000 --author Pat:\n%s", out)
	}
	if r := p.fail(1, "ls", "--since", "last week"); !strings.Contains(r.stderr, "since") || strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 {
		t.Fatalf("bad --since: %q", r.stderr)
	}
}
