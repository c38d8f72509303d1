package keyshare

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/blockmrs/blockmrs/protocol"
)

// A thief holds pat's stolen laptop (w.pat: her old keys) and keeps
// writing on her chain; pat recovers on a fresh repo with two of her
// three contacts; a clinic verifies pat's chain. The rule under test:
// the recovery's branch wins on every verifier, whichever came first
// (forkChoice, RuleForkRecovery / RuleForkRecoveryHeld).

type theftWorld struct {
	*recoveryWorld
	clinic *party
	// thiefGrant is the record the thief granted to the stranger (w.before).
	thiefGrant cid.Cid
}

func newTheftWorld(t *testing.T) *theftWorld {
	t.Helper()
	w := &theftWorld{recoveryWorld: newRecoveryWorld(t, 2)}
	w.clinic = newParty(t, "St Mary's", protocol.RoleClinician)
	send(t, w.pat, w.clinic)
	send(t, w.stranger, w.pat) // the thief's own account, known to the stolen laptop
	w.thiefGrant = w.before
	return w
}

// thiefWrites makes the stolen laptop grant pat's old record to the
// stranger (the thief's account): one block on pat's chain.
func (w *theftWorld) thiefWrites(t *testing.T) cid.Cid {
	t.Helper()
	c, err := w.pat.repo.Grant(context.Background(), w.pat.keys, []cid.Cid{w.thiefGrant}, w.stranger.keys.ID, time.Time{})
	if err != nil {
		t.Fatalf("the thief writes: %v", err)
	}
	return c
}

// recoverOwner runs pat's recovery on the fresh repo with c1's and c3's
// approvals and returns the recovered party.
func (w *theftWorld) recoverOwner(t *testing.T) *party {
	t.Helper()
	ctx := context.Background()
	req := w.start(t)
	for _, c := range []*party{w.c1, w.c3} {
		if _, err := w.fresh.repo.AddRecoveryResponse(ctx, w.pat.keys.ID, approve(t, c, req)); err != nil {
			t.Fatal(err)
		}
	}
	nk, err := w.fresh.repo.FinishRecovery(ctx, w.pat.keys.ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	return &party{repo: w.fresh.repo, keys: nk}
}

// strangerReads tells whether the clinic's index lets the stranger read
// pat's old record.
func (w *theftWorld) strangerReads(t *testing.T) bool {
	t.Helper()
	a, err := w.clinic.repo.Access(context.Background(), w.thiefGrant)
	if err != nil {
		t.Fatal(err)
	}
	_, ok := a.Reader(w.stranger.keys.ID)
	return ok
}

// settledOnly verifies p's repo: OK, with exactly n forks settled by a
// recovery and none unsettled.
func settledOnly(t *testing.T, p *party, n int) *VerifyReport {
	t.Helper()
	rep, err := p.repo.Verify(context.Background(), VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK || len(rep.Forks) != 0 || len(rep.Superseded) != n {
		t.Fatalf("verify: ok=%v forks=%+v superseded=%+v problems=%v", rep.OK, rep.Forks, rep.Superseded, rep.AllProblems())
	}
	return rep
}

// The thief's block reaches the clinic first; the recovery arrives after:
// the clinic switches to the recovery's branch, the thief's grant stops
// counting, verify passes and shows the thief's branch superseded, and
// the thief's later blocks change nothing.
func TestRecoveryWinsOverThiefFirst(t *testing.T) {
	ctx := context.Background()
	w := newTheftWorld(t)
	id := w.pat.keys.ID
	w.thiefWrites(t)
	send(t, w.pat, w.clinic)
	thiefHead := w.clinic.repo.mustHead(t, id)
	if !w.strangerReads(t) {
		t.Fatal("precondition: the thief's grant counts before the recovery")
	}
	rec := w.recoverOwner(t)
	res := send(t, rec, w.clinic)
	if len(res.Superseded) != 1 || !res.Superseded[0].Switched || res.Superseded[0].Rule != RuleForkRecovery {
		t.Fatalf("import result: %+v", res.Superseded)
	}
	if got, want := w.clinic.repo.mustHead(t, id), rec.repo.mustHead(t, id); got != want {
		t.Fatalf("clinic head %s, the recovered owner's %s", got, want)
	}
	if w.strangerReads(t) {
		t.Fatal("the thief's grant still counts after the recovery won")
	}
	rep := settledOnly(t, w.clinic, 1)
	if rep.Superseded[0].Superseded != thiefHead.String() || rep.Superseded[0].Recovery == "" {
		t.Fatalf("evidence: %+v (thief's head %s)", rep.Superseded[0], thiefHead)
	}
	// The clinic no longer serves the thief's block as pat's chain.
	if _, err := w.clinic.repo.ChainBack(ctx, thiefHead, NoneHeld, 10, 1<<20); err == nil {
		t.Fatal("the clinic serves the superseded head")
	}
	if o, err := w.clinic.repo.Owner(ctx, thiefHead); err != nil || o.Chain != "" {
		t.Fatalf("the superseded block is still indexed as a chain block: %+v %v", o, err)
	}
	// The thief keeps writing on its branch: stored as evidence, nothing
	// else changes.
	head := w.clinic.repo.mustHead(t, id)
	w.thiefWrites(t)
	res = send(t, w.pat, w.clinic)
	if len(res.Superseded) != 1 || res.Superseded[0].Switched || res.Superseded[0].Rule != RuleForkRecoveryHeld {
		t.Fatalf("the thief's later blocks: %+v", res.Superseded)
	}
	if w.clinic.repo.mustHead(t, id) != head || w.strangerReads(t) {
		t.Fatal("the thief's later blocks moved the chain or granted")
	}
	settledOnly(t, w.clinic, 1)
	// GC keeps the evidence.
	if _, err := w.clinic.repo.GC(ctx); err != nil {
		t.Fatal(err)
	}
	if ok, err := w.clinic.repo.st.Blockstore().Has(ctx, thiefHead); err != nil || !ok {
		t.Fatalf("GC dropped the superseded branch: %v", err)
	}
	// The recovered owner writes on; the clinic follows.
	noteAs(t, rec, rec.keys, "after")
	send(t, rec, w.clinic)
	if w.clinic.repo.mustHead(t, id) != rec.repo.mustHead(t, id) {
		t.Fatal("the clinic does not follow the recovered owner")
	}
	settledOnly(t, w.clinic, 1)
}

// The recovery reaches the clinic first; the thief's block at the same
// seq, and its blocks after, arrive later: the clinic keeps the recovery
// and keeps the thief's branch as evidence, and verify passes.
func TestRecoveryWinsOverThiefAfter(t *testing.T) {
	w := newTheftWorld(t)
	id := w.pat.keys.ID
	rec := w.recoverOwner(t)
	send(t, rec, w.clinic)
	head := w.clinic.repo.mustHead(t, id)
	w.thiefWrites(t)
	w.thiefWrites(t)
	res := send(t, w.pat, w.clinic)
	if len(res.Superseded) != 1 || res.Superseded[0].Switched || res.NewBlocks != 0 {
		t.Fatalf("import of the thief's branch: %+v", res)
	}
	if w.clinic.repo.mustHead(t, id) != head || w.strangerReads(t) {
		t.Fatal("the thief's branch moved the chain or granted")
	}
	settledOnly(t, w.clinic, 1)
	// The owner's own repo, offered the thief's branch, does the same.
	res = send(t, w.pat, rec)
	if len(res.Superseded) != 1 || rec.repo.mustHead(t, id) != head {
		t.Fatalf("the owner's repo: %+v", res)
	}
}

// The switch is crash-safe: the rebuild marker makes Open finish the
// index rebuild, and a repo reopened after a switch verifies.
func TestRecoverySwitchSurvivesReopen(t *testing.T) {
	ctx := context.Background()
	w := newTheftWorld(t)
	w.thiefWrites(t)
	send(t, w.pat, w.clinic)
	rec := w.recoverOwner(t)
	send(t, rec, w.clinic)
	// Put back what a crash between the switch's commit and its rebuild
	// leaves: the marker, and the thief's facts in the index.
	f, err := w.clinic.repo.facts(ctx, w.thiefGrant)
	if err != nil {
		t.Fatal(err)
	}
	f.Keys = append(f.Keys, keyFact{To: w.stranger.keys.ID, Key: f.Keys[0].Key, Via: EntryRef{Account: w.pat.keys.ID, Block: "x", Seq: 99}, Grant: true})
	if err := putJSON(ctx, w.clinic.repo.ds, keyRecordFacts(w.thiefGrant), f); err != nil {
		t.Fatal(err)
	}
	if err := w.clinic.repo.ds.Put(ctx, keyReindex, nil); err != nil {
		t.Fatal(err)
	}
	dir := w.clinic.repo.dir
	w.clinic.repo.Close()
	r, err := Open(ctx, dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	w.clinic.repo = r
	if w.strangerReads(t) {
		t.Fatal("Open did not finish the rebuild")
	}
	if ok, err := r.ds.Has(ctx, keyReindex); err != nil || ok {
		t.Fatalf("the marker stays: %v", err)
	}
	settledOnly(t, w.clinic, 1)
}

// Forged recoveries settle nothing: with fewer approvals than the
// threshold, or with a stranger's, the block competing with the thief's
// is an invalid block, refused (RuleForkUnsigned), and no fork evidence:
// its signer is no key the chain lets sign there, so it says nothing
// about the account. The chain stays and verifies.
func TestForgedRecoveryDoesNotWinFork(t *testing.T) {
	ctx := context.Background()
	w := newTheftWorld(t)
	id := w.pat.keys.ID
	req := w.start(t)
	q, _ := protocol.DecodeRecoveryRequest(req)
	reqID := protocol.RecoveryRequestID(req)
	resp, err := protocol.DecodeRecoveryResponse(approve(t, w.c1, req))
	if err != nil {
		t.Fatal(err)
	}
	stranger, err := protocol.SignRecoveryApproval(w.stranger.keys.Sign, q.Account, q.Key, reqID, resp.Approval.Setup)
	if err != nil {
		t.Fatal(err)
	}
	nk, err := parseKeyFileAt(w.fresh.repo, id)
	if err != nil {
		t.Fatal(err)
	}
	st, _ := w.clinic.repo.state(ctx, id) // pat's chain before the thief wrote
	w.thiefWrites(t)
	send(t, w.pat, w.clinic)
	head := w.clinic.repo.mustHead(t, id)
	for name, approvals := range map[string][]protocol.RecoveryApproval{
		"k-1 approvals":         {resp.Approval},
		"a stranger's approval": {resp.Approval, stranger},
	} {
		t.Run(name, func(t *testing.T) {
			s := &protocol.Succession{Key: q.Key, Request: reqID, Approvals: approvals}
			link := protocol.NewLink(st.head())
			b := &protocol.Block{Seq: st.Seq + 1, Prev: &link, Time: st.Time, Entries: []protocol.Entry{protocol.NewSuccessionEntry(s)}}
			raw, c, err := b.SignAs(keyOf(id), nk.Sign)
			if err != nil {
				t.Fatal(err)
			}
			_, err = w.clinic.repo.ApplyChains(ctx, []cid.Cid{c}, map[cid.Cid][]byte{c: raw})
			var fe *ForkError
			if err == nil || errors.As(err, &fe) || !strings.Contains(err.Error(), "not a fork") {
				t.Fatalf("forged recovery against the thief's block: %v", err)
			}
			if w.clinic.repo.mustHead(t, id) != head {
				t.Fatal("a forged recovery moved the chain")
			}
			rep, err := w.clinic.repo.Verify(ctx, VerifyOptions{})
			if err != nil || !rep.OK || len(rep.Forks) != 0 || len(rep.Superseded) != 0 {
				t.Fatalf("verify after a forged recovery: %+v %v", rep, err)
			}
		})
	}
}

// Two approved recoveries at one seq are a fork like any other: refused.
func TestTwoRecoveriesStayAFork(t *testing.T) {
	ctx := context.Background()
	w := newTheftWorld(t)
	id := w.pat.keys.ID
	first := w.recoverOwner(t)
	send(t, first, w.clinic)
	head := w.clinic.repo.mustHead(t, id)
	// A second fresh repo recovers too, with c2 and c3.
	other, err := Open(ctx, t.TempDir(), Options{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	send(t, &party{repo: w.c2.repo, keys: w.pat.keys}, &party{repo: other})
	s, err := other.StartRecovery(ctx, id, nil)
	if err != nil {
		t.Fatal(err)
	}
	req := mustHex(t, s.Token)
	for _, c := range []*party{w.c2, w.c3} {
		if _, err := other.AddRecoveryResponse(ctx, id, approve(t, c, req)); err != nil {
			t.Fatal(err)
		}
	}
	nk, err := other.FinishRecovery(ctx, id, nil)
	if err != nil {
		t.Fatal(err)
	}
	var fe *ForkError
	if _, err := importFrom(t, &party{repo: other, keys: nk}, w.clinic); !errors.As(err, &fe) {
		t.Fatalf("a second recovery at the same seq: %v", err)
	}
	if w.clinic.repo.mustHead(t, id) != head {
		t.Fatal("the second recovery moved the chain")
	}
}

// A contact whose chain has a successor key approves with it, and every
// verifier holding that contact's chain counts the approval; the key the
// succession retired (a contact's stolen laptop) approves nothing.
func TestApprovalBySuccessorKey(t *testing.T) {
	ctx := context.Background()
	w := newRecoveryWorld(t, 2)
	id := w.pat.keys.ID
	clinic := newParty(t, "St Mary's", protocol.RoleClinician)
	send(t, w.pat, clinic)
	old := w.c1.keys
	nk1, err := w.c1.repo.Succeed(ctx, old, nil, SuccessionOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c1 := &party{repo: w.c1.repo, keys: nk1}
	send(t, c1, w.fresh)
	send(t, c1, clinic)
	req := w.start(t)
	// The retired key, on a repo that has not heard of the succession
	// (the stolen laptop), signs an approval: refused where c1's chain
	// is known.
	laptop := newParty(t, "spare", protocol.RolePatient)
	send(t, w.pat, laptop)
	send(t, &party{repo: w.pat.repo, keys: old}, laptop) // c1's chain before the succession
	stale, err := laptop.repo.ApproveRecovery(ctx, old, req)
	if err != nil {
		t.Fatalf("the stolen laptop signs: %v", err)
	}
	if _, err := w.fresh.repo.AddRecoveryResponse(ctx, id, stale); !errors.Is(err, ErrRecovery) {
		t.Fatalf("an approval by a retired contact key was accepted: %v", err)
	}
	if _, err := w.c1.repo.ApproveRecovery(ctx, old, req); !errors.Is(err, ErrKeyRetired) {
		t.Fatalf("the contact's repo signed with a retired key: %v", err)
	}
	// The successor key approves, carrying its signer.
	good := approve(t, c1, req)
	resp, err := protocol.DecodeRecoveryResponse(good)
	if err != nil || string(resp.Approval.Signer) != string(nk1.SigningKey()) {
		t.Fatalf("approval signer: %x %v", resp.Approval.Signer, err)
	}
	third := approve(t, w.c3, req)
	// A block carrying the retired key's approval (and c3's) is refused by
	// the clinic, which holds c1's chain.
	staleResp, _ := protocol.DecodeRecoveryResponse(stale)
	thirdResp, _ := protocol.DecodeRecoveryResponse(third)
	q, _ := protocol.DecodeRecoveryRequest(req)
	nk, err := parseKeyFileAt(w.fresh.repo, id)
	if err != nil {
		t.Fatal(err)
	}
	st, _ := clinic.repo.state(ctx, id)
	link := protocol.NewLink(st.head())
	s := &protocol.Succession{Key: q.Key, Request: protocol.RecoveryRequestID(req), Approvals: []protocol.RecoveryApproval{staleResp.Approval, thirdResp.Approval}}
	b := &protocol.Block{Seq: st.Seq + 1, Prev: &link, Time: st.Time, Entries: []protocol.Entry{protocol.NewSuccessionEntry(s)}}
	raw, c, err := b.SignAs(keyOf(id), nk.Sign)
	if err != nil {
		t.Fatal(err)
	}
	_, err = clinic.repo.ApplyChains(ctx, []cid.Cid{c}, map[cid.Cid][]byte{c: raw})
	var se *SignerError
	if !errors.As(err, &se) || se.Decision.Rule != RuleRecoveryTooFew {
		t.Fatalf("a recovery block with a retired contact key's approval: %v", err)
	}
	for _, r := range [][]byte{good, third} {
		if _, err := w.fresh.repo.AddRecoveryResponse(ctx, id, r); err != nil {
			t.Fatal(err)
		}
	}
	rk, err := w.fresh.repo.FinishRecovery(ctx, id, nil)
	if err != nil {
		t.Fatal(err)
	}
	rec := &party{repo: w.fresh.repo, keys: rk}
	send(t, rec, clinic)
	if clinic.repo.mustHead(t, id) != rec.repo.mustHead(t, id) {
		t.Fatal("the clinic refused a recovery approved by a successor key")
	}
	mustVerify(t, clinic)

	// A verifier that gets c1's succession and pat's recovery in one sync
	// applies c1's chain first, whichever account ID sorts first.
	late := newParty(t, "Late", protocol.RoleClinician)
	send(t, &party{repo: w.pat.repo, keys: w.pat.keys}, late)
	send(t, &party{repo: w.pat.repo, keys: old}, late) // c1's chain before its succession
	offered := map[cid.Cid][]byte{}
	heads := []cid.Cid{rec.repo.mustHead(t, id), w.c1.repo.mustHead(t, old.ID)}
	for i, r := range []*Repo{rec.repo, w.c1.repo} {
		raws, err := r.ChainBack(ctx, heads[i], NoneHeld, 1000, 1<<24)
		if err != nil {
			t.Fatal(err)
		}
		for _, raw := range raws {
			offered[protocol.BlockCID(raw)] = raw
		}
	}
	if _, err := late.repo.ApplyChains(ctx, heads, offered); err != nil {
		t.Fatalf("one sync of the contact's succession and the recovery it approved: %v", err)
	}
	if late.repo.mustHead(t, id) != heads[0] {
		t.Fatal("the late verifier does not follow the recovery")
	}
}

// importFrom exports from's account as a CAR and imports it into to,
// returning the import's error.
func importFrom(t *testing.T, from, to *party) (*ImportResult, error) {
	t.Helper()
	var buf bytes.Buffer
	if _, err := from.repo.ExportCAR(context.Background(), &buf, from.keys.ID); err != nil {
		t.Fatal(err)
	}
	return to.repo.ImportCAR(context.Background(), &buf)
}

// A recovery withdraws every device the chain declared (lost, or a
// thief's: its node is served nothing more) and keeps the replicas.
func TestRecoveryWithdrawsLostDevices(t *testing.T) {
	ctx := context.Background()
	w := newRecoveryWorld(t, 2)
	id := w.pat.keys.ID
	laptop, replica, fresh := newPeerID(t), newPeerID(t), newPeerID(t)
	if _, err := w.pat.repo.SetDevice(ctx, w.pat.keys, laptop, "stolen laptop", false); err != nil {
		t.Fatal(err)
	}
	if _, err := w.pat.repo.SetReplica(ctx, w.pat.keys, replica, "clinic replica", false); err != nil {
		t.Fatal(err)
	}
	send(t, w.pat, w.fresh)
	req := w.start(t)
	for _, c := range []*party{w.c1, w.c2} {
		if _, err := w.fresh.repo.AddRecoveryResponse(ctx, id, approve(t, c, req)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := w.fresh.repo.FinishRecovery(ctx, id, nil, DeviceInfo{PeerID: fresh, Name: "new laptop"}); err != nil {
		t.Fatal(err)
	}
	st, err := w.fresh.repo.state(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range st.Devices {
		got = append(got, d.PeerID)
	}
	if len(got) != 2 || !slices.Contains(got, replica) || !slices.Contains(got, fresh) || slices.Contains(got, laptop) {
		t.Fatalf("devices after the recovery: %v (want the replica %s and the new node %s)", got, replica, fresh)
	}
}
