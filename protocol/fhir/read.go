package fhir

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode"

	"github.com/blockmrs/blockmrs/protocol"
)

// Limits of what ReadResources reads.
const (
	// MaxResourceSize is the largest resource (one Bundle entry's
	// resource, one NDJSON line, or a single resource) in bytes.
	MaxResourceSize = 16 << 20
	// MaxDepth is the deepest nesting of JSON objects and arrays in a
	// resource.
	MaxDepth = 100
	// maxInFlight bounds the bytes of resources read but not yet handed
	// to the caller (one resource is always let through).
	maxInFlight = 32 << 20
)

// Errors ReadResources returns (wrapped, with the position).
var (
	// ErrXML is FHIR XML, which is refused.
	ErrXML = errors.New("FHIR XML is not supported: export the resources as FHIR JSON (application/fhir+json)")
	// ErrInput matches every *InputError: the input is not FHIR R4 JSON
	// this package reads.
	ErrInput = errors.New("invalid FHIR input")
)

// InputError says what is wrong with the input, and where, on one line:
// `entry[3] (Observation "obs-1"): Observation.status: missing required
// field — fix the resource and import again`.
type InputError struct {
	// Position is "entry[3]" in a Bundle, "line 13" in NDJSON,
	// "resource" for a single resource, "the input" for the file itself.
	Position string
	// ResourceType and ID name the resource, when known.
	ResourceType, ID string
	// Path is the JSON path of the faulty element in FHIR's form
	// ("Observation.code.coding[0].system"), "" when it is the whole.
	Path string
	// Problem is what is wrong.
	Problem string
	// Hint is what to do; "fix the resource and import again" when "".
	Hint string
}

func (e *InputError) Error() string {
	var b strings.Builder
	b.WriteString(e.Position)
	if e.ResourceType != "" {
		fmt.Fprintf(&b, " (%s", clip(e.ResourceType))
		if e.ID != "" {
			fmt.Fprintf(&b, " %q", clip(e.ID))
		}
		b.WriteByte(')')
	}
	b.WriteString(": ")
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Problem)
	hint := e.Hint
	if hint == "" {
		hint = "fix the resource and import again"
	}
	b.WriteString(" — ")
	b.WriteString(hint)
	return printable(b.String())
}

// Is makes every InputError match ErrInput.
func (e *InputError) Is(target error) bool { return target == ErrInput }

// Resource is one FHIR resource read from the input, validated as R4.
type Resource struct {
	// Index counts the resources handed out, from 0, in input order.
	Index int
	// Position is where the resource is: "entry[12]" in a Bundle,
	// "line 13" in NDJSON, "resource" for a single resource.
	Position string
	// Raw is the resource's JSON exactly as in the input.
	Raw []byte
	// FullURL is the Bundle entry's fullUrl, if any.
	FullURL string
	// Clinical is what the record's envelope says about the resource
	// (see Extract); its Digest is the SHA-256 of Raw.
	Clinical protocol.Clinical
	// Title is the record title derived from the resource.
	Title string
	// PatientRef is the normalized reference to the Patient the resource
	// is about ("urn:uuid:…", "Patient/ID",
	// "Patient?identifier=SYSTEM|VALUE"), "" if none.
	PatientRef string
	// AccountIDs are, for a Patient, the values of its identifiers whose
	// system is AccountSystem.
	AccountIDs []string
}

// ReadResources reads FHIR R4 JSON from r and calls fn for each resource
// in input order: every entry's resource of a Bundle of any type (an
// entry without a resource is skipped), a single resource that is not a
// Bundle, or Bulk Data NDJSON (one resource per line, blank lines
// allowed). A UTF-8 byte-order mark is skipped; XML is refused (ErrXML).
//
// The input is read as a stream of JSON tokens: memory holds the
// resources in flight, not the input. Each resource is checked as strict
// JSON (no duplicate keys, at most MaxDepth levels, MaxResourceSize
// bytes) and validated with the FHIR library's R4 parser on
// runtime.GOMAXPROCS workers, while fn still sees the resources one at a
// time, in order. The first problem in input order ends the read with
// an *InputError (matching ErrInput) naming the position and the JSON
// path; fn has then been called for the resources before it. An error
// from fn ends the read and is returned as it is.
func ReadResources(ctx context.Context, r io.Reader, fn func(*Resource) error) error {
	if _, _, err := codecs(); err != nil {
		return fmt.Errorf("FHIR library: %w", err)
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)

	workers := max(1, runtime.GOMAXPROCS(0))
	p := &pipeline{
		ctx:    ctx,
		work:   make(chan *job),
		order:  make(chan *job, 4*workers),
		budget: newBudget(maxInFlight),
	}
	var wg sync.WaitGroup
	for range workers {
		wg.Go(p.worker)
	}
	consumed := make(chan error, 1)
	var fnPanic any // a panic in fn, raised again on the caller's goroutine
	go func() {
		err := func() (err error) {
			defer func() {
				if v := recover(); v != nil {
					fnPanic, err = v, errStopped
				}
			}()
			return p.consume(fn)
		}()
		if err != nil {
			cancel(err)
		}
		consumed <- err
	}()

	rd := &reader{s: newScanner(r), p: p}
	readErr := func() (err error) {
		defer func() {
			if v := recover(); v != nil {
				err = &InputError{Position: "the input", Problem: clip(fmt.Sprintf("the reader failed on it (%v)", v)), Hint: "report this, with the file if you can"}
			}
		}()
		return rd.run()
	}()
	if rerr := rd.s.rerr; readErr != nil && rerr != nil && rerr != io.EOF && !errors.Is(readErr, errStopped) {
		readErr = fmt.Errorf("reading the input: %w", rerr) // not a problem of the input
	}
	if readErr != nil && !errors.Is(readErr, errStopped) {
		// A problem of the input: it goes in line, after the resources
		// before it (one of which may be invalid and win).
		p.put(&job{err: readErr, done: closedChan})
	}
	close(p.order)
	close(p.work)
	err := <-consumed
	wg.Wait()
	if fnPanic != nil {
		panic(fnPanic)
	}
	if err == nil && readErr != nil && errors.Is(readErr, errStopped) {
		err = context.Cause(ctx)
	}
	return err
}

// closedChan is the done channel of a job that needs no work.
var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// errStopped tells the reader the read was ended (by fn, an invalid
// resource before, or ctx).
var errStopped = errors.New("stopped")

// job is one resource on its way from the reader, through a worker, to
// fn.
type job struct {
	index    int
	position string
	fullURL  string
	raw      []byte
	res      *Resource
	err      error
	done     chan struct{}
}

type pipeline struct {
	ctx    context.Context
	work   chan *job
	order  chan *job
	budget *budget
}

// put queues a job for fn (and, when it has bytes, for a worker).
func (p *pipeline) put(j *job) error {
	if j.raw != nil {
		if err := p.budget.acquire(p.ctx, len(j.raw)); err != nil {
			return errStopped
		}
	}
	select {
	case p.order <- j:
	case <-p.ctx.Done(): // the consumer is gone
		if j.raw != nil {
			p.budget.release(len(j.raw))
		}
		return errStopped
	}
	if j.raw == nil {
		return nil
	}
	select {
	case p.work <- j:
		return nil
	case <-p.ctx.Done():
		return errStopped
	}
}

func (p *pipeline) worker() {
	for j := range p.work {
		if p.ctx.Err() == nil {
			j.res, j.err = readResource(j.index, j.position, j.fullURL, j.raw)
		} else {
			j.err = errStopped
		}
		close(j.done)
	}
}

// consume hands the jobs to fn in order.
func (p *pipeline) consume(fn func(*Resource) error) error {
	var failed error
	for j := range p.order {
		if failed == nil {
			select {
			case <-j.done:
			case <-p.ctx.Done():
				failed = context.Cause(p.ctx)
			}
		}
		if failed == nil {
			switch {
			case j.err != nil:
				failed = j.err
			case p.ctx.Err() != nil:
				failed = context.Cause(p.ctx)
			default:
				failed = fn(j.res)
			}
		}
		if j.raw != nil {
			p.budget.release(len(j.raw))
		}
		if failed != nil {
			return failed
		}
	}
	return nil
}

// budget is a weighted semaphore of bytes in flight; it always admits
// one request when nothing is in flight, so a large resource passes
// alone.
type budget struct {
	mu   sync.Mutex
	used int
	max  int
	wake chan struct{}
}

func newBudget(max int) *budget { return &budget{max: max, wake: make(chan struct{})} }

func (b *budget) acquire(ctx context.Context, n int) error {
	for {
		b.mu.Lock()
		if b.used == 0 || b.used+n <= b.max {
			b.used += n
			b.mu.Unlock()
			return nil
		}
		wake := b.wake
		b.mu.Unlock()
		select {
		case <-wake:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (b *budget) release(n int) {
	b.mu.Lock()
	b.used -= n
	close(b.wake)
	b.wake = make(chan struct{})
	b.mu.Unlock()
}

// reader walks the input's structure and queues each resource.
type reader struct {
	s       *scanner
	p       *pipeline
	n       int    // resources queued
	scratch []byte // for values skipped
}

func (rd *reader) fail(position, problem string) error {
	return &InputError{Position: position, Problem: problem, Hint: "fix the file and import again"}
}

func (rd *reader) emit(position, fullURL string, raw []byte) error {
	j := &job{index: rd.n, position: position, fullURL: fullURL, raw: raw, done: make(chan struct{})}
	rd.n++
	return rd.p.put(j)
}

func (rd *reader) run() error {
	s := rd.s
	s.skipBOM()
	s.space()
	c, ok := s.peek()
	switch {
	case !ok && s.rerr != nil && s.rerr != io.EOF:
		return fmt.Errorf("reading the input: %w", s.rerr)
	case !ok:
		return rd.fail("the input", "it is empty: want a FHIR JSON Bundle, a resource, or NDJSON")
	case c == '<':
		return ErrXML
	case c != '{':
		return rd.fail("the input", fmt.Sprintf("it starts with %s, not with a JSON object: want a FHIR JSON Bundle, a resource, or NDJSON", describeByte(c)))
	}
	startLine := s.line
	single, err := rd.top()
	if err != nil {
		return err
	}
	endLine := s.line
	s.space()
	c, more := s.peek()
	if single == nil { // a Bundle, streamed
		if more {
			return rd.fail("the input", fmt.Sprintf("unexpected %s at byte %d after the end of the Bundle", describeByte(c), s.offset()))
		}
		return rd.readEnd()
	}
	if !more {
		if err := rd.readEnd(); err != nil {
			return err
		}
		return rd.emit("resource", "", single)
	}
	// More after one resource: NDJSON, one resource per line.
	if s.line == endLine {
		return rd.fail(fmt.Sprintf("line %d", s.line), fmt.Sprintf("unexpected %s at byte %d after the end of the resource", describeByte(c), s.offset()))
	}
	if endLine != startLine {
		return rd.fail(fmt.Sprintf("line %d", startLine), fmt.Sprintf("a resource spans lines %d to %d, and more follows: NDJSON holds one resource per line", startLine, endLine))
	}
	if err := rd.emit(fmt.Sprintf("line %d", startLine), "", single); err != nil {
		return err
	}
	return rd.ndjson(endLine)
}

// readEnd reports a read error that ended the input early.
func (rd *reader) readEnd() error {
	if err := rd.s.rerr; err != nil && err != io.EOF {
		return fmt.Errorf("reading the input: %w", err)
	}
	return nil
}

// ndjson reads the lines after the first.
func (rd *reader) ndjson(endLine int) error {
	s := rd.s
	for {
		s.space()
		c, ok := s.peek()
		if !ok {
			return rd.readEnd()
		}
		pos := fmt.Sprintf("line %d", s.line)
		if s.line == endLine {
			return rd.fail(pos, fmt.Sprintf("unexpected %s at byte %d after the end of the resource: NDJSON holds one resource per line", describeByte(c), s.offset()))
		}
		if c != '{' {
			return rd.fail(pos, fmt.Sprintf("it starts with %s, not with a JSON object", describeByte(c)))
		}
		start := s.line
		raw, err := s.capture(nil, MaxResourceSize, MaxDepth)
		if err != nil {
			return rd.fail(pos, rd.problem(err))
		}
		if s.line != start {
			return rd.fail(pos, "a resource spans several lines: NDJSON holds one resource per line")
		}
		if err := rd.emit(pos, "", raw); err != nil {
			return err
		}
		endLine = s.line
	}
}

func (rd *reader) problem(err error) string {
	if errors.Is(err, errTruncated) {
		return strings.Replace(err.Error(), errTruncated.Error(), fmt.Sprintf("the input ends at byte %d (truncated?)", rd.s.offset()), 1)
	}
	return err.Error()
}

// top reads the top-level object. A Bundle's entries are queued as they
// come and top returns nil; any other resource is returned whole. The
// object's keys may come in any order: until its resourceType is known,
// its bytes are recorded (up to MaxResourceSize), so that a resource
// whose "resourceType" comes last is still read whole, and entries
// before it are taken as a Bundle's (checked when the type comes).
func (rd *reader) top() ([]byte, error) {
	s := rd.s
	s.record(MaxResourceSize)
	defer s.stopRecording()
	s.consume(1) // '{'
	rt, queued := "", 0
	const where = "the input"
	err := s.objectKeys(func(key string) error {
		var err error
		switch {
		case key == "resourceType":
			rt, err = s.str(64)
			if err != nil {
				return fmt.Errorf("resourceType: %w", err)
			}
			if rt == "Bundle" {
				s.stopRecording()
			}
		case key == "entry" && (rt == "" || rt == "Bundle"):
			before := rd.n
			err = rd.entries()
			queued += rd.n - before
		default:
			rd.scratch, err = s.skip(rd.scratch, MaxDepth)
		}
		return err
	})
	if err != nil {
		var in *InputError
		if errors.As(err, &in) || errors.Is(err, errStopped) {
			return nil, err
		}
		return nil, rd.fail(where, rd.problem(err))
	}
	switch {
	case rt == "":
		return nil, &InputError{Position: "resource", Problem: `no "resourceType": not a FHIR resource`}
	case rt == "Bundle":
		return nil, nil
	case queued > 0:
		return nil, &InputError{Position: "resource", ResourceType: rt, Path: "entry",
			Problem: `entries with resources came before "resourceType", and it is not a Bundle`}
	case s.recOver:
		return nil, &InputError{Position: "resource", ResourceType: rt,
			Problem: fmt.Sprintf("larger than %d MiB", MaxResourceSize>>20), Hint: "split it and import the parts"}
	}
	return s.rec, nil
}

// entries reads a Bundle's "entry" array and queues each entry's
// resource.
func (rd *reader) entries() error {
	s := rd.s
	if err := s.expect('['); err != nil {
		return rd.fail("the input", fmt.Sprintf(`Bundle "entry": %s (want an array of entries)`, rd.problem(err)))
	}
	s.space()
	if c, ok := s.peek(); ok && c == ']' {
		s.consume(1)
		return nil
	}
	for i := 0; ; i++ {
		pos := fmt.Sprintf("entry[%d]", i)
		if err := rd.entry(pos); err != nil {
			return err
		}
		s.space()
		c, ok := s.peek()
		if !ok {
			return rd.fail(pos, rd.problem(s.readErr()))
		}
		s.consume(1)
		switch c {
		case ',':
		case ']':
			return nil
		default:
			return rd.fail(pos, fmt.Sprintf("unexpected %s at byte %d after the entry (want ',' or ']')", describeByte(c), rd.s.offset()-1))
		}
	}
}

// entry reads one entry of a Bundle; the fullUrl may come before or
// after the resource.
func (rd *reader) entry(pos string) error {
	s := rd.s
	if err := s.expect('{'); err != nil {
		if errors.Is(err, errTruncated) {
			return rd.fail(pos, rd.problem(err))
		}
		return rd.fail(pos, rd.problem(err)+" (an entry is a JSON object)")
	}
	var raw []byte
	var fullURL string
	err := s.objectKeys(func(key string) error {
		var err error
		switch key {
		case "fullUrl":
			fullURL, err = s.str(protocol.MaxFullURL)
			if err != nil {
				return fmt.Errorf("fullUrl: %w", err)
			}
		case "resource":
			s.space()
			if c, ok := s.peek(); ok && c != '{' {
				return fmt.Errorf("resource: unexpected %s at byte %d (a resource is a JSON object)", describeByte(c), s.offset())
			}
			raw, err = s.capture(nil, MaxResourceSize, MaxDepth)
			if err != nil {
				return fmt.Errorf("resource: %s", rd.problem(err))
			}
		default:
			if rd.scratch, err = s.skip(rd.scratch, MaxDepth); err != nil {
				return fmt.Errorf("%s: %s", clip(key), rd.problem(err))
			}
		}
		return err
	})
	if err != nil {
		return rd.fail(pos, rd.problem(err))
	}
	if raw == nil {
		return nil // an entry without a resource (a DELETE, a link) is skipped
	}
	return rd.emit(pos, fullURL, raw)
}

// readResource checks one resource's bytes and validates them with the
// FHIR library, then extracts its clinical fields. It never panics: a
// panic in the library is an error of that resource.
func readResource(index int, position, fullURL string, raw []byte) (res *Resource, err error) {
	var rt, id string
	defer func() {
		if r := recover(); r != nil {
			res, err = nil, &InputError{Position: position, ResourceType: rt, ID: id,
				Problem: clip(fmt.Sprintf("the FHIR library failed on it (%v)", r))}
		}
	}()
	top, rt, id, jerr := checkMembers(raw, MaxDepth)
	if jerr != nil {
		in := &InputError{Position: position, ResourceType: rt, ID: id, Problem: jerr.Error()}
		var jp *jsonProblem
		if errors.As(jerr, &jp) {
			in.Problem = jp.Problem
			switch {
			case rt == "":
				in.Path = jp.Path
			case jp.Path == "":
				in.Path = rt
			default:
				in.Path = rt + "." + jp.Path
			}
		}
		return nil, in
	}
	_, u, err := codecs()
	if err != nil {
		return nil, fmt.Errorf("FHIR library: %w", err)
	}
	if _, err := u.Unmarshal(raw); err != nil {
		path, problem := libraryProblem(err, rt)
		return nil, &InputError{Position: position, ResourceType: rt, ID: id, Path: path, Problem: problem}
	}
	res = &Resource{Index: index, Position: position, Raw: raw, FullURL: fullURL}
	x := extract(top)
	res.Clinical, res.Title, res.PatientRef, res.AccountIDs = x.Clinical, x.Title, x.PatientRef, x.AccountIDs
	res.Clinical.FullURL = fullURL
	sum := sha256.Sum256(raw)
	res.Clinical.Digest = sum[:]
	if err := res.Clinical.Validate(); err != nil {
		return nil, &InputError{Position: position, ResourceType: rt, ID: id, Problem: err.Error()}
	}
	return res, nil
}

// libError is one error the FHIR library reported.
type libError struct{ path, details, diagnostics string }

var libLineRe = regexp.MustCompile(`^error at "([^"]*)": (.*)$`)

// libErrors takes apart the library's error: a list of its (internal)
// UnmarshalError, read through reflection for their exported Path,
// Details and Diagnostics fields, or else its text, line by line.
func libErrors(err error) []libError {
	var out []libError
	v := reflect.ValueOf(err)
	one := func(e reflect.Value) {
		for e.Kind() == reflect.Pointer || e.Kind() == reflect.Interface {
			if e.IsNil() {
				return
			}
			e = e.Elem()
		}
		if e.Kind() != reflect.Struct {
			return
		}
		get := func(name string) string {
			f := e.FieldByName(name)
			if f.IsValid() && f.Kind() == reflect.String {
				return f.String()
			}
			return ""
		}
		if d := get("Details"); d != "" {
			out = append(out, libError{get("Path"), d, get("Diagnostics")})
		}
	}
	if v.Kind() == reflect.Slice {
		for i := range v.Len() {
			one(v.Index(i))
		}
	} else {
		one(v)
	}
	if len(out) == 0 {
		for _, line := range strings.Split(err.Error(), "\n") {
			if m := libLineRe.FindStringSubmatch(line); m != nil {
				out = append(out, libError{path: m[1], details: m[2]})
			} else if line = strings.TrimSpace(line); line != "" {
				out = append(out, libError{details: line})
			}
		}
	}
	return out
}

var quotedFieldRe = regexp.MustCompile(`^missing required field "([^"]+)"$`)

// libraryProblem turns the library's error into a path and a problem:
// the first in path order, with how many more there are.
func libraryProblem(err error, rt string) (string, string) {
	errs := libErrors(err)
	if len(errs) == 0 {
		return "", oneLine(err.Error())
	}
	type readable struct{ path, problem string }
	rs := make([]readable, 0, len(errs))
	for _, e := range errs {
		r := readable{path: e.path, problem: e.details}
		diag := strings.TrimSpace(e.diagnostics)
		unq := diag
		if u, err := strconv.Unquote(diag); err == nil {
			unq = u
		}
		switch {
		case quotedFieldRe.MatchString(e.details):
			r.path = joinPath(e.path, quotedFieldRe.FindStringSubmatch(e.details)[1])
			r.problem = "missing required field"
		case e.details == "unknown field" && unq != "":
			r.path = joinPath(e.path, unq)
			r.problem = "unknown field (not an element of R4 " + strings.SplitN(e.path, ".", 2)[0] + ")"
		case e.details == "unknown resource type":
			r.path = "resourceType"
			r.problem = fmt.Sprintf("unknown resource type %q (not an R4 resource)", clip(unq))
			if unq == "" {
				r.problem = fmt.Sprintf("unknown resource type %q (not an R4 resource)", clip(rt))
			}
		case e.details == "invalid resource type":
			r.path = "resourceType"
			r.problem = "not a resource type name"
		default:
			if diag != "" {
				r.problem += ": " + clip(oneLine(diag))
			}
		}
		rs = append(rs, readable{path: printable(clip(r.path)), problem: printable(r.problem)})
	}
	slices.SortFunc(rs, func(a, b readable) int {
		if c := strings.Compare(a.path, b.path); c != 0 {
			return c
		}
		return strings.Compare(a.problem, b.problem)
	})
	problem := rs[0].problem
	if len(rs) > 1 {
		problem += fmt.Sprintf(" (and %d more)", len(rs)-1)
	}
	return rs[0].path, problem
}

func joinPath(path, field string) string {
	if path == "" {
		return field
	}
	return path + "." + field
}

// printable replaces control and format characters (new lines, bidi
// overrides) with a space, so that an error or a title stays one
// readable line whatever the input held.
func printable(s string) string {
	if !strings.ContainsFunc(s, badRune) {
		return s
	}
	return strings.Map(func(r rune) rune {
		if badRune(r) {
			return ' '
		}
		return r
	}, s)
}

func badRune(r rune) bool {
	return unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || r == '\u2028' || r == '\u2029' || r == unicode.ReplacementChar
}
