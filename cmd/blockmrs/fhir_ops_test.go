package main

// FHIR import and export through both faces, the command line (text and
// --json) and the API, against a daemon whose account has a passphrase
// and an unlocked session: the same reports, the same Bundle, the same
// one-line errors.

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/blockmrs/blockmrs/node/ops"
	"github.com/blockmrs/blockmrs/protocol/fhir/fhirtest"
)

func TestFHIRThroughCLIAndAPI(t *testing.T) {
	const pass = "correct horse battery staple"
	p := newNode(t, pass)
	patID := p.initAccount("--name", "Pat", "--role", "patient")
	pa := newAPIFace(t, p, startAPIDaemon(t, p))
	p.ok("unlock")

	input := fhirtest.Synthea(21, 60)
	file := writeTemp(t, "synthea.json", input)

	// The first import through the command line, as text; importing the
	// same file again through each face gives the same report.
	if got := p.ok("fhir", "import", file); got != "imported 60 resources as 60 records (0 unchanged, 0 superseded)\n" {
		t.Fatalf("fhir import: %q", got)
	}
	cliAgain := p.ok("fhir", "import", file, "--json")
	var apiAgain ops.FHIRImported
	pa.post("/api/v1/fhir/import?file_name=synthea.json", bytes.NewReader(input), http.StatusOK, &apiAgain)
	if apiAgain.Records != 0 || len(apiAgain.Unchanged) != 60 || apiAgain.Counts != (ops.ImportCounts{Unchanged: 60}) || apiAgain.Truncated || string(apiAgain.Subject) != patID {
		t.Fatalf("API re-import: %s", apiAgain.Line())
	}
	sameJSON(t, "fhir import again", cliAgain, apiAgain)
	// From stdin too.
	r := p.exec(bytes.NewReader(input), "fhir", "import", "-")
	if r.code != 0 || r.stdout != "imported 60 resources as 0 records (60 unchanged, 0 superseded)\n" {
		t.Fatalf("fhir import -: %d %q %q", r.code, r.stdout, r.stderr)
	}

	// A changed resource: a new version, through the API; the listing of
	// both faces shows it superseding the old record.
	var in struct {
		Entry []struct {
			Resource json.RawMessage `json:"resource"`
		} `json:"entry"`
	}
	if err := json.Unmarshal(input, &in); err != nil {
		t.Fatal(err)
	}
	old := in.Entry[len(in.Entry)-1].Resource
	changed := bytes.Replace(input, old, bytes.Replace(old, []byte(`"resourceType"`), []byte(`"language": "en", "resourceType"`), 1), 1)
	var v2 ops.FHIRImported
	pa.post("/api/v1/fhir/import", bytes.NewReader(changed), http.StatusOK, &v2)
	if len(v2.Superseded) != 1 || v2.Records != 1 {
		t.Fatalf("changed import: %s", v2.Line())
	}
	sameJSON(t, "ls --versions", p.ok("ls", "--versions", "--json"), pa.get("/api/v1/records?versions=true"))
	rows := p.ls("--versions")
	if r, ok := rows[v2.Superseded[0].CID]; !ok || r.Kind != "fhir" {
		t.Fatalf("the new version is not listed: %+v", r)
	}
	var sup struct {
		Supersedes string `json:"supersedes"`
	}
	strictRow := pa.get("/api/v1/records/" + v2.Superseded[0].CID)
	data, _ := json.Marshal(strictRow)
	json.Unmarshal(data, &sup)
	if sup.Supersedes != v2.Superseded[0].Supersedes || sup.Supersedes == "" {
		t.Fatalf("record row supersedes %q, report %q", sup.Supersedes, v2.Superseded[0].Supersedes)
	}

	// Export: the same Bundle from both faces, filtered the same.
	out := filepath.Join(t.TempDir(), "export.json")
	if got := p.ok("fhir", "export", "-o", out); !strings.HasPrefix(got, "exported 60 resources from 60 records to "+out) {
		t.Fatalf("fhir export: %q", got)
	}
	fromCLI, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	fromAPI := pa.call(http.MethodGet, "/api/v1/fhir/export", nil, http.StatusOK)
	if !bytes.Equal(fromCLI, fromAPI) || !bytes.Contains(fromCLI, []byte(`"language": "en"`)) {
		t.Fatalf("the exports differ (%d and %d bytes) or lack the new version", len(fromCLI), len(fromAPI))
	}
	if stdout := p.ok("fhir", "export", "--type", "Patient"); !bytes.Equal([]byte(stdout), pa.call(http.MethodGet, "/api/v1/fhir/export?type=Patient", nil, http.StatusOK)) {
		t.Fatal("fhir export --type Patient differs from the API's")
	}
	var exJSON struct {
		ops.FHIRExported
		File  string `json:"file"`
		Bytes int64  `json:"bytes"`
	}
	p.json(&exJSON, "fhir", "export", "--since", "1900", "-o", out, "--json")
	if exJSON.Resources != 60 || exJSON.Bytes != int64(len(fromCLI)) {
		t.Fatalf("fhir export --json: %+v", exJSON)
	}

	// The patient summary: the same document from both faces, but for
	// its time (the Composition, first, is dated and named by it).
	entriesAfterFirst := func(doc []byte) []string {
		var b struct {
			Type  string `json:"type"`
			Entry []struct {
				FullURL  string          `json:"fullUrl"`
				Resource json.RawMessage `json:"resource"`
			} `json:"entry"`
		}
		if err := json.Unmarshal(doc, &b); err != nil || b.Type != "document" || len(b.Entry) < 2 {
			t.Fatalf("summary: %v, type %q, %d entries", err, b.Type, len(b.Entry))
		}
		var out []string
		for _, e := range b.Entry[1:] {
			out = append(out, e.FullURL+" "+string(e.Resource))
		}
		return out
	}
	cliSummary := entriesAfterFirst([]byte(p.ok("fhir", "summary")))
	apiSummary := entriesAfterFirst(pa.call(http.MethodGet, "/api/v1/fhir/summary", nil, http.StatusOK))
	if strings.Join(cliSummary, "\n") != strings.Join(apiSummary, "\n") {
		t.Fatalf("the summaries differ: %d and %d entries", len(cliSummary), len(apiSummary))
	}

	// Refusals: the API's one line is the command line's.
	es := fhirtest.SyntheaEntries(21, 5)
	es[3].Resource = bytes.Replace(es[3].Resource, []byte(`"status":"`), []byte(`"status":7,"x":"`), 1)
	bad := fhirtest.Bundle("collection", es)
	before := p.ok("log", "--json")
	var apiErr struct{ Error string }
	json.Unmarshal(pa.call(http.MethodPost, "/api/v1/fhir/import", bytes.NewReader(bad), http.StatusBadRequest), &apiErr)
	cliErr := p.fail(1, "fhir", "import", writeTemp(t, "bad.json", bad)).stderr
	if !strings.Contains(apiErr.Error, "entry[3]") || !strings.Contains(cliErr, apiErr.Error) {
		t.Fatalf("refusals differ:\nAPI:          %s\ncommand line: %s", apiErr.Error, cliErr)
	}
	xml := []byte(`<Bundle xmlns="http://hl7.org/fhir"/>`)
	json.Unmarshal(pa.call(http.MethodPost, "/api/v1/fhir/import", bytes.NewReader(xml), http.StatusBadRequest), &apiErr)
	if cliErr := p.failIn(bytes.NewReader(xml), 1, "fhir", "import", "-").stderr; !strings.Contains(apiErr.Error, "XML") || !strings.Contains(cliErr, apiErr.Error) {
		t.Fatalf("XML refusals differ:\nAPI:          %s\ncommand line: %s", apiErr.Error, cliErr)
	}
	json.Unmarshal(pa.call(http.MethodGet, "/api/v1/fhir/export?since=yesterday", nil, http.StatusBadRequest), &apiErr)
	if cliErr := p.fail(1, "fhir", "export", "--since", "yesterday").stderr; !strings.Contains(cliErr, apiErr.Error) {
		t.Fatalf("export refusals differ:\nAPI:          %s\ncommand line: %s", apiErr.Error, cliErr)
	}
	if after := p.ok("log", "--json"); after != before {
		t.Fatal("a refused import changed the chain")
	}

	// One record: the file as it is, through both faces.
	cliOne := p.ok("fhir", "import", "--one-record", file, "--json")
	var apiOne ops.FHIRImported
	pa.post("/api/v1/fhir/import?"+url.Values{"one_record": {"true"}, "file_name": {"synthea.json"}}.Encode(), bytes.NewReader(input), http.StatusOK, &apiOne)
	sameShape(t, "fhir import --one-record", cliOne, apiOne, "added")
	if apiOne.Records != 1 || apiOne.Added[0].ResourceType != "Bundle" || apiOne.Added[0].Title != "synthea.json" {
		t.Fatalf("one record: %+v", apiOne)
	}
	// add --kind fhir takes a byte-order mark and keeps the bytes.
	obs := append([]byte("\xef\xbb\xbf"), in.Entry[1].Resource...)
	cid := strings.TrimSpace(p.ok("add", "--kind", "fhir", writeTemp(t, "obs.json", obs)))
	if got := pa.call(http.MethodGet, "/api/v1/records/"+cid+"/content", nil, http.StatusOK); !bytes.Equal(got, obs) {
		t.Fatal("add --kind fhir changed the bytes")
	}
	if r := p.ls()[cid]; r.Kind != "fhir" {
		t.Fatalf("added: %+v", r)
	}
}
