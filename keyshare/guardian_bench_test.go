package keyshare

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/blockmrs/blockmrs/protocol"
)

// Access checks per want with guardians and standing grants in play: the
// clinic repo (buildClinic), where patient 0 also appoints a guardian
// (whose read right is a standing grant of patient/*.rs, with her records
// wrapped for it under it), the guardian grants her records to a
// specialist by a wardgrant on its own chain, and a stranger forges a
// wardgrant for her.
//
//	go test -run '^$' -bench 'GuardianDecision' -benchtime 2000x ./keyshare

type guardianBench struct {
	*clinicRepo
	guardianNode, specialistNode, strangerNode string
}

func buildGuardianClinic(tb testing.TB, n int) *guardianBench {
	tb.Helper()
	ctx := context.Background()
	gb := &guardianBench{clinicRepo: buildClinic(tb, n), guardianNode: benchPeerID(tb), specialistNode: benchPeerID(tb), strangerNode: benchPeerID(tb)}
	r, ward := gb.repo, gb.patients[0]
	remote := func(name string, node string) (*Keys, verifiedBlock) {
		k, err := GenerateKeys()
		if err != nil {
			tb.Fatal(err)
		}
		return k, signed(tb, k, 0, nil, 1, profileEntries(tb, k, name, protocol.RolePatient, DeviceInfo{PeerID: node}))
	}
	g, g0 := remote("Guardian", gb.guardianNode)
	spec, s0 := remote("Specialist", gb.specialistNode)
	mal, m0 := remote("Stranger", gb.strangerNode)
	keys := func() []protocol.RecordKey {
		var out []protocol.RecordKey
		for _, c := range gb.recs[0] {
			out = append(out, protocol.RecordKey{Record: protocol.NewLink(c), Key: randBytes(200)})
		}
		return out
	}
	st, err := r.state(ctx, ward.ID)
	if err != nil {
		tb.Fatal(err)
	}
	head := st.head()
	now := time.Now().UnixMilli()
	appoint := signed(tb, ward, st.Seq+1, &head, now, []protocol.Entry{
		protocol.NewEntry(&protocol.GuardianAppoint{To: g.Public(), May: protocol.GuardianRights, From: 1}),
		protocol.NewEntry(&protocol.ScopeGrant{To: g.Public(), Scope: GuardianReadScope}),
		protocol.NewEntry(&protocol.ScopedKeys{To: g.Public(), Scope: GuardianReadScope, Keys: keys()}),
	})
	act := signed(tb, g, 1, &g0.cid, now, []protocol.Entry{
		protocol.NewEntry(&protocol.WardGrant{Ward: ward.Public(), To: spec.Public(), Keys: keys()}),
	})
	forged := signed(tb, mal, 1, &m0.cid, now, []protocol.Entry{
		protocol.NewEntry(&protocol.WardGrant{Ward: ward.Public(), To: mal.Public(), Keys: keys()}),
	})
	r.mu.Lock()
	err = r.commit(ctx, []verifiedBlock{g0, s0, m0, appoint, act, forged})
	r.mu.Unlock()
	if err != nil {
		tb.Fatal(err)
	}
	return gb
}

func (gb *guardianBench) cases(tb testing.TB) []struct {
	name string
	peer string
	c    cid.Cid
	want bool
} {
	head, _, err := gb.repo.blockAt(context.Background(), gb.patients[0].ID, 1)
	if err != nil {
		tb.Fatal(err)
	}
	rec := gb.recs[0][0]
	return []struct {
		name string
		peer string
		c    cid.Cid
		want bool
	}{
		{"guardian reads (standing grant)", gb.guardianNode, rec, true},
		{"guardian's grantee", gb.specialistNode, rec, true},
		{"forged wardgrant", gb.strangerNode, rec, false},
		{"ward's chain to guardian", gb.guardianNode, head, true},
		{"another patient's record to guardian", gb.guardianNode, gb.recs[len(gb.recs)-1][0], false},
	}
}

func TestGuardianClinicDecisions(t *testing.T) {
	ctx := context.Background()
	gb := buildGuardianClinic(t, 200)
	for _, tc := range gb.cases(t) {
		d, err := gb.repo.MayServe(ctx, tc.peer, tc.c)
		if err != nil || d.Allow != tc.want {
			t.Errorf("%s: %+v %v, want %v", tc.name, d, err, tc.want)
		}
	}
	a, err := gb.repo.AccessFor(ctx, gb.recs[0][0], gb.patients[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Problems) != 1 {
		t.Errorf("the forged wardgrant is not reported once: %v", a.Problems)
	}
}

// BenchmarkGuardianDecision measures one want's decision with guardians
// and standing grants in play, at 10,000 and 100,000 records.
func BenchmarkGuardianDecision(b *testing.B) {
	ctx := context.Background()
	for _, n := range []int{10_000, 100_000} {
		gb := buildGuardianClinic(b, n)
		for _, tc := range gb.cases(b) {
			b.Run(fmt.Sprintf("records=%d/%s", n, tc.name), func(b *testing.B) {
				for b.Loop() {
					d, err := gb.repo.MayServe(ctx, tc.peer, tc.c)
					if err != nil || d.Allow != tc.want {
						b.Fatalf("%+v %v", d, err)
					}
				}
			})
		}
	}
}
