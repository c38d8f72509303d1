package api

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"

	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/protocol"
)

// listing is a records list as the tests read it (the rows' CIDs are
// plain strings).
type listing struct {
	Records []struct {
		CID      string `json:"cid"`
		Title    string `json:"title"`
		Kind     string `json:"kind"`
		Status   string `json:"status"`
		Readable bool   `json:"readable"`
	} `json:"records"`
}

type custody struct {
	OK     bool `json:"ok"`
	Record struct {
		Access struct {
			CID     string `json:"cid"`
			Known   bool   `json:"known"`
			Author  string `json:"author"`
			Readers []struct {
				Account string `json:"account"`
				Role    string `json:"role"`
			} `json:"readers"`
		} `json:"access"`
		Blocks    int      `json:"blocks"`
		Decrypted bool     `json:"decrypted"`
		Title     string   `json:"title"`
		Problems  []string `json:"problems"`
	} `json:"record"`
	AuthorChain *struct {
		Account  string   `json:"account"`
		Blocks   int      `json:"blocks"`
		Problems []string `json:"problems"`
	} `json:"author_chain"`
	Problems   []string `json:"problems"`
	Superseded []string `json:"superseded"`
	// SupersededForks are the same as fields.
	SupersededForks []struct {
		Account    string `json:"account"`
		Seq        uint64 `json:"seq"`
		Recovery   string `json:"recovery"`
		Superseded string `json:"superseded"`
	} `json:"superseded_forks"`
}

// looseDecode decodes a JSON answer without refusing unknown fields.
func looseDecode(t *testing.T, resp *http.Response, want int, v any) {
	t.Helper()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("%s %s: status %d, want %d: %s", resp.Request.Method, resp.Request.URL.Path, resp.StatusCode, want, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("decode %s: %v", body, err)
	}
}

// The record endpoints: add (streamed, past MaxBody), list with filters,
// read with the content-serving rules, verify, hide and unhide; a locked
// account is 423 until unlocked; unknown, malformed and unreadable
// records are 404, 400 and 403.
func TestRecords(t *testing.T) {
	ctx := t.Context()
	repo, err := keyshare.Open(ctx, t.TempDir(), keyshare.Options{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	defer repo.Close()
	pat, err := repo.CreateAccount(ctx, "Pat", protocol.RolePatient, nil)
	if err != nil {
		t.Fatal(err)
	}
	sam, err := repo.CreateAccount(ctx, "Sam", protocol.RolePatient, []byte("right"))
	if err != nil {
		t.Fatal(err)
	}
	sessions := keyshare.NewSessions(repo)
	defer sessions.Close()
	e := startServer(t, Options{Repo: repo, Sessions: sessions})
	get := func(path string) *http.Response { return e.do(t, req{path: path}) }
	post := func(path string, body []byte) *http.Response {
		return e.do(t, req{method: http.MethodPost, path: path, body: bytes.NewReader(body), length: int64(len(body))})
	}
	add := func(q url.Values, body []byte) AddedRecord {
		t.Helper()
		var out AddedRecord
		decode(t, post("/api/v1/records?"+q.Encode(), body), http.StatusCreated, &out)
		return out
	}

	var l listing
	looseDecode(t, get("/api/v1/records"), http.StatusOK, &l)
	if len(l.Records) != 0 {
		t.Fatalf("records of a fresh repo: %+v", l)
	}

	// Add: a note, a PNG, an HTML file with a script, and a record over
	// MaxBody (the upload is not bounded by it).
	note := add(url.Values{"title": {"Blood test"}, "kind": {"note"}}, []byte("glucose 5.1 mmol/L"))
	if note.Author != pat.ID || note.Subject != pat.ID || note.Kind != protocol.KindNote || note.MediaType != "text/plain; charset=utf-8" {
		t.Fatalf("added %+v", note)
	}
	pngBytes := append([]byte("\x89PNG\r\n\x1a\n"), bytes.Repeat([]byte{0}, 64)...)
	png := add(url.Values{"title": {"X-ray"}, "media_type": {"image/png"}, "file_name": {"scan.png"}}, pngBytes)
	html := []byte(`<html><script>alert(1)</script></html>`)
	evil := add(url.Values{"title": {"<img src=x onerror=alert(1)>"}, "media_type": {"text/html"}, "file_name": {`a"b;c.html`}}, html)
	big := bytes.Repeat([]byte("0123456789abcdef"), (2*MaxBody)/16)
	large := add(url.Values{"file_name": {"big.bin"}}, big)
	if large.Title != "big.bin" || large.MediaType != "application/octet-stream" {
		t.Fatalf("large: %+v", large)
	}
	wantError(t, post("/api/v1/records?kind=bogus", []byte("x")), http.StatusBadRequest, "kind")
	wantError(t, post("/api/v1/records?file_name=..%2Fetc%2Fpasswd", []byte("x")), http.StatusBadRequest, "file_name")
	wantError(t, post("/api/v1/records?for=nobody", []byte("x")), http.StatusNotFound, "for")

	// List, with filters.
	looseDecode(t, get("/api/v1/records"), http.StatusOK, &l)
	if len(l.Records) != 4 {
		t.Fatalf("list: %+v", l)
	}
	looseDecode(t, get("/api/v1/records?kind=note"), http.StatusOK, &l)
	if len(l.Records) != 1 || l.Records[0].CID != note.CID || l.Records[0].Title != "Blood test" || !l.Records[0].Readable {
		t.Fatalf("kind=note: %+v", l)
	}
	looseDecode(t, get("/api/v1/records?q=X-RAY"), http.StatusOK, &l)
	if len(l.Records) != 1 || l.Records[0].CID != png.CID {
		t.Fatalf("q=X-RAY: %+v", l)
	}
	wantError(t, get("/api/v1/records?kind=bogus"), http.StatusBadRequest, "kind")
	wantError(t, get("/api/v1/records?all=maybe"), http.StatusBadRequest, "all")

	// Read: the bytes as written, under the content-serving rules.
	content := func(c string, want []byte, ctype, disp string) {
		t.Helper()
		resp := get("/api/v1/records/" + c + "/content")
		body, _ := io.ReadAll(resp.Body)
		h := resp.Header
		if resp.StatusCode != http.StatusOK || !bytes.Equal(body, want) {
			t.Fatalf("content of %s: %d, %d bytes", c, resp.StatusCode, len(body))
		}
		if h.Get("Content-Security-Policy") != RecordContentCSP || h.Get("X-Content-Type-Options") != "nosniff" ||
			h.Get("Content-Type") != ctype || h.Get("Content-Disposition") != disp {
			t.Fatalf("content of %s: headers %v", c, h)
		}
	}
	content(evil.CID, html, "application/octet-stream", `attachment; filename=a_b_c.html`)
	content(png.CID, pngBytes, "image/png", `inline; filename=scan.png`)
	content(note.CID, []byte("glucose 5.1 mmol/L"), "application/octet-stream", `attachment; filename=record`)
	content(large.CID, big, "application/octet-stream", `attachment; filename=big.bin`)

	// Verify: the chain of custody, decrypted with Pat's keys.
	var cu custody
	looseDecode(t, get("/api/v1/records/"+note.CID+"/verify"), http.StatusOK, &cu)
	a := cu.Record.Access
	if !cu.OK || !cu.Record.Decrypted || cu.Record.Blocks == 0 || cu.Record.Title != "Blood test" || a.CID != note.CID || !a.Known ||
		a.Author != string(pat.ID) || len(a.Readers) == 0 || len(cu.Record.Problems) != 0 || cu.Problems == nil || len(cu.Problems) != 0 {
		t.Fatalf("verify: %+v", cu)
	}
	if ac := cu.AuthorChain; ac == nil || ac.Account != string(pat.ID) || ac.Blocks == 0 || len(ac.Problems) != 0 {
		t.Fatalf("verify: the author's chain %+v", ac)
	}

	// One record's row: what the list says of it, and hidden ones too.
	type row struct {
		CID       string `json:"cid"`
		Title     string `json:"title"`
		Kind      string `json:"kind"`
		MediaType string `json:"media_type"`
		FileName  string `json:"file_name"`
		Status    string `json:"status"`
		Readable  bool   `json:"readable"`
		Readers   []struct {
			Account string `json:"account"`
		} `json:"readers"`
	}
	var one row
	looseDecode(t, get("/api/v1/records/"+png.CID), http.StatusOK, &one)
	if one.CID != png.CID || one.Title != "X-ray" || one.MediaType != "image/png" || one.FileName != "scan.png" || !one.Readable ||
		one.Status != "readable" || len(one.Readers) != 1 || one.Readers[0].Account != string(pat.ID) {
		t.Fatalf("one record: %+v", one)
	}

	// Hide and unhide.
	var hid Hidden
	decode(t, post("/api/v1/records/"+note.CID+"/hide", nil), http.StatusOK, &hid)
	if !hid.Hidden || hid.Block == "" || len(hid.Records) != 1 || hid.Records[0] != note.CID {
		t.Fatalf("hide: %+v", hid)
	}
	looseDecode(t, get("/api/v1/records"), http.StatusOK, &l)
	if len(l.Records) != 3 {
		t.Fatalf("after hide: %+v", l)
	}
	looseDecode(t, get("/api/v1/records?all=true&kind=note"), http.StatusOK, &l)
	if len(l.Records) != 1 || l.Records[0].Status != "hidden" {
		t.Fatalf("all after hide: %+v", l)
	}
	looseDecode(t, get("/api/v1/records/"+note.CID), http.StatusOK, &one)
	if one.Status != "hidden" || !one.Readable || one.Title != "Blood test" {
		t.Fatalf("one hidden record: %+v", one)
	}
	decode(t, post("/api/v1/records/"+note.CID+"/unhide", nil), http.StatusOK, &hid)
	if hid.Hidden || hid.Block == "" {
		t.Fatalf("unhide: %+v", hid)
	}
	looseDecode(t, get("/api/v1/records"), http.StatusOK, &l)
	if len(l.Records) != 4 {
		t.Fatalf("after unhide: %+v", l)
	}

	// Unknown and malformed CIDs.
	sum, _ := mh.Sum([]byte("no such record"), mh.SHA2_256, -1)
	unknown := cid.NewCidV1(cid.Raw, sum).String()
	for _, p := range []string{"", "/content", "/verify"} {
		wantError(t, get("/api/v1/records/"+unknown+p), http.StatusNotFound, "unknown record")
		wantError(t, get("/api/v1/records/not-a-cid"+p), http.StatusBadRequest, "CID")
	}
	wantError(t, post("/api/v1/records/"+unknown+"/hide", nil), http.StatusNotFound, "unknown record")
	wantError(t, post("/api/v1/records/not-a-cid/unhide", nil), http.StatusBadRequest, "CID")

	// A locked account is 423 until unlocked through the sessions
	// endpoint; its own record is then readable by it and not by Pat.
	asSam := "?account=" + string(sam.ID)
	wantError(t, get("/api/v1/records"+asSam), http.StatusLocked, "unlock it first")
	wantError(t, post("/api/v1/records"+asSam, []byte("x")), http.StatusLocked, "unlock it first")
	var se Session
	unlock := `{"account":"` + string(sam.ID) + `","passphrase":"right"}`
	decode(t, e.do(t, req{method: http.MethodPost, path: "/api/v1/sessions/unlock", body: strings.NewReader(unlock), length: int64(len(unlock)),
		header: map[string]string{"Content-Type": "application/json"}}), http.StatusOK, &se)
	looseDecode(t, get("/api/v1/records"+asSam), http.StatusOK, &l)
	if len(l.Records) != 0 {
		t.Fatalf("Sam's records: %+v", l)
	}
	var mine AddedRecord
	decode(t, post("/api/v1/records"+asSam+"&title=Sam%27s", []byte("private")), http.StatusCreated, &mine)
	if mine.Author != sam.ID {
		t.Fatalf("Sam's record: %+v", mine)
	}
	wantError(t, get("/api/v1/records/"+mine.CID+"/content"), http.StatusForbidden, "no access")
	// Its row, for Pat: known, and no access (no title: not decrypted).
	one = row{}
	looseDecode(t, get("/api/v1/records/"+mine.CID), http.StatusOK, &one)
	if one.Status != "no access" || one.Readable || one.Title != "" || one.CID != mine.CID {
		t.Fatalf("Pat's row of Sam's record: %+v", one)
	}
	wantError(t, post("/api/v1/records/"+mine.CID+"/hide", nil), http.StatusForbidden, "subject")
	// Pat may verify it, without decrypting it.
	looseDecode(t, get("/api/v1/records/"+mine.CID+"/verify"), http.StatusOK, &cu)
	if cu.Record.Decrypted || cu.Record.Access.Author != string(sam.ID) {
		t.Fatalf("Pat verifies Sam's record: %+v", cu)
	}

	// A record that supersedes another; a malformed predecessor is 400.
	v2 := add(url.Values{"title": {"Blood test, corrected"}, "kind": {"note"}, "supersedes": {note.CID}}, []byte("glucose 5.2 mmol/L"))
	if v2.CID == "" || v2.CID == note.CID {
		t.Fatalf("supersedes: %+v", v2)
	}
	wantError(t, post("/api/v1/records?supersedes=nope", []byte("x")), http.StatusBadRequest, "supersedes")
}

// ContentHeaders is inline only for the allow-listed types, whatever the
// case or parameters, and SafeFileName leaves nothing that could break
// out of the Content-Disposition header.
func TestContentHeaders(t *testing.T) {
	for _, c := range []struct{ mt, ctype, disp string }{
		{"image/png", "image/png", "inline"},
		{"IMAGE/JPEG", "image/jpeg", "inline"},
		{"application/pdf; x=1", "application/pdf", "inline"},
		{"image/webp", "image/webp", "inline"},
		{"image/gif", "image/gif", "inline"},
		{"image/svg+xml", "application/octet-stream", "attachment"},
		{"text/html; charset=utf-8", "application/octet-stream", "attachment"},
		{"application/xhtml+xml", "application/octet-stream", "attachment"},
		{"text/xml", "application/octet-stream", "attachment"},
		{"text/plain", "application/octet-stream", "attachment"},
		{"not a type", "application/octet-stream", "attachment"},
		{"", "application/octet-stream", "attachment"},
	} {
		h := http.Header{}
		ContentHeaders(h, c.mt, "x.bin")
		// Only a PDF may be framed, and by the app's own origin alone.
		csp, frame := RecordContentCSP, "DENY"
		if c.ctype == "application/pdf" {
			csp, frame = RecordFrameCSP, "SAMEORIGIN"
		}
		if h.Get("Content-Type") != c.ctype || !strings.HasPrefix(h.Get("Content-Disposition"), c.disp+";") ||
			h.Get("Content-Security-Policy") != csp || h.Get("X-Frame-Options") != frame || h.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%q: %v", c.mt, h)
		}
	}
	for in, want := range map[string]string{
		"scan.png":               "scan.png",
		"":                       "record",
		"....":                   "record",
		"../../etc/passwd":       "_.._etc_passwd",
		".bashrc":                "bashrc",
		"a\r\nX-Evil: 1":         "a__X-Evil__1",
		`q"uote;x=y.html`:        "q_uote_x_y.html",
		"résumé.pdf":             "résumé.pdf",
		strings.Repeat("a", 300): strings.Repeat("a", 100),
	} {
		if got := SafeFileName(in); got != want {
			t.Errorf("SafeFileName(%q) = %q, want %q", in, got, want)
		}
	}
}
