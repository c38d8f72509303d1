package keyshare

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/blockmrs/blockmrs/protocol"
)

// A stranger floods a guardian's node with offers: n accounts, whose
// chains the node holds, each appoint its local account Gail (none
// accepted). One want of Gail's chain head by a peer unrelated to them
// must not cost in proportion to the offers: only the wards the peer
// acts for are looked at.
//
//	go test -run '^$' -bench 'GuardianOffers' -benchtime 200x ./keyshare

func buildGuardianOffers(tb testing.TB, n int) (*Repo, protocol.AccountID, string, string) {
	tb.Helper()
	ctx := context.Background()
	r, err := Open(ctx, tb.TempDir(), Options{Create: true})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { r.Close() })
	gail, err := r.CreateAccount(ctx, "Gail", protocol.RolePatient, nil)
	if err != nil {
		tb.Fatal(err)
	}
	now := time.Now().UnixMilli()
	var blocks []verifiedBlock
	var lastNode string
	for i := range n {
		k, err := GenerateKeys()
		if err != nil {
			tb.Fatal(err)
		}
		node := benchPeerID(tb)
		p := signed(tb, k, 0, nil, now, profileEntries(tb, k, fmt.Sprintf("Ward %d", i), protocol.RolePatient, DeviceInfo{PeerID: node}))
		a := signed(tb, k, 1, &p.cid, now, []protocol.Entry{protocol.NewEntry(&protocol.GuardianAppoint{To: gail.Public(), May: protocol.GuardianRights, From: 1})})
		blocks = append(blocks, p, a)
		lastNode = node
	}
	other, err := GenerateKeys()
	if err != nil {
		tb.Fatal(err)
	}
	otherNode := benchPeerID(tb)
	blocks = append(blocks, signed(tb, other, 0, nil, now, profileEntries(tb, other, "Other", protocol.RolePatient, DeviceInfo{PeerID: otherNode})))
	r.mu.Lock()
	err = r.commit(ctx, blocks)
	r.mu.Unlock()
	if err != nil {
		tb.Fatal(err)
	}
	return r, gail.ID, lastNode, otherNode
}

// The decisions stay right with many offers: neither a ward whose offer
// is pending nor an unrelated peer gets Gail's chain head.
func TestGuardianOffersDecisions(t *testing.T) {
	ctx := context.Background()
	r, gail, wardNode, otherNode := buildGuardianOffers(t, 50)
	head := r.mustHead(t, gail)
	for name, c := range map[string]struct {
		peer string
		rule Rule
	}{"a ward, pending": {wardNode, RuleGuardianNotAccepted}, "unrelated": {otherNode, RuleChainNotShared}} {
		d, err := r.MayServe(ctx, c.peer, head)
		if err != nil || d.Allow || d.Rule != c.rule {
			t.Errorf("%s: %+v %v, want %s", name, d, err, c.rule)
		}
	}
}

func BenchmarkGuardianOffers(b *testing.B) {
	ctx := context.Background()
	for _, n := range []int{10, 2000} {
		r, gail, _, otherNode := buildGuardianOffers(b, n)
		st, err := r.state(ctx, gail)
		if err != nil {
			b.Fatal(err)
		}
		head := st.head()
		b.Run(fmt.Sprintf("offers=%d", n), func(b *testing.B) {
			for b.Loop() {
				if d, err := r.MayServe(ctx, otherNode, head); err != nil || d.Allow {
					b.Fatalf("%+v %v", d, err)
				}
			}
		})
	}
}
