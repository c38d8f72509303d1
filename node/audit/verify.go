package audit

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/blockmrs/blockmrs/protocol"
)

// Report is what Verify found.
type Report struct {
	// Entries counts the entries that decode and verify.
	Entries int `json:"entries"`
	// Reported counts those that hold another node's report.
	Reported int `json:"reported"`
	// Problems lists, one line each, every sign of tampering or damage:
	// an entry edited, removed or reordered, the end cut off. Empty: the
	// log is intact.
	Problems []string `json:"problems,omitempty"`
}

// ErrTampered is what Verify's error matches when the log shows
// tampering or damage; the error's text is the first problem.
var ErrTampered = errors.New("audit log tampered with or damaged")

// Verify checks the whole log: every entry decodes strictly and its
// signature verifies with this node's key, each entry's sequence number
// follows the one before and its hash link names it, and the last entry
// is the one the head holds (so entries cut off the end show). It
// returns the report and, when the report has problems, an error
// matching ErrTampered whose text is the first.
func (l *Log) Verify(ctx context.Context) (Report, error) {
	if err := l.Sync(); err != nil {
		return Report{}, err
	}
	// The files are read under the locks (so no append or head write is
	// half done), and checked after: appends wait only for the reads.
	l.syncMu.Lock()
	l.mu.Lock()
	data, err := os.ReadFile(filepath.Join(l.dir, Folder, LogFile))
	var head, ixData []byte
	if err == nil {
		head, err = os.ReadFile(filepath.Join(l.dir, Folder, HeadFile))
		if errors.Is(err, os.ErrNotExist) {
			err = nil
		}
	}
	mem, ixKept := l.idx.recs, l.ix != nil
	var ixErr error
	if ixKept {
		ixData, ixErr = os.ReadFile(indexPath(l.dir))
	}
	l.mu.Unlock()
	l.syncMu.Unlock()
	if err != nil {
		return Report{}, fmt.Errorf("audit: %w", err)
	}
	rep, want := check(ctx, data, head, l.priv.Public().(ed25519.PublicKey))
	if err := ctx.Err(); err != nil {
		return Report{}, err
	}
	if len(mem) > len(want) {
		mem = mem[:len(want)] // entries past damage (reported above)
	}
	why := compareIndex(mem, want)
	if why == "" && ixKept {
		var recs []idxRec
		if recs, ixErr = readIndex(ixData); ixErr == nil {
			why = compareIndex(recs, want)
		}
	}
	if why == "" && ixErr != nil {
		why = fmt.Sprintf("it cannot be read (%v)", ixErr)
	}
	if why != "" {
		rep.Problems = append(rep.Problems, fmt.Sprintf("audit index (%s): %s; it was damaged or edited, and is rebuilt from the log now", IndexFile, why))
		l.rebuildIndex(want)
	}
	if len(rep.Problems) > 0 {
		return rep, fmt.Errorf("%w: %s", ErrTampered, rep.Problems[0])
	}
	return rep, nil
}

// rebuildIndex replaces the index of the entries want describes (the
// log's first len(want)) with want, keeping the records of entries
// appended after them, and rewrites the index file.
func (l *Log) rebuildIndex(want []idxRec) {
	l.mu.Lock()
	defer l.mu.Unlock()
	x := newIndex()
	for _, r := range want {
		x.add(r, false)
	}
	if len(l.idx.recs) > len(want) {
		for _, r := range l.idx.recs[len(want):] {
			x.add(r, false)
		}
	}
	x.sortTime()
	l.idx = x
	l.log.Warn("audit: the audit index did not match the log; rebuilt it", "entries", len(x.recs))
	if l.damaged > 0 || l.f == nil {
		return
	}
	l.dropIndexFile()
	err := writeIndex(l.dir, x)
	if err == nil {
		l.ix, err = openIndexFile(l.dir)
	}
	if err != nil {
		l.log.Warn("audit: cannot write the audit index; it is rebuilt at the next start", "err", err)
	}
}

// check verifies log bytes data against head (the last entry's copy; nil
// when there is none) and the node key. It returns, too, the index
// records of the entries it could read.
func check(ctx context.Context, data, head []byte, key ed25519.PublicKey) (Report, []idxRec) {
	var rep Report
	var recs []idxRec
	var next uint64
	problem := func(format string, args ...any) {
		rep.Problems = append(rep.Problems, fmt.Sprintf(format, args...))
	}
	type good struct {
		seq  int64
		body []byte
	}
	var entries []good
	br := bufio.NewReader(bytes.NewReader(data))
	var last []byte // the last frame's bytes
	pos := 0
	var offset int64
	for ctx.Err() == nil {
		body, err := protocol.ReadFrame(br, protocol.MaxAuditEntrySize)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			problem("audit log: cannot be read past byte %d (%v): the file was cut or overwritten there", offset, err)
			break
		}
		offset += frameLen(body)
		last = body
		pos++
		e, err := protocol.DecodeAuditEntry(body)
		if err == nil {
			recs = append(recs, recFrom(body, e, next))
		} else {
			recs = append(recs, recFrom(body, nil, next))
		}
		next = recs[len(recs)-1].seq + 1
		switch {
		case errors.Is(err, protocol.ErrAuditSignature):
			var raw protocol.AuditEntry
			if n := seqOf(body, &raw); n >= 0 {
				problem("audit log: entry %d was edited: its signature does not verify", n)
			} else {
				problem("audit log: entry at position %d was edited: its signature does not verify", pos-1)
			}
		case err != nil:
			problem("audit log: entry at position %d was edited: %v", pos-1, err)
		case !bytes.Equal(e.Node, key):
			problem("audit log: entry %d was signed by another node's key (%s)", e.Seq, e.NodeID())
		default:
			rep.Entries++
			if len(e.Report) > 0 {
				rep.Reported++
			}
			entries = append(entries, good{seq: int64(e.Seq), body: body})
		}
	}
	bySeq := map[int64][]byte{}
	for _, g := range entries {
		bySeq[g.seq] = g.body
	}
	var prevSeq int64 = -1
	for _, g := range entries {
		seq := g.seq
		switch {
		case seq <= prevSeq:
			problem("audit log: entry %d comes after entry %d: entries were reordered or repeated", seq, prevSeq)
			continue
		case seq != prevSeq+1 && bySeq[prevSeq+1] != nil:
			problem("audit log: entry %d comes before entry %d: entries were reordered", seq, prevSeq+1)
		case seq != prevSeq+1:
			problem("audit log: entries %s are missing (entry %d follows %s): entries were removed", span(prevSeq+1, seq-1), seq, after(prevSeq))
		}
		if before, ok := bySeq[seq-1]; ok {
			var e protocol.AuditEntry
			if protocol.DecodeUnverifiedAuditEntry(g.body, &e) == nil && !bytes.Equal(e.Prev, protocol.AuditHash(before)) {
				problem("audit log: entry %d does not link entry %d: one of them was replaced", seq, seq-1)
			}
		}
		prevSeq = seq
	}
	prev := last
	switch {
	case len(head) == 0 && pos > 0:
		problem("audit log: its head (%s) is missing: entries may have been cut off the end", HeadFile)
	case len(head) > 0:
		h, err := protocol.DecodeAuditEntry(head)
		switch {
		case err != nil:
			problem("audit log: its head was edited: %v", err)
		case int64(h.Seq) > prevSeq:
			problem("audit log: entries %s were removed from the end (the signed head names entry %d)", span(prevSeq+1, int64(h.Seq)), h.Seq)
		case int64(h.Seq) == prevSeq && !bytes.Equal(prev, head):
			problem("audit log: entry %d differs from the copy in its head: it was replaced", h.Seq)
		}
	}
	return rep, recs
}

// seqOf reads the sequence number of an entry whose signature failed,
// -1 if it does not decode.
func seqOf(body []byte, e *protocol.AuditEntry) int64 {
	if err := protocol.DecodeUnverifiedAuditEntry(body, e); err != nil {
		return -1
	}
	return int64(e.Seq)
}

func span(a, b int64) string {
	if a == b {
		return fmt.Sprint(a)
	}
	return fmt.Sprintf("%d-%d", a, b)
}

func after(prev int64) string {
	if prev < 0 {
		return "nothing"
	}
	return fmt.Sprintf("entry %d", prev)
}
