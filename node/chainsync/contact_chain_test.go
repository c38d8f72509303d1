package chainsync

import (
	"testing"
	"time"

	"github.com/blockmrs/blockmrs/protocol"
)

// A guardian appointed before she added her ward as a contact gets the
// ward's whole chain (the appointment with it) when she adds her, from
// the ward's node, which gives it to her as the ward's guardian; a
// stranger adding the ward gets the first block only.
func TestContactAddBringsTheChainItIsEntitledTo(t *testing.T) {
	ctx := t.Context()
	wanda := newNode(t, "Wanda", protocol.RolePatient)
	gail := newNode(t, "Gail", protocol.RolePatient)
	stranger := newNode(t, "Sam", protocol.RolePatient)
	if _, err := wanda.sync.Profile(ctx, gail.addr(), gail.keys.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := wanda.repo.AppointGuardian(ctx, wanda.keys, gail.keys.ID, []protocol.GuardianRight{protocol.RightRead, protocol.RightApprove}, time.Time{}); err != nil {
		t.Fatal(err)
	}
	_, seq := headOf(t, wanda.repo, wanda.keys.ID)
	if seq == 0 {
		t.Fatal("the appointment did not advance Wanda's chain")
	}

	if _, err := gail.sync.Profile(ctx, wanda.addr(), wanda.keys.ID); err != nil {
		t.Fatal(err)
	}
	if _, got := headOf(t, gail.repo, wanda.keys.ID); got != seq {
		t.Fatalf("Gail's node holds Wanda's chain to block %d after adding her, want %d (the appointment)", got, seq)
	}
	// Gail's node sees the offer, and acts on it only once she accepts.
	if _, ok, err := gail.repo.LocalGuardian(ctx, wanda.keys.ID, protocol.RightApprove); err != nil || ok {
		t.Fatalf("Gail's node acts as Wanda's guardian before accepting: %v, %v", ok, err)
	}
	if _, _, err := gail.repo.AcceptWard(ctx, gail.keys, wanda.keys.ID); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := gail.repo.LocalGuardian(ctx, wanda.keys.ID, protocol.RightApprove); err != nil || !ok {
		t.Fatalf("Gail's node does not see her as Wanda's guardian: %v, %v", ok, err)
	}

	if _, err := stranger.sync.Profile(ctx, wanda.addr(), wanda.keys.ID); err != nil {
		t.Fatal(err)
	}
	if _, got := headOf(t, stranger.repo, wanda.keys.ID); got != 0 {
		t.Fatalf("a stranger's node got Wanda's chain to block %d, want the first block only", got)
	}
}
