package main

import (
	"strings"
	"testing"

	"github.com/blockmrs/blockmrs/node/api"
	"github.com/blockmrs/blockmrs/node/ops"
)

// lab add and labs without a daemon: usage errors exit 2, refused values
// exit 1 with one line naming the field and write nothing, a panel writes
// one record per value, labs prints them oldest first; then through a
// running daemon, labs --json and lab add --json answer as the API does.
func TestLabCommands(t *testing.T) {
	const hostile = `<img src=x onerror=alert(1)>`
	n := newNode(t, "")
	n.initAccount("--name", "Doc", "--role", "clinician", "--no-passphrase")
	patID := n.initAccount("--name", "Pat", "--role", "patient", "--no-passphrase")

	n.fail(2, "lab")
	n.fail(2, "lab", "remove")
	n.fail(2, "lab", "add", "fasting-glucose=95")
	n.fail(2, "lab", "add", "--for", "Pat")
	n.fail(2, "lab", "add", "--for", "Pat", "glucose=95")
	n.fail(2, "lab", "add", "--for", "Pat", "fasting-glucose")
	n.fail(2, "lab", "add", "--for", "Pat", "other:=5")
	n.fail(2, "labs", "a", "b")
	n.fail(2, "lab", "fields", "extra")
	if r := n.fail(1, "lab", "add", "--for", "Pat", "pulse=72", "pulse=9000"); !strings.Contains(r.stderr, "pulse: 9000") {
		t.Fatalf("out-of-range pulse: %q", r.stderr)
	}
	if r := n.fail(1, "lab", "add", "--for", "Pat", "--date", "2099-01-01", "pulse=72"); !strings.Contains(r.stderr, "effective") {
		t.Fatalf("future date: %q", r.stderr)
	}
	n.fail(1, "lab", "add", "--for", "Nobody", "pulse=72")
	if out := n.ok("ls", "--account", "Pat"); strings.Contains(out, "Pulse") {
		t.Fatalf("a refused panel wrote records:\n%s", out)
	}

	out := n.ok("lab", "add", "--account", "Doc", "--for", "Pat", "--date", "2026-11-02", "fasting-glucose=95", "ldl=110", "other:"+hostile+"=30 ng/mL")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.HasSuffix(lines[0], "\tGlucose [fasting] 95 mg/dL — 2026-11-02") || !strings.Contains(lines[2], hostile+" 30 ng/mL") {
		t.Fatalf("lab add printed:\n%s", out)
	}
	n.ok("lab", "add", "--for", "Pat", "--date", "2026-12-01T08:30:00Z", "fasting-glucose=101", "blood-group=O+")

	text := n.ok("labs", "--account", "Pat", "fasting-glucose")
	rows := strings.Split(strings.TrimSpace(text), "\n")
	if len(rows) != 3 || !strings.HasPrefix(rows[0], "DATE") || !strings.HasPrefix(rows[1], "2026-11-02") || !strings.Contains(rows[1], "95") ||
		!strings.Contains(rows[1], "Doc") || !strings.Contains(rows[2], "101") || !strings.Contains(rows[2], "1558-6") {
		t.Fatalf("labs fasting-glucose:\n%s", text)
	}
	var all ops.LabTable
	n.json(&all, "labs", "--account", "Pat", "--json")
	if len(all.Values) != 5 || all.Skipped != 0 {
		t.Fatalf("labs --json: %+v", all)
	}

	// Through the daemon: the same answers as the API.
	startAPIDaemon(t, n)
	c, err := api.NewClient(n.dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, req := range []ops.ListLabs{{}, {Code: "1558-6"}, {Code: hostile}, {For: "Pat", Code: "blood-group"}} {
		fromAPI, err := c.Labs(t.Context(), "Pat", req)
		if err != nil {
			t.Fatal(err)
		}
		args := []string{"labs", "--account", "Pat", "--json"}
		if req.For != "" {
			args = append(args, "--for", req.For)
		}
		if req.Code != "" {
			args = append(args, req.Code)
		}
		sameJSON(t, "labs "+req.Code, n.ok(args...), fromAPI)
	}
	fields, err := c.LabFields(t.Context())
	if err != nil || len(fields.Fields) != 9 {
		t.Fatalf("lab fields from the API: %+v %v", fields, err)
	}
	sameJSON(t, "lab fields", n.ok("lab", "fields", "--json"), fields)
	if out := n.ok("lab", "fields"); !strings.Contains(out, "fasting-glucose") || !strings.Contains(out, "8867-4") {
		t.Fatalf("lab fields:\n%s", out)
	}
	var written ops.LabsWritten
	n.json(&written, "lab", "add", "--json", "--for", patID, "pulse=72")
	viaAPI, err := c.AddLabs(t.Context(), "Doc", api.LabPanel{For: "Pat", Values: []api.LabValue{{Test: "pulse", Value: "72"}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(written.Records) != 1 || len(viaAPI.Records) != 1 || written.Records[0].Code != "8867-4" || viaAPI.Records[0].Code != "8867-4" ||
		written.Records[0].Name != viaAPI.Records[0].Name || written.Records[0].Unit != "beats/min" {
		t.Fatalf("lab add --json %+v, API %+v", written, viaAPI)
	}
	pulse, err := c.Labs(t.Context(), "Pat", ops.ListLabs{Code: "pulse"})
	if err != nil || len(pulse.Values) != 2 {
		t.Fatalf("pulse values after two panels: %+v %v", pulse, err)
	}
}
