package api

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/blockmrs/blockmrs/node/ops"
)

// The FHIR endpoints: POST /api/v1/fhir/import (the body is the FHIR
// input, streamed, at most ops.MaxFHIRImport bytes; the answer the
// import's report), GET /api/v1/fhir/export (a collection Bundle,
// streamed), GET /api/v1/fhir/summary (an International Patient Summary
// document Bundle). Each acts as the "account" query parameter's account (else
// the default one), with its keys from the unlocked session.

// fhirImportPath takes a FHIR input as its body, which MaxBody does not
// bound (ops.MaxFHIRImport does).
const fhirImportPath = "/api/v1/fhir/import"

// The FHIR types are the operations' (node/ops).
type (
	FHIRImported = ops.FHIRImported
	FHIRExported = ops.FHIRExported
)

// ImportEvent is the data of an "import" event: how far an import that
// asked for progress (its "progress" query parameter) got.
type ImportEvent struct {
	// ID is the import's progress parameter.
	ID string `json:"id"`
	// Read is the number of resources read and checked so far.
	Read int `json:"read"`
}

// importEventEvery is the least time between two import events of one
// import.
const importEventEvery = 250 * time.Millisecond

func (s *Server) importFHIR(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	oneRecord, ok := queryBool(w, r, "one_record")
	if !ok {
		return
	}
	id := q.Get("progress")
	if len(id) > 64 {
		writeError(w, http.StatusBadRequest, "progress: at most 64 characters")
		return
	}
	if r.ContentLength > ops.MaxFHIRImport {
		writeError(w, http.StatusRequestEntityTooLarge, "request body of %d bytes is over the %d-byte limit of an import", r.ContentLength, int64(ops.MaxFHIRImport))
		return
	}
	keys, ok := s.keysOf(w, r)
	if !ok {
		return
	}
	// The body is read as the import goes: no write deadline, and a read
	// deadline extended before each read.
	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Time{})
	body := &idleReader{r: r.Body, rc: rc}
	var progress func(ops.ImportProgress)
	if id != "" {
		var mu sync.Mutex
		var last time.Time
		progress = func(p ops.ImportProgress) {
			mu.Lock()
			defer mu.Unlock()
			if time.Since(last) >= importEventEvery {
				last = time.Now()
				s.events.publish("import", ImportEvent{ID: id, Read: p.Read})
			}
		}
	}
	out, err := ops.FHIRImport(r.Context(), s.opts.Repo, keys, ops.FHIRImportRequest{
		For: q.Get("for"), Patient: q.Get("patient"), OneRecord: oneRecord, FileName: q.Get("file_name"),
	}, body, progress)
	s.reply(w, http.StatusOK, out, err)
}

func (s *Server) exportFHIR(w http.ResponseWriter, r *http.Request) {
	keys, ok := s.keysOf(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	lw := &lazyWriter{w: w, start: func(h http.Header) {
		h.Set("Content-Type", "application/fhir+json")
		h.Set("Content-Disposition", `attachment; filename="fhir-export.json"`)
		h.Set("X-Content-Type-Options", "nosniff")
	}}
	_ = http.NewResponseController(w).SetWriteDeadline(time.Time{})
	_, err := ops.FHIRExport(r.Context(), s.opts.Repo, keys, ops.FHIRExportRequest{Type: q.Get("type"), Since: q.Get("since")}, lw)
	if err == nil {
		lw.begin()
		return
	}
	if !lw.started {
		s.opError(w, err)
		return
	}
	// A failure after the Bundle began must not look like a whole one:
	// the connection is cut (no final chunk).
	s.log.Warn("api: FHIR export failed mid-stream", "err", err)
	panic(http.ErrAbortHandler)
}

func (s *Server) summaryFHIR(w http.ResponseWriter, r *http.Request) {
	keys, ok := s.keysOf(w, r)
	if !ok {
		return
	}
	doc, err := ops.FHIRSummary(r.Context(), s.opts.Repo, keys, time.Now())
	if err != nil {
		s.opError(w, err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/fhir+json")
	h.Set("Content-Disposition", `attachment; filename="patient-summary.json"`)
	w.WriteHeader(http.StatusOK)
	w.Write(doc)
}

// lazyWriter sends the response's status and headers (set by start) with
// the first byte, so that an error before it can still be answered as
// one.
type lazyWriter struct {
	w       http.ResponseWriter
	start   func(http.Header)
	started bool
}

func (l *lazyWriter) begin() {
	if !l.started {
		l.started = true
		l.start(l.w.Header())
		l.w.WriteHeader(http.StatusOK)
	}
}

func (l *lazyWriter) Write(p []byte) (int, error) {
	l.begin()
	return l.w.Write(p)
}

// FHIRImport calls POST /api/v1/fhir/import acting as account ("" for the
// default one), sending body as the input.
func (c *Client) FHIRImport(ctx context.Context, account string, req ops.FHIRImportRequest, body io.Reader) (FHIRImported, error) {
	oneRecord := ""
	if req.OneRecord {
		oneRecord = "true"
	}
	path := withQuery(fhirImportPath, map[string]string{"account": account, "for": req.For, "patient": req.Patient, "file_name": req.FileName, "one_record": oneRecord})
	// The report lists every resource: it can be over MaxBody, which
	// call reads at most.
	resp, err := c.send(ctx, http.MethodPost, path, body, "application/fhir+json")
	if err != nil {
		return FHIRImported{}, err
	}
	defer resp.Body.Close()
	var v FHIRImported
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		return FHIRImported{}, fmt.Errorf("api %s: bad response: %w", path, err)
	}
	return v, nil
}

// FHIRExport calls GET /api/v1/fhir/export acting as account ("" for the
// default one) and copies the Bundle to w.
func (c *Client) FHIRExport(ctx context.Context, account string, req ops.FHIRExportRequest, w io.Writer) error {
	return c.download(ctx, withQuery("/api/v1/fhir/export", map[string]string{"account": account, "type": req.Type, "since": req.Since}), w)
}

// FHIRSummary calls GET /api/v1/fhir/summary acting as account ("" for
// the default one) and copies the summary Bundle to w.
func (c *Client) FHIRSummary(ctx context.Context, account string, w io.Writer) error {
	return c.download(ctx, withQuery("/api/v1/fhir/summary", map[string]string{"account": account}), w)
}

// withQuery adds the parameters that are not "" to path.
func withQuery(path string, params map[string]string) string {
	q := url.Values{}
	for k, v := range params {
		if v != "" {
			q.Set(k, v)
		}
	}
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	return path
}

// download sends GET path and copies a 200 answer's body to w.
func (c *Client) download(ctx context.Context, path string, w io.Writer) error {
	resp, err := c.send(ctx, http.MethodGet, path, nil, "")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(w, resp.Body); err != nil {
		return fmt.Errorf("api %s: %w", path, err)
	}
	return nil
}

// send sends a request with body (nil for none) of type contentType and
// returns a 2xx response, whose body the caller reads and closes; any
// other answer becomes an error (the API's one line when it sent one).
func (c *Client) send(ctx context.Context, method, path string, body io.Reader, contentType string) (*http.Response, error) {
	if err := c.checkServer(ctx); err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return nil, fmt.Errorf("api %s: %w", path, err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if body != nil {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("api %s: daemon not reachable (stale %s after a crash?): %w", path, AddrFile, err)
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		var e Error
		data, _ := io.ReadAll(io.LimitReader(resp.Body, MaxBody))
		if json.Unmarshal(data, &e) == nil && e.Error != "" {
			return nil, fmt.Errorf("api %s: %s", path, e.Error)
		}
		return nil, fmt.Errorf("api %s: HTTP %d", path, resp.StatusCode)
	}
	return resp, nil
}
