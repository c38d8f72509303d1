package keyshare

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/blockmrs/blockmrs/protocol"
)

// Wanda appoints Gail guardian with read: her records' keys are wrapped
// for Gail under the appointment's standing grant. Until Gail accepts,
// the appointment counts for nothing on Gail's node, which therefore
// does not fetch Wanda's records (RuleWantUnaccepted); her accept (a
// change of her own chain) makes it consider them, and fetch them; a
// resignation stops it again. A record Wanda grants Gail by itself is
// fetched all along.
func TestUnacceptedGuardianFetchesNothing(t *testing.T) {
	ctx := context.Background()
	wanda := newParty(t, "Wanda", protocol.RolePatient)
	gail := newParty(t, "Gail", protocol.RolePatient)
	send(t, gail, wanda)
	rec := noteAs(t, wanda, wanda.keys, "a ward's note")
	if _, err := wanda.repo.AppointGuardian(ctx, wanda.keys, gail.keys.ID, []protocol.GuardianRight{protocol.RightRead}, time.Time{}); err != nil {
		t.Fatal(err)
	}
	syncChain(t, wanda, gail.repo)
	const self = "gail-node"
	var touched [][]cid.Cid
	defer gail.repo.OnChainChange(func(c ChainChange) { touched = append(touched, c.Records) })()

	if d := reads(t, gail, rec); d.Rule != RuleReadScope {
		t.Fatalf("precondition: Gail reads Wanda's note under the appointment: %+v", d)
	}
	if w := wantedFor(t, gail.repo, self); len(w) != 0 {
		t.Fatalf("Gail's node, not having accepted, wants %v", w)
	}

	if _, _, err := gail.repo.AcceptWard(ctx, gail.keys, wanda.keys.ID); err != nil {
		t.Fatal(err)
	}
	if len(touched) == 0 || !slices.Contains(touched[len(touched)-1], rec) {
		t.Fatalf("Gail's accept did not tell the listeners of Wanda's note: %v", touched)
	}
	if w, err := gail.repo.WantedRecords(ctx, self, rec); err != nil || len(w) != 1 || w[0].Record != rec || w[0].For != gail.keys.ID {
		t.Fatalf("after the accept Gail's node wants %+v (%v), not Wanda's note", w, err)
	}

	if _, _, err := gail.repo.DeclineWard(ctx, gail.keys, wanda.keys.ID); err != nil {
		t.Fatal(err)
	}
	if w := wantedFor(t, gail.repo, self); len(w) != 0 {
		t.Fatalf("after resigning Gail's node wants %v", w)
	}

	// A record granted by itself does not wait for the accept.
	own := noteAs(t, wanda, wanda.keys, "shared by itself")
	if _, err := wanda.repo.Grant(ctx, wanda.keys, []cid.Cid{own}, gail.keys.ID, time.Time{}); err != nil {
		t.Fatal(err)
	}
	syncChain(t, wanda, gail.repo)
	w := wantedFor(t, gail.repo, self)
	if _, ok := w[own]; !ok || len(w) != 1 {
		t.Fatalf("Gail's node wants %v, not (only) the record granted to her", w)
	}
}
