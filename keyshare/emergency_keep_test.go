package keyshare

// What custodians keep (policy emergencyKeep) over real repos: a
// replaced setup is dropped at once, an ended one too (from the end
// block, or from the patient's chain a custodian syncs), and neither
// comes back when its block is replayed; a forged end (another signer, or
// the patient's block altered) drops nothing. And what the patient's node
// still has to deliver, and shows per custodian, survives a restart.

import (
	"context"
	"slices"
	"testing"

	"github.com/ipfs/go-cid"

	"github.com/blockmrs/blockmrs/protocol"
)

// heldIDs returns the IDs of the packs p holds.
func heldIDs(t *testing.T, p *party) []string {
	t.Helper()
	held, err := p.repo.HeldEmergency(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, h := range held {
		out = append(out, h.ID)
	}
	return out
}

// packBlock returns the raw block of pat's pack id, from pat's repo.
func (e *emergencyWorld) packBlock(t *testing.T, id string) []byte {
	t.Helper()
	ctx := context.Background()
	packs, err := e.pat.repo.EmergencyPacks(ctx, e.pat.keys.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range packs {
		if p.ID == id {
			c, err := cid.Decode(p.Block)
			if err != nil {
				t.Fatal(err)
			}
			blk, err := e.pat.repo.st.Blockstore().Get(ctx, c)
			if err != nil {
				t.Fatal(err)
			}
			return blk.RawData()
		}
	}
	t.Fatalf("no pack %s", id)
	return nil
}

func TestEmergencyCustodiansDropReplaced(t *testing.T) {
	ctx := context.Background()
	e := newEmergencyWorld(t)
	a := e.setup(t)
	oldBlock := e.packBlock(t, a.ID)
	b := e.setup(t)
	for _, c := range e.custodians {
		if got := heldIDs(t, c); !slices.Equal(got, []string{b.ID}) {
			t.Fatalf("%s holds %v after the setup was replaced, want only %s", c.keys.ID, got, b.ID)
		}
	}
	// The old setup replayed (by anyone: it is the patient's signed
	// block) does not come back: the new setup's block ended it.
	kept, dropped, err := e.gina.repo.HoldEmergencyDropping(ctx, oldBlock)
	if err != nil || len(kept) != 0 || len(dropped) != 1 || dropped[0].Decision.Rule != RuleEmergencyKeepEnded {
		t.Fatalf("replayed old setup: kept %v, dropped %+v, %v", kept, dropped, err)
	}
	if got := heldIDs(t, e.gina); !slices.Equal(got, []string{b.ID}) {
		t.Fatalf("after the replay: %v", got)
	}
	// The live pack still opens.
	e.askAll(t, e.doc, RuleEmergencyShare, nil)
}

func TestEmergencyForgedEndDropsNothing(t *testing.T) {
	ctx := context.Background()
	e := newEmergencyWorld(t)
	p := e.setup(t)
	// A stranger's end naming the pack: its own block, so it names no
	// pack held for it.
	if _, err := e.fake.repo.appendBlock(ctx, e.fake.keys, []protocol.Entry{protocol.NewEntry(&protocol.EmergencyEnd{ID: mustHex(t, p.ID)})}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.gina.repo.HoldEmergency(ctx, e.lastBlock(t, e.fake)); err == nil {
		t.Fatal("a stranger's end was taken")
	}
	// The patient's own end, altered to end nothing (a byte flipped
	// after signing): refused as a bad block.
	if _, err := e.pat.repo.EndEmergency(ctx, e.pat.keys); err != nil {
		t.Fatal(err)
	}
	end := slices.Clone(e.lastBlock(t, e.pat))
	end[len(end)-3] ^= 1
	if _, err := e.gina.repo.HoldEmergency(ctx, end); err == nil {
		t.Fatal("an altered end block was taken")
	}
	if got := heldIDs(t, e.gina); !slices.Equal(got, []string{p.ID}) {
		t.Fatalf("held after forged ends: %v", got)
	}
	e.askAll(t, e.doc, RuleEmergencyShare, nil)
}

func TestEmergencyEndedDroppedAndNotBack(t *testing.T) {
	ctx := context.Background()
	e := newEmergencyWorld(t)
	p := e.setup(t)
	packRaw := e.packBlock(t, p.ID)
	if _, err := e.pat.repo.EndEmergency(ctx, e.pat.keys); err != nil {
		t.Fatal(err)
	}
	e.deliver(t)
	for _, c := range e.custodians {
		if got := heldIDs(t, c); len(got) != 0 {
			t.Fatalf("%s still holds %v after the end", c.keys.ID, got)
		}
	}
	_, dropped, err := e.clinic.repo.HoldEmergencyDropping(ctx, packRaw)
	if err != nil || len(dropped) != 1 || dropped[0].Decision.Rule != RuleEmergencyKeepEnded {
		t.Fatalf("ended pack replayed: %+v, %v", dropped, err)
	}
	if got := heldIDs(t, e.clinic); len(got) != 0 {
		t.Fatalf("the ended pack came back: %v", got)
	}
	// A new setup is kept again.
	q := e.setup(t)
	if got := heldIDs(t, e.clinic); !slices.Equal(got, []string{q.ID}) {
		t.Fatalf("after a new setup: %v", got)
	}
}

// A custodian that syncs the patient's chain drops the pack when the
// chain ends it, before her node delivers the end.
func TestEmergencyChainEndPrunes(t *testing.T) {
	ctx := context.Background()
	e := newEmergencyWorld(t)
	p := e.setup(t)
	if _, err := e.gina.repo.PruneEmergency(ctx); err != nil {
		t.Fatal(err)
	}
	if got := heldIDs(t, e.gina); !slices.Equal(got, []string{p.ID}) {
		t.Fatalf("pruned a live pack: %v", got)
	}
	if _, err := e.pat.repo.EndEmergency(ctx, e.pat.keys); err != nil {
		t.Fatal(err)
	}
	send(t, e.pat, e.gina)
	dropped, err := e.gina.repo.PruneEmergency(ctx)
	if err != nil || len(dropped) != 1 || dropped[0].Decision.Rule != RuleEmergencyKeepEnded {
		t.Fatalf("prune after the chain's end: %+v, %v", dropped, err)
	}
	if got := heldIDs(t, e.gina); len(got) != 0 {
		t.Fatalf("still held: %v", got)
	}
	// The clinic, which does not hold her chain, keeps it until the end
	// block arrives.
	if _, err := e.clinic.repo.PruneEmergency(ctx); err != nil {
		t.Fatal(err)
	}
	if got := heldIDs(t, e.clinic); !slices.Equal(got, []string{p.ID}) {
		t.Fatalf("the clinic dropped it without the end: %v", got)
	}
}

// What the patient's node has to deliver is listed from its repo (so a
// restarted node delivers it); each custodian's state is shown, and a
// pack ended before reaching a custodian is not sent to it at all.
func TestEmergencyDeliveryKeptAndShown(t *testing.T) {
	ctx := context.Background()
	e := newEmergencyWorld(t)
	ids := []protocol.AccountID{e.gina.keys.ID, e.clinic.keys.ID, e.hart.keys.ID}
	a, err := e.pat.repo.SetupEmergency(ctx, e.pat.keys, EmergencySetup{Custodians: ids, Threshold: 2, Summary: []byte(summaryText)})
	if err != nil {
		t.Fatal(err)
	}
	states := func(id string) map[protocol.AccountID]string {
		t.Helper()
		packs, err := e.pat.repo.EmergencyPacks(ctx, e.pat.keys.ID)
		if err != nil {
			t.Fatal(err)
		}
		if err := e.pat.repo.EmergencyDelivery(ctx, e.pat.keys.ID, packs); err != nil {
			t.Fatal(err)
		}
		out := map[protocol.AccountID]string{}
		for _, p := range packs {
			if p.ID == id {
				for _, d := range p.Delivery {
					out[d.Custodian] = d.State
				}
			}
		}
		return out
	}
	if s := states(a.ID); len(s) != 3 || s[e.gina.keys.ID] != DeliveryWaiting {
		t.Fatalf("before delivery: %v", s)
	}
	// Gina's node takes it; the others are offline.
	deps, err := e.pat.repo.EmergencyDeposits(ctx)
	if err != nil || len(deps) != 3 {
		t.Fatalf("deposits: %d, %v", len(deps), err)
	}
	for _, d := range deps {
		if d.Custodian == e.gina.keys.ID {
			if _, err := e.gina.repo.HoldEmergency(ctx, d.Raw); err != nil {
				t.Fatal(err)
			}
			if err := e.pat.repo.MarkDeposited(ctx, d.Block, d.Custodian); err != nil {
				t.Fatal(err)
			}
		}
	}
	if s := states(a.ID); s[e.gina.keys.ID] != DeliveryDelivered || s[e.clinic.keys.ID] != DeliveryWaiting {
		t.Fatalf("after gina took it: %v", s)
	}
	// The patient replaces it: the old pack's end goes to gina only, the
	// new pack to all three; the old pack goes to nobody else.
	b, err := e.pat.repo.SetupEmergency(ctx, e.pat.keys, EmergencySetup{Custodians: ids, Threshold: 2, Summary: []byte(summaryText)})
	if err != nil {
		t.Fatal(err)
	}
	deps, err = e.pat.repo.EmergencyDeposits(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(deps) != 3 {
		t.Fatalf("after the new setup, %d deposits: %+v", len(deps), deps)
	}
	for _, d := range deps {
		if d.Raw == nil || d.Seq != deps[0].Seq {
			t.Fatalf("a deposit of another block than the new setup's: %+v", d)
		}
	}
	if s := states(a.ID); s[e.gina.keys.ID] != DeliveryWaiting || s[e.clinic.keys.ID] != DeliveryNotNeeded {
		t.Fatalf("old pack after the new setup: %v", s)
	}
	e.deliver(t)
	if s := states(a.ID); s[e.gina.keys.ID] != DeliveryDelivered {
		t.Fatalf("old pack after its end was delivered: %v", s)
	}
	if s := states(b.ID); s[e.gina.keys.ID] != DeliveryDelivered || s[e.hart.keys.ID] != DeliveryDelivered {
		t.Fatalf("new pack: %v", s)
	}
	if got := heldIDs(t, e.gina); !slices.Equal(got, []string{b.ID}) {
		t.Fatalf("gina holds %v", got)
	}
	// The clinic never saw the old pack; replayed to it now, it is older
	// than the one it holds.
	_, dropped, err := e.clinic.repo.HoldEmergencyDropping(ctx, e.packBlock(t, a.ID))
	if err != nil || len(dropped) != 1 || dropped[0].Decision.Rule != RuleEmergencyKeepOlder {
		t.Fatalf("old setup replayed to a custodian that never had it: %+v, %v", dropped, err)
	}
	if got := heldIDs(t, e.clinic); !slices.Equal(got, []string{b.ID}) {
		t.Fatalf("the clinic holds %v", got)
	}
}
