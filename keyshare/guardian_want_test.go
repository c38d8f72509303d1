package keyshare

import (
	"context"
	"fmt"
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

// A stranger's answers cost no scan: Mal's chain carries a wardaccept and
// a warddecline naming Wanda and her appointment of Gail, which count for
// nothing (guardianConsent binds the answer to the guardian appointed).
// Gail's node, holding Wanda's records, must not be told of them when
// Mal's chain arrives — else any chain full of answers naming a big ward
// would make every node holding it walk the ward's records on each
// commit. Gail's own accept (here twice in one block, a ward scanned
// once) tells of all of them.
func TestStrangersAnswersTouchNoRecords(t *testing.T) {
	ctx := context.Background()
	wanda := newParty(t, "Wanda", protocol.RolePatient)
	gail := newParty(t, "Gail", protocol.RolePatient)
	mal := newParty(t, "Mal", protocol.RolePatient)
	send(t, gail, wanda)
	var recs []cid.Cid
	for i := range 4 {
		recs = append(recs, noteAs(t, wanda, wanda.keys, fmt.Sprintf("note %d", i)))
	}
	if _, err := wanda.repo.AppointGuardian(ctx, wanda.keys, gail.keys.ID, []protocol.GuardianRight{protocol.RightRead}, time.Time{}); err != nil {
		t.Fatal(err)
	}
	syncChain(t, wanda, gail.repo)
	appt := protocol.WardConsent{Ward: keyOf(wanda.keys.ID), Appointment: protocol.NewLink(appointmentOf(t, gail, wanda.keys.ID, gail.keys.ID))}
	var changes []ChainChange
	defer gail.repo.OnChainChange(func(c ChainChange) { changes = append(changes, c) })()

	force(t, mal, &protocol.WardAccept{WardConsent: appt})
	force(t, mal, &protocol.WardDecline{WardConsent: appt})
	syncChain(t, mal, gail.repo)
	if len(changes) == 0 {
		t.Fatal("precondition: Mal's chain did not commit on Gail's node")
	}
	for _, c := range changes {
		if c.All {
			t.Fatalf("Mal's answers made Gail's node consider every record: %+v", c)
		}
		for _, r := range recs {
			if slices.Contains(c.Records, r) {
				t.Fatalf("Mal's answers to Wanda's appointment of Gail touched Wanda's note %s", r)
			}
		}
	}

	changes = nil
	gail.repo.mu.Lock()
	_, err := gail.repo.appendBlock(ctx, gail.keys, []protocol.Entry{
		protocol.NewEntry(&protocol.WardAccept{WardConsent: appt}),
		protocol.NewEntry(&protocol.WardAccept{WardConsent: appt}),
	})
	gail.repo.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	if len(changes) != 1 {
		t.Fatalf("Gail's block made %d changes, want 1", len(changes))
	}
	for _, r := range recs {
		if !slices.Contains(changes[0].Records, r) {
			t.Errorf("Gail's accept did not tell of Wanda's note %s", r)
		}
	}
}
