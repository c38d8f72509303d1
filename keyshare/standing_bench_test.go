package keyshare

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"

	"github.com/blockmrs/blockmrs/protocol"
)

// The daemon's periodic standing-grant pass (node/autoack.go calls
// CoverStanding every AckEvery) on a subject with many records and a few
// standing grants, every record in a scope covered already: the pass has
// nothing to give.
//
//	bash scripts/bench-standing.sh
//	go test -run '^$' -bench 'CoverStanding' -benchtime 20x ./keyshare

// standingRepo is a repo whose local account subject holds n records of
// her own (two in three FHIR Observations, the others Conditions) and
// three standing grants: patient/Observation.rs, patient/*.rs and
// patient/Immunization.rs (which holds none of them); the keys of the
// records in the first two are on her chain already.
type standingRepo struct {
	repo     *Repo
	subject  *Keys
	grantees []*Keys
	recs     []cid.Cid
	// meta is a sealed envelope per resource type, entry a record entry
	// of the subject's with it (one record key for all).
	meta    map[string][]byte
	wrapped []byte
}

// entry returns a record entry of the subject's for record c, a FHIR
// resource of type rt (Observation or Condition).
func (sr *standingRepo) entry(c cid.Cid, rt string) protocol.Entry {
	return protocol.NewEntry(&protocol.Record{Record: protocol.NewLink(c), Subject: sr.subject.Public(), Meta: sr.meta[rt],
		Keys: []protocol.WrappedKey{{To: sr.subject.Public(), Key: sr.wrapped}}})
}

// appendRaw commits a block of entries on the subject's chain as a block
// received from another of her nodes would be: no pass runs with it.
func (sr *standingRepo) appendRaw(tb testing.TB, es ...protocol.Entry) {
	tb.Helper()
	ctx := context.Background()
	r := sr.repo
	r.mu.Lock()
	defer r.mu.Unlock()
	st, err := r.state(ctx, sr.subject.ID)
	if err != nil {
		tb.Fatal(err)
	}
	head := st.head()
	if err := r.commit(ctx, []verifiedBlock{signed(tb, sr.subject, st.Seq+1, &head, time.Now().UnixMilli(), es)}); err != nil {
		tb.Fatal(err)
	}
}

var standingScopes = []string{"patient/Observation.rs", "patient/*.rs", "patient/Immunization.rs"}

func buildStanding(tb testing.TB, n int) *standingRepo {
	tb.Helper()
	ctx := context.Background()
	r := openTempRepo(tb)
	subject, err := r.CreateAccount(ctx, "Pat", protocol.RolePatient, nil)
	if err != nil {
		tb.Fatal(err)
	}
	sr := &standingRepo{repo: r, subject: subject}
	var vbs []verifiedBlock
	for i := range standingScopes {
		g, err := GenerateKeys()
		if err != nil {
			tb.Fatal(err)
		}
		sr.grantees = append(sr.grantees, g)
		vbs = append(vbs, signed(tb, g, 0, nil, 1, profileEntries(tb, g, fmt.Sprintf("Grantee %d", i), protocol.RoleClinician)))
	}
	self, err := r.Account(ctx, subject.ID)
	if err != nil {
		tb.Fatal(err)
	}
	// One record key serves every record, so that building is quick; the
	// pass still opens each envelope it has to.
	key, err := age.GenerateX25519Identity()
	if err != nil {
		tb.Fatal(err)
	}
	wrapped, err := wrapKey(key, self)
	if err != nil {
		tb.Fatal(err)
	}
	meta := map[string][]byte{}
	sr.meta, sr.wrapped = meta, wrapped
	for _, rt := range []string{"Observation", "Condition"} {
		env := &protocol.Envelope{Title: rt, Kind: protocol.KindFHIR, MediaType: "application/fhir+json", Author: subject.Public(),
			Subject: subject.Public(), Created: 1, FHIR: &protocol.Clinical{ResourceType: rt}}
		hdr, err := env.Header()
		if err != nil {
			tb.Fatal(err)
		}
		if meta[rt], err = seal(hdr, key.Recipient()); err != nil {
			tb.Fatal(err)
		}
	}
	var content []blocks.Block
	for j := range n {
		data := fmt.Appendf(nil, "record %d", j)
		h, _ := mh.Sum(data, mh.SHA2_256, -1)
		c := cid.NewCidV1(cid.Raw, h)
		blk, _ := blocks.NewBlockWithCid(data, c)
		content = append(content, blk)
		sr.recs = append(sr.recs, c)
	}
	for start := 0; start < len(content); start += 4096 {
		if err := r.st.Blockstore().PutMany(ctx, content[start:min(start+4096, len(content))]); err != nil {
			tb.Fatal(err)
		}
	}
	if err := r.indexRecords(ctx, sr.recs); err != nil {
		tb.Fatal(err)
	}
	st, err := r.state(ctx, subject.ID)
	if err != nil {
		tb.Fatal(err)
	}
	prev, seq := st.head(), st.Seq
	now := time.Now().UnixMilli()
	next := func(es []protocol.Entry) {
		seq++
		vb := signed(tb, subject, seq, &prev, now, es)
		vbs = append(vbs, vb)
		prev = vb.cid
	}
	var grants []protocol.Entry
	for i, g := range sr.grantees {
		grants = append(grants, protocol.NewEntry(&protocol.ScopeGrant{To: g.Public(), Scope: standingScopes[i]}))
	}
	next(grants)
	const perBlock = 500 // records per block, with their scoped keys: under the 1 MiB limit
	for start := 0; start < n; start += perBlock {
		var es []protocol.Entry
		var obs, all []protocol.RecordKey
		for j := start; j < min(start+perBlock, n); j++ {
			rt := "Condition"
			if j%3 != 2 {
				rt = "Observation"
			}
			es = append(es, sr.entry(sr.recs[j], rt))
			rk := protocol.RecordKey{Record: protocol.NewLink(sr.recs[j]), Key: randBytes(200)}
			if rt == "Observation" {
				obs = append(obs, rk)
			}
			all = append(all, rk)
		}
		es = append(es, protocol.NewEntry(&protocol.ScopedKeys{To: sr.grantees[0].Public(), Scope: standingScopes[0], Keys: obs}),
			protocol.NewEntry(&protocol.ScopedKeys{To: sr.grantees[1].Public(), Scope: standingScopes[1], Keys: all}))
		next(es)
	}
	r.mu.Lock()
	err = r.commit(ctx, vbs)
	r.mu.Unlock()
	if err != nil {
		tb.Fatal(err)
	}
	return sr
}

// The builder's repo is what the benchmark says: every record in a scope
// covered (a pass gives nothing), and one record more is covered by the
// next pass.
func TestStandingBenchRepo(t *testing.T) {
	ctx := context.Background()
	sr := buildStanding(t, 300)
	if n, err := sr.repo.CoverStanding(ctx, sr.subject); err != nil || n != 0 {
		t.Fatalf("a pass over the covered repo gave %d keys, %v; want 0", n, err)
	}
	a, err := sr.repo.AccessFor(ctx, sr.recs[0], sr.subject.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range sr.grantees[:2] {
		if _, ok := a.Reader(g.ID); !ok {
			t.Errorf("%s does not read %s under its standing grant", g.ID, sr.recs[0])
		}
	}
	if _, err := sr.repo.AddRecord(ctx, sr.subject, NewRecord{Kind: protocol.KindNote, Title: "note", MediaType: "text/plain", Body: strings.NewReader("a note")}); err != nil {
		t.Fatal(err)
	}
	// The author wrapped it for patient/*.rs as it wrote it: still nothing.
	if n, err := sr.repo.CoverStanding(ctx, sr.subject); err != nil || n != 0 {
		t.Fatalf("a pass after a covered add gave %d keys, %v; want 0", n, err)
	}
}

// BenchmarkCoverStanding measures CoverStanding with nothing new to give
// at 10,000 and 100,000 records: "idle" as the daemon runs it every
// AckEvery, "full" with the repo's pass mark cleared first (what every
// pass cost before the mark, and what a pass after a chain change costs).
func BenchmarkCoverStanding(b *testing.B) {
	ctx := context.Background()
	for _, n := range []int{10_000, 100_000} {
		b.Run(fmt.Sprintf("records=%d", n), func(b *testing.B) {
			sr := buildStanding(b, n) // built only when a run of this size is asked for
			for _, mode := range []string{"full", "idle"} {
				b.Run(mode, func(b *testing.B) {
					for b.Loop() {
						if mode == "full" {
							sr.repo.forgetCoverMark(ctx, sr.subject.ID)
						}
						if got, err := sr.repo.CoverStanding(ctx, sr.subject); err != nil || got != 0 {
							b.Fatalf("gave %d keys, %v; want 0", got, err)
						}
					}
				})
			}
		})
	}
}
