package audit

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"slices"
	"sort"

	"github.com/blockmrs/blockmrs/node/internal/fsutil"
	"github.com/blockmrs/blockmrs/protocol"
)

// The index.
//
// audit/index lets List read only the entries it returns: for each entry
// of the log, in order, one record with its sequence number, frame size,
// time, hash, subject, reporter and records. It is written with each
// append (after the entry, unsynced: the log is the truth) and read at
// Open instead of the whole log when it matches the log: its records add
// up to a prefix of the log file and the last one's hash is the hash of
// the log's entry there (entries past it are read from the log and
// indexed). A missing, damaged or stale index is rebuilt from the log,
// with a warning in the node's log; Verify compares it with the log.
// List checks every entry it reads against the filter again, so an index
// can make List miss an entry (Verify reports that) but never return a
// wrong one.
//
// File: the line "BlockMRS audit index v1\n", then per entry
// uvarint(len(body)) ‖ body ‖ CRC-32C(body) (4 bytes, big-endian), where
// body is: flags (1 byte; 1: the entry does not decode), uvarint seq,
// uvarint frame size, varint time (Unix ms), 32 bytes hash, then
// subject, reporter (length-prefixed text), uvarint reported seq,
// uvarint count and the records' CID bytes (each length-prefixed).

// IndexFile is the index's name in the audit folder.
const IndexFile = "index"

const indexMagic = "BlockMRS audit index v1\n"

// maxIndexRecord bounds one record of the index file.
const maxIndexRecord = 32 << 10

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// idxRec is what the index holds about one entry.
type idxRec struct {
	bad      bool   // the entry does not decode
	seq      uint64 // its sequence number (for a bad one, the one it takes)
	size     int64  // its frame's size in the log file
	time     int64  // Unix ms
	hash     []byte // SHA-256 of its encoding
	subject  string
	reporter string // the reporting node's ID, for a report
	repSeq   uint64 // the reported entry's seq
	records  []string
}

// recOf indexes entry body (whose frame is size bytes), given the
// sequence number the entry would take if it does not decode.
func recOf(body []byte, next uint64) idxRec {
	e, err := protocol.DecodeAuditEntry(body)
	if err != nil {
		e = nil
	}
	return recFrom(body, e, next)
}

// recFrom indexes entry body, decoded as e (nil: it does not decode).
func recFrom(body []byte, e *protocol.AuditEntry, next uint64) idxRec {
	r := idxRec{size: frameLen(body), hash: protocol.AuditHash(body), seq: next}
	if e == nil {
		r.bad = true
		return r
	}
	r.seq, r.time, r.subject = e.Seq, e.Time, e.Subject
	for _, l := range e.Records {
		r.records = append(r.records, l.Cid.KeyString())
	}
	if len(e.Report) > 0 {
		if rep, err := protocol.DecodeAuditEntry(e.Report); err == nil {
			r.reporter, r.repSeq = string(rep.NodeID()), rep.Seq
		}
	}
	return r
}

func (r idxRec) encode() []byte {
	var b []byte
	if r.bad {
		b = append(b, 1)
	} else {
		b = append(b, 0)
	}
	b = binary.AppendUvarint(b, r.seq)
	b = binary.AppendUvarint(b, uint64(r.size))
	b = binary.AppendVarint(b, r.time)
	b = append(b, r.hash...)
	for _, s := range []string{r.subject, r.reporter} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	b = binary.AppendUvarint(b, r.repSeq)
	b = binary.AppendUvarint(b, uint64(len(r.records)))
	for _, c := range r.records {
		b = binary.AppendUvarint(b, uint64(len(c)))
		b = append(b, c...)
	}
	out := binary.AppendUvarint(nil, uint64(len(b)))
	out = append(out, b...)
	return binary.BigEndian.AppendUint32(out, crc32.Checksum(b, castagnoli))
}

// errIndex is what a damaged index record decodes to.
var errIndex = errors.New("damaged record")

func decodeIdxRec(b []byte, names map[string]string) (idxRec, error) {
	var r idxRec
	if len(b) < 1 || b[0] > 1 {
		return r, errIndex
	}
	r.bad = b[0] == 1
	b = b[1:]
	uv := func() (uint64, bool) {
		v, n := binary.Uvarint(b)
		if n <= 0 {
			return 0, false
		}
		b = b[n:]
		return v, true
	}
	str := func(max uint64) (string, bool) {
		n, ok := uv()
		if !ok || n > max || n > uint64(len(b)) {
			return "", false
		}
		s, ok := names[string(b[:n])]
		if !ok {
			s = string(b[:n])
			if len(names) < 1<<16 {
				names[s] = s // subjects and reporters repeat: one copy each
			}
		}
		b = b[n:]
		return s, true
	}
	var ok bool
	var size uint64
	if r.seq, ok = uv(); !ok {
		return r, errIndex
	}
	if size, ok = uv(); !ok || size == 0 || size > protocol.MaxAuditEntrySize+binary.MaxVarintLen64 {
		return r, errIndex
	}
	r.size = int64(size)
	t, n := binary.Varint(b)
	if n <= 0 || len(b) < n+32 {
		return r, errIndex
	}
	r.time, r.hash, b = t, b[n:n+32:n+32], b[n+32:]
	if r.subject, ok = str(protocol.MaxAuditText); !ok {
		return r, errIndex
	}
	if r.reporter, ok = str(protocol.MaxAuditText); !ok {
		return r, errIndex
	}
	if r.repSeq, ok = uv(); !ok {
		return r, errIndex
	}
	count, ok := uv()
	if !ok || count > protocol.MaxAuditRecords {
		return r, errIndex
	}
	for range count {
		c, ok := str(256)
		if !ok {
			return r, errIndex
		}
		r.records = append(r.records, c)
	}
	if len(b) != 0 {
		return r, errIndex
	}
	return r, nil
}

// readIndex parses an index file's bytes (the records' hashes point
// into data).
func readIndex(data []byte) ([]idxRec, error) {
	if !bytes.HasPrefix(data, []byte(indexMagic)) {
		return nil, errors.New("not an audit index (no header)")
	}
	b := data[len(indexMagic):]
	out := make([]idxRec, 0, len(b)/64)
	names := map[string]string{}
	for len(b) > 0 {
		n, k := binary.Uvarint(b)
		if k <= 0 || n > maxIndexRecord {
			return nil, fmt.Errorf("record %d: %w", len(out), errIndex)
		}
		if uint64(len(b)-k) < n+4 {
			return nil, fmt.Errorf("record %d: cut off", len(out))
		}
		body := b[k : k+int(n)]
		if crc32.Checksum(body, castagnoli) != binary.BigEndian.Uint32(b[k+int(n):]) {
			return nil, fmt.Errorf("record %d: checksum fails", len(out))
		}
		r, err := decodeIdxRec(body, names)
		if err != nil {
			return nil, fmt.Errorf("record %d: %w", len(out), err)
		}
		out = append(out, r)
		b = b[k+int(n)+4:]
	}
	return out, nil
}

// index is the log's index in memory, by position in the log.
type index struct {
	recs      []idxRec
	byTime    []int32 // positions ordered by time, then position
	byRecord  map[string][]int32
	bySubject map[string][]int32
}

func newIndex() *index {
	return &index{byRecord: map[string][]int32{}, bySubject: map[string][]int32{}}
}

// indexOf indexes recs (an index file's, or a log's, in order).
func indexOf(recs []idxRec) *index {
	x := newIndex()
	x.recs, x.byTime = make([]idxRec, 0, len(recs)+len(recs)/8), make([]int32, 0, len(recs))
	for _, r := range recs {
		x.add(r, false)
	}
	x.sortTime()
	return x
}

// add indexes r at the next position; sorted false leaves byTime for
// sortTime (a rebuild).
func (x *index) add(r idxRec, sorted bool) {
	pos := int32(len(x.recs))
	x.recs = append(x.recs, r)
	if r.bad {
		return
	}
	if !sorted || len(x.byTime) == 0 || x.recs[x.byTime[len(x.byTime)-1]].time <= r.time {
		x.byTime = append(x.byTime, pos)
	} else {
		i := sort.Search(len(x.byTime), func(i int) bool { return x.recs[x.byTime[i]].time > r.time })
		x.byTime = slices.Insert(x.byTime, i, pos)
	}
	for _, c := range r.records {
		if l := x.byRecord[c]; len(l) == 0 || l[len(l)-1] != pos {
			x.byRecord[c] = append(l, pos)
		}
	}
	if r.subject != "" {
		x.bySubject[r.subject] = append(x.bySubject[r.subject], pos)
	}
}

func (x *index) sortTime() {
	slices.SortStableFunc(x.byTime, func(a, b int32) int {
		ta, tb := x.recs[a].time, x.recs[b].time
		switch {
		case ta < tb:
			return -1
		case ta > tb:
			return 1
		}
		return 0
	})
}

// candidates returns the positions that may match f, ascending: from the
// narrowest list the index has for it (nil with all: every position).
func (x *index) candidates(f *Filter) (list []int32, all bool) {
	var best []int32
	have := false
	pick := func(l []int32) {
		if !have || len(l) < len(best) {
			best, have = l, true
		}
	}
	if f.Record.Defined() {
		pick(x.byRecord[f.Record.KeyString()])
	}
	if len(f.Subjects) > 0 {
		var merged []int32
		for i, s := range f.Subjects {
			if i == 0 {
				merged = x.bySubject[string(s)]
				continue
			}
			merged = append(slices.Clone(merged), x.bySubject[string(s)]...)
		}
		if len(f.Subjects) > 1 {
			slices.Sort(merged)
			merged = slices.Compact(merged)
		}
		pick(merged)
	}
	if !f.Since.IsZero() || !f.Until.IsZero() {
		lo, hi := 0, len(x.byTime)
		if !f.Since.IsZero() {
			s := f.Since.UnixMilli()
			lo = sort.Search(len(x.byTime), func(i int) bool { return x.recs[x.byTime[i]].time >= s })
		}
		if !f.Until.IsZero() {
			u := f.Until.UnixMilli()
			hi = sort.Search(len(x.byTime), func(i int) bool { return x.recs[x.byTime[i]].time >= u })
		}
		if hi < lo {
			hi = lo
		}
		if !have || hi-lo < len(best) {
			best = slices.Clone(x.byTime[lo:hi])
			slices.Sort(best)
			have = true
		}
	}
	if !have {
		return nil, true
	}
	return best, false
}

// indexPath is the index file of the log in dir.
func indexPath(dir string) string { return filepath.Join(dir, Folder, IndexFile) }

// writeIndex writes x to the index file whole (a rebuild).
func writeIndex(dir string, x *index) error {
	var b bytes.Buffer
	b.WriteString(indexMagic)
	for _, r := range x.recs {
		b.Write(r.encode())
	}
	return fsutil.WriteFileAtomic(indexPath(dir), b.Bytes(), 0o600)
}

// equalRec compares two records of the index.
func equalRec(a, b idxRec) bool {
	return a.bad == b.bad && a.seq == b.seq && a.size == b.size && a.time == b.time && bytes.Equal(a.hash, b.hash) &&
		a.subject == b.subject && a.reporter == b.reporter && a.repSeq == b.repSeq && slices.Equal(a.records, b.records)
}

// compareIndex returns, for index records got against those built from
// the log (want), the first difference ("" when got holds want exactly).
func compareIndex(got, want []idxRec) string {
	for i := range min(len(got), len(want)) {
		if !equalRec(got[i], want[i]) {
			return fmt.Sprintf("its record of entry %d does not match the log", want[i].seq)
		}
	}
	switch {
	case len(got) < len(want):
		return fmt.Sprintf("it lacks entries %s", span(int64(want[len(got)].seq), int64(want[len(want)-1].seq)))
	case len(got) > len(want):
		return fmt.Sprintf("it holds %d entries the log does not", len(got)-len(want))
	}
	return ""
}

// openIndexFile opens the index file for appending.
func openIndexFile(dir string) (*os.File, error) {
	return os.OpenFile(indexPath(dir), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
}
