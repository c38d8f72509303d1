package ops

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/protocol"
	"github.com/blockmrs/blockmrs/protocol/fhir"
)

// FHIR in and out. An import reads a FHIR R4 JSON Bundle (of any type),
// a single resource or Bulk Data NDJSON as a stream (protocol/fhir
// validates every resource) and stores one record per resource in one
// atomic batch (keyshare.Batch); re-importing adds only what changed
// (keyshare.FHIRIndex). An export writes every FHIR resource the account
// may read as one collection Bundle, byte-exact, with the fullUrls the
// resources came with.

// MaxFHIRImport bounds the bytes of one import's input.
const MaxFHIRImport = 1 << 30

// FHIRImportRequest is the argument of FHIRImport (the input comes apart,
// as a stream).
type FHIRImportRequest struct {
	// For names the account the resources are about (NAME, ID or ID
	// suffix of a known account); default the importing account.
	For string `json:"for,omitempty"`
	// Patient, when the input holds resources of more than one Patient
	// or a Patient naming another account, is the id (or fullUrl) of the
	// Patient who is that account: only its resources (and those about
	// no patient) are imported.
	Patient string `json:"patient,omitempty"`
	// OneRecord stores the whole input as one record (as 'add --kind
	// fhir' does) instead of one record per resource; the input is then
	// at most protocol.MaxFHIRSize bytes.
	OneRecord bool `json:"one_record,omitempty"`
	// FileName is the input's file name, a base name (the one record's
	// file name and default title).
	FileName string `json:"file_name,omitempty"`
}

// FHIRImported is the result of FHIRImport.
type FHIRImported struct {
	// Subject is the account the records are about; Author the one that
	// wrote them.
	Subject protocol.AccountID `json:"subject"`
	Author  protocol.AccountID `json:"author"`
	// Resources is how many resources the input held; Records how many
	// records were written (added and superseding).
	Resources int `json:"resources"`
	Records   int `json:"records"`
	// Counts says how many resources went each way; the lists below
	// hold at most MaxImportListed each (Truncated is then set).
	Counts    ImportCounts `json:"counts"`
	Truncated bool         `json:"truncated"`
	// Added are the resources stored as new records; Superseded those
	// stored as new versions of a record holding an older version of
	// the same resource (its CID in Supersedes); Unchanged those already
	// held by a record (its CID), which were not stored again; Skipped
	// those about another Patient than the account (see Patient). Each
	// list is in input order and holds resources among the first
	// MaxImportListed the import added, superseded or left unchanged
	// (a bounded sample of a big import; Counts has the totals).
	Added      []ImportedResource `json:"added"`
	Superseded []ImportedResource `json:"superseded"`
	Unchanged  []ImportedResource `json:"unchanged"`
	Skipped    []ImportedResource `json:"skipped"`
}

// MaxImportListed is how many resources of each kind (added, superseded,
// unchanged; skipped) an import's report lists; Counts has them all.
const MaxImportListed = 500

// importListed is MaxImportListed, lowered by tests to see the bound
// without importing thousands of resources.
var importListed = MaxImportListed

// ImportCounts is how many resources of an import went each way.
type ImportCounts struct {
	Added      int `json:"added"`
	Superseded int `json:"superseded"`
	Unchanged  int `json:"unchanged"`
	Skipped    int `json:"skipped"`
}

// ImportedResource is one resource of an import.
type ImportedResource struct {
	// Position is where it was in the input: "entry[12]" in a Bundle,
	// "line 13" in NDJSON, "resource" for a single resource, "input" for
	// a whole input stored as one record.
	Position     string `json:"position"`
	ResourceType string `json:"resource_type"`
	ID           string `json:"id,omitempty"`
	// CID is the record holding it (none for a skipped resource).
	CID string `json:"cid,omitempty"`
	// Supersedes is the record a new version replaces.
	Supersedes string `json:"supersedes,omitempty"`
	Title      string `json:"title,omitempty"`
}

// Line is the report's one line for people: "imported 1,111 resources
// as 1,111 records (0 unchanged, 0 superseded)".
func (im FHIRImported) Line() string {
	s := fmt.Sprintf("imported %s %s as %s %s (%s unchanged, %s superseded", Thousands(im.Resources), plural(im.Resources, "resource"),
		Thousands(im.Records), plural(im.Records, "record"), Thousands(im.Counts.Unchanged), Thousands(im.Counts.Superseded))
	if im.Counts.Skipped > 0 {
		s += fmt.Sprintf(", %s skipped: other patients", Thousands(im.Counts.Skipped))
	}
	return s + ")"
}

func plural(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}

// Thousands writes n with commas between groups of three digits.
func Thousands(n int) string {
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// ImportProgress is how far an import got: Read resources read and
// checked so far. It is reported as the input is read.
type ImportProgress struct {
	Read int `json:"read"`
}

// readResources is the one place the node reads FHIR input: every
// resource of r, validated, in order (see fhir.ReadResources). A problem
// with the input matches ErrInvalid, with the position and JSON path on
// one line.
func readResources(ctx context.Context, r io.Reader, fn func(*fhir.Resource) error) error {
	err := fhir.ReadResources(ctx, r, fn)
	if err == nil {
		return nil
	}
	if errors.Is(err, fhir.ErrInput) || errors.Is(err, fhir.ErrXML) {
		return &invalidCause{what: "FHIR", err: err}
	}
	return err
}

// FHIRImport stores the FHIR resources of body as records written by
// keys' account about req.For (default itself): one record per resource,
// with its clinical fields and derived title in the sealed envelope, or
// the whole input as one record with req.OneRecord. The input is checked
// whole before anything is kept: a problem (an invalid resource, FHIR
// XML, resources of several patients without req.Patient, a cancelled
// context) stores nothing. A resource already held by a current record
// of the subject's that keys' account reads (same type and id and the
// same bytes; without id, the same bytes) is not stored again; one whose
// id is held with other bytes is stored as a new version superseding
// that record. progress, if set, is called as resources are read.
func FHIRImport(ctx context.Context, repo *keyshare.Repo, keys *keyshare.Keys, req FHIRImportRequest, body io.Reader, progress func(ImportProgress)) (FHIRImported, error) {
	if err := checkFileName(req.FileName); err != nil {
		return FHIRImported{}, err
	}
	if err := checkText("patient", req.Patient); err != nil {
		return FHIRImported{}, err
	}
	subject, err := resolveSubject(ctx, repo, keys, req.For)
	if err != nil {
		return FHIRImported{}, err
	}
	if progress == nil {
		progress = func(ImportProgress) {}
	}
	body = &limitedInput{r: body, n: MaxFHIRImport}
	if req.OneRecord {
		return importOneRecord(ctx, repo, keys, req, subject, body, progress)
	}
	out := FHIRImported{Subject: subject, Author: keys.ID}
	ix, err := repo.FHIRIndexFor(ctx, keys, subject)
	if err != nil {
		return FHIRImported{}, err
	}
	b, err := repo.NewBatch(ctx, keys)
	if err != nil {
		return FHIRImported{}, err
	}
	defer b.Abort()
	defer limitMemory()()

	// What an import holds per resource is kept small (a few hundred
	// bytes with the batch's own; docs/DESIGN-NOTES.md): its position (for
	// errors), its batch index, its patient link without what the patient
	// check does not use, and its index entry; a full row only for the
	// first MaxImportListed resources of each kind, and of each patient
	// (the report's lists).
	const (
		added = iota
		superseding
		unchanged
	)
	type row struct {
		res   ImportedResource
		how   int
		index int // the input's
		batch int // the batch's index, for a stored one, or -1
		same  int // the batch's index of an earlier copy in this input (unchanged), or -1
	}
	var (
		sample    []row
		listed    [3]int
		hows      []uint8 // input index → added, superseding or unchanged
		batchOf   []int32 // input index → batch index, -1 when not stored
		inputOf   []int32 // batch index → input index
		positions []string
		links     []fhir.PatientLink
		shared    = map[string]string{} // one copy of each resource type and patient reference
		byRef     = map[string]int{}    // rows sampled past listed, by patient
		extra     int
	)
	intern := func(s string) string {
		if v, ok := shared[s]; ok {
			return v
		}
		shared[s] = s
		return s
	}
	err = readResources(ctx, body, func(res *fhir.Resource) error {
		link := fhir.LinkOf(res)
		link.ResourceType, link.PatientRef = intern(link.ResourceType), intern(link.PatientRef)
		if link.ResourceType != "Patient" { // CheckPatients reads their fullUrl and reference only
			link.Position, link.ID = "", ""
		}
		links = append(links, link)
		positions = append(positions, res.Position)
		clin := res.Clinical
		clin.FullURL = res.FullURL
		r := row{res: ImportedResource{Position: res.Position, ResourceType: clin.ResourceType, ID: clin.ID, Title: res.Title}, index: res.Index, batch: -1, same: -1}
		m := ix.Lookup(&clin)
		switch {
		case m.Found && m.Same:
			r.how = unchanged
			if m.Record.Defined() {
				r.res.CID = m.Record.String()
			} else {
				r.same = int(batchOf[m.Index])
			}
		case m.Found && !m.Record.Defined():
			return invalidf("FHIR: %s: %s/%s is also at %s with other content: keep one version of it and import again",
				res.Position, clin.ResourceType, clin.ID, positions[m.Index])
		default:
			nr := keyshare.NewRecord{Title: res.Title, Kind: protocol.KindFHIR, MediaType: fhirMediaType, FileName: resourceFileName(&clin),
				Subject: subject, FHIR: &clin, Body: bytes.NewReader(res.Raw)}
			r.how = added
			if m.Found {
				nr.Supersedes = m.Record
				r.res.Supersedes = m.Record.String()
				r.how = superseding
			}
			i, err := b.Add(nr)
			if err != nil {
				return err
			}
			r.batch = i
			inputOf = append(inputOf, int32(res.Index))
			ix.Put(&clin, res.Index)
		}
		hows = append(hows, uint8(r.how))
		batchOf = append(batchOf, int32(r.batch))
		// The skipped are known only at the end: the rows of each
		// patient (by reference) are sampled too, within a bound.
		ref := link.PatientRef
		if link.ResourceType == "Patient" {
			ref = "Patient/" + link.ID + " " + link.FullURL
		}
		switch {
		case listed[r.how] < importListed:
			listed[r.how]++
			sample = append(sample, r)
		case ref != "" && byRef[ref] < importListed && extra < 4*importListed:
			byRef[ref]++
			extra++
			sample = append(sample, r)
		}
		if len(hows)%raiseEvery == 0 {
			raiseMemoryLimit()
		}
		progress(ImportProgress{Read: len(hows)})
		return nil
	})
	if err != nil {
		return FHIRImported{}, batchErr(err, inputOf, positions)
	}
	keep, err := fhir.CheckPatients(links, string(subject), req.Patient)
	if err != nil {
		return FHIRImported{}, invalidf("FHIR: %v", err)
	}
	links = nil
	for i, bi := range batchOf {
		if !keep[i] && bi >= 0 {
			b.Drop(int(bi))
		}
	}
	cids, err := b.Commit()
	if err != nil {
		return FHIRImported{}, batchErr(err, inputOf, positions)
	}
	out.Resources = len(hows)
	for i, how := range hows {
		switch {
		case !keep[i]:
			out.Counts.Skipped++
		case how == unchanged:
			out.Counts.Unchanged++
		case how == superseding:
			out.Counts.Superseded++
		default:
			out.Counts.Added++
		}
	}
	out.Added, out.Superseded, out.Unchanged, out.Skipped = []ImportedResource{}, []ImportedResource{}, []ImportedResource{}, []ImportedResource{}
	for _, r := range sample {
		switch {
		case !keep[r.index]:
			r.res.CID, r.res.Supersedes = "", ""
			out.Skipped = appendListed(out.Skipped, r.res)
		case r.how == unchanged:
			if r.same >= 0 { // a second copy in this input
				r.res.CID = cids[r.same].String()
			}
			out.Unchanged = appendListed(out.Unchanged, r.res)
		case r.how == superseding:
			r.res.CID = cids[r.batch].String()
			out.Superseded = appendListed(out.Superseded, r.res)
		default:
			r.res.CID = cids[r.batch].String()
			out.Added = appendListed(out.Added, r.res)
		}
	}
	out.Truncated = out.Counts.Added > len(out.Added) || out.Counts.Superseded > len(out.Superseded) ||
		out.Counts.Unchanged > len(out.Unchanged) || out.Counts.Skipped > len(out.Skipped)
	out.Records = out.Counts.Added + out.Counts.Superseded
	return out, nil
}

// appendListed appends r to a report's list holding fewer than
// MaxImportListed.
func appendListed(list []ImportedResource, r ImportedResource) []ImportedResource {
	if len(list) >= importListed {
		return list
	}
	return append(list, r)
}

// batchErr names the resource a batch failed on by its position
// (inputOf maps the batch's index to the input's, positions the input's
// index to the position).
func batchErr(err error, inputOf []int32, positions []string) error {
	var be *keyshare.BatchError
	if errors.As(err, &be) && be.Index >= 0 && be.Index < len(inputOf) {
		if in := int(inputOf[be.Index]); in < len(positions) {
			return fmt.Errorf("%s: %w", positions[in], be.Err)
		}
	}
	return err
}

// fhirMediaType is the media type of a FHIR JSON record.
const fhirMediaType = "application/fhir+json"

// resourceFileName is a resource record's file name: "Observation-ID.json",
// or "Observation.json" for one without id.
func resourceFileName(c *protocol.Clinical) string {
	if c.ID == "" {
		return c.ResourceType + ".json"
	}
	return c.ResourceType + "-" + c.ID + ".json"
}

// importOneRecord stores the whole input as one FHIR record, after
// checking every resource in it and whose patient it is about.
func importOneRecord(ctx context.Context, repo *keyshare.Repo, keys *keyshare.Keys, req FHIRImportRequest, subject protocol.AccountID, body io.Reader, progress func(ImportProgress)) (FHIRImported, error) {
	f, err := readFHIRFile(ctx, body, progress)
	if err != nil {
		return FHIRImported{}, err
	}
	if _, err := fhir.CheckPatients(f.links, string(subject), req.Patient); err != nil {
		return FHIRImported{}, invalidf("FHIR: %v", err)
	}
	title := req.FileName
	if f.clinical != nil {
		title = f.title
	}
	if title == "" {
		title = "FHIR " + f.rootType
	}
	added, err := addFHIRFile(ctx, repo, keys, f, keyshare.NewRecord{Title: title, FileName: req.FileName, Subject: subject})
	if err != nil {
		return FHIRImported{}, err
	}
	res := ImportedResource{Position: "input", ResourceType: f.rootType, CID: added.String(), Title: title}
	if f.clinical != nil {
		res.ID = f.clinical.ID
	}
	return FHIRImported{Subject: subject, Author: keys.ID, Resources: len(f.links), Records: 1, Counts: ImportCounts{Added: 1},
		Added: []ImportedResource{res}, Superseded: []ImportedResource{}, Unchanged: []ImportedResource{}, Skipped: []ImportedResource{}}, nil
}

// fhirFile is a FHIR input read whole and checked, to be stored as one
// record.
type fhirFile struct {
	data     []byte
	links    []fhir.PatientLink
	rootType string // "Bundle", or the single resource's type
	// clinical and title are a single resource's (nil for a Bundle or
	// NDJSON), with the digest of data.
	clinical *protocol.Clinical
	title    string
}

// readFHIRFile reads a FHIR input of at most protocol.MaxFHIRSize bytes
// and checks every resource in it.
func readFHIRFile(ctx context.Context, body io.Reader, progress func(ImportProgress)) (*fhirFile, error) {
	data, err := io.ReadAll(io.LimitReader(body, protocol.MaxFHIRSize+1))
	if err != nil {
		return nil, fmt.Errorf("read FHIR input: %w", err)
	}
	if len(data) > protocol.MaxFHIRSize {
		return nil, invalidf("FHIR: the input is over %d MiB, the most one record holds: import it as one record per resource (without --one-record)", protocol.MaxFHIRSize>>20)
	}
	f := &fhirFile{data: data, rootType: "Bundle"}
	var single *fhir.Resource
	err = readResources(ctx, bytes.NewReader(data), func(res *fhir.Resource) error {
		f.links = append(f.links, fhir.LinkOf(res))
		if res.Position == "resource" {
			r := *res
			single = &r
		}
		if progress != nil {
			progress(ImportProgress{Read: len(f.links)})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(f.links) == 0 {
		return nil, invalidf("FHIR: the input holds no resource")
	}
	if single != nil {
		clin := single.Clinical
		sum := sha256.Sum256(data)
		clin.Digest = sum[:]
		f.clinical, f.title, f.rootType = &clin, single.Title, clin.ResourceType
	} else if !bytes.HasPrefix(bytes.TrimLeft(bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")), " \t\r\n"), []byte("{")) {
		return nil, invalidf("FHIR: the input is NDJSON (one resource per line), which one record cannot hold: import it as one record per resource (without --one-record)")
	}
	return f, nil
}

// addFHIRFile stores a checked FHIR input as one record (nr gives the
// title, file name and subject).
func addFHIRFile(ctx context.Context, repo *keyshare.Repo, keys *keyshare.Keys, f *fhirFile, nr keyshare.NewRecord) (cid.Cid, error) {
	nr.Kind, nr.FHIR, nr.Body = protocol.KindFHIR, f.clinical, bytes.NewReader(f.data)
	if nr.MediaType == "" {
		nr.MediaType = fhirMediaType
	}
	return repo.AddRecord(ctx, keys, nr)
}

// resolveSubject returns the account a record is for: the one sel names
// (NAME, ID or ID suffix of a known account), or keys' own.
func resolveSubject(ctx context.Context, repo *keyshare.Repo, keys *keyshare.Keys, sel string) (protocol.AccountID, error) {
	if sel == "" {
		return keys.ID, nil
	}
	s, err := repo.Resolve(ctx, sel, false)
	if err != nil {
		if errors.Is(err, keyshare.ErrUnknownAccount) {
			return "", fmt.Errorf("for: %v: %w", err, ErrNotFound)
		}
		return "", invalidf("for: %v", err)
	}
	return s.ID, nil
}

// limitedInput reads at most n bytes and fails after them, saying so.
type limitedInput struct {
	r io.Reader
	n int64
}

func (l *limitedInput) Read(p []byte) (int, error) {
	if l.n <= 0 {
		return 0, invalidf("FHIR: the input is over %d MiB, the most one import reads: split it", MaxFHIRImport>>20)
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.r.Read(p)
	l.n -= int64(n)
	return n, err
}

// FHIRExportRequest is the argument of FHIRExport.
type FHIRExportRequest struct {
	// Type, when set, keeps only resources of that type ("Observation").
	Type string `json:"type,omitempty"`
	// Since, when set, keeps only records whose clinical date (or, for a
	// record without one, the day it was written) is on or after it: a
	// FHIR date ("2019", "2019-03", "2019-03-02").
	Since string `json:"since,omitempty"`
}

// FHIRExported is what FHIRExport wrote.
type FHIRExported struct {
	// Resources is the number of Bundle entries; Records the records
	// they came from (a record holding a Bundle gives its entries).
	Resources int `json:"resources"`
	Records   int `json:"records"`
}

// Line is the export's counts for people: "exported 1,111 resources
// from 1,111 records".
func (e FHIRExported) Line() string {
	return fmt.Sprintf("exported %s %s from %s %s", Thousands(e.Resources), plural(e.Resources, "resource"), Thousands(e.Records), plural(e.Records, "record"))
}

// FHIRExport writes every FHIR resource keys' account may read now, under
// the access policy (the records Records lists as readable, current
// versions only, hidden ones included), as one FHIR R4 Bundle of type
// collection to w: each resource byte-exact as stored, with the fullUrl
// it was imported with, so that references between them still resolve
// and an import of the export gives the same records. A record holding a
// whole Bundle gives its entries. A failure after the first byte is
// written leaves w incomplete (the caller must not take it for an
// export).
func FHIRExport(ctx context.Context, repo *keyshare.Repo, keys *keyshare.Keys, req FHIRExportRequest, w io.Writer) (FHIRExported, error) {
	// Each record is opened twice (listed, then read): once with a cache.
	keys = keys.WithOpenedCache()
	list, err := Records(ctx, repo, keys, ListRecords{All: true, Kind: protocol.KindFHIR, Type: req.Type, Since: req.Since})
	if err != nil {
		return FHIRExported{}, err
	}
	rows := list.Records[:0]
	for _, l := range list.Records {
		if l.Readable && l.Error == "" {
			rows = append(rows, l)
		}
	}
	bw := fhir.NewBundleWriter(w, "collection")
	var out FHIRExported
	seen := map[string]bool{} // the fullUrls written
	err = inOrder(ctx, len(rows), func(i int) ([]byte, error) {
		return readFHIRRecord(ctx, repo, keys, &rows[i])
	}, func(i int, data []byte) error {
		n, err := exportRecord(ctx, &rows[i], data, req.Type, bw, seen)
		if err != nil {
			return fmt.Errorf("export %s: %w", rows[i].Record, err)
		}
		if n > 0 {
			out.Records++
			out.Resources += n
		}
		return nil
	})
	if err != nil {
		return out, err
	}
	if err := bw.Close(); err != nil {
		return out, err
	}
	return out, nil
}

// readFHIRRecord decrypts a FHIR record's content (at most
// protocol.MaxFHIRSize bytes).
func readFHIRRecord(ctx context.Context, repo *keyshare.Repo, keys *keyshare.Keys, l *keyshare.Listed) ([]byte, error) {
	_, rc, err := OpenRecord(ctx, repo, keys, l.Record)
	if err != nil {
		return nil, fmt.Errorf("export %s: %w", l.Record, err)
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, protocol.MaxFHIRSize+1))
	if err != nil {
		return nil, fmt.Errorf("export %s: %w", l.Record, err)
	}
	return data, nil
}

// exportRecord adds the resources of record l, whose content is data, to
// bw (only those of type typ, when set) and returns how many. A resource
// whose fullUrl is already in the Bundle (seen) is left out: the same
// resource held by two current records (imported by two accounts, or
// once alone and once in a whole Bundle) is exported once, the newest.
func exportRecord(ctx context.Context, l *keyshare.Listed, data []byte, typ string, bw *fhir.BundleWriter, seen map[string]bool) (int, error) {
	add := func(fullURL, rt, id string, raw []byte) (int, error) {
		if fullURL == "" {
			fullURL = fhir.FullURL(rt, id)
		}
		if fullURL != "" {
			if seen[fullURL] {
				return 0, nil
			}
			seen[fullURL] = true
		}
		return 1, bw.Add(fullURL, raw)
	}
	if l.FHIR != nil {
		// One resource, as it was imported.
		return add(l.FHIR.FullURL, l.FHIR.ResourceType, l.FHIR.ID, bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")))
	}
	n := 0
	err := readResources(ctx, bytes.NewReader(data), func(res *fhir.Resource) error {
		if typ != "" && res.Clinical.ResourceType != typ {
			return nil
		}
		k, err := add(res.FullURL, res.Clinical.ResourceType, res.Clinical.ID, res.Raw)
		n += k
		return err
	})
	return n, err
}

// FHIRSummary builds an International Patient Summary of keys' account
// (a FHIR R4 document Bundle: see fhir.Summary) from the FHIR records
// about it that it may read now and lists (current versions; hidden
// records are left out, as from its listing): its newest Patient
// resource, its medications, allergies, problems and latest laboratory
// results, byte-exact. With no Patient record, the summary's Patient is
// built from the account's ID and name. now is the summary's time.
func FHIRSummary(ctx context.Context, repo *keyshare.Repo, keys *keyshare.Keys, now time.Time) ([]byte, error) {
	keys = keys.WithOpenedCache()
	list, err := Records(ctx, repo, keys, ListRecords{Kind: protocol.KindFHIR})
	if err != nil {
		return nil, err
	}
	rows := list.Records[:0]
	for _, l := range list.Records {
		if l.Readable && l.Error == "" && l.Subject == keys.ID && l.FHIR != nil {
			rows = append(rows, l)
		}
	}
	me, err := repo.Account(ctx, keys.ID)
	if err != nil {
		return nil, err
	}
	in := fhir.SummaryInput{Account: string(keys.ID), Name: me.Name, Now: now}
	err = inOrder(ctx, len(rows), func(i int) ([]byte, error) {
		return readFHIRRecord(ctx, repo, keys, &rows[i])
	}, func(i int, data []byte) error {
		c := rows[i].FHIR
		data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
		if c.ResourceType == "Patient" {
			if in.Patient == nil { // the newest
				in.Patient, in.PatientFullURL = data, c.FullURL
			}
			return nil
		}
		in.Resources = append(in.Resources, fhir.SummaryResource{FullURL: c.FullURL, Raw: data, Clinical: *c})
		return nil
	})
	if err != nil {
		return nil, err
	}
	out, err := fhir.Summary(in)
	if err != nil {
		return nil, fmt.Errorf("patient summary: %w", err)
	}
	return out, nil
}

// inOrder calls read(i) for i in 0..n-1 on up to 2×GOMAXPROCS goroutines
// at a time, and write(i, what read gave) in order on the caller's, so
// that reading (decryption) runs on every core while the output stays in
// order and memory holds a bounded window. The first error stops it.
func inOrder(ctx context.Context, n int, read func(i int) ([]byte, error), write func(i int, data []byte) error) error {
	type result struct {
		data []byte
		err  error
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	queue := make(chan chan result, 2*runtime.GOMAXPROCS(0))
	go func() {
		defer close(queue)
		for i := range n {
			ch := make(chan result, 1)
			select {
			case queue <- ch:
			case <-ctx.Done():
				return
			}
			go func() {
				if err := ctx.Err(); err != nil {
					ch <- result{err: err}
					return
				}
				data, err := read(i)
				ch <- result{data, err}
			}()
		}
	}()
	i := 0
	for ch := range queue {
		r := <-ch
		if r.err == nil {
			r.err = write(i, r.data)
		}
		if r.err != nil {
			cancel()
			for range queue { // let the producer end
			}
			return r.err
		}
		i++
	}
	return ctx.Err()
}
