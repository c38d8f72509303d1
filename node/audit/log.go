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

	mu       sync.Mutex
	f        *os.File
	next     uint64  // sequence number of the next entry
	last     []byte  // encoding of the last entry
	offsets  []int64 // file offset of each entry's frame, by position
	reported map[string]uint64
	dirty    bool
	closed   bool
	watchers map[int]func(Entry)
	nextW    int
	syncErr  error
	damaged  int64 // offset where the file stops being readable; 0: it is not

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
		reported: map[string]uint64{}, watchers: map[int]func(Entry){},
		syncKick: make(chan struct{}, 1), stop: make(chan struct{})}
	if err := l.load(); err != nil {
		f.Close()
		return nil, err
	}
	l.done.Add(1)
	go l.syncer()
	return l, nil
}

// load reads the log to find where it ends, and which reports it holds.
func (l *Log) load() error {
	if _, err := l.f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	r := bufio.NewReader(l.f)
	var end int64
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
			// entries go after it; Verify reports it.
			l.log.Error("audit: the audit log cannot be read past this offset; run blockmrs verify", "offset", start, "err", err)
			l.damaged = start
			if end, err = l.f.Seek(0, io.SeekEnd); err != nil {
				return fmt.Errorf("audit: %w", err)
			}
			break
		}
		end += frameLen(body)
		l.offsets = append(l.offsets, start)
		l.last = body
		if e, err := protocol.DecodeAuditEntry(body); err == nil {
			l.next = e.Seq + 1
			l.noteReport(e)
		} else {
			l.next++
		}
	}
	if _, err := l.f.Seek(end, io.SeekStart); err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	return nil
}

// noteReport remembers the highest reported sequence number per reporter.
func (l *Log) noteReport(e *protocol.AuditEntry) {
	if len(e.Report) == 0 {
		return
	}
	rep, err := protocol.DecodeAuditEntry(e.Report)
	if err != nil {
		return
	}
	id := string(rep.NodeID())
	if rep.Seq >= l.reported[id] {
		l.reported[id] = rep.Seq
	}
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

// Audit implements keyshare.AuditSink.
func (l *Log) Audit(ctx context.Context, ev keyshare.AuditEvent) error {
	_, err := l.Append(ctx, ev)
	return err
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
	if len(report) > 0 {
		if rep, err := protocol.DecodeAuditEntry(report); err == nil {
			l.reported[string(rep.NodeID())] = rep.Seq
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
// and writes the head.
func (l *Log) Sync() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.syncLocked()
}

func (l *Log) syncLocked() error {
	if !l.dirty || l.f == nil {
		return l.syncErr
	}
	if err := l.f.Sync(); err != nil {
		l.syncErr = fmt.Errorf("audit: sync: %w", err)
		return l.syncErr
	}
	if err := fsutil.WriteFileAtomic(filepath.Join(l.dir, Folder, HeadFile), l.last, 0o600); err != nil {
		l.syncErr = fmt.Errorf("audit: head: %w", err)
		return l.syncErr
	}
	l.dirty, l.syncErr = false, nil
	return nil
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
	l.mu.Lock()
	defer l.mu.Unlock()
	err := l.syncLocked()
	if cerr := l.f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("audit: %w", cerr)
	}
	l.f = nil
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
// decode (see Verify) are left out.
func (l *Log) List(ctx context.Context, f Filter) ([]Entry, error) {
	var out []Entry
	const page = 4096
	for from := 0; ; from += page {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		raws, err := l.readFrom(from, page)
		if err != nil {
			return nil, err
		}
		for _, raw := range raws {
			e, err := protocol.DecodeAuditEntry(raw)
			if err != nil {
				continue
			}
			if v := view(e, raw); f.match(v) {
				out = append(out, v)
			}
		}
		if len(raws) < page {
			break
		}
	}
	if f.Limit > 0 && len(out) > f.Limit {
		out = out[len(out)-f.Limit:]
	}
	return out, nil
}

// frameLen is the size of body's frame in the file.
func frameLen(body []byte) int64 {
	return int64(len(binary.AppendUvarint(nil, uint64(len(body))))) + int64(len(body))
}
