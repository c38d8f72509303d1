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
	l.mu.Lock()
	defer l.mu.Unlock()
	data, err := os.ReadFile(filepath.Join(l.dir, Folder, LogFile))
	if err != nil {
		return Report{}, fmt.Errorf("audit: %w", err)
	}
	head, err := os.ReadFile(filepath.Join(l.dir, Folder, HeadFile))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return Report{}, fmt.Errorf("audit: %w", err)
	}
	rep := check(ctx, data, head, l.priv.Public().(ed25519.PublicKey))
	if err := ctx.Err(); err != nil {
		return Report{}, err
	}
	if len(rep.Problems) > 0 {
		return rep, fmt.Errorf("%w: %s", ErrTampered, rep.Problems[0])
	}
	return rep, nil
}

// check verifies log bytes data against head (the last entry's copy; nil
// when there is none) and the node key.
func check(ctx context.Context, data, head []byte, key ed25519.PublicKey) Report {
	var rep Report
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
	return rep
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
