package audit

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/blockmrs/blockmrs/node/internal/fsutil"
)

// The quota of undeclared reporters.
//
// A node keeps at most MaxUndeclared entries per QuotaWindow from each
// reporter that the subject's chain does not declare, and counts at most
// MaxQuotaReporters such reporters per window (a new one past that is
// refused until the window ends). The counts are kept in
// audit/quota.json with the number of log entries they cover: it is
// saved after report streams (at most every quotaSaveEvery), every
// reporting round and at Close, and at New every reported entry the log
// holds past that number is counted again, so neither a reconnect nor a
// restart (a crash included) gives a reporter a fresh quota. A missing
// or damaged file counts every reported entry of the log against its
// reporter, in a window starting then: at worst a reporter waits a
// window more.

// Quota limits.
const (
	// QuotaWindow is the period the undeclared reporters' counts cover.
	QuotaWindow = 24 * time.Hour
	// MaxQuotaReporters bounds the undeclared reporters counted in one
	// window (and so the quota file).
	MaxQuotaReporters = 10000
	// QuotaFile holds the counts, in the audit folder.
	QuotaFile = "quota.json"
	// maxQuotaFile bounds what is read of it.
	maxQuotaFile = 4 << 20

	quotaSaveEvery = 5 * time.Second
)

// quota counts the entries kept from undeclared reporters. The Service's
// mutex guards it.
type quota struct {
	// Start is when the window began (Unix ms).
	Start int64 `json:"start"`
	// Upto is the number of log entries counted.
	Upto uint64 `json:"upto"`
	// Counts are the entries kept per reporter (peer ID) in the window.
	Counts map[string]int `json:"counts"`

	path    string
	max     int
	clock   func() time.Time
	dirty   bool
	savedAt time.Time
}

// loadQuota reads the quota of log l's folder and counts the reported
// entries past it.
func loadQuota(l *Log, max int, clock func() time.Time, log *slog.Logger) *quota {
	q := &quota{path: filepath.Join(l.dir, Folder, QuotaFile), max: max, clock: clock}
	why := q.read()
	now := clock()
	if why != "" {
		q.Start, q.Upto, q.Counts = now.UnixMilli(), 0, map[string]int{}
		if why != "missing" || l.Len() > 0 {
			log.Warn("audit: the quota of undeclared reporters is "+why+"; counting every reported entry in the log against its reporter", "file", q.path)
		}
	}
	if n := uint64(l.Len()); q.Upto > n {
		log.Warn("audit: the quota of undeclared reporters counts more entries than the log holds; counting every reported entry in the log against its reporter", "file", q.path)
		q.Upto = 0
	}
	q.roll(now)
	counted, upto := l.reportersFrom(int(q.Upto))
	for r, n := range counted {
		if _, ok := q.Counts[r]; ok || len(q.Counts) < MaxQuotaReporters {
			q.Counts[r] += n
		}
	}
	q.dirty = q.dirty || upto != q.Upto || why != ""
	q.Upto = upto
	return q
}

// read reads the file; it returns why it cannot be used ("" when it can).
func (q *quota) read() string {
	f, err := os.Open(q.path)
	if errors.Is(err, os.ErrNotExist) {
		return "missing"
	}
	if err != nil {
		return fmt.Sprintf("unreadable (%v)", err)
	}
	defer f.Close()
	var st struct {
		Start  int64          `json:"start"`
		Upto   uint64         `json:"upto"`
		Counts map[string]int `json:"counts"`
	}
	dec := json.NewDecoder(&limitedReader{f: f, left: maxQuotaFile})
	dec.DisallowUnknownFields()
	if err := dec.Decode(&st); err != nil {
		return fmt.Sprintf("damaged (%v)", err)
	}
	if st.Counts == nil || len(st.Counts) > MaxQuotaReporters || st.Start <= 0 {
		return "damaged (counts missing or too many)"
	}
	for _, n := range st.Counts {
		if n < 0 {
			return "damaged (a negative count)"
		}
	}
	q.Start, q.Upto, q.Counts = st.Start, st.Upto, st.Counts
	return ""
}

// limitedReader fails past its limit (a file grown past any real quota).
type limitedReader struct {
	f    *os.File
	left int64
}

func (r *limitedReader) Read(p []byte) (int, error) {
	if r.left <= 0 {
		return 0, errors.New("quota file too large")
	}
	if int64(len(p)) > r.left {
		p = p[:r.left]
	}
	n, err := r.f.Read(p)
	r.left -= int64(n)
	return n, err
}

// roll starts a new window when the current one is over (a clock set
// back keeps the current one).
func (q *quota) roll(now time.Time) {
	if now.UnixMilli()-q.Start >= QuotaWindow.Milliseconds() {
		q.Start, q.Counts, q.dirty = now.UnixMilli(), map[string]int{}, true
	}
}

// left reports whether reporter may have one more entry kept.
func (q *quota) left(reporter string) bool {
	q.roll(q.clock())
	n, ok := q.Counts[reporter]
	if !ok && len(q.Counts) >= MaxQuotaReporters {
		return false
	}
	return n < q.max
}

// add counts one entry kept from reporter, the log now holding upto.
func (q *quota) add(reporter string, upto int) {
	q.Counts[reporter]++
	q.Upto = uint64(upto)
	q.dirty = true
}

// save writes the counts if they changed (when force, or none was saved
// within quotaSaveEvery), covering the log's first upto entries.
func (q *quota) save(upto int, force bool, log *slog.Logger) {
	now := q.clock()
	if !q.dirty || !force && now.Sub(q.savedAt) < quotaSaveEvery && now.After(q.savedAt) {
		return
	}
	q.Upto = uint64(upto)
	data, err := json.Marshal(q)
	if err == nil {
		err = fsutil.WriteFileAtomic(q.path, data, 0o600)
	}
	if err != nil {
		log.Warn("audit: cannot save the quota of undeclared reporters (a restart counts it again from the log)", "err", err)
		return
	}
	q.dirty, q.savedAt = false, now
}

// reportersFrom counts the reported entries per reporter at positions
// from on, and returns the number of entries.
func (l *Log) reportersFrom(from int) (map[string]int, uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[string]int{}
	for _, r := range l.idx.recs[min(from, len(l.idx.recs)):] {
		if r.reporter != "" {
			out[r.reporter]++
		}
	}
	return out, uint64(len(l.idx.recs))
}
