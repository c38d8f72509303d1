package keyshare

import (
	"context"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/blockmrs/blockmrs/protocol"
)

// recoveryWorld is pat with three recovery contacts (threshold 2), a
// stranger, and a fresh repo on which pat recovers.
type recoveryWorld struct {
	pat, c1, c2, c3, stranger, fresh *party
	before                           cid.Cid
}

func newRecoveryWorld(t *testing.T, threshold int) *recoveryWorld {
	t.Helper()
	ctx := context.Background()
	w := &recoveryWorld{
		pat:      newParty(t, "Pat", protocol.RolePatient),
		c1:       newParty(t, "Cam", protocol.RolePatient),
		c2:       newParty(t, "Dee", protocol.RolePatient),
		c3:       newParty(t, "Eve", protocol.RolePatient),
		stranger: newParty(t, "Mal", protocol.RolePatient),
	}
	for _, c := range []*party{w.c1, w.c2, w.c3} {
		send(t, c, w.pat)
	}
	w.before = noteAs(t, w.pat, w.pat.keys, "written before the loss")
	if _, err := w.pat.repo.SetupRecovery(ctx, w.pat.keys, []protocol.AccountID{w.c1.keys.ID, w.c2.keys.ID, w.c3.keys.ID}, threshold); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*party{w.c1, w.c2, w.c3, w.stranger} {
		send(t, w.pat, c)
	}
	// Every device of pat's is lost: a new repo gets her chain from a contact.
	r, err := Open(ctx, t.TempDir(), Options{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	w.fresh = &party{repo: r}
	send(t, &party{repo: w.c1.repo, keys: w.pat.keys}, w.fresh)
	return w
}

func (w *recoveryWorld) start(t *testing.T) []byte {
	t.Helper()
	s, err := w.fresh.repo.StartRecovery(context.Background(), w.pat.keys.ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	req, err := hex.DecodeString(s.Token)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

func approve(t *testing.T, c *party, req []byte) []byte {
	t.Helper()
	resp, err := c.repo.ApproveRecovery(context.Background(), c.keys, req)
	if err != nil {
		t.Fatalf("%s approves: %v", c.keys.ID, err)
	}
	return resp
}

// With k approvals the account continues under the new key: it reads its
// old records, writes new ones others verify, and the old key is retired
// everywhere.
func TestRecoverySucceedsWithThreshold(t *testing.T) {
	ctx := context.Background()
	w := newRecoveryWorld(t, 2)
	id := w.pat.keys.ID
	req := w.start(t)
	for _, c := range []*party{w.c1, w.c3} {
		if _, err := w.fresh.repo.AddRecoveryResponse(ctx, id, approve(t, c, req)); err != nil {
			t.Fatal(err)
		}
	}
	st, err := w.fresh.repo.RecoveryStatus(ctx, id)
	if err != nil || !st.Ready || len(st.Approved) != 2 {
		t.Fatalf("status: %+v %v", st, err)
	}
	var changes []ChainChange
	unhook := w.fresh.repo.OnChainChange(func(ch ChainChange) { changes = append(changes, ch) })
	nk, err := w.fresh.repo.FinishRecovery(ctx, id, nil)
	unhook()
	if err != nil {
		t.Fatal(err)
	}
	// The node's fetch loop must hear of the account once it is local
	// here, or it fetches none of its old records until a full scan.
	if len(changes) == 0 || !changes[len(changes)-1].All {
		t.Fatalf("after the account became local the listeners were not told to look at every record: %+v", changes)
	}
	rec := &party{repo: w.fresh.repo, keys: nk}
	if _, data, err := readAll(t, rec, w.before); err != nil || string(data) != "written before the loss" {
		t.Fatalf("recovered account reads its old record: %v", err)
	}
	after := noteAs(t, rec, nk, "written after the recovery")
	send(t, w.c2, rec)
	if _, err := w.fresh.repo.Grant(ctx, nk, []cid.Cid{after}, w.c2.keys.ID, time.Time{}); err != nil {
		t.Fatal(err)
	}
	send(t, rec, w.c2)
	if _, data, err := readAll(t, w.c2, after); err != nil || string(data) != "written after the recovery" {
		t.Fatalf("a contact reads the recovered account's new record: %v", err)
	}
	mustVerify(t, rec)
	mustVerify(t, w.c2)
	// Unlocked again from its key file, the account still reads both.
	k2, err := w.fresh.repo.Unlock(ctx, id, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []cid.Cid{w.before, after} {
		if _, _, err := readAll(t, &party{repo: w.fresh.repo, keys: k2}, c); err != nil {
			t.Fatalf("read %s after unlock: %v", c, err)
		}
	}
	// The old device learns its key is retired.
	send(t, rec, w.pat)
	if _, err := w.pat.repo.AddRecord(ctx, w.pat.keys, NewRecord{Title: "x", Kind: protocol.KindNote, MediaType: "text/plain", Body: strings.NewReader("x")}); !errors.Is(err, ErrKeyRetired) {
		t.Fatalf("the old key wrote after the recovery: %v", err)
	}
}

// k−1 approvals, a stranger's, and a contact's approval of another request
// get nothing.
func TestRecoveryRefused(t *testing.T) {
	ctx := context.Background()
	w := newRecoveryWorld(t, 2)
	id := w.pat.keys.ID
	req := w.start(t)
	if _, err := w.stranger.repo.ApproveRecovery(ctx, w.stranger.keys, req); !errors.Is(err, ErrRecovery) {
		t.Fatalf("a stranger approved: %v", err)
	}
	if _, err := w.fresh.repo.AddRecoveryResponse(ctx, id, approve(t, w.c1, req)); err != nil {
		t.Fatal(err)
	}
	// k−1.
	if _, err := w.fresh.repo.FinishRecovery(ctx, id, nil); !errors.Is(err, ErrRecovery) || !strings.Contains(err.Error(), "1 of the 2") {
		t.Fatalf("finished with k−1 approvals: %v", err)
	}
	// The same contact again counts once.
	if s, err := w.fresh.repo.AddRecoveryResponse(ctx, id, approve(t, w.c1, req)); err != nil || s.Ready {
		t.Fatalf("second approval by one contact: %+v %v", s, err)
	}
	// An approval of another request (another new repo's) is refused.
	other, err := Open(ctx, t.TempDir(), Options{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	send(t, &party{repo: w.c1.repo, keys: w.pat.keys}, &party{repo: other})
	os, err := other.StartRecovery(ctx, id, nil)
	if err != nil {
		t.Fatal(err)
	}
	otherReq, _ := hex.DecodeString(os.Token)
	if _, err := w.fresh.repo.AddRecoveryResponse(ctx, id, approve(t, w.c2, otherReq)); !errors.Is(err, ErrRecovery) {
		t.Fatalf("approval of another request accepted: %v", err)
	}
	// A stranger's keys, forced into a response, count for nothing.
	if _, err := w.fresh.repo.FinishRecovery(ctx, id, nil); !errors.Is(err, ErrRecovery) {
		t.Fatalf("finished: %v", err)
	}
	if _, err := w.fresh.repo.Unlock(ctx, id, nil); err == nil {
		t.Fatal("the fresh repo holds keys for the account without a recovery")
	}
}

// A contact removed from the setup: its approval no longer counts, and
// it may not approve.
func TestRecoveryContactRemoved(t *testing.T) {
	ctx := context.Background()
	w := newRecoveryWorld(t, 2)
	id := w.pat.keys.ID
	req := w.start(t)
	stale := approve(t, w.c3, req)
	// pat (still holding her key here) drops c3 before the loss is final.
	if _, err := w.pat.repo.SetupRecovery(ctx, w.pat.keys, []protocol.AccountID{w.c1.keys.ID, w.c2.keys.ID}, 2); err != nil {
		t.Fatal(err)
	}
	send(t, w.pat, w.c1)
	send(t, w.pat, w.c3)
	send(t, w.pat, w.fresh)
	if _, err := w.c3.repo.ApproveRecovery(ctx, w.c3.keys, req); !errors.Is(err, ErrRecovery) {
		t.Fatalf("a removed contact approved: %v", err)
	}
	if _, err := w.fresh.repo.AddRecoveryResponse(ctx, id, stale); !errors.Is(err, ErrRecovery) {
		t.Fatalf("a removed contact's earlier approval accepted: %v", err)
	}
	if _, err := w.fresh.repo.AddRecoveryResponse(ctx, id, approve(t, w.c1, req)); err != nil {
		t.Fatal(err)
	}
	if _, err := w.fresh.repo.FinishRecovery(ctx, id, nil); !errors.Is(err, ErrRecovery) {
		t.Fatalf("finished with one live approval: %v", err)
	}
}

// A forged recovery block (approvals below the threshold, written by
// hand) is refused by a verifier importing it.
func TestForgedRecoveryBlockRefused(t *testing.T) {
	ctx := context.Background()
	w := newRecoveryWorld(t, 2)
	id := w.pat.keys.ID
	req := w.start(t)
	resp, err := protocol.DecodeRecoveryResponse(approve(t, w.c1, req))
	if err != nil {
		t.Fatal(err)
	}
	q, _ := protocol.DecodeRecoveryRequest(req)
	stranger, err := protocol.SignRecoveryApproval(w.stranger.keys.Sign, q.Account, q.Key, protocol.RecoveryRequestID(req), resp.Approval.Setup)
	if err != nil {
		t.Fatal(err)
	}
	s := &protocol.Succession{Key: q.Key, Request: protocol.RecoveryRequestID(req), Approvals: []protocol.RecoveryApproval{resp.Approval, stranger}}
	nk, err := parseKeyFileAt(w.fresh.repo, id)
	if err != nil {
		t.Fatal(err)
	}
	st, _ := w.c2.repo.state(ctx, id)
	link := protocol.NewLink(st.head())
	b := &protocol.Block{Seq: st.Seq + 1, Prev: &link, Time: st.Time, Entries: []protocol.Entry{protocol.NewSuccessionEntry(s)}}
	raw, c, err := b.SignAs(keyOf(id), nk.Sign)
	if err != nil {
		t.Fatal(err)
	}
	err = w.c2.repo.commitForTest(ctx, c, b, raw)
	var se *SignerError
	if !errors.As(err, &se) || se.Decision.Rule != RuleRecoveryTooFew {
		t.Fatalf("forged recovery block: %v", err)
	}
}

func parseKeyFileAt(r *Repo, id protocol.AccountID) (*Keys, error) {
	data, err := readKeyFile(r.keyPath(id) + ".next")
	if err != nil {
		return nil, err
	}
	return parseKeyFile(data, nil)
}
