package keyshare

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/blockmrs/blockmrs/protocol"
)

// The want scan on a guardian's node: a ward's records, none held yet,
// wrapped for the local guardian under the appointment's read right
// (GuardianReadScope), before and after the guardian accepts; against
// the same records granted to the same account by a plain grant, which
// asks no consent.
//
//	go test -run '^$' -bench 'GuardianWantScan' -benchtime 20x ./keyshare

// wardRecordsRepo is a repo whose one local account (the guardian, on
// node self) reads n records of a remote ward, none of them held: by
// the read right of the ward's appointment of it when appoint is set,
// else by a plain grant.
type wardRecordsRepo struct {
	repo     *Repo
	self     string
	guardian *Keys
	ward     *Keys
	appt     verifiedBlock // the appointment block (appoint only)
}

func buildWardRecords(tb testing.TB, n int, appoint bool) *wardRecordsRepo {
	tb.Helper()
	ctx := context.Background()
	r := openTempRepo(tb)
	wr := &wardRecordsRepo{repo: r, self: benchPeerID(tb)}
	r.SetNodeID(wr.self)
	g, err := r.CreateAccount(ctx, "Guardian", protocol.RolePatient, nil, DeviceInfo{PeerID: wr.self})
	if err != nil {
		tb.Fatal(err)
	}
	w, err := GenerateKeys()
	if err != nil {
		tb.Fatal(err)
	}
	wr.guardian, wr.ward = g, w
	now := time.Now().UnixMilli()
	vb := signed(tb, w, 0, nil, now, profileEntries(tb, w, "Ward", protocol.RolePatient, DeviceInfo{PeerID: benchPeerID(tb)}))
	vbs := []verifiedBlock{vb}
	next := func(es []protocol.Entry) verifiedBlock {
		prev := vbs[len(vbs)-1]
		vb := signed(tb, w, prev.block.Seq+1, &prev.cid, now, es)
		vbs = append(vbs, vb)
		return vb
	}
	const perBlock = 1000 // entries or keys per block, well under the 1 MiB block limit
	var recs []protocol.RecordKey
	for start := 0; start < n; start += perBlock {
		var es []protocol.Entry
		for range min(perBlock, n-start) {
			c := testCID(fmt.Sprintf("ward record %d", len(recs)))
			recs = append(recs, protocol.RecordKey{Record: protocol.NewLink(c), Key: randBytes(200)})
			es = append(es, protocol.NewEntry(&protocol.Record{
				Record: protocol.NewLink(c), Subject: w.Public(), Meta: randBytes(280),
				Keys: []protocol.WrappedKey{{To: w.Public(), Key: randBytes(200)}},
			}))
		}
		next(es)
	}
	for start := 0; start < n; start += perBlock {
		keys := recs[start:min(start+perBlock, n)]
		var es []protocol.Entry
		switch {
		case !appoint:
			es = []protocol.Entry{protocol.NewEntry(&protocol.Grant{To: g.Public(), Keys: keys})}
		case start == 0:
			es = []protocol.Entry{
				protocol.NewEntry(&protocol.GuardianAppoint{To: g.Public(), May: []protocol.GuardianRight{protocol.RightRead}, From: 1}),
				protocol.NewEntry(&protocol.ScopeGrant{To: g.Public(), Scope: GuardianReadScope}),
				protocol.NewEntry(&protocol.ScopedKeys{To: g.Public(), Scope: GuardianReadScope, Keys: keys}),
			}
		default:
			es = []protocol.Entry{protocol.NewEntry(&protocol.ScopedKeys{To: g.Public(), Scope: GuardianReadScope, Keys: keys})}
		}
		if vb := next(es); appoint && start == 0 {
			wr.appt = vb
		}
	}
	r.mu.Lock()
	err = r.commit(ctx, vbs)
	r.mu.Unlock()
	if err != nil {
		tb.Fatal(err)
	}
	return wr
}

// accept has the guardian accept the ward's appointment.
func (wr *wardRecordsRepo) accept(tb testing.TB) {
	tb.Helper()
	if _, _, err := wr.repo.AcceptWard(context.Background(), wr.guardian, wr.ward.ID); err != nil {
		tb.Fatal(err)
	}
}

// wants runs one full want scan and returns how many records it wants.
func (wr *wardRecordsRepo) wants(tb testing.TB) int {
	tb.Helper()
	w, err := wr.repo.WantedRecords(context.Background(), wr.self)
	if err != nil {
		tb.Fatal(err)
	}
	return len(w)
}

// The benchmark's repos want what the policy says: nothing before the
// accept, every record after it and under a plain grant.
func TestGuardianWantScanRepos(t *testing.T) {
	const n = 1500 // two blocks of each kind
	wr := buildWardRecords(t, n, true)
	if got := wr.wants(t); got != 0 {
		t.Fatalf("unaccepted: %d records wanted, want none", got)
	}
	wr.accept(t)
	if got := wr.wants(t); got != n {
		t.Fatalf("accepted: %d records wanted, want %d", got, n)
	}
	if got := buildWardRecords(t, n, false).wants(t); got != n {
		t.Fatalf("plain grant: %d records wanted, want %d", got, n)
	}
}

// BenchmarkGuardianWantScan measures a full want scan over a ward's
// records on her guardian's node (unaccepted, accepted) and under a
// plain grant.
func BenchmarkGuardianWantScan(b *testing.B) {
	for _, n := range []int{1_000, 10_000} {
		appointed := buildWardRecords(b, n, true)
		plain := buildWardRecords(b, n, false)
		run := func(name string, wr *wardRecordsRepo, want int) {
			b.Run(fmt.Sprintf("records=%d/%s", n, name), func(b *testing.B) {
				for b.Loop() {
					if got := wr.wants(b); got != want {
						b.Fatalf("%d wanted, want %d", got, want)
					}
				}
			})
		}
		run("unaccepted", appointed, 0)
		appointed.accept(b)
		run("accepted", appointed, n)
		run("plain-grant", plain, n)
	}
}
