package main

// The command-line faces of the contacts page: the share code as a QR
// code (id --share --qr), and contact add FILE on the same operation as
// POST /api/v1/contacts/import.

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	qrcode "github.com/skip2/go-qrcode"

	"github.com/blockmrs/blockmrs/node/api"
	"github.com/blockmrs/blockmrs/node/ops"
)

func TestIDShareQR(t *testing.T) {
	n := newNode(t, "")
	n.initAccount("--name", "Pat", "--no-passphrase")
	n.fail(2, "id", "--qr")
	n.fail(2, "id", "--share", "--qr", "--json")
	n.fail(2, "id", "--share", "--qr", "--export", filepath.Join(t.TempDir(), "p.car"))
	if r := n.fail(1, "id", "--share", "--qr"); !strings.Contains(r.stderr, "running daemon") || strings.Count(r.stderr, "\n") != 1 {
		t.Fatalf("--qr without a daemon: %q", r.stderr)
	}
	startAPIDaemon(t, n)
	share := strings.TrimSpace(n.ok("id", "--share"))
	q, err := qrcode.New(share, ops.ShareQRLevel)
	if err != nil {
		t.Fatal(err)
	}
	want := q.ToSmallString(false) + share + "\n"
	if got := n.ok("id", "--share", "--qr"); got != want {
		t.Fatalf("id --share --qr printed\n%s\nwant\n%s", got, want)
	}
	if !strings.Contains(want, "█") || strings.Count(want, "\n") < 20 {
		t.Fatalf("the QR code is no picture:\n%s", want)
	}
}

// contact add FILE and POST /api/v1/contacts/import give the same JSON;
// a bad file is one line from both.
func TestContactFileThroughCLIAndAPI(t *testing.T) {
	ctx := t.Context()
	doc := newNode(t, "")
	doc.initAccount("--name", "Dr Grey", "--role", "clinician", "--no-passphrase")
	profile := filepath.Join(t.TempDir(), "grey.car")
	doc.ok("id", "--export", profile)

	p := newNode(t, "")
	p.initAccount("--name", "Pat", "--no-passphrase")
	startAPIDaemon(t, p)
	c, err := api.NewClient(p.dir)
	if err != nil {
		t.Fatal(err)
	}
	var first struct {
		Added []struct{ Name, Role string } `json:"added"`
	}
	p.json(&first, "contact", "add", profile, "--json")
	if len(first.Added) != 1 || first.Added[0].Name != "Dr Grey" || first.Added[0].Role != "clinician" {
		t.Fatalf("contact add FILE: %+v", first)
	}
	data, err := os.ReadFile(profile)
	if err != nil {
		t.Fatal(err)
	}
	again, err := c.ImportContact(ctx, strings.NewReader(string(data)))
	if err != nil {
		t.Fatal(err)
	}
	if len(again.Added) != 0 || len(again.Unchanged) != 1 {
		t.Fatalf("import again: %+v", again)
	}
	sameJSON(t, "contact add FILE again", p.ok("contact", "add", profile, "--json"), again)
	if out := p.ok("contact", "add", profile); !strings.Contains(out, "unchanged") || !strings.Contains(out, "Dr Grey") {
		t.Fatalf("contact add FILE text: %q", out)
	}

	bad := filepath.Join(t.TempDir(), "bad.car")
	if err := os.WriteFile(bad, data[:len(data)-5], 0o600); err != nil {
		t.Fatal(err)
	}
	r := p.fail(1, "contact", "add", bad)
	if strings.Count(r.stderr, "\n") != 1 || !strings.Contains(r.stderr, "profile file") {
		t.Fatalf("contact add of a bad file: %q", r.stderr)
	}
	if _, err := c.ImportContact(ctx, strings.NewReader(string(data[:len(data)-5]))); err == nil || !strings.Contains(err.Error(), "profile file") {
		t.Fatalf("API import of a bad file: %v", err)
	}
}
