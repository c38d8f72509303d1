package fhir

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/blockmrs/blockmrs/protocol/fhir/fhirtest"
)

// readAll reads data and returns the resources, or the error.
func readAll(t *testing.T, data []byte) ([]*Resource, error) {
	t.Helper()
	var out []*Resource
	err := ReadResources(context.Background(), bytes.NewReader(data), func(r *Resource) error {
		out = append(out, r)
		return nil
	})
	return out, err
}

// mustRead reads data and fails the test on an error.
func mustRead(t *testing.T, data []byte) []*Resource {
	t.Helper()
	rs, err := readAll(t, data)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return rs
}

// checkRaw checks that the resources' Raw bytes are slices of data, in
// order, and that each has its Digest and index.
func checkRaw(t *testing.T, data []byte, rs []*Resource) {
	t.Helper()
	at := 0
	for i, r := range rs {
		j := bytes.Index(data[at:], r.Raw)
		if j < 0 || len(r.Raw) == 0 {
			t.Fatalf("%s: Raw is not the input's bytes after offset %d", r.Position, at)
		}
		at += j + len(r.Raw)
		if sum := sha256.Sum256(r.Raw); !bytes.Equal(r.Clinical.Digest, sum[:]) {
			t.Fatalf("%s: digest is not sha256(Raw)", r.Position)
		}
		if r.Index != i {
			t.Fatalf("%s: index %d, want %d", r.Position, r.Index, i)
		}
	}
}

// A Synthea-shaped transaction Bundle reads as one Resource per entry,
// in order, each Raw byte-exact (the entries' bytes between the
// resources are the only ones left out), with its fullUrl and type.
func TestReadSyntheaBundle(t *testing.T) {
	entries := fhirtest.SyntheaEntries(7, 1111)
	data := fhirtest.Bundle("transaction", entries)
	rs := mustRead(t, data)
	if len(rs) != len(entries) {
		t.Fatalf("%d resources, want %d", len(rs), len(entries))
	}
	checkRaw(t, data, rs)
	for i, r := range rs {
		e := entries[i]
		if r.Position != fmt.Sprintf("entry[%d]", i) || r.FullURL != e.FullURL || r.Clinical.FullURL != e.FullURL {
			t.Fatalf("resource %d: position %q fullUrl %q, want entry[%d] %q", i, r.Position, r.FullURL, i, e.FullURL)
		}
		if r.Clinical.ResourceType != e.ResourceType || r.Clinical.ID != e.ID {
			t.Fatalf("%s: %s %q, want %s %q", r.Position, r.Clinical.ResourceType, r.Clinical.ID, e.ResourceType, e.ID)
		}
		var compact bytes.Buffer
		if err := json.Compact(&compact, r.Raw); err != nil || !bytes.Equal(compact.Bytes(), e.Resource) {
			t.Fatalf("%s: Raw is not the generated resource", r.Position)
		}
		if r.Clinical.ResourceType != "Patient" && r.PatientRef != entries[0].FullURL && r.Clinical.ResourceType != "ExplanationOfBenefit" {
			t.Fatalf("%s %s: patient %q, want %q", r.Position, r.Clinical.ResourceType, r.PatientRef, entries[0].FullURL)
		}
	}
	if rs[0].Clinical.ResourceType != "Patient" || rs[0].Title == "" {
		t.Fatalf("first resource %+v", rs[0].Clinical)
	}
}

// Every Bundle type reads the same resources; so does NDJSON (with blank
// lines and CRLF line ends) and, for one resource, the resource alone.
func TestReadEveryForm(t *testing.T) {
	entries := fhirtest.SyntheaEntries(3, 40)
	want := func(t *testing.T, rs []*Resource, positions func(i int) string) {
		t.Helper()
		if len(rs) != len(entries) {
			t.Fatalf("%d resources, want %d", len(rs), len(entries))
		}
		for i, r := range rs {
			if r.Clinical.ID != entries[i].ID || r.Position != positions(i) {
				t.Fatalf("resource %d: %q at %q, want %q at %q", i, r.Clinical.ID, r.Position, entries[i].ID, positions(i))
			}
		}
	}
	for _, typ := range []string{"transaction", "batch", "collection", "searchset", "document", "history", "transaction-response"} {
		t.Run(typ, func(t *testing.T) {
			data := fhirtest.Bundle(typ, entries)
			rs := mustRead(t, data)
			checkRaw(t, data, rs)
			want(t, rs, func(i int) string { return fmt.Sprintf("entry[%d]", i) })
		})
	}
	t.Run("ndjson", func(t *testing.T) {
		var b bytes.Buffer
		b.WriteString("\n")
		for i, e := range entries {
			b.Write(e.Resource)
			if i%2 == 0 {
				b.WriteString("\r\n")
			} else {
				b.WriteString("\n\n")
			}
		}
		data := b.Bytes()
		rs := mustRead(t, data)
		checkRaw(t, data, rs)
		line := 2
		lines := map[int]string{}
		for i := range entries {
			lines[i] = fmt.Sprintf("line %d", line)
			line += 1 + i%2
		}
		want(t, rs, func(i int) string { return lines[i] })
		if rs[0].FullURL != "" {
			t.Fatalf("NDJSON resource with a fullUrl %q", rs[0].FullURL)
		}
	})
	t.Run("ndjson without a final newline", func(t *testing.T) {
		data := bytes.TrimSuffix(fhirtest.NDJSON(entries), []byte("\n"))
		want(t, mustRead(t, data), func(i int) string { return fmt.Sprintf("line %d", i+1) })
	})
	t.Run("single", func(t *testing.T) {
		data := append([]byte("  \n"), entries[1].Resource...)
		data = append(data, "\n\n"...)
		rs := mustRead(t, data)
		checkRaw(t, data, rs)
		if len(rs) != 1 || rs[0].Position != "resource" || rs[0].Clinical.ID != entries[1].ID || !bytes.Equal(rs[0].Raw, entries[1].Resource) {
			t.Fatalf("single resource read as %+v", rs)
		}
	})
	t.Run("single pretty", func(t *testing.T) {
		var b bytes.Buffer
		_ = json.Indent(&b, entries[2].Resource, "", "  ")
		rs := mustRead(t, b.Bytes())
		if len(rs) != 1 || !bytes.Equal(rs[0].Raw, b.Bytes()) {
			t.Fatal("a pretty-printed single resource is not read byte-exact")
		}
	})
}

// A UTF-8 byte-order mark is skipped before every form; XML is refused
// with the message saying JSON is needed.
func TestReadBOMAndXML(t *testing.T) {
	entries := fhirtest.SyntheaEntries(5, 6)
	bom := []byte{0xEF, 0xBB, 0xBF}
	for name, data := range map[string][]byte{
		"bundle": fhirtest.Bundle("collection", entries),
		"ndjson": fhirtest.NDJSON(entries),
	} {
		rs := mustRead(t, append(bom, data...))
		if len(rs) != len(entries) {
			t.Fatalf("%s with a BOM: %d resources", name, len(rs))
		}
	}
	rs := mustRead(t, append(bom, entries[0].Resource...))
	if len(rs) != 1 || !bytes.Equal(rs[0].Raw, entries[0].Resource) {
		t.Fatal("single resource with a BOM")
	}
	for _, xml := range []string{
		`<?xml version="1.0" encoding="UTF-8"?><Bundle xmlns="http://hl7.org/fhir"/>`,
		"\xEF\xBB\xBF  \n<Patient xmlns=\"http://hl7.org/fhir\"><id value=\"a\"/></Patient>",
	} {
		_, err := readAll(t, []byte(xml))
		if !errors.Is(err, ErrXML) || !strings.Contains(err.Error(), "FHIR JSON (application/fhir+json)") {
			t.Fatalf("XML: %v", err)
		}
	}
}

// Top-level keys and entry keys may come in any order: resourceType
// after the entries, fullUrl after the resource, and a List (which also
// has "entry") whose resourceType comes last is read whole.
func TestReadKeyOrder(t *testing.T) {
	obs := `{"resourceType":"Observation","id":"o1","status":"final","code":{"text":"x"}}`
	data := `{"entry":[{"resource":` + obs + `,"fullUrl":"urn:uuid:6a2e7f5c-0d3b-4f1e-9a8c-2b7d4e6f8a1c"},{"request":{"method":"DELETE","url":"Patient/9"}}],"type":"transaction","resourceType":"Bundle"}`
	rs := mustRead(t, []byte(data))
	if len(rs) != 1 || string(rs[0].Raw) != obs || rs[0].FullURL != "urn:uuid:6a2e7f5c-0d3b-4f1e-9a8c-2b7d4e6f8a1c" || rs[0].Position != "entry[0]" {
		t.Fatalf("read %+v", rs)
	}
	list := `{"entry":[{"item":{"reference":"Observation/o1"}}],"status":"current","mode":"working","id":"l1","resourceType":"List"}`
	rs = mustRead(t, []byte(list))
	if len(rs) != 1 || string(rs[0].Raw) != list || rs[0].Clinical.ResourceType != "List" || rs[0].Position != "resource" {
		t.Fatalf("List read as %+v", rs)
	}
	// Entries with resources, then a resourceType that is not Bundle.
	_, err := readAll(t, []byte(`{"entry":[{"resource":`+obs+`}],"resourceType":"List","status":"current","mode":"working"}`))
	if !errors.Is(err, ErrInput) || !strings.Contains(err.Error(), `resource (List): entry: entries with resources came before "resourceType"`) {
		t.Fatalf("List with resource entries: %v", err)
	}
}

// Each kind of invalid input is refused with one line naming the
// position and the JSON path, and fn has seen only the resources before
// it.
func TestReadInvalid(t *testing.T) {
	ok := `{"resourceType":"Patient","id":"p1"}`
	bundle := func(resources ...string) string {
		var es []string
		for _, r := range resources {
			es = append(es, `{"fullUrl":"urn:uuid:x","resource":`+r+`}`)
		}
		return `{"resourceType":"Bundle","type":"collection","entry":[` + strings.Join(es, ",") + `]}`
	}
	cases := []struct {
		name, in string
		before   int // resources fn sees before the error
		want     string
	}{
		{"unknown type", bundle(ok, `{"resourceType":"Foo","id":"x"}`), 1,
			`entry[1] (Foo "x"): resourceType: unknown resource type "Foo" (not an R4 resource) — fix the resource and import again`},
		{"wrongly typed field", bundle(ok, ok, `{"resourceType":"Observation","id":"obs-1","status":"final","code":{"text":"a"},"valueQuantity":{"value":"5.4"}}`), 2,
			`entry[2] (Observation "obs-1"): Observation.valueQuantity.value: expected decimal: found "5.4" — fix the resource and import again`},
		{"missing required field", bundle(`{"resourceType":"Observation","id":"obs-1","code":{"text":"a"}}`), 0,
			`entry[0] (Observation "obs-1"): Observation.status: missing required field — fix the resource and import again`},
		{"missing required field, nested", bundle(ok, `{"resourceType":"Observation","id":"o","status":"final","code":{"text":"a"},"component":[{"valueString":"x"}]}`), 1,
			`entry[1] (Observation "o"): Observation.component[0].code: missing required field — fix the resource and import again`},
		{"bad code", bundle(`{"resourceType":"Observation","id":"o","status":"done","code":{"text":"a"}}`), 0,
			`entry[0] (Observation "o"): Observation.status: code type mismatch`},
		{"unknown field", bundle(`{"resourceType":"Patient","id":"p","nmae":[]}`), 0,
			`entry[0] (Patient "p"): Patient.nmae: unknown field (not an element of R4 Patient)`},
		{"bad reference type", bundle(`{"resourceType":"Observation","id":"o","status":"final","code":{"text":"a"},"subject":{"reference":"Medication/1"}}`), 0,
			`entry[0] (Observation "o"): Observation.subject: invalid reference to a Medication resource`},
		{"duplicate key in a resource", bundle(ok, `{"resourceType":"Observation","id":"o","status":"final","code":{"coding":[],"coding":[]}}`), 1,
			`entry[1] (Observation "o"): Observation.code: duplicate key "coding" — fix the resource and import again`},
		{"duplicate key, escaped", bundle(`{"resourceType":"Patient","id":"p","gender":"male","gend\u0065r":"female"}`), 0,
			`entry[0] (Patient "p"): Patient: duplicate key "gender"`},
		{"duplicate key in an entry", `{"resourceType":"Bundle","type":"collection","entry":[{"resource":` + ok + `,"resource":` + ok + `}]}`, 0,
			`entry[0]: duplicate key "resource" — fix the file and import again`},
		{"duplicate key at the top", `{"resourceType":"Bundle","type":"collection","type":"batch","entry":[]}`, 0,
			`the input: duplicate key "type" — fix the file and import again`},
		{"no resourceType", `{"id":"x"}`, 0, `resource: no "resourceType": not a FHIR resource`},
		{"resourceType not a string", `{"resourceType":5}`, 0, `the input: resourceType: unexpected '5' at byte 16 (want a string)`},
		{"resource not an object", `{"resourceType":"Bundle","entry":[{"resource":[1]}]}`, 0,
			`entry[0]: resource: unexpected '[' at byte 46 (a resource is a JSON object)`},
		{"entry not an array", `{"resourceType":"Bundle","entry":{}}`, 0, `the input: Bundle "entry": unexpected '{'`},
		{"entry not an object", `{"resourceType":"Bundle","entry":[` + `{"resource":` + ok + `},5]}`, 1, `entry[1]: unexpected '5'`},
		{"trailing garbage after a Bundle", bundle(ok) + ` x`, 1, `the input: unexpected 'x' at byte 129 after the end of the Bundle`},
		{"trailing garbage after a resource", ok + ` }`, 0, `line 1: unexpected '}' at byte 37 after the end of the resource`},
		{"trailing garbage inside a resource", bundle(`{"resourceType":"Patient","id":"p"} x`), 0, `entry[0]: unexpected 'x'`},
		{"truncated Bundle", bundle(ok, ok)[:170], 1, `entry[1]: resource: the input ends at byte 170 (truncated?) — fix the file and import again`},
		{"truncated between entries", bundle(ok, ok)[:127], 1, `entry[1]: the input ends at byte 127 (truncated?) — fix the file`},
		{"truncated single resource", ok[:20], 0, `the input: resourceType: the input ends at byte 20 (truncated?)`},
		{"truncated string", `{"resourceType":"Bundle","entry":[{"fullUrl":"urn:uu`, 0, `entry[0]: fullUrl: the input ends at byte 52 (truncated?)`},
		{"empty", " \n\t", 0, `the input: it is empty`},
		{"not JSON", "hello", 0, `the input: it starts with 'h', not with a JSON object`},
		{"array", `[` + ok + `]`, 0, `the input: it starts with '['`},
		{"invalid UTF-8", bundle(`{"resourceType":"Patient","id":"p","gender":"m` + "\xff" + `"}`), 0,
			`entry[0] (Patient "p"): Patient.gender: a string that is not valid UTF-8`},
		{"control character in a string", bundle(`{"resourceType":"Patient","id":"p","gender":"m` + "\n" + `"}`), 0,
			`Patient.gender: a control character inside a string`},
		{"bad number", bundle(`{"resourceType":"Observation","id":"o","status":"final","code":{"text":"a"},"valueQuantity":{"value":01}}`), 0,
			`Observation.valueQuantity: unexpected '1' after a value (want ',' or '}')`},
		{"too deep", bundle(`{"resourceType":"Patient","id":"p","extension":` + strings.Repeat("[", MaxDepth) + strings.Repeat("]", MaxDepth) + `}`), 0,
			`entry[0]: resource: nested deeper than 100 levels`},
		{"NDJSON line invalid", ok + "\n" + ok + "\n" + `{"resourceType":"Observation","id":"o","code":{"text":"a"}}` + "\n", 2,
			`line 3 (Observation "o"): Observation.status: missing required field`},
		{"NDJSON two on a line", ok + "\n" + ok + ok + "\n", 2, `line 2: unexpected '{' at byte 73 after the end of the resource: NDJSON holds one resource per line`},
		{"NDJSON resource over lines", ok + "\n{\"resourceType\":\n\"Patient\"}\n", 1, `line 2: a resource spans several lines`},
		{"NDJSON first over lines", "{\"resourceType\":\n\"Patient\"}\n" + ok + "\n", 0, `line 1: a resource spans lines 1 to 2, and more follows`},
		{"NDJSON line not an object", ok + "\n[1]\n", 1, `line 2: it starts with '['`},
		{"fullUrl too long", `{"resourceType":"Bundle","entry":[{"fullUrl":"` + strings.Repeat("u", 1100) + `","resource":` + ok + `}]}`, 0,
			`entry[0]: fullUrl: longer than 1024 bytes`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rs, err := readAll(t, []byte(c.in))
			if err == nil {
				t.Fatalf("accepted: %d resources", len(rs))
			}
			if !errors.Is(err, ErrInput) {
				t.Fatalf("%v does not match ErrInput", err)
			}
			msg := err.Error()
			if !strings.Contains(msg, c.want) {
				t.Fatalf("error\n %s\nwant it to hold\n %s", msg, c.want)
			}
			if strings.ContainsAny(msg, "\n\r") {
				t.Fatalf("error is not one line: %q", msg)
			}
			if len(rs) != c.before {
				t.Fatalf("fn saw %d resources before the error, want %d", len(rs), c.before)
			}
		})
	}
}

// A resource over MaxResourceSize is refused, in a Bundle and alone.
func TestReadTooLarge(t *testing.T) {
	big := `{"resourceType":"Patient","id":"p","text":{"status":"generated","div":"<div xmlns=\"http://www.w3.org/1999/xhtml\">` +
		strings.Repeat("a", MaxResourceSize) + `</div>"}}`
	for _, in := range []string{big, `{"resourceType":"Bundle","entry":[{"resource":` + big + `}]}`} {
		_, err := readAll(t, []byte(in))
		if !errors.Is(err, ErrInput) || !strings.Contains(err.Error(), "larger than 16 MiB") {
			t.Fatalf("%.30s…: %v", in, err)
		}
	}
}

// Validation runs in parallel but fn sees resources in input order; the
// first invalid resource in input order is the one reported, even when
// a later one is invalid too.
func TestReadOrderWithParallelValidation(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(8))
	entries := fhirtest.SyntheaEntries(11, 600)
	rs := mustRead(t, fhirtest.Bundle("collection", entries))
	for i, r := range rs {
		if r.Clinical.ID != entries[i].ID || r.Index != i {
			t.Fatalf("resource %d is %q, want %q", i, r.Clinical.ID, entries[i].ID)
		}
	}
	bad := func(id string) fhirtest.Entry {
		return fhirtest.Entry{FullURL: "urn:uuid:" + id, ResourceType: "Observation", Resource: []byte(`{"resourceType":"Observation","id":"` + id + `"}`)}
	}
	broken := append(append(append([]fhirtest.Entry{}, entries[:500]...), bad("first")), entries[500:550]...)
	broken = append(broken, bad("second"))
	got, err := readAll(t, fhirtest.Bundle("collection", broken))
	if err == nil || !strings.Contains(err.Error(), `entry[500] (Observation "first")`) || len(got) != 500 {
		t.Fatalf("after %d resources: %v", len(got), err)
	}
}

// An error from fn ends the read and is returned as it is; so is a
// cancelled context.
func TestReadStops(t *testing.T) {
	data := fhirtest.Synthea(2, 300)
	stop := errors.New("stop here")
	n := 0
	err := ReadResources(context.Background(), bytes.NewReader(data), func(r *Resource) error {
		n++
		if n == 10 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || n != 10 {
		t.Fatalf("after %d: %v", n, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	n = 0
	err = ReadResources(ctx, bytes.NewReader(data), func(r *Resource) error {
		n++
		if n == 5 {
			cancel()
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) || n != 5 {
		t.Fatalf("cancelled after %d: %v", n, err)
	}
	cancel()
	if err := ReadResources(ctx, bytes.NewReader(data), func(*Resource) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled before: %v", err)
	}
}

// countingReader counts the bytes read from it.
type countingReader struct {
	r io.Reader
	n atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// The input is streamed: when fn sees a resource, the reader is never
// more than the in-flight window ahead of it (a fixed number of
// resources plus the read buffer), however large the input.
func TestReadStreams(t *testing.T) {
	data := fhirtest.Synthea(4, 1200)
	largest := 0
	for _, e := range fhirtest.SyntheaEntries(4, 1200) {
		largest = max(largest, len(e.Resource))
	}
	// Pretty-printing at most triples a resource's size here.
	window := int64((4*runtime.GOMAXPROCS(0)+2)*3*largest + 64<<10)
	cr := &countingReader{r: bytes.NewReader(data)}
	at := 0
	err := ReadResources(context.Background(), cr, func(r *Resource) error {
		at += bytes.Index(data[at:], r.Raw) + len(r.Raw)
		if ahead := cr.n.Load() - int64(at); ahead > window {
			return fmt.Errorf("%s: the reader is %d bytes ahead, over the %d-byte window", r.Position, ahead, window)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(data)) < 10*window {
		t.Fatalf("input of %d bytes is too small to show streaming (window %d)", len(data), window)
	}
}

// A panic in fn reaches the caller's goroutine (where net/http or a
// test recovers it), after the workers have stopped.
func TestReadFnPanic(t *testing.T) {
	defer func() {
		if v := recover(); v != "fn broke" {
			t.Fatalf("recovered %v", v)
		}
	}()
	_ = ReadResources(context.Background(), bytes.NewReader(fhirtest.Synthea(1, 100)), func(r *Resource) error {
		if r.Index == 3 {
			panic("fn broke")
		}
		return nil
	})
	t.Fatal("no panic")
}

// An object with too many members is refused before its keys fill
// memory.
func TestReadTooManyMembers(t *testing.T) {
	var b strings.Builder
	b.WriteString(`{"resourceType":"Bundle"`)
	for i := range maxMembers + 1 {
		fmt.Fprintf(&b, `,"k%d":1`, i)
	}
	b.WriteString("}")
	if _, err := readAll(t, []byte(b.String())); !errors.Is(err, ErrInput) || !strings.Contains(err.Error(), "more than 1024 members") {
		t.Fatal(err)
	}
}

// A reader error is returned wrapped, not as an input problem.
func TestReadReaderError(t *testing.T) {
	boom := errors.New("disk on fire")
	data := fhirtest.Synthea(1, 50)
	r := io.MultiReader(bytes.NewReader(data[:len(data)/2]), &failing{boom})
	n := 0
	err := ReadResources(context.Background(), r, func(*Resource) error { n++; return nil })
	if !errors.Is(err, boom) || n == 0 {
		t.Fatalf("after %d: %v", n, err)
	}
}

type failing struct{ err error }

func (f *failing) Read([]byte) (int, error) { return 0, f.err }
