package ops

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"path/filepath"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/ipfs/go-cid"

	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/protocol"
)

// refusal is an error the access rules gave: its message alone, matching
// ErrForbidden and what it wraps.
type refusal struct{ err error }

func (e *refusal) Error() string        { return e.err.Error() }
func (e *refusal) Unwrap() error        { return e.err }
func (e *refusal) Is(target error) bool { return target == ErrForbidden }

// MaxQuery bounds a records list's free-text query, in bytes.
const MaxQuery = 256

// ListRecords is the argument of Records.
type ListRecords struct {
	// All also lists hidden, revoked and expired records.
	All bool `json:"all,omitempty"`
	// Kind, when set, keeps only records of that kind (file, fhir, note).
	Kind protocol.Kind `json:"kind,omitempty"`
	// Query, when set, keeps only records whose title holds it, ignoring
	// case; at most MaxQuery bytes.
	Query string `json:"q,omitempty"`
	// Type, when set, keeps only FHIR records of that resource type
	// ("Observation").
	Type string `json:"type,omitempty"`
	// Code, when set, keeps only FHIR records whose code is it: either
	// "system|code" or the code alone ("4548-4").
	Code string `json:"code,omitempty"`
	// Since and Until, when set, keep only records whose date is on or
	// after Since and on or before Until: FHIR dates ("2019", "2019-03",
	// "2019-03-02", or a dateTime, compared to the precision both have).
	// A record's date is its resource's clinical date, or, for a record
	// without one, the day its record entry was written (UTC).
	Since string `json:"since,omitempty"`
	Until string `json:"until,omitempty"`
	// Author, when set, keeps only records written by that account.
	Author protocol.AccountID `json:"author,omitempty"`
	// Versions lists every version of a record as a row of its own;
	// without it a superseded version is shown only in the history of
	// the record that replaced it (keyshare.FoldVersions).
	Versions bool `json:"versions,omitempty"`
}

// dateRe is a FHIR date or dateTime, the forms Since and Until take.
var dateRe = regexp.MustCompile(`^[0-9]{4}(-(0[1-9]|1[0-2])(-(0[1-9]|[12][0-9]|3[01])(T[0-9:.]+(Z|[+-][0-9]{2}:[0-9]{2})?)?)?)?$`)

// check validates the filters.
func (req *ListRecords) check() error {
	if req.Kind != "" {
		k, err := protocol.ParseKind(string(req.Kind))
		if err != nil {
			return invalidf("kind: %v", err)
		}
		req.Kind = k
	}
	for _, f := range []struct{ name, v string }{{"q", req.Query}, {"type", req.Type}, {"code", req.Code}} {
		if len(f.v) > MaxQuery {
			return invalidf("%s: longer than %d bytes", f.name, MaxQuery)
		}
		if !utf8.ValidString(f.v) {
			return invalidf("%s: not UTF-8", f.name)
		}
	}
	if req.Type != "" && !protocol.IsResourceTypeName(req.Type) {
		return invalidf("type: %q is not a FHIR resource type (like Observation or Condition)", truncate(req.Type))
	}
	for _, f := range []struct{ name, v string }{{"since", req.Since}, {"until", req.Until}} {
		if f.v != "" && !dateRe.MatchString(f.v) {
			return invalidf("%s: %q is not a date (want YYYY, YYYY-MM or YYYY-MM-DD)", f.name, truncate(f.v))
		}
	}
	if req.Author != "" {
		if _, err := protocol.ParseAccountID(string(req.Author)); err != nil {
			return invalidf("author: %v", err)
		}
	}
	return nil
}

// matches tells whether row l passes the filters (q already lower-cased).
func (req *ListRecords) matches(l *keyshare.Listed, q string) bool {
	if req.Kind != "" && l.Kind != req.Kind {
		return false
	}
	if q != "" && !strings.Contains(strings.ToLower(l.Title), q) {
		return false
	}
	if req.Author != "" && l.Author != req.Author {
		return false
	}
	if req.Type != "" && (l.FHIR == nil || l.FHIR.ResourceType != req.Type) {
		return false
	}
	if req.Code != "" {
		if l.FHIR == nil {
			return false
		}
		_, code, _ := strings.Cut(l.FHIR.Code, "|")
		if l.FHIR.Code != req.Code && (strings.Contains(req.Code, "|") || code != req.Code) {
			return false
		}
	}
	if req.Since != "" || req.Until != "" {
		d := recordDate(l)
		if req.Since != "" && compareDates(d, req.Since) < 0 {
			return false
		}
		if req.Until != "" && compareDates(d, req.Until) > 0 {
			return false
		}
	}
	return true
}

// recordDate is the date Since and Until compare: the clinical date, or
// the record entry's day.
func recordDate(l *keyshare.Listed) string {
	if l.FHIR != nil && l.FHIR.Date != "" {
		return l.FHIR.Date
	}
	return l.Created.UTC().Format("2006-01-02")
}

// compareDates compares two FHIR dates to the precision both have, so
// "2019-03" is neither before nor after "2019-03-02".
func compareDates(a, b string) int {
	n := min(len(a), len(b), len("2006-01-02"))
	return strings.Compare(a[:n], b[:n])
}

// RecordList is the result of Records.
type RecordList struct {
	// Records are the rows, newest first: a record's access state flattened with its envelope's title,
	// kind, media type and file name, and its status.
	Records []keyshare.Listed `json:"records"`
}

// Records lists the records keys' account can read (see keyshare.List),
// filtered by kind and title.
func Records(ctx context.Context, repo *keyshare.Repo, keys *keyshare.Keys, req ListRecords) (RecordList, error) {
	if err := req.check(); err != nil {
		return RecordList{}, err
	}
	list, err := repo.List(ctx, keys, req.All)
	if err != nil {
		return RecordList{}, fmt.Errorf("list records: %w", err)
	}
	if !req.Versions {
		list = keyshare.FoldVersions(list)
	}
	q := strings.ToLower(req.Query)
	out := RecordList{Records: []keyshare.Listed{}}
	for i := range list {
		if req.matches(&list[i], q) {
			out.Records = append(out.Records, list[i])
		}
	}
	return out, nil
}

// Record returns record c's row for keys' account, as Records lists it
// with All set, and also when Records leaves it out (status "no access",
// or Error set for a claim that does not open): what a page about one
// record shows. An unknown record matches ErrNotFound.
func Record(ctx context.Context, repo *keyshare.Repo, keys *keyshare.Keys, c cid.Cid) (keyshare.Listed, error) {
	if _, err := knownRecord(ctx, repo, c, keys.ID); err != nil {
		return keyshare.Listed{}, err
	}
	l, err := repo.ListRecord(ctx, keys, c)
	if err != nil {
		return keyshare.Listed{}, fmt.Errorf("record %s: %w", c, err)
	}
	if l.Readable || l.Status == "revoked" || l.Status == "expired" {
		// Its versions: where the record sits in the folded list. A
		// superseded version shows the whole history too, with the
		// version that replaced it (the one before it, newest first).
		versions, err := repo.VersionsOf(ctx, keys, c)
		if err != nil {
			return keyshare.Listed{}, fmt.Errorf("record %s: versions: %w", c, err)
		}
		key := c.String()
		for _, row := range versions {
			if row.Record.String() == key {
				l.History = row.History
			}
			for i, v := range row.History {
				if v.Record != key {
					continue
				}
				l.History, l.SupersededBy = row.History, row.Record.String()
				if i > 0 {
					l.SupersededBy = row.History[i-1].Record
				}
			}
		}
	}
	return l, nil
}

// NewRecord is the argument of AddRecord (the content comes apart, as a
// stream).
type NewRecord struct {
	// Title is the record's title; default the file name, else
	// "untitled".
	Title string `json:"title,omitempty"`
	// Kind is file (the default), fhir or note.
	Kind protocol.Kind `json:"kind,omitempty"`
	// MediaType is the content's media type; default from the kind, else
	// from the file name's extension, else application/octet-stream.
	MediaType string `json:"media_type,omitempty"`
	// FileName is the content's file name, a base name without folders.
	FileName string `json:"file_name,omitempty"`
	// For names the account the record is about (NAME, ID or ID suffix of
	// a known account); default the author.
	For string `json:"for,omitempty"`
	// Supersedes is the CID of the record this one replaces, if any.
	Supersedes string `json:"supersedes,omitempty"`
	// FHIR is what the sealed envelope says of the record's one FHIR
	// resource (keyshare.NewRecord.FHIR), set by the operations that
	// build or parse the resource (AddLabs); never taken from a request.
	FHIR *protocol.Clinical `json:"-"`
}

// AddedRecord is the result of AddRecord.
type AddedRecord struct {
	// CID is the new record's CID.
	CID       string             `json:"cid"`
	Title     string             `json:"title"`
	Kind      protocol.Kind      `json:"kind"`
	MediaType string             `json:"media_type"`
	Author    protocol.AccountID `json:"author"`
	Subject   protocol.AccountID `json:"subject"`
}

// AddRecord encrypts body as a new record written by keys' account (see
// keyshare.Repo.AddRecord).
func AddRecord(ctx context.Context, repo *keyshare.Repo, keys *keyshare.Keys, req NewRecord, body io.Reader) (AddedRecord, error) {
	kind := protocol.KindFile
	if req.Kind != "" {
		k, err := protocol.ParseKind(string(req.Kind))
		if err != nil {
			return AddedRecord{}, invalidf("kind: %v", err)
		}
		kind = k
	}
	if err := checkFileName(req.FileName); err != nil {
		return AddedRecord{}, err
	}
	mt := req.MediaType
	if mt == "" {
		mt = GuessMediaType(kind, req.FileName)
	} else if _, _, err := mime.ParseMediaType(mt); err != nil {
		return AddedRecord{}, invalidf("media_type: %v", err)
	}
	title := req.Title
	if title == "" {
		title = req.FileName
	}
	if title == "" {
		title = "untitled"
	}
	if err := checkText("title", title); err != nil {
		return AddedRecord{}, err
	}
	var super cid.Cid
	if req.Supersedes != "" {
		c, err := ParseRecordCID(req.Supersedes)
		if err != nil {
			return AddedRecord{}, invalidf("supersedes: %v", err)
		}
		super = c
	}
	subject, err := resolveSubject(ctx, repo, keys, req.For)
	if err != nil {
		return AddedRecord{}, err
	}
	nr := keyshare.NewRecord{Title: title, Kind: kind, MediaType: mt, FileName: req.FileName, Subject: subject, Supersedes: super, Body: body}
	var c cid.Cid
	if kind == protocol.KindFHIR {
		// One file, one record, checked as a FHIR import checks it (its
		// clinical fields kept when it is one resource).
		var f *fhirFile
		if f, err = readFHIRFile(ctx, body, nil); err != nil {
			return AddedRecord{}, err
		}
		if req.FHIR != nil {
			f.clinical = req.FHIR // the operation that built the resource says
		}
		c, err = addFHIRFile(ctx, repo, keys, f, nr)
	} else {
		c, err = repo.AddRecord(ctx, keys, nr)
	}
	if err != nil {
		return AddedRecord{}, err // the repo's errors say what failed
	}
	return AddedRecord{CID: c.String(), Title: title, Kind: kind, MediaType: mt, Author: keys.ID, Subject: subject}, nil
}

// checkFileName checks a record's file name: empty, or a plain base
// name without folders.
func checkFileName(name string) error {
	if name == "" {
		return nil
	}
	if err := checkText("file_name", name); err != nil {
		return err
	}
	if filepath.Base(name) != name || strings.ContainsAny(name, `/\`) || name == "." || name == ".." {
		return invalidf("file_name: %q is not a plain file name", name)
	}
	return nil
}

func checkText(field, s string) error {
	switch {
	case !utf8.ValidString(s):
		return invalidf("%s: not UTF-8", field)
	case strings.ContainsFunc(s, unicode.IsControl):
		return invalidf("%s: holds control characters", field)
	case len(s) > 1024:
		return invalidf("%s: longer than 1024 bytes", field)
	}
	return nil
}

// GuessMediaType picks a record's media type from its kind, else from
// the file name's extension, else application/octet-stream.
func GuessMediaType(kind protocol.Kind, fileName string) string {
	switch kind {
	case protocol.KindFHIR:
		return "application/fhir+json"
	case protocol.KindNote:
		return "text/plain; charset=utf-8"
	}
	if fileName != "" && fileName != "-" {
		if t := mime.TypeByExtension(filepath.Ext(fileName)); t != "" {
			return t
		}
	}
	return "application/octet-stream"
}

// ParseRecordCID parses a record's CID; a malformed one matches
// ErrInvalid.
func ParseRecordCID(s string) (cid.Cid, error) {
	c, err := cid.Decode(s)
	if err != nil {
		if len(s) > 80 {
			s = s[:80] + "…"
		}
		return cid.Undef, invalidf("CID %q: %v", s, err)
	}
	return c, nil
}

// knownRecord returns record c's access state as it concerns id; a
// record no verified chain names matches ErrNotFound.
func knownRecord(ctx context.Context, repo *keyshare.Repo, c cid.Cid, id protocol.AccountID) (*keyshare.Access, error) {
	var a *keyshare.Access
	var err error
	if id == "" {
		a, err = repo.Access(ctx, c)
	} else {
		a, err = repo.AccessFor(ctx, c, id)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", c, err)
	}
	if a == nil || !a.Known {
		return nil, fmt.Errorf("%s: unknown record (no verified chain holds its entry): %w", c, ErrNotFound)
	}
	return a, nil
}

// MayRead reports whether account id may read record c now; an unknown
// record matches ErrNotFound.
func MayRead(ctx context.Context, repo *keyshare.Repo, c cid.Cid, id protocol.AccountID) (bool, error) {
	a, err := knownRecord(ctx, repo, c, id)
	if err != nil {
		return false, err
	}
	_, ok := a.Reader(id)
	return ok, nil
}

// OpenRecord decrypts record c for keys' account: its envelope and its
// content, which the caller reads to EOF (age authenticates as it goes)
// and closes. An unknown record matches ErrNotFound; one the account may
// not read, ErrForbidden and keyshare.ErrNoAccess.
func OpenRecord(ctx context.Context, repo *keyshare.Repo, keys *keyshare.Keys, c cid.Cid) (*protocol.Envelope, io.ReadCloser, error) {
	if _, err := knownRecord(ctx, repo, c, keys.ID); err != nil {
		return nil, nil, err
	}
	env, body, err := repo.OpenRecord(ctx, keys, c)
	if errors.Is(err, keyshare.ErrNoAccess) {
		return nil, nil, &refusal{err}
	}
	return env, body, err
}

// VerifyRecord checks the chains and record c's chain of custody (see
// keyshare.Repo.Verify); with keys (of an account that may read it) the
// content is decrypted and authenticated too. An unknown record matches
// ErrNotFound.
func VerifyRecord(ctx context.Context, repo *keyshare.Repo, keys *keyshare.Keys, c cid.Cid) (Custody, error) {
	id := protocol.AccountID("")
	if keys != nil {
		id = keys.ID
	}
	if _, err := knownRecord(ctx, repo, c, id); err != nil {
		return Custody{}, err
	}
	rep, err := repo.Verify(ctx, keyshare.VerifyOptions{Record: c, Keys: keys})
	if err != nil {
		return Custody{}, fmt.Errorf("verify %s: %w", c, err)
	}
	return CustodyOf(rep), nil
}

// CustodyOf is the Custody a verification of one record reported.
func CustodyOf(rep *keyshare.VerifyReport) Custody {
	out := Custody{OK: rep.OK, Record: rep.Record, Problems: rep.AllProblems(), Superseded: rep.SupersededNotes(nil),
		SupersededForks: append([]keyshare.Fork{}, rep.Superseded...)}
	if out.Record == nil {
		out.Record = &keyshare.RecordReport{}
	}
	if out.Problems == nil {
		out.Problems = []string{}
	}
	for i := range rep.Chains {
		if out.Record.Access != nil && rep.Chains[i].Account == out.Record.Access.Author {
			out.AuthorChain = &rep.Chains[i]
		}
	}
	return out
}

// Custody is the result of VerifyRecord.
type Custody struct {
	// OK is true when the chains and the record checked out.
	OK bool `json:"ok"`
	// Record is the record's chain of custody: its access state (author,
	// signing block, subject, readers, revoked and expired readers), its
	// blocks hash-checked, whether it was decrypted, and its problems.
	Record *keyshare.RecordReport `json:"record"`
	// AuthorChain is the re-check of the author's chain, whose block
	// holds the record entry: its blocks' signatures, links and sequence
	// numbers (no problems: the signature checks out). Nil when the repo
	// lacks the chain.
	AuthorChain *keyshare.ChainReport `json:"author_chain,omitempty"`
	// Problems lists every problem found, one line each (the record's,
	// and those of any chain, the index and the access rules): why OK is
	// false. Empty when OK.
	Problems []string `json:"problems"`
	// Superseded describes the forks a recovery settled, one line each:
	// branches signed by a key a recovery replaced, kept as evidence and
	// counting for nothing (PROTOCOL.md §8). Not problems.
	Superseded []string `json:"superseded"`
	// SupersededForks are the same forks as fields (account, seq, the
	// recovery's block and the superseded branch's head), for a reader
	// that names the accounts itself, as the web app does.
	SupersededForks []keyshare.Fork `json:"superseded_forks"`
}

// HideRecords is the argument of Hide.
type HideRecords struct {
	// Records are the CIDs of the records, of which keys' account must be
	// the subject.
	Records []string `json:"records"`
	// Hidden hides them (true) or shows them again (false).
	Hidden bool `json:"hidden"`
}

// Hidden is the result of Hide, as 'blockmrs hide --json' prints it.
type Hidden struct {
	// Block is the CID of the chain block holding the hide or unhide entry.
	Block   string   `json:"block"`
	Hidden  bool     `json:"hidden"`
	Records []string `json:"records"`
}

// Hide hides records from keys' account's listings, or shows them again,
// with a signed entry on its chain.
func Hide(ctx context.Context, repo *keyshare.Repo, keys *keyshare.Keys, req HideRecords) (Hidden, error) {
	if len(req.Records) == 0 {
		return Hidden{}, invalidf("records: none given")
	}
	cids := make([]cid.Cid, len(req.Records))
	for i, s := range req.Records {
		c, err := ParseRecordCID(s)
		if err != nil {
			return Hidden{}, err
		}
		a, err := knownRecord(ctx, repo, c, keys.ID)
		if err != nil {
			return Hidden{}, err
		}
		if a.Subject != keys.ID {
			return Hidden{}, &refusal{fmt.Errorf("%s: only the record's subject may hide or unhide it", c)}
		}
		cids[i] = c
	}
	block, err := repo.Hide(ctx, keys, cids, req.Hidden)
	if err != nil {
		return Hidden{}, err
	}
	return Hidden{Block: block.String(), Hidden: req.Hidden, Records: req.Records}, nil
}
