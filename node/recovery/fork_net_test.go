package recovery

import (
	"context"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"

	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/node/chainsync"
	"github.com/blockmrs/blockmrs/protocol"
)

// noFetch is a chain sync fetcher that fetches no record: these nodes
// move chains only.
type noFetch struct{}

func (noFetch) Fetch(context.Context, cid.Cid, ...peer.ID) error { return nil }

// syncing starts chain sync on p's host.
func (p *party) syncing(t *testing.T) *chainsync.Service {
	t.Helper()
	s := chainsync.New(p.host, p.repo, noFetch{}, quiet())
	t.Cleanup(func() { s.Close() })
	return s
}

// knows puts q's addresses in p's peerstore.
func knows(p, q *party) {
	p.host.Peerstore().AddAddrs(q.host.ID(), q.host.Addrs(), peerstore.PermanentAddrTTL)
}

// Over real libp2p nodes: the thief, holding Pat's stolen device (whose
// node the recovery withdraws, so Pat's nodes no longer serve it), grants
// her record to the thief's own account, and its node syncs that branch
// to a clinic first; Pat recovers on a new device with Cam's and Dee's
// approvals, and when the clinic syncs from the new device it switches
// to the recovery's branch: the thief's grant stops counting, verify
// passes showing the thief's branch superseded, the clinic follows what
// Pat writes next (announced by her node), and the thief's later blocks,
// synced again, change nothing.
func TestClinicFollowsRecoveryOverThief(t *testing.T) {
	ctx := t.Context()
	w := newWorld(t)
	id := w.pat.keys.ID
	clinic, mal := newParty(t, "St Mary's"), newParty(t, "Mal")
	thief := w.pat // the stolen device: Pat's repo, keys and node

	// Before the theft: Pat shares a record with the clinic.
	sendChain(t, clinic, thief, clinic.keys.ID)
	sendChain(t, mal, thief, mal.keys.ID)
	rec, err := thief.repo.AddRecord(ctx, thief.keys, keyshare.NewRecord{Title: "Allergies", Kind: protocol.KindNote, MediaType: "text/plain", Body: strings.NewReader("penicillin")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := thief.repo.Grant(ctx, thief.keys, []cid.Cid{rec}, clinic.keys.ID, time.Time{}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []*party{clinic, w.fresh, w.cam, w.dee} {
		sendChain(t, thief, p, id)
	}
	sendChain(t, clinic, w.fresh, clinic.keys.ID)

	// The theft: the thief grants the record to Mal, and its node syncs
	// the branch to the clinic.
	if _, err := thief.repo.Grant(ctx, thief.keys, []cid.Cid{rec}, mal.keys.ID, time.Time{}); err != nil {
		t.Fatal(err)
	}
	thief.syncing(t)
	clinicSync := clinic.syncing(t)
	knows(clinic, thief)
	if _, err := clinicSync.Sync(ctx, thief.host.ID(), id); err != nil {
		t.Fatalf("the clinic syncs the thief's branch: %v", err)
	}
	malReads := func() bool {
		a, err := clinic.repo.Access(ctx, rec)
		if err != nil {
			t.Fatal(err)
		}
		_, ok := a.Reader(mal.keys.ID)
		return ok
	}
	if !malReads() {
		t.Fatal("precondition: the thief's grant counts at the clinic")
	}
	thiefHead, err := clinic.repo.Account(ctx, id)
	if err != nil {
		t.Fatal(err)
	}

	// Pat recovers on the new device, which declares its node.
	s, err := w.fresh.repo.StartRecovery(ctx, id, nil)
	if err != nil {
		t.Fatal(err)
	}
	req := mustToken(t, s.Token)
	for _, c := range []*party{w.cam, w.dee} {
		resp, err := c.repo.ApproveRecovery(ctx, c.keys, req)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.fresh.repo.AddRecoveryResponse(ctx, id, resp); err != nil {
			t.Fatal(err)
		}
	}
	nk, err := w.fresh.repo.FinishRecovery(ctx, id, nil, keyshare.DeviceInfo{PeerID: w.fresh.host.ID().String(), Name: "Pat's new laptop"})
	if err != nil {
		t.Fatal(err)
	}
	w.fresh.syncing(t)
	knows(clinic, w.fresh)
	knows(w.fresh, clinic)
	// The clinic asks (the new node may have announced the chain
	// already on connecting: either way the clinic switches).
	if _, err := clinicSync.Sync(ctx, w.fresh.host.ID(), id); err != nil {
		t.Fatalf("the clinic syncs the recovered chain: %v", err)
	}
	head := func(r *keyshare.Repo) cid.Cid {
		info, err := r.Account(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return info.Head
	}
	waitFor(t, "the clinic follows the recovered owner", func() bool { return head(clinic.repo) == head(w.fresh.repo) })
	if malReads() {
		t.Fatal("the thief's grant still counts at the clinic")
	}
	rep, err := clinic.repo.Verify(ctx, keyshare.VerifyOptions{})
	if err != nil || !rep.OK || len(rep.Superseded) != 1 || len(rep.Forks) != 0 || rep.Superseded[0].Superseded != thiefHead.Head.String() {
		t.Fatalf("clinic verify: %+v %v (the thief's head %s)", rep, err, thiefHead.Head)
	}
	if notes := rep.SupersededNotes(nil); len(notes) != 1 || !strings.Contains(notes[0], "superseded by recovery") {
		t.Fatalf("verify notes: %q", notes)
	}

	// Pat writes on; her node announces the head and the clinic pulls it.
	if _, err := w.fresh.repo.Grant(ctx, nk, []cid.Cid{rec}, clinic.keys.ID, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if err := clinic.host.Connect(ctx, peer.AddrInfo{ID: w.fresh.host.ID(), Addrs: w.fresh.host.Addrs()}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the clinic follows Pat's next block", func() bool { return head(clinic.repo) == head(w.fresh.repo) })

	// The thief writes on its branch; synced again, it changes nothing.
	if _, err := thief.repo.Grant(ctx, thief.keys, []cid.Cid{rec}, mal.keys.ID, time.Time{}); err != nil {
		t.Fatal(err)
	}
	want := head(clinic.repo)
	res, err := clinicSync.Sync(ctx, thief.host.ID(), id)
	if err != nil {
		t.Fatalf("the thief's later branch: %v", err)
	}
	if len(res.Superseded) != 1 || res.Superseded[0].Switched || head(clinic.repo) != want || malReads() {
		t.Fatalf("the thief's later branch moved the clinic: %+v", res)
	}
}

func mustToken(t *testing.T, token string) []byte {
	t.Helper()
	b, err := hex.DecodeString(token)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
