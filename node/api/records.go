package api

import (
	"context"
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/ipfs/go-cid"

	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/node/ops"
	"github.com/blockmrs/blockmrs/protocol"
)

// The record endpoints: list, add (a streamed upload), read (a streamed
// download of the decrypted bytes), verify, hide and unhide. Each acts as
// the account of the "account" query parameter (else the default one),
// with its keys from the unlocked session (see keysOf).

// recordsPath is the records collection: GET lists, POST adds (its body
// is the record's content, which MaxBody does not bound).
const recordsPath = "/api/v1/records"

// The record types are the operations' (node/ops).
type (
	RecordList  = ops.RecordList
	AddedRecord = ops.AddedRecord
	Custody     = ops.Custody
	Hidden      = ops.Hidden
)

// RecordContentCSP is the Content-Security-Policy of a record's content:
// a record's bytes are hostile, so they run in a sandbox (a unique
// origin, no script) and may load nothing, nor be framed.
const RecordContentCSP = "sandbox; default-src 'none'; frame-ancestors 'none'"

// RecordFrameCSP is RecordContentCSP for a PDF, which the web app shows in
// a frame of its own page (the browser's PDF viewer): the same sandbox,
// framed only by the app's own origin (with X-Frame-Options SAMEORIGIN
// for browsers without frame-ancestors). SECURITY.md says what the
// sandbox does not stop: the PDF viewer runs a PDF's own scripts.
const RecordFrameCSP = "sandbox; default-src 'none'; frame-ancestors 'self'"

// inlineTypes are the media types a record's content is served as, and
// shown inline: types a browser renders without running anything of the
// record's in the app's origin. Everything else (HTML, SVG, XML, text,
// ...) is application/octet-stream, as an attachment.
var inlineTypes = map[string]bool{
	"image/png":       true,
	"image/jpeg":      true,
	"image/gif":       true,
	"image/webp":      true,
	"application/pdf": true,
}

// ContentHeaders sets the headers of a record's content served with media
// type mt and file name name: the sandboxing CSP, nosniff, no framing
// (a PDF: by the app's own pages only), and a Content-Type and
// Content-Disposition that are inline only for the inline-safe types.
func ContentHeaders(h http.Header, mt, name string) {
	base, _, err := mime.ParseMediaType(mt)
	base = strings.ToLower(base)
	ctype, disp := "application/octet-stream", "attachment"
	if err == nil && inlineTypes[base] {
		ctype, disp = base, "inline"
	}
	csp, frame := RecordContentCSP, "DENY"
	if ctype == "application/pdf" {
		csp, frame = RecordFrameCSP, "SAMEORIGIN"
	}
	h.Set("Content-Security-Policy", csp)
	h.Set("X-Frame-Options", frame)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Type", ctype)
	h.Set("Content-Disposition", mime.FormatMediaType(disp, map[string]string{"filename": SafeFileName(name)}))
}

// SafeFileName makes a record's file name fit for Content-Disposition:
// letters, digits and ".-_+" kept, every other character "_", at most 100
// characters, not starting with a dot; "record" when nothing is left.
func SafeFileName(name string) string {
	var b strings.Builder
	n := 0
	for _, r := range name {
		if n == 100 {
			break
		}
		n++
		switch {
		case unicode.IsLetter(r) || unicode.IsDigit(r) || strings.ContainsRune(".-_+", r):
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	out := strings.TrimLeft(b.String(), ".")
	if strings.Trim(out, "_") == "" {
		return "record"
	}
	return out
}

// recordCID parses the {cid} path segment; a malformed one is 400.
func recordCID(w http.ResponseWriter, r *http.Request) (cid.Cid, bool) {
	c, err := ops.ParseRecordCID(r.PathValue("cid"))
	if err != nil {
		writeError(w, http.StatusBadRequest, "%v", err)
		return cid.Undef, false
	}
	return c, true
}

// queryBool reads a boolean query parameter ("" is false).
func queryBool(w http.ResponseWriter, r *http.Request, name string) (bool, bool) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return false, true
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		writeError(w, http.StatusBadRequest, "%s: want true or false, got %q", name, truncate(v))
		return false, false
	}
	return b, true
}

func truncate(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}

func (s *Server) listRecords(w http.ResponseWriter, r *http.Request) {
	all, ok := queryBool(w, r, "all")
	if !ok {
		return
	}
	versions, ok := queryBool(w, r, "versions")
	if !ok {
		return
	}
	keys, ok := s.keysOf(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	out, err := ops.Records(r.Context(), s.opts.Repo, keys, ops.ListRecords{All: all, Versions: versions,
		Kind: protocol.Kind(q.Get("kind")), Query: q.Get("q"), Type: q.Get("type"), Code: q.Get("code"),
		Since: q.Get("since"), Until: q.Get("until"), Author: protocol.AccountID(q.Get("author"))})
	s.reply(w, http.StatusOK, out, err)
}

func (s *Server) getRecord(w http.ResponseWriter, r *http.Request) {
	c, ok := recordCID(w, r)
	if !ok {
		return
	}
	keys, ok := s.keysOf(w, r)
	if !ok {
		return
	}
	out, err := ops.Record(r.Context(), s.opts.Repo, keys, c)
	s.reply(w, http.StatusOK, out, err)
}

func (s *Server) addRecord(w http.ResponseWriter, r *http.Request) {
	keys, ok := s.keysOf(w, r)
	if !ok {
		return
	}
	// The body is the record, as large as the store takes: no write
	// deadline, and a read deadline extended before each read.
	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Time{})
	body := &idleReader{r: r.Body, rc: rc}
	q := r.URL.Query()
	out, err := ops.AddRecord(r.Context(), s.opts.Repo, keys, ops.NewRecord{
		Title: q.Get("title"), Kind: protocol.Kind(q.Get("kind")), MediaType: q.Get("media_type"),
		FileName: q.Get("file_name"), For: q.Get("for"), Supersedes: q.Get("supersedes"),
	}, body)
	s.reply(w, http.StatusCreated, out, err)
}

// idleReader reads a request body, extending the connection's read
// deadline by ExecStdinIdle before each read.
type idleReader struct {
	r  io.Reader
	rc *http.ResponseController
}

func (b *idleReader) Read(p []byte) (int, error) {
	_ = b.rc.SetReadDeadline(time.Now().Add(ExecStdinIdle))
	return b.r.Read(p)
}

func (s *Server) recordContent(w http.ResponseWriter, r *http.Request) {
	c, ok := recordCID(w, r)
	if !ok {
		return
	}
	keys, ok := s.keysOf(w, r)
	if !ok {
		return
	}
	env, body, err := ops.OpenRecord(r.Context(), s.opts.Repo, keys, c)
	if err != nil {
		s.opError(w, err)
		return
	}
	defer body.Close()
	ContentHeaders(w.Header(), env.MediaType, env.FileName)
	_ = http.NewResponseController(w).SetWriteDeadline(time.Time{})
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}
	if _, err := io.Copy(w, body); err != nil {
		// Age authenticates as it goes: a failure after the status is
		// sent must not look like a complete response, so the
		// connection is cut (no final chunk).
		s.log.Warn("api: record content failed mid-stream", "record", c, "err", err)
		panic(http.ErrAbortHandler)
	}
}

func (s *Server) verifyRecord(w http.ResponseWriter, r *http.Request) {
	c, ok := recordCID(w, r)
	if !ok {
		return
	}
	me, ok := s.acting(w, r)
	if !ok {
		return
	}
	// The content is decrypted too when the account may read it; then
	// its keys come from its session (423 when locked).
	var keys *keyshare.Keys
	may, err := ops.MayRead(r.Context(), s.opts.Repo, c, me.ID)
	if err != nil {
		s.opError(w, err)
		return
	}
	if may {
		if keys, ok = s.keysOf(w, r); !ok {
			return
		}
	}
	out, err := ops.VerifyRecord(r.Context(), s.opts.Repo, keys, c)
	s.reply(w, http.StatusOK, out, err)
}

func (s *Server) hideRecord(w http.ResponseWriter, r *http.Request)   { s.setHidden(w, r, true) }
func (s *Server) unhideRecord(w http.ResponseWriter, r *http.Request) { s.setHidden(w, r, false) }

func (s *Server) setHidden(w http.ResponseWriter, r *http.Request, hidden bool) {
	c, ok := recordCID(w, r)
	if !ok {
		return
	}
	keys, ok := s.keysOf(w, r)
	if !ok {
		return
	}
	out, err := ops.Hide(r.Context(), s.opts.Repo, keys, ops.HideRecords{Records: []string{c.String()}, Hidden: hidden})
	s.reply(w, http.StatusOK, out, err)
}

// RecordRows is GET /api/v1/records's answer as Client.Records returns
// it: each row as the JSON the server sent (a row's record CID is a
// plain string, which keyshare.Listed does not decode).
type RecordRows struct {
	Records []json.RawMessage `json:"records"`
}

// Record calls GET /api/v1/records/{cid} acting as account ("" for the
// default one): the record's row, as the server sent it.
func (c *Client) Record(ctx context.Context, account, record string) (json.RawMessage, error) {
	path := recordsPath + "/" + url.PathEscape(record)
	if account != "" {
		path += "?" + url.Values{"account": {account}}.Encode()
	}
	var v json.RawMessage
	return v, c.call(ctx, http.MethodGet, path, nil, &v)
}

// Records calls GET /api/v1/records acting as account ("" for the
// default one).
func (c *Client) Records(ctx context.Context, account string, req ops.ListRecords) (RecordRows, error) {
	q := url.Values{}
	if account != "" {
		q.Set("account", account)
	}
	if req.All {
		q.Set("all", "true")
	}
	if req.Kind != "" {
		q.Set("kind", string(req.Kind))
	}
	for name, v := range map[string]string{"q": req.Query, "type": req.Type, "code": req.Code, "since": req.Since, "until": req.Until, "author": string(req.Author)} {
		if v != "" {
			q.Set(name, v)
		}
	}
	if req.Versions {
		q.Set("versions", "true")
	}
	path := recordsPath
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var v RecordRows
	return v, c.call(ctx, http.MethodGet, path, nil, &v)
}
