package fhir

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
)

// uuidRe is a UUID in its canonical text form.
var uuidRe = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// BundleWriter writes resources as one FHIR R4 JSON Bundle, streaming:
// each Add writes its entry, so memory holds one resource, not the
// Bundle. Every resource's bytes are written exactly as given (white
// space around the object aside), so what ReadResources reads back is
// byte for byte what was stored, and references between the resources
// keep resolving through the entries' fullUrls.
type BundleWriter struct {
	// Timestamp, when set before the first Add, is the Bundle's
	// timestamp (a FHIR instant, "2026-12-01T12:00:00Z").
	Timestamp string

	identifier string // a document's identifier value, set by Summary
	w          *bufio.Writer
	typ        string
	started    bool
	n          int
	urls       map[string]bool
	err        error
}

// NewBundleWriter returns a writer of a Bundle of type typ ("collection"
// for an export) to w. Close ends the Bundle.
func NewBundleWriter(w io.Writer, typ string) *BundleWriter {
	return &BundleWriter{w: bufio.NewWriterSize(w, 64<<10), typ: typ, urls: map[string]bool{}}
}

// FullURL is the fullUrl a resource gets in a Bundle when it has no
// stored one: "urn:uuid:ID" when its id is a UUID (as Synthea writes
// them), else "TYPE/ID", which is how the other resources reference it;
// "" when it has no id.
func FullURL(resourceType, id string) string {
	switch {
	case id == "":
		return ""
	case uuidRe.MatchString(id):
		return "urn:uuid:" + strings.ToLower(id)
	}
	return resourceType + "/" + id
}

func (b *BundleWriter) start() {
	if b.started {
		return
	}
	b.started = true
	b.put(`{"resourceType":"Bundle",`)
	if b.identifier != "" {
		b.put(`"identifier":{"system":"urn:ietf:rfc:3986","value":`)
		b.putJSON(b.identifier)
		b.put(`},`)
	}
	b.put(`"type":`)
	b.putJSON(b.typ)
	if b.Timestamp != "" {
		b.put(`,"timestamp":`)
		b.putJSON(b.Timestamp)
	}
}

func (b *BundleWriter) put(s string) {
	if b.err == nil {
		_, b.err = b.w.WriteString(s)
	}
}

func (b *BundleWriter) putJSON(v any) {
	data, err := json.Marshal(v)
	if err != nil && b.err == nil {
		b.err = err
	}
	if b.err == nil {
		_, b.err = b.w.Write(data)
	}
}

// Add writes one entry: fullURL as its fullUrl (when "", FullURL of the
// resource's type and id) and raw, one resource's JSON, as its
// resource. raw must be one JSON object with a resourceType; a fullUrl
// already in the Bundle is refused (an export holds each resource once).
func (b *BundleWriter) Add(fullURL string, raw []byte) error {
	if b.err != nil {
		return b.err
	}
	raw = bytes.TrimSpace(raw)
	rt, id, err := checkJSON(raw, MaxDepth)
	if err != nil {
		return fmt.Errorf("bundle entry %d: %w", b.n, err)
	}
	if rt == "" {
		return fmt.Errorf(`bundle entry %d: no "resourceType"`, b.n)
	}
	if fullURL == "" {
		fullURL = FullURL(rt, id)
	}
	if fullURL != "" {
		if b.urls[fullURL] {
			return fmt.Errorf("bundle entry %d: fullUrl %q is already in the Bundle: add each resource once", b.n, clip(fullURL))
		}
		b.urls[fullURL] = true
	}
	b.start()
	if b.n == 0 {
		b.put(`,"entry":[`) // FHIR JSON has no empty arrays: only with an entry
	} else {
		b.put(",")
	}
	b.put("\n{")
	if fullURL != "" {
		b.put(`"fullUrl":`)
		b.putJSON(fullURL)
		b.put(",")
	}
	b.put(`"resource":`)
	if b.err == nil {
		_, b.err = b.w.Write(raw)
	}
	b.put("}")
	b.n++
	return b.err
}

// Close ends the Bundle and flushes it; it does not close the
// underlying writer.
func (b *BundleWriter) Close() error {
	if b.err != nil {
		return b.err
	}
	b.start()
	if b.n > 0 {
		b.put("\n]")
	}
	b.put("}\n")
	if b.err == nil {
		b.err = b.w.Flush()
	}
	if b.err == nil {
		b.err = errClosed
		return nil
	}
	return b.err
}

var errClosed = errors.New("bundle writer: closed")
