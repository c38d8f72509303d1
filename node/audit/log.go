// Package audit is the node's audit log: an append-only, hash-linked
// record of what the node served and did for whom (records read by local
// accounts, records served to peers, grants, revocations, requests and
// their answers, emergency uses), kept in the repo folder and checked by
// `blockmrs verify`.
//
// Each entry is a protocol.AuditEntry: canonical DAG-CBOR, signed by the
// node's key (the key behind its peer ID) and carrying the SHA-256 of the
// entry before it. The log file (audit/log) holds the entries as frames
// (protocol.WriteFrame); audit/head holds a copy of the last entry, so an
// entry removed from the end shows too. Verify walks the log and reports
// an entry edited (its signature fails), removed (a sequence number or
// hash link missing) or reordered (a sequence number going back), and a
// log shorter than its head. SECURITY.md says what this protects against
// and what it cannot: the owner of a node holds its key and can rewrite
// its whole log; what protects patients from that is that events about
// them are reported to their own nodes (Service, /blockmrs/audit/1.0.0),
// which keep the reporting node's signed entries.
//
// Append writes an entry before it returns; the file is synced, and the
// head written, within SyncDelay (and at Close), so a power loss can lose
// at most the entries of that window, never half an entry (a torn last
// frame is cut off at the next Open).
//
// Listings read only the entries they return, through audit/index
// (index.go): derived from the log, written with each append, rebuilt
// from the log whenever it does not match it, and checked by Verify.
//
// The log is the repo's keyshare.AuditSink (Attach): the repo records
// reads there, and the block exchange reports each block it serves
// (Served), which a worker resolves into records (keyshare.Repo.ServedRecords)
// and records once per peer and record within DedupWindow.
package audit

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/node/internal/fsutil"
	"github.com/blockmrs/blockmrs/protocol"
)

// Folder and file names inside the repo folder.
const (
	Folder   = "audit"
	LogFile  = "log"
	HeadFile = "head"
)

// SyncDelay is how long after an append the log file is synced at the
// latest.
const SyncDelay = 50 * time.Millisecond

// Event is one thing the node did for someone (the type keyshare records
// reads with).
type Event = keyshare.AuditEvent

// Entry is one entry of the log, for people and the API.
type Entry struct {
	Seq     uint64             `json:"seq"`
	Time    time.Time          `json:"time"`
	Kind    keyshare.AuditKind `json:"kind"`
	Account protocol.AccountID `json:"account,omitempty"`
	Peer    string             `json:"peer,omitempty"`
	Subject protocol.AccountID `json:"subject,omitempty"`
	Records []string           `json:"records,omitempty"`
	Rule    string             `json:"rule,omitempty"`
	Reason  string             `json:"reason,omitempty"`
	// ReportedBy is the node (peer ID) that reported the event, when it
	// is not this node's own; ReportedSeq is the event's number in that
	// node's log.
	ReportedBy  string `json:"reported_by,omitempty"`
	ReportedSeq uint64 `json:"reported_seq,omitempty"`
	// Hash is the hex SHA-256 of the entry's encoding, which the next
	// entry links.
	Hash string `json:"hash"`
}

// Options tune Open.
type Options struct {
	// Clock replaces time.Now (tests).
	Clock func() time.Time
	// Logger receives the log's own problems; nil means slog.Default().
	Logger *slog.Logger
	// QueueSize bounds the served blocks waiting to be resolved; 0 means
	// DefaultQueueSize. A full queue makes Served wait.
	QueueSize int
	// DedupWindow is how long a record served to a peer is not recorded
	// again; 0 means DefaultDedupWindow.
	DedupWindow time.Duration
}

// Log is an open audit log. It is safe for concurrent use.
type Log struct {
	dir   string
	priv  ed25519.PrivateKey
	clock func() time.Time
	log   *slog.Logger

	syncMu   sync.Mutex // one Sync at a time
	mu       sync.Mutex
	f        *os.File
	next     uint64  // sequence number of the next entry
	last     []byte  // encoding of the last entry
	offsets  []int64 // file offset of each entry's frame, by position
	reported map[string]uint64
	reads    map[servedKey]time.Time // last read recorded, per account and record
	dirty    bool
	closed   bool
	watchers map[int]func(Entry)
	nextW    int
	syncErr  error
	damaged  int64    // offset where the file stops being readable; 0: it is not
	idx      *index   // the entries by record, subject and time
	ix       *os.File // the index file, appended to; nil: not kept

	syncKick chan struct{}
	stop     chan struct{}
	done     sync.WaitGroup

	served *servedQueue
}

// Open opens (creating) the audit log in repo folder dir, signing with
// the node key priv. A torn last frame (a crash while writing) is cut
// off; anything else wrong is left for Verify to report, and new entries
// follow the last entry that decodes.
func Open(dir string, priv ed25519.PrivateKey, opts Options) (*Log, error) {
	if len(priv) != ed25519.PrivateKeySize {
		return nil, errors.New("audit: node key of the wrong size")
	}
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	folder := filepath.Join(dir, Folder)
	if err := os.MkdirAll(folder, 0o700); err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(folder, LogFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	l := &Log{dir: dir, priv: priv, clock: opts.Clock, log: opts.Logger.With("service", "audit"), f: f,
		reported: map[string]uint64{}, reads: map[servedKey]time.Time{}, watchers: map[int]func(Entry){},
		syncKick: make(chan struct{}, 1), stop: make(chan struct{})}
	if err := l.load(); err != nil {
		f.Close()
		return nil, err
	}
	l.done.Add(1)
	go l.syncer()
	return l, nil
}

// load finds where the log ends, and which reports it holds: from the
// index when it matches the log (reading only the entries past it), or
// by reading the whole log and rebuilding the index.
func (l *Log) load() error {
	size, err := l.f.Seek(0, io.SeekEnd)
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	x, end, why := l.loadIndex(size)
	kept := len(x.recs)
	if why != "" && size > 0 {
		l.log.Warn("audit: the audit index is "+why+"; rebuilding it from the log", "file", indexPath(l.dir))
	}
	if _, err := l.f.Seek(end, io.SeekStart); err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	next := uint64(0)
	if kept > 0 {
		next = x.recs[kept-1].seq + 1
	}
	r := bufio.NewReader(l.f)
	for {
		start := end
		body, err := protocol.ReadFrame(r, protocol.MaxAuditEntrySize)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			// A torn frame at the end: cut it off (it was never synced
			// as part of the log). Anything else stays for Verify.
			if errors.Is(err, io.ErrUnexpectedEOF) {
				l.log.Warn("audit: cut off a torn last entry (a crash while writing)", "offset", start)
				if terr := l.f.Truncate(start); terr != nil {
					return fmt.Errorf("audit: cut off torn entry: %w", terr)
				}
				break
			}
			// Damage in the middle: the rest cannot be read. New
			// entries go after it (and the index is not kept past
			// it); Verify reports it.
			l.log.Error("audit: the audit log cannot be read past this offset; run blockmrs verify", "offset", start, "err", err)
			l.damaged = start
			if end, err = l.f.Seek(0, io.SeekEnd); err != nil {
				return fmt.Errorf("audit: %w", err)
			}
			break
		}
		end += frameLen(body)
		rec := recOf(body, next)
		next = rec.seq + 1
		x.add(rec, false)
	}
	x.sortTime()
	l.idx, l.next = x, next
	var off int64
	l.offsets = make([]int64, len(x.recs))
	for i, rec := range x.recs {
		l.offsets[i] = off
		off += rec.size
		if rec.reporter != "" && rec.repSeq >= l.reported[rec.reporter] {
			l.reported[rec.reporter] = rec.repSeq
		}
	}
	if n := len(x.recs); n > 0 {
		last, err := l.frameAt(l.offsets[n-1], x.recs[n-1].size)
		if err != nil {
			return err
		}
		l.last = last
	}
	if _, err := l.f.Seek(end, io.SeekStart); err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	return l.keepIndex(why != "", kept)
}

// loadIndex reads the index file and returns it when it matches a
// prefix of the log file (size bytes), with the offset where that prefix
// ends; otherwise an empty index and why not.
func (l *Log) loadIndex(size int64) (*index, int64, string) {
	x := newIndex()
	// An index record is never larger than its entry's frame plus its
	// own fields, so a file larger than this is not this log's index
	// (and is not read into memory).
	if fi, err := os.Stat(indexPath(l.dir)); err == nil && fi.Size() > 2*size+int64(len(indexMagic))+4096 {
		return x, 0, fmt.Sprintf("damaged (%d bytes, more than a log of %d bytes needs)", fi.Size(), size)
	}
	data, err := os.ReadFile(indexPath(l.dir))
	if errors.Is(err, os.ErrNotExist) {
		return x, 0, "missing"
	}
	if err != nil {
		return x, 0, fmt.Sprintf("unreadable (%v)", err)
	}
	recs, err := readIndex(data)
	if err != nil {
		return x, 0, fmt.Sprintf("damaged (%v)", err)
	}
	var end int64
	for _, r := range recs {
		end += r.size
	}
	if end > size {
		return x, 0, "stale (it names entries past the end of the log)"
	}
	if n := len(recs); n > 0 {
		body, err := l.frameAt(end-recs[n-1].size, recs[n-1].size)
		if err != nil || !bytes.Equal(protocol.AuditHash(body), recs[n-1].hash) {
			return x, 0, "stale (its last entry is not the log's)"
		}
	}
	x = indexOf(recs)
	return x, end, ""
}

// keepIndex brings the index file up to the index in memory: rewritten
// whole when rebuilt, else with the records past the first kept ones
// appended; then it is kept open for appends. A log damaged in the middle
// keeps no index file past the damage (new entries do not follow it).
func (l *Log) keepIndex(rebuilt bool, kept int) error {
	var err error
	if rebuilt {
		err = writeIndex(l.dir, l.idx)
		if err == nil && len(l.idx.recs) > 0 {
			l.log.Info("audit: rebuilt the audit index", "entries", len(l.idx.recs))
		}
	}
	if err == nil {
		l.ix, err = openIndexFile(l.dir)
	}
	if err == nil && !rebuilt {
		var b bytes.Buffer
		for _, r := range l.idx.recs[kept:] {
			b.Write(r.encode())
		}
		_, err = l.ix.Write(b.Bytes())
	}
	if err != nil {
		l.log.Warn("audit: cannot write the audit index; listings read it from memory, and it is rebuilt at the next start", "err", err)
		l.dropIndexFile()
	}
	if l.damaged > 0 {
		l.dropIndexFile()
	}
	return nil
}

// dropIndexFile stops writing the index file.
func (l *Log) dropIndexFile() {
	if l.ix != nil {
		l.ix.Close()
		l.ix = nil
	}
}

// frameAt reads the entry whose frame of size bytes starts at off.
func (l *Log) frameAt(off, size int64) ([]byte, error) {
	data := make([]byte, size)
	if _, err := l.f.ReadAt(data, off); err != nil {
		return nil, fmt.Errorf("audit: read: %w", err)
	}
	n, k := binary.Uvarint(data)
	if k <= 0 || int64(k)+int64(n) != size {
		return nil, fmt.Errorf("audit: read: bad frame at offset %d", off)
	}
	return data[k:], nil
}

// NodeID returns the peer ID of the node the log belongs to.
func (l *Log) NodeID() string {
	return string(protocol.AccountIDFromKey(l.priv.Public().(ed25519.PublicKey)))
}

// Append records ev as the next entry and returns it. The entry is
// written when Append returns and synced within SyncDelay.
func (l *Log) Append(ctx context.Context, ev Event) (Entry, error) {
	if err := ctx.Err(); err != nil {
		return Entry{}, err
	}
	return l.append(ev, nil)
}

// Audit implements keyshare.AuditSink. A read of one record by an
// account that read it within DefaultDedupWindow is not recorded again
// (pages such as the labs chart open every record they show each time);
// every other event is appended.
func (l *Log) Audit(ctx context.Context, ev keyshare.AuditEvent) error {
	if ev.Kind == keyshare.AuditRead && len(ev.Records) == 1 && l.readSeen(ev) {
		return nil
	}
	_, err := l.Append(ctx, ev)
	return err
}

// readSeen reports whether ev's account read ev's record within the
// window, and notes this read if not.
func (l *Log) readSeen(ev keyshare.AuditEvent) bool {
	at := ev.Time
	if at.IsZero() {
		at = l.clock()
	}
	k := servedKey{peer: string(ev.Account), record: ev.Records[0]}
	l.mu.Lock()
	defer l.mu.Unlock()
	if last, ok := l.reads[k]; ok && at.Sub(last) < DefaultDedupWindow && !at.Before(last) {
		return true
	}
	if len(l.reads) >= 4*DefaultQueueSize {
		for k, t := range l.reads {
			if at.Sub(t) >= DefaultDedupWindow {
				delete(l.reads, k)
			}
		}
		if len(l.reads) >= 4*DefaultQueueSize {
			clear(l.reads) // at worst some reads are recorded twice
		}
	}
	l.reads[k] = at
	return false
}

// append signs and writes one entry; report is a reported entry's
// encoding (its fields are in ev).
func (l *Log) append(ev Event, report []byte) (Entry, error) {
	if ev.Time.IsZero() {
		ev.Time = l.clock()
	}
	if ev.Kind == "" {
		return Entry{}, errors.New("audit: event without a kind")
	}
	if len(ev.Records) > protocol.MaxAuditRecords {
		return Entry{}, fmt.Errorf("audit: event names %d records, limit %d", len(ev.Records), protocol.MaxAuditRecords)
	}
	e := &protocol.AuditEntry{Version: protocol.AuditVersion, Time: ev.Time.UnixMilli(), Kind: string(ev.Kind),
		Account: string(ev.Account), Peer: ev.Peer, Subject: string(ev.Subject), Records: protocol.Links(ev.Records),
		Rule: string(ev.Rule), Reason: truncate(ev.Reason, protocol.MaxAuditText), Report: report}
	if e.Time <= 0 {
		e.Time = 1
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return Entry{}, errors.New("audit: log closed")
	}
	e.Seq = l.next
	if e.Seq > 0 {
		e.Prev = protocol.AuditHash(l.last)
	}
	enc, err := e.Sign(l.priv)
	if err != nil {
		return Entry{}, fmt.Errorf("audit: %w", err)
	}
	off, err := l.f.Seek(0, io.SeekCurrent)
	if err != nil {
		return Entry{}, fmt.Errorf("audit: %w", err)
	}
	var buf bytes.Buffer
	if err := protocol.WriteFrame(&buf, enc); err != nil {
		return Entry{}, err
	}
	if _, err := l.f.Write(buf.Bytes()); err != nil {
		// Leave no half entry behind.
		if terr := l.f.Truncate(off); terr == nil {
			_, _ = l.f.Seek(off, io.SeekStart)
		}
		return Entry{}, fmt.Errorf("audit: write: %w", err)
	}
	l.offsets = append(l.offsets, off)
	l.next++
	l.last = enc
	l.dirty = true
	rec := recFrom(enc, e, e.Seq)
	if len(report) > 0 {
		if rep, err := protocol.DecodeAuditEntry(report); err == nil {
			rec.reporter, rec.repSeq = string(rep.NodeID()), rep.Seq
			l.reported[rec.reporter] = rep.Seq
		}
	}
	l.idx.add(rec, true)
	if l.ix != nil {
		if _, err := l.ix.Write(rec.encode()); err != nil {
			l.log.Warn("audit: cannot write the audit index; it is rebuilt at the next start", "err", err)
			l.dropIndexFile()
		}
	}
	select {
	case l.syncKick <- struct{}{}:
	default:
	}
	out := view(e, enc)
	for _, w := range l.watchers {
		w(out)
	}
	return out, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

func utf8RuneStart(b byte) bool { return b&0xC0 != 0x80 }

// view turns a decoded entry into an Entry.
func view(e *protocol.AuditEntry, enc []byte) Entry {
	out := Entry{Seq: e.Seq, Time: time.UnixMilli(e.Time).UTC(), Kind: keyshare.AuditKind(e.Kind),
		Account: protocol.AccountID(e.Account), Peer: e.Peer, Subject: protocol.AccountID(e.Subject),
		Rule: e.Rule, Reason: e.Reason, Hash: hex.EncodeToString(protocol.AuditHash(enc))}
	for _, r := range e.Records {
		out.Records = append(out.Records, r.String())
	}
	if len(e.Report) > 0 {
		if rep, err := protocol.DecodeAuditEntry(e.Report); err == nil {
			out.ReportedBy, out.ReportedSeq = string(rep.NodeID()), rep.Seq
		}
	}
	return out
}

// Watch calls fn (which must not block) with every entry appended from
// now on, until stop is called.
func (l *Log) Watch(fn func(Entry)) (stop func()) {
	l.mu.Lock()
	defer l.mu.Unlock()
	id := l.nextW
	l.nextW++
	l.watchers[id] = fn
	return func() {
		l.mu.Lock()
		delete(l.watchers, id)
		l.mu.Unlock()
	}
}

// syncer syncs the file and writes the head within SyncDelay of an append.
func (l *Log) syncer() {
	defer l.done.Done()
	for {
		select {
		case <-l.stop:
			return
		case <-l.syncKick:
		}
		select {
		case <-l.stop:
			return
		case <-time.After(SyncDelay):
		}
		if err := l.Sync(); err != nil {
			l.log.Error("audit: sync failed", "err", err)
		}
	}
}

// Sync makes every entry appended so far durable: it syncs the log file
// and then writes the head. Appends go on meanwhile (the file is synced
// outside the log's lock); the head names the last entry appended
// before the sync began.
func (l *Log) Sync() error {
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	l.mu.Lock()
	if !l.dirty || l.f == nil {
		err := l.syncErr
		l.mu.Unlock()
		return err
	}
	f, last := l.f, l.last
	l.dirty = false
	l.mu.Unlock()
	err := f.Sync()
	if err != nil {
		err = fmt.Errorf("audit: sync: %w", err)
	} else if err = fsutil.WriteFileAtomic(filepath.Join(l.dir, Folder, HeadFile), last, 0o600); err != nil {
		err = fmt.Errorf("audit: head: %w", err)
	}
	l.mu.Lock()
	l.syncErr = err
	if err != nil {
		l.dirty = true // try again at the next sync
	}
	l.mu.Unlock()
	return err
}

// Close stops the served-block worker (recording what it holds), syncs
// and closes the log. Further appends fail.
func (l *Log) Close() error {
	if l.served != nil {
		l.served.close()
	}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	l.mu.Unlock()
	close(l.stop)
	l.done.Wait()
	err := l.Sync()
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	if cerr := l.f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("audit: %w", cerr)
	}
	l.f = nil
	l.dropIndexFile()
	return err
}

// Len returns the number of entries in the log.
func (l *Log) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.offsets)
}

// Reported returns the highest sequence number of reporter's entries
// this log holds, and whether it holds any.
func (l *Log) Reported(reporter string) (uint64, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s, ok := l.reported[reporter]
	return s, ok
}

// readAt reads the raw entries at positions [from, len) (at most max; 0:
// all), under the lock.
func (l *Log) readFrom(from, max int) ([][]byte, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil, errors.New("audit: log closed")
	}
	if from >= len(l.offsets) {
		return nil, nil
	}
	end := len(l.offsets)
	if max > 0 && from+max < end {
		end = from + max
	}
	var stop int64
	if end < len(l.offsets) {
		stop = l.offsets[end]
	} else if stop, _ = l.f.Seek(0, io.SeekCurrent); stop == 0 {
		return nil, nil
	}
	base := l.offsets[from]
	data := make([]byte, stop-base)
	if _, err := l.f.ReadAt(data, base); err != nil {
		return nil, fmt.Errorf("audit: read: %w", err)
	}
	out := make([][]byte, 0, end-from)
	for _, off := range l.offsets[from:end] {
		n, k := binary.Uvarint(data[off-base:])
		start := off - base + int64(k)
		if k <= 0 || n > protocol.MaxAuditEntrySize || start+int64(n) > int64(len(data)) {
			return nil, fmt.Errorf("audit: read: bad frame at offset %d", off)
		}
		out = append(out, data[start:start+int64(n)])
	}
	return out, nil
}

// Filter selects entries for List.
type Filter struct {
	// Record keeps the entries naming this record (undefined: all).
	Record cid.Cid
	// Since and Until keep entries at or after Since, before Until.
	Since, Until time.Time
	// Subjects keeps entries about these accounts (none: all).
	Subjects []protocol.AccountID
	// Kinds keeps entries of these kinds (none: all).
	Kinds []keyshare.AuditKind
	// Limit keeps only the newest Limit matching entries (0: all).
	Limit int
}

func (f *Filter) match(e Entry) bool {
	if f.Record.Defined() {
		want, found := f.Record.String(), false
		for _, r := range e.Records {
			if r == want {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	if !f.Since.IsZero() && e.Time.Before(f.Since) || !f.Until.IsZero() && !e.Time.Before(f.Until) {
		return false
	}
	if len(f.Subjects) > 0 && !contains(f.Subjects, e.Subject) {
		return false
	}
	if len(f.Kinds) > 0 && !contains(f.Kinds, e.Kind) {
		return false
	}
	return true
}

func contains[T comparable](xs []T, x T) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// List returns the entries f selects, oldest first. Entries that do not
// decode (see Verify) are left out. It reads only the entries the index
// names for f's record, subjects or time range (the narrowest), newest
// first until f.Limit, and checks each against f.
func (l *Log) List(ctx context.Context, f Filter) ([]Entry, error) {
	l.mu.Lock()
	if l.f == nil {
		l.mu.Unlock()
		return nil, errors.New("audit: log closed")
	}
	cands, all := l.idx.candidates(&f)
	recs := l.idx.recs
	l.mu.Unlock()
	n := len(cands)
	if all {
		n = len(recs)
	}
	at := func(i int) int {
		if all {
			return i
		}
		return int(cands[i])
	}
	since, until := f.Since.UnixMilli(), f.Until.UnixMilli()
	var out []Entry
	const page = 256
	batch := make([]int, 0, page)
	for i := n - 1; i >= 0 && (f.Limit <= 0 || len(out) < f.Limit); {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		batch = batch[:0]
		for ; i >= 0 && len(batch) < page; i-- {
			pos := at(i)
			r := recs[pos]
			if r.bad || !f.Since.IsZero() && r.time < since || !f.Until.IsZero() && r.time >= until {
				continue
			}
			batch = append(batch, pos)
		}
		raws, err := l.readAt(batch)
		if err != nil {
			return nil, err
		}
		for _, raw := range raws {
			if raw == nil {
				continue
			}
			e, err := protocol.DecodeAuditEntry(raw)
			if err != nil {
				continue
			}
			if v := view(e, raw); f.match(v) {
				out = append(out, v)
				if f.Limit > 0 && len(out) == f.Limit {
					break
				}
			}
		}
	}
	slices.Reverse(out)
	return out, nil
}

// readAt reads the entries at positions ps; one that cannot be read (a
// log damaged since the index was written: Verify reports it) is nil.
func (l *Log) readAt(ps []int) ([][]byte, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil, errors.New("audit: log closed")
	}
	out := make([][]byte, len(ps))
	for i, p := range ps {
		raw, err := l.frameAt(l.offsets[p], l.idx.recs[p].size)
		if err != nil {
			l.log.Warn("audit: an entry of the audit log cannot be read; run blockmrs verify", "position", p, "err", err)
			continue
		}
		out[i] = raw
	}
	return out, nil
}

// frameLen is the size of body's frame in the file.
func frameLen(body []byte) int64 {
	return int64(len(binary.AppendUvarint(nil, uint64(len(body))))) + int64(len(body))
}
