package api

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/node/chainsync"
	"github.com/blockmrs/blockmrs/protocol"
)

// noRecords is a chain sync fetcher that fetches no record: these nodes
// move chains only.
type noRecords struct{}

func (noRecords) Fetch(context.Context, cid.Cid, ...peer.ID) error { return nil }

// theft is a recovery-settled fork in the making: Pat's only device (the
// thief's now) has granted her record to Mal, and Pat has recovered on a
// fresh repo with Cam's and Dee's approvals.
type theft struct {
	pat, fresh *keyshare.Repo // the stolen device's repo; the recovered one
	patID      protocol.AccountID
	record     cid.Cid // Pat's record, granted to Mal by the thief
	malID      protocol.AccountID
}

// clinicRepo is a clinic's repo and its account.
type clinicRepo struct {
	repo *keyshare.Repo
	id   protocol.AccountID
}

// newTheft sets up Pat with two recovery contacts and a record she
// shares with each clinic (so that her nodes serve them her chain), lets
// the clinics import her chain, then the thief writes and the clinics
// import the thief's branch, and Pat recovers.
func newTheft(t *testing.T, clinics ...clinicRepo) *theft {
	t.Helper()
	ctx := t.Context()
	pat, patKeys := account(t, "Pat")
	cam, camKeys := account(t, "Cam")
	dee, deeKeys := account(t, "Dee")
	mal, malKeys := account(t, "Mal")
	for _, c := range []struct {
		r  *keyshare.Repo
		id protocol.AccountID
	}{{cam, camKeys.ID}, {dee, deeKeys.ID}, {mal, malKeys.ID}} {
		exchange(t, c.r, pat, c.id)
	}
	rec, err := pat.AddRecord(ctx, patKeys, keyshare.NewRecord{Title: "Allergies", Kind: protocol.KindNote, MediaType: "text/plain", Body: strings.NewReader("penicillin")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pat.SetupRecovery(ctx, patKeys, []protocol.AccountID{camKeys.ID, deeKeys.ID}, 2); err != nil {
		t.Fatal(err)
	}
	for _, c := range clinics {
		exchange(t, c.repo, pat, c.id)
		if _, err := pat.Grant(ctx, patKeys, []cid.Cid{rec}, c.id, time.Time{}); err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range []*keyshare.Repo{cam, dee} {
		exchange(t, pat, r, patKeys.ID)
	}
	// The theft: the stolen device grants the record to Mal, and the
	// clinics import that branch.
	if _, err := pat.Grant(ctx, patKeys, []cid.Cid{rec}, malKeys.ID, time.Time{}); err != nil {
		t.Fatal(err)
	}
	for _, c := range clinics {
		exchange(t, pat, c.repo, patKeys.ID)
	}
	// Pat recovers on a fresh repo, her chain from Cam's (before the
	// theft), her clinics' chains too.
	fresh := openRepo(t)
	exchange(t, cam, fresh, patKeys.ID)
	for _, c := range clinics {
		exchange(t, c.repo, fresh, c.id)
	}
	started, err := fresh.StartRecovery(ctx, patKeys.ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := hex.DecodeString(started.Token)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		r *keyshare.Repo
		k *keyshare.Keys
	}{{cam, camKeys}, {dee, deeKeys}} {
		resp, err := c.r.ApproveRecovery(ctx, c.k, tok)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := fresh.AddRecoveryResponse(ctx, patKeys.ID, resp); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := fresh.FinishRecovery(ctx, patKeys.ID, nil); err != nil {
		t.Fatal(err)
	}
	return &theft{pat: pat, fresh: fresh, patID: patKeys.ID, record: rec, malID: malKeys.ID}
}

// head returns r's head of id's chain.
func head(t *testing.T, r *keyshare.Repo, id protocol.AccountID) cid.Cid {
	t.Helper()
	a, err := r.Account(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	return a.Head
}

// carOf exports id's chain (and the records it may give out) from r.
func carOf(t *testing.T, r *keyshare.Repo, id protocol.AccountID) []byte {
	t.Helper()
	var car bytes.Buffer
	if _, err := r.ExportCAR(t.Context(), &car, id); err != nil {
		t.Fatal(err)
	}
	return car.Bytes()
}

// wantSettled checks an import's report of the fork a recovery settled
// on Pat's chain.
func wantSettled(t *testing.T, what string, got ContactAdded, id protocol.AccountID, switched bool, rule keyshare.Rule) {
	t.Helper()
	if len(got.Superseded) != 1 {
		t.Fatalf("%s: superseded %+v, want one fork", what, got.Superseded)
	}
	s := got.Superseded[0]
	if s.Account != id || s.Seq == 0 || s.Switched != switched || s.Rule != rule || s.Reason == "" {
		t.Fatalf("%s: superseded %+v, want account %s switched=%v rule %s", what, s, id, switched, rule)
	}
}

// wantCustody checks the verify endpoint's answer on Pat's record at a
// clinic holding the thief's branch as evidence: ok, no problems, one
// fork superseded by recovery, naming the thief's head.
func wantCustody(t *testing.T, e *env, th *theft, thiefHead cid.Cid) {
	t.Helper()
	var cu custody
	looseDecode(t, e.do(t, req{path: "/api/v1/records/" + th.record.String() + "/verify"}), http.StatusOK, &cu)
	if !cu.OK || len(cu.Problems) != 0 || cu.Problems == nil || cu.Record.Access.Author != string(th.patID) || cu.Record.Access.CID != th.record.String() {
		t.Fatalf("verify: %+v", cu)
	}
	if len(cu.Superseded) != 1 || !strings.Contains(cu.Superseded[0], "superseded by recovery") || !strings.Contains(cu.Superseded[0], thiefHead.String()) {
		t.Fatalf("verify: superseded %q, want the thief's head %s superseded by recovery", cu.Superseded, thiefHead)
	}
	if f := cu.SupersededForks; len(f) != 1 || f[0].Account != string(th.patID) || f[0].Superseded != thiefHead.String() || f[0].Recovery == "" || f[0].Seq == 0 {
		t.Fatalf("verify: superseded_forks %+v, want Pat's fork with the thief's head %s", f, thiefHead)
	}
	for _, r := range cu.Record.Access.Readers {
		if r.Account == string(th.malID) {
			t.Fatalf("verify: the thief's grant to Mal still counts: %+v", cu.Record.Access.Readers)
		}
	}
}

// A clinic that holds the thief's branch adds Pat again over the network
// (POST /api/v1/contacts, to her recovered node): it switches to the
// recovered chain; the record's verify is ok and
// lists the thief's branch as superseded; the thief's branch uploaded
// again (POST /api/v1/contacts/import) is kept as evidence and changes
// nothing. A second clinic, uploading the recovered chain as a file,
// gets the same switch, which the answer reports.
func TestRecoverySettledForkOverAPI(t *testing.T) {
	ctx := t.Context()
	// The clinic's chain declares its node, so that Pat's nodes serve it
	// her chain.
	clinicHost := newHost(t)
	clinic, clinicKeys := account(t, "St Mary's")
	if _, err := clinic.SetDevice(ctx, clinicKeys, clinicHost.ID().String(), "St Mary's node", false); err != nil {
		t.Fatal(err)
	}
	byFile, byFileKeys := account(t, "St Luke's")
	th := newTheft(t, clinicRepo{clinic, clinicKeys.ID}, clinicRepo{byFile, byFileKeys.ID})
	thiefHead := head(t, clinic, th.patID)
	if a, err := clinic.Access(ctx, th.record); err != nil {
		t.Fatal(err)
	} else if _, ok := a.Reader(th.malID); !ok {
		t.Fatal("precondition: the thief's grant counts at the clinic")
	}

	// Pat's recovered node serves her profile; the clinic's node fetches it.
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	freshHost := newHost(t)
	freshSync := chainsync.New(freshHost, th.fresh, noRecords{}, quiet)
	t.Cleanup(func() { freshSync.Close() })
	clinicSync := chainsync.New(clinicHost, clinic, noRecords{}, quiet)
	t.Cleanup(func() { clinicSync.Close() })
	sessions := keyshare.NewSessions(clinic)
	t.Cleanup(sessions.Close)
	e := startServer(t, Options{Repo: clinic, Sessions: sessions, Host: clinicHost, Profiles: clinicSync})

	share := fmt.Sprintf("%s/p2p/%s %s", freshHost.Addrs()[0], freshHost.ID(), th.patID)
	var added ContactAdded
	decode(t, e.postJSON(t, "/api/v1/contacts?account="+string(clinicKeys.ID), `{"share_code":"`+share+`"}`), http.StatusOK, &added)
	if got, want := head(t, clinic, th.patID), head(t, th.fresh, th.patID); got != want {
		t.Fatalf("the clinic's head of Pat's chain %s, the recovered node's %s", got, want)
	}
	// The answer reports the switch when the add's own sync made it; the
	// recovered node announces Pat's chain on connecting, and when the
	// clinic's pull of that announcement switches first, the add finds
	// the chain unchanged (the switch is then only in the node's log).
	updated := len(added.Updated) == 1 && added.Updated[0].ID == th.patID
	unchanged := len(added.Unchanged) == 1 && added.Unchanged[0] == th.patID
	if len(added.Added) != 0 || updated == unchanged || (unchanged && len(added.Superseded) != 0) {
		t.Fatalf("add contact over the network: %+v", added)
	}
	t.Logf("the add's answer: updated %v, superseded %+v", updated, added.Superseded)
	if updated {
		wantSettled(t, "add contact over the network", added, th.patID, true, keyshare.RuleForkRecovery)
	}
	wantCustody(t, e, th, thiefHead)

	// The thief's branch again, as a file: evidence, nothing new.
	thief := carOf(t, th.pat, th.patID)
	var again ContactAdded
	decode(t, e.do(t, req{method: http.MethodPost, path: contactImportPath, body: bytes.NewReader(thief), length: int64(len(thief)),
		header: map[string]string{"Content-Type": "application/vnd.ipld.car"}}), http.StatusOK, &again)
	wantSettled(t, "the thief's branch uploaded", again, th.patID, false, keyshare.RuleForkRecoveryHeld)
	if again.NewBlocks != 0 || head(t, clinic, th.patID) != head(t, th.fresh, th.patID) {
		t.Fatalf("the thief's branch uploaded again: %+v, head %s", again, head(t, clinic, th.patID))
	}
	wantCustody(t, e, th, thiefHead)

	// The recovered chain as a file, at the other clinic.
	f := serve(t, byFile, nil)
	recovered, err := f.client(t).ImportContact(ctx, bytes.NewReader(carOf(t, th.fresh, th.patID)))
	if err != nil {
		t.Fatal(err)
	}
	wantSettled(t, "the recovered chain uploaded", recovered, th.patID, true, keyshare.RuleForkRecovery)
	wantCustody(t, f, th, head(t, th.pat, th.patID))
}
