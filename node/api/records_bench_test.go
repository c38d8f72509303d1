package api

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/blockmrs/blockmrs/internal/benchrepo"
	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/protocol"
)

// BenchmarkRecordsList is GET /api/v1/records through an unlocked
// session: a real server on loopback over a real repo whose account (with
// a passphrase, unlocked once) reads N records written by a clinician
// (internal/benchrepo: real age ciphertexts, envelopes and wrapped keys).
// Each iteration is one GET with its body read to the end. It reports the
// median and the 90th percentile of the iterations, and first-ms, the
// first GET after the unlock. BENCHMARKS.md ("Web app and unlocked
// sessions") has the numbers:
//
//	go test -run '^$' -bench RecordsList -benchtime 50x ./node/api
func BenchmarkRecordsList(b *testing.B) {
	parent := b
	for _, n := range []int{1000, 10000} {
		var lr *listRepo // built once, on the parent, whose cleanups run last
		b.Run(fmt.Sprintf("records=%d", n), func(b *testing.B) {
			if lr == nil {
				lr = newListRepo(parent, n)
			}
			times := make([]time.Duration, 0, b.N)
			for b.Loop() {
				start := time.Now()
				if body := lr.get(b); len(body) == 0 {
					b.Fatal("empty list")
				}
				times = append(times, time.Since(start))
			}
			slices.Sort(times)
			ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
			b.ReportMetric(ms(times[len(times)/2]), "median-ms")
			b.ReportMetric(ms(times[len(times)*9/10]), "p90-ms")
			b.ReportMetric(ms(lr.first), "first-ms")
		})
	}
}

// listRepo is a running server over a repo of n records and the request
// that lists them.
type listRepo struct {
	req    *http.Request
	first  time.Duration
	author string // of the records (the bench clinician)
}

// with returns a copy of lr that lists with the query q.
func (lr *listRepo) with(q string) *listRepo {
	req := lr.req.Clone(lr.req.Context())
	req.URL.RawQuery = q
	return &listRepo{req: req}
}

func newListRepo(b *testing.B, n int) *listRepo {
	b.Helper()
	ctx := b.Context()
	repo, err := keyshare.Open(ctx, b.TempDir(), keyshare.Options{Create: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { repo.Close() })
	pass := []byte("bench passphrase")
	k, err := repo.CreateAccount(ctx, "Pat", protocol.RolePatient, pass)
	if err != nil {
		b.Fatal(err)
	}
	info, err := repo.Account(ctx, k.ID)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := benchrepo.Fill(ctx, repo, info, n); err != nil {
		b.Fatal(err)
	}
	sessions := keyshare.NewSessions(repo)
	b.Cleanup(sessions.Close)
	e := startServer(b, Options{Repo: repo, Sessions: sessions})
	req, err := http.NewRequest(http.MethodGet, e.srv.URL()+recordsPath, nil)
	if err != nil {
		b.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+e.token)
	lr := &listRepo{req: req}
	if _, err := sessions.Unlock(ctx, k.ID, pass, time.Hour); err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	body := lr.get(b)
	lr.first = time.Since(start)
	var l listing
	if err := json.Unmarshal(body, &l); err != nil {
		b.Fatal(err)
	}
	if len(l.Records) != n || !l.Records[0].Readable || l.Records[0].Title == "" {
		b.Fatalf("listed %d records (want %d), first %+v", len(l.Records), n, l.Records[:min(1, len(l.Records))])
	}
	var first struct {
		Records []struct {
			Author string `json:"author"`
		} `json:"records"`
	}
	if err := json.Unmarshal(body, &first); err != nil {
		b.Fatal(err)
	}
	lr.author = first.Records[0].Author
	return lr
}

// get lists the records and returns the body.
func (lr *listRepo) get(b *testing.B) []byte {
	b.Helper()
	resp, err := http.DefaultClient.Do(lr.req)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		b.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		b.Fatalf("GET %s: %d %s", recordsPath, resp.StatusCode, body)
	}
	return body
}

// BenchmarkRecordsFiltered is GET /api/v1/records with the finding
// filters over 10,000 records (a third of them lab Observations whose
// envelopes carry clinical fields, see internal/benchrepo), through an
// unlocked session, each filter on its own: what a filtered list costs
// next to the plain list of BenchmarkRecordsList. BENCHMARKS.md ("Finding
// things") has the numbers:
//
//	go test -run '^$' -bench RecordsFiltered -benchtime 30x ./node/api
func BenchmarkRecordsFiltered(b *testing.B) {
	const n = 10000
	lr := newListRepo(b, n)
	for _, f := range []struct{ name, q string }{
		{"none", ""},
		{"type", "type=Observation"},
		{"code", "code=2345-7"},
		{"dates", "since=2020-01-01&until=2022-12-31"},
		{"type+code+dates+text", "type=Observation&code=http://loinc.org%7C2345-7&since=2015&until=2018&q=record"},
		{"author", "author=" + lr.author},
	} {
		b.Run(f.name, func(b *testing.B) {
			fl := lr.with(f.q)
			times := make([]time.Duration, 0, b.N)
			rows := 0
			for b.Loop() {
				start := time.Now()
				body := fl.get(b)
				times = append(times, time.Since(start))
				var l listing
				if err := json.Unmarshal(body, &l); err != nil {
					b.Fatal(err)
				}
				rows = len(l.Records)
			}
			if f.q != "" && f.name != "author" && (rows == 0 || rows >= n) {
				b.Fatalf("filter %q kept %d of %d rows", f.q, rows, n)
			}
			slices.Sort(times)
			b.ReportMetric(float64(times[len(times)/2])/float64(time.Millisecond), "median-ms")
			b.ReportMetric(float64(rows), "rows")
		})
	}
}

// BenchmarkRecordPage is GET /api/v1/records/{cid}, what the record page
// asks for on every chain event, over 10,000 records through an unlocked
// session (the session cache warmed by one list): it finds the record's
// versions by opening only the records linked to it (Repo.VersionsOf),
// not the whole listing. BENCHMARKS.md ("Finding things") has the numbers:
//
//	go test -run '^$' -bench RecordPage -benchtime 30x ./node/api
func BenchmarkRecordPage(b *testing.B) {
	const n = 10000
	lr := newListRepo(b, n)
	var l struct {
		Records []struct {
			CID string `json:"cid"`
		} `json:"records"`
	}
	if err := json.Unmarshal(lr.get(b), &l); err != nil {
		b.Fatal(err)
	}
	one := &listRepo{req: lr.req.Clone(lr.req.Context())}
	one.req.URL.Path += "/" + l.Records[n/2].CID
	times := make([]time.Duration, 0, b.N)
	for b.Loop() {
		start := time.Now()
		body := one.get(b)
		times = append(times, time.Since(start))
		if !strings.Contains(string(body), l.Records[n/2].CID) {
			b.Fatalf("record page body does not name the record: %.200s", body)
		}
	}
	slices.Sort(times)
	b.ReportMetric(float64(times[len(times)/2])/float64(time.Millisecond), "median-ms")
}
