package audit

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/protocol"
)

// logLines is a logger whose lines a test reads.
type logLines struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (w *logLines) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

func (w *logLines) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

func (w *logLines) logger() *slog.Logger { return slog.New(slog.NewTextHandler(w, nil)) }

// mixedLog appends 60 events about three subjects naming five records,
// with times that go back now and then (as reported entries' do), and
// two reported entries from another node. It returns the log, open.
func mixedLog(t *testing.T, dir string, priv ed25519.PrivateKey, lg *slog.Logger) (*Log, []protocol.AccountID, []cid.Cid, time.Time) {
	t.Helper()
	l, err := Open(dir, priv, Options{Logger: lg})
	if err != nil {
		t.Fatal(err)
	}
	subjects := []protocol.AccountID{testAccount(t), testAccount(t), testAccount(t)}
	records := make([]cid.Cid, 5)
	for i := range records {
		records[i] = testCID(t, fmt.Sprint("mixed-", i))
	}
	start := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	ctx := context.Background()
	for i := range 60 {
		at := start.Add(time.Duration(i) * time.Minute)
		if i%7 == 3 {
			at = start.Add(time.Duration(i-20) * time.Minute) // older than the entries before it
		}
		ev := Event{Time: at, Kind: keyshare.AuditServe, Account: subjects[(i+1)%3], Subject: subjects[i%3],
			Records: []cid.Cid{records[i%5], records[(i+2)%5]}, Reason: fmt.Sprint("event-", i)}
		if i%10 == 9 {
			ev.Subject = "" // an event about nobody in particular
		}
		if _, err := l.Append(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	other := fill(t, t.TempDir(), testKey(t), 2)
	defer other.Close()
	for i, raw := range rawEntries(t, other) {
		ev := Event{Time: start.Add(time.Duration(i) * time.Hour), Kind: keyshare.AuditRead, Subject: subjects[0]}
		if _, err := l.append(ev, raw); err != nil {
			t.Fatal(err)
		}
	}
	return l, subjects, records, start
}

func rawEntries(t *testing.T, l *Log) [][]byte {
	t.Helper()
	raws, err := l.readFrom(0, 0)
	if err != nil {
		t.Fatal(err)
	}
	return raws
}

// scan is List without the index: every entry, checked against f.
func scan(t *testing.T, l *Log, f Filter) []uint64 {
	t.Helper()
	var out []uint64
	for _, raw := range rawEntries(t, l) {
		e, err := protocol.DecodeAuditEntry(raw)
		if err == nil && f.match(view(e, raw)) {
			out = append(out, e.Seq)
		}
	}
	if f.Limit > 0 && len(out) > f.Limit {
		out = out[len(out)-f.Limit:]
	}
	return out
}

func seqs(es []Entry) []uint64 {
	out := []uint64{}
	for _, e := range es {
		out = append(out, e.Seq)
	}
	return out
}

// filters are the listings the index must answer like a scan.
func filters(subjects []protocol.AccountID, records []cid.Cid, start time.Time) map[string]Filter {
	return map[string]Filter{
		"all":              {},
		"newest 7":         {Limit: 7},
		"record":           {Record: records[1]},
		"record, limit":    {Record: records[1], Limit: 3},
		"unknown record":   {Record: testCIDPlain("nowhere")},
		"subject":          {Subjects: subjects[:1]},
		"two subjects":     {Subjects: subjects[1:]},
		"since":            {Since: start.Add(30 * time.Minute)},
		"since and until":  {Since: start.Add(10 * time.Minute), Until: start.Add(25 * time.Minute)},
		"subject, since":   {Subjects: subjects[2:], Since: start.Add(40 * time.Minute)},
		"record, subject":  {Record: records[3], Subjects: subjects[:1]},
		"kind":             {Kinds: []keyshare.AuditKind{keyshare.AuditRead}},
		"until before all": {Until: start.Add(-time.Hour)},
	}
}

func testCIDPlain(s string) cid.Cid {
	c, _ := cid.Prefix{Version: 1, Codec: cid.Raw, MhType: 0x12, MhLength: -1}.Sum([]byte(s))
	return c
}

// TestIndexListsLikeAScan: every listing through the index returns what
// reading the whole log would, before and after a reopen (when the
// index is read from its file).
func TestIndexListsLikeAScan(t *testing.T) {
	dir, priv := t.TempDir(), testKey(t)
	var lines logLines
	l, subjects, records, start := mixedLog(t, dir, priv, lines.logger())
	ctx := context.Background()
	check := func(when string) {
		for name, f := range filters(subjects, records, start) {
			got, err := l.List(ctx, f)
			if err != nil {
				t.Fatalf("%s, %s: %v", when, name, err)
			}
			if want := scan(t, l, f); !slices.Equal(seqs(got), want) && !(len(got) == 0 && len(want) == 0) {
				t.Fatalf("%s, %s: listed %v, the log holds %v", when, name, seqs(got), want)
			}
		}
	}
	check("written")
	if rep, err := l.Verify(ctx); err != nil || rep.Entries != 62 {
		t.Fatalf("Verify: %+v, %v", rep, err)
	}
	l.Close()
	if l, _ = Open(dir, priv, Options{Logger: lines.logger()}); l == nil {
		t.Fatal("reopen failed")
	}
	defer l.Close()
	if strings.Contains(lines.String(), "rebuil") {
		t.Fatalf("an intact index was rebuilt:\n%s", lines.String())
	}
	check("reopened")
	if last, ok := l.Reported(other(t, l)); !ok || last != 1 {
		t.Fatalf("Reported after reopen from the index: %d, %v", last, ok)
	}
	if e, err := l.Append(ctx, Event{Kind: keyshare.AuditGrant}); err != nil || e.Seq != 62 {
		t.Fatalf("Append after reopen: %+v, %v", e, err)
	}
	check("appended after reopen")
}

// other returns the reporter of the log's reported entries.
func other(t *testing.T, l *Log) string {
	t.Helper()
	all, err := l.List(context.Background(), Filter{})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range all {
		if e.ReportedBy != "" {
			return e.ReportedBy
		}
	}
	t.Fatal("no reported entry")
	return ""
}

// TestIndexDamaged: an index file missing, cut, overwritten, stale or
// of another log never fails Open nor hides an entry: it is rebuilt from
// the log, and the node's log says so.
func TestIndexDamaged(t *testing.T) {
	cases := []struct {
		name   string
		damage func(t *testing.T, path string, data []byte, earlier []byte)
	}{
		{"missing", func(t *testing.T, path string, _, _ []byte) { os.Remove(path) }},
		{"empty", func(t *testing.T, path string, _, _ []byte) { os.WriteFile(path, nil, 0o600) }},
		{"cut in a record", func(t *testing.T, path string, data, _ []byte) { os.WriteFile(path, data[:len(data)*2/3], 0o600) }},
		{"bytes overwritten", func(t *testing.T, path string, data, _ []byte) {
			copy(data[len(data)/2:], bytes.Repeat([]byte{0xff}, 24))
			os.WriteFile(path, data, 0o600)
		}},
		{"a byte flipped", func(t *testing.T, path string, data, _ []byte) {
			data[len(data)/3] ^= 0x01
			os.WriteFile(path, data, 0o600)
		}},
		{"garbage", func(t *testing.T, path string, _, _ []byte) {
			os.WriteFile(path, []byte(indexMagic+"\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01"), 0o600)
		}},
		{"huge record length", func(t *testing.T, path string, _, _ []byte) {
			os.WriteFile(path, []byte(indexMagic+"\xff\xff\xff\xff\x0f"), 0o600)
		}},
		{"larger than any index of the log", func(t *testing.T, path string, data, _ []byte) {
			big := append(data, make([]byte, 3*len(must(os.ReadFile(filepath.Join(filepath.Dir(path), LogFile)))))...)
			os.WriteFile(path, big, 0o600)
		}},
		{"stale: older than the log", func(t *testing.T, path string, _, earlier []byte) { os.WriteFile(path, earlier, 0o600) }},
		{"of another log", func(t *testing.T, path string, _, _ []byte) {
			o := fill(t, t.TempDir(), testKey(t), 70)
			data, err := os.ReadFile(indexPath(o.dir))
			o.Close()
			if err != nil {
				t.Fatal(err)
			}
			os.WriteFile(path, data, 0o600)
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir, priv := t.TempDir(), testKey(t)
			var lines logLines
			l, subjects, records, start := mixedLog(t, dir, priv, lines.logger())
			l.Close()
			earlier := indexUpTo(t, dir, 40)
			path := indexPath(dir)
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			c.damage(t, path, data, earlier)
			l, err = Open(dir, priv, Options{Logger: lines.logger()})
			if err != nil {
				t.Fatalf("Open with the index %s: %v", c.name, err)
			}
			defer l.Close()
			if c.name != "stale: older than the log" && !strings.Contains(lines.String(), "rebuilding it from the log") {
				t.Fatalf("the node's log does not say the index was rebuilt:\n%s", lines.String())
			}
			if c.name == "larger than any index of the log" && !strings.Contains(lines.String(), "more than a log of") {
				t.Fatalf("the node's log does not say the index is too large:\n%s", lines.String())
			}
			for name, f := range filters(subjects, records, start) {
				got, err := l.List(context.Background(), f)
				if want := scan(t, l, f); err != nil || !slices.Equal(seqs(got), want) && len(want) > 0 {
					t.Fatalf("%s: listed %v (%v), the log holds %v", name, seqs(got), err, want)
				}
			}
			if rep, err := l.Verify(context.Background()); err != nil {
				t.Fatalf("Verify after the rebuild: %+v, %v", rep, err)
			}
		})
	}
}

// indexUpTo returns the index file of the log in dir as it was after its
// first n entries.
func indexUpTo(t *testing.T, dir string, n int) []byte {
	t.Helper()
	recs, err := readIndex(must(os.ReadFile(indexPath(dir))))
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	b.WriteString(indexMagic)
	for _, r := range recs[:n] {
		b.Write(r.encode())
	}
	return b.Bytes()
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// TestIndexEditedIsCaughtByVerify: an index edited with care (its
// checksums right) to leave a subject out of an entry is taken at Open,
// so the entry would not be listed for that subject; Verify reports it
// and rebuilds the index, after which it is listed.
func TestIndexEditedIsCaughtByVerify(t *testing.T) {
	dir, priv := t.TempDir(), testKey(t)
	l, subjects, _, _ := mixedLog(t, dir, priv, quiet())
	l.Close()
	recs, err := readIndex(must(os.ReadFile(indexPath(dir))))
	if err != nil {
		t.Fatal(err)
	}
	recs[3].subject = "" // entry 3 is about subjects[0]
	var b bytes.Buffer
	b.WriteString(indexMagic)
	for _, r := range recs {
		b.Write(r.encode())
	}
	os.WriteFile(indexPath(dir), b.Bytes(), 0o600)
	l, err = Open(dir, priv, Options{Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx := context.Background()
	f := Filter{Subjects: subjects[:1]}
	rep, err := l.Verify(ctx)
	if !errors.Is(err, ErrTampered) || !strings.Contains(err.Error(), "audit index (index): its record of entry 3 does not match the log") {
		t.Fatalf("Verify of an edited index: %v (%+v)", err, rep)
	}
	got, err := l.List(ctx, f)
	if err != nil || !slices.Contains(seqs(got), 3) || !slices.Equal(seqs(got), scan(t, l, f)) {
		t.Fatalf("after Verify rebuilt the index: %v, %v", seqs(got), err)
	}
	if rep, err := l.Verify(ctx); err != nil {
		t.Fatalf("Verify after the rebuild: %+v, %v", rep, err)
	}
	l.Close()
	if l, err = Open(dir, priv, Options{Logger: quiet()}); err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if got, err := l.List(ctx, f); err != nil || !slices.Contains(seqs(got), 3) {
		t.Fatalf("after reopening: %v, %v", seqs(got), err)
	}
}

// TestIndexFollowsAppends: the index file is written with each append
// (before any sync), so a log that was not closed still has an index
// matching it.
func TestIndexFollowsAppends(t *testing.T) {
	dir, priv := t.TempDir(), testKey(t)
	l, _, _, _ := mixedLog(t, dir, priv, quiet())
	defer l.Close()
	recs, err := readIndex(must(os.ReadFile(indexPath(dir))))
	if err != nil {
		t.Fatal(err)
	}
	l.mu.Lock()
	mem := l.idx.recs
	l.mu.Unlock()
	if why := compareIndex(recs, mem); why != "" || len(recs) != 62 {
		t.Fatalf("index file after 62 appends (%d records): %s", len(recs), why)
	}
}
