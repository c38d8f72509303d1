package keyshare

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/ipfs/go-datastore"

	"github.com/blockmrs/blockmrs/protocol"
)

// A commit indexes only the guardian events and the recovery setup its
// blocks added: the state it loads (JSON, as commit does) carries the
// earlier ones, which must not be written again.
func TestIndexWritesOnlyWhatACommitAdded(t *testing.T) {
	ctx := context.Background()
	ward, c0, raw0 := genesisOf(t, "Kim", protocol.RolePatient)
	mum, _, _ := genesisOf(t, "Mum", protocol.RolePatient)
	dad, _, _ := genesisOf(t, "Dad", protocol.RolePatient)
	b0, err := protocol.DecodeBlock(raw0)
	if err != nil {
		t.Fatal(err)
	}
	ds := datastore.NewMapDatastore()
	apply := func(st *accountState, vb verifiedBlock) {
		t.Helper()
		if err := applyToState(st, vb, newIndexWriter(ctx, ds), admission{}); err != nil {
			t.Fatal(err)
		}
	}
	reload := func(st *accountState) *accountState {
		t.Helper()
		b, err := json.Marshal(st)
		if err != nil {
			t.Fatal(err)
		}
		out := &accountState{}
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	appoint := func(g *Keys) protocol.Entry {
		return protocol.NewEntry(&protocol.GuardianAppoint{To: g.Public(), May: []protocol.GuardianRight{protocol.RightRead}, From: 1})
	}
	setup := func(contacts ...*Keys) protocol.Entry {
		s := &protocol.RecoverySetup{}
		for _, c := range contacts {
			s.Threshold, s.Sealed = 1, []byte("sealed")
			s.Contacts = append(s.Contacts, protocol.RecoveryShare{Contact: c.Public(), Share: []byte("share")})
		}
		return protocol.NewEntry(s)
	}

	// Commit 1: genesis, then a block appointing Mum and setting up
	// recovery with Mum.
	st := &accountState{}
	apply(st, verifiedBlock{cid: c0, block: b0})
	vb1 := signed(t, ward, 1, &c0, 2, []protocol.Entry{appoint(mum), setup(mum)})
	apply(st, vb1)
	if got := st.addedGuardians(); len(got) != 1 || got[0].Guardian != mum.ID {
		t.Fatalf("first commit adds %+v, want Mum's appointment", got)
	}
	if rec := st.newRecovery(); rec == nil || !rec.has(mum.Public()) {
		t.Fatalf("first commit's recovery setup %+v, want Mum's", rec)
	}

	// Commit 2: a block of a profile change only. Nothing to index, though
	// the state holds an appointment and a live setup.
	st = reload(st)
	vb2 := signed(t, ward, 2, &vb1.cid, 3, []protocol.Entry{protocol.NewEntry(&protocol.Profile{Name: "Kim B", Role: protocol.RolePatient, Recipient: ward.Age.Recipient().String()})})
	apply(st, vb2)
	if got := st.addedGuardians(); len(got) != 0 {
		t.Fatalf("a commit without guardian entries indexes %+v again", got)
	}
	if rec := st.newRecovery(); rec != nil {
		t.Fatalf("a commit without a recovery entry indexes the setup %+v again", rec)
	}
	w := datastore.NewMapDatastore()
	if err := indexGuardians(ctx, w, ward.ID, st.addedGuardians()); err != nil {
		t.Fatal(err)
	}
	if err := indexRecovery(ctx, w, ward.ID, st.newRecovery()); err != nil {
		t.Fatal(err)
	}
	if keys, _ := listKeys(ctx, w, "/"); len(keys) != 0 {
		t.Fatalf("a profile-only commit wrote index keys %v", keys)
	}

	// Commit 3: Dad appointed, Mum ended, recovery moved to Dad; then a
	// further block in the same commit ending it again.
	st = reload(st)
	vb3 := signed(t, ward, 3, &vb2.cid, 4, []protocol.Entry{appoint(dad), protocol.NewEntry(&protocol.GuardianEnd{From: mum.Public(), Before: 3}), setup(dad)})
	apply(st, vb3)
	got := st.addedGuardians()
	if len(got) != 2 || got[0].Guardian != dad.ID || got[1].Guardian != mum.ID || !got[1].End || len(st.Guardians) != 3 {
		t.Fatalf("third commit adds %+v (of %d), want Dad's appointment and Mum's end", got, len(st.Guardians))
	}
	if err := indexGuardians(ctx, w, ward.ID, got); err != nil {
		t.Fatal(err)
	}
	if err := indexRecovery(ctx, w, ward.ID, st.newRecovery()); err != nil {
		t.Fatal(err)
	}
	for _, k := range []datastore.Key{keyGuardOf(dad.ID, ward.ID), keyGuardOf(mum.ID, ward.ID), datastore.NewKey(recoveryToPrefix + string(dad.ID) + "/" + string(ward.ID))} {
		if ok, _ := w.Has(ctx, k); !ok {
			t.Errorf("third commit did not index %s", k)
		}
	}
	if ok, _ := w.Has(ctx, datastore.NewKey(recoveryToPrefix+string(mum.ID)+"/"+string(ward.ID))); ok {
		t.Error("third commit re-indexed Mum's old recovery setup")
	}
	vb4 := signed(t, ward, 4, &vb3.cid, 5, []protocol.Entry{setup()})
	apply(st, vb4)
	if rec := st.newRecovery(); rec != nil {
		t.Fatalf("a commit ending the setup indexes %+v", rec)
	}
}
