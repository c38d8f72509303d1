package chainsync

import (
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/protocol"
)

// Gail adds Mal as a contact at a node of Mal's that gives Mal's real
// first block but, asked for the rest of Mal's chain, the head of Eve's
// (another account of Mal's, whose chain appoints Gail her guardian).
// Contact add brings the contact's chain only: Gail's node takes Mal's
// first block and holds nothing of Eve's, so it does not become a node
// that takes requests to Eve, nor lists her as Gail's ward.
func TestContactAddTakesOnlyTheContactsChain(t *testing.T) {
	ctx := t.Context()
	gail := newNode(t, "Gail", protocol.RolePatient)
	mal := newNode(t, "Mal", protocol.RolePatient)
	eve := newNode(t, "Eve", protocol.RolePatient)
	if _, err := eve.sync.Profile(ctx, gail.addr(), gail.keys.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := eve.repo.AppointGuardian(ctx, eve.keys, gail.keys.ID, []protocol.GuardianRight{protocol.RightRead, protocol.RightApprove}, time.Time{}); err != nil {
		t.Fatal(err)
	}
	eveHead, eveSeq := headOf(t, eve.repo, eve.keys.ID)
	eveChain, err := eve.repo.ChainBack(ctx, eveHead, keyshare.NoneHeld, 100, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	malHead, _ := headOf(t, mal.repo, mal.keys.ID)
	malFirst, err := mal.repo.ChainBack(ctx, malHead, keyshare.NoneHeld, 1, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	fake := fakePeer(t, func(q *protocol.SyncRequest) []byte {
		switch q.Kind {
		case protocol.SyncProfile:
			return frame(t, &protocol.SyncResponse{Status: protocol.SyncOK, Blocks: malFirst})
		case protocol.SyncHead:
			return frame(t, &protocol.SyncResponse{Status: protocol.SyncOK, Head: &protocol.Link{Cid: eveHead}, Seq: eveSeq})
		}
		return frame(t, &protocol.SyncResponse{Status: protocol.SyncOK, Blocks: eveChain})
	})
	if _, err := gail.sync.Profile(ctx, peer.AddrInfo{ID: fake.ID(), Addrs: fake.Addrs()}, mal.keys.ID); err != nil {
		t.Fatal(err)
	}
	if _, seq := headOf(t, gail.repo, mal.keys.ID); !headKnown(t, gail.repo, mal.keys.ID) || seq != 0 {
		t.Fatalf("Mal's chain on Gail's node: known %v, to block %d; want his first block", headKnown(t, gail.repo, mal.keys.ID), seq)
	}
	if headKnown(t, gail.repo, eve.keys.ID) {
		t.Fatal("contact add of Mal brought Eve's chain, which Mal's node gave as his")
	}
	if _, ok, err := gail.repo.LocalGuardian(ctx, eve.keys.ID, protocol.RightApprove); err != nil || ok {
		t.Fatalf("Gail's node answers for Eve: %v %v", ok, err)
	}
}

// headKnown tells whether repo holds any of account id's chain.
func headKnown(t *testing.T, repo *keyshare.Repo, id protocol.AccountID) bool {
	t.Helper()
	h, _ := headOf(t, repo, id)
	return h.Defined()
}
