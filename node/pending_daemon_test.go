package node

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/node/api"
	"github.com/blockmrs/blockmrs/node/p2p"
	"github.com/blockmrs/blockmrs/protocol"
)

// startDaemonRT is startDaemon handing back the daemon's runtime (its open
// repo, chain sync, sessions), so the test can act inside it.
func startDaemonRT(t *testing.T, dir string) (*running, *Runtime) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{cancel: cancel, done: make(chan error, 1), logs: &lockedWriter{}}
	started := make(chan Info, 1)
	rts := make(chan *Runtime, 1)
	d := &Daemon{
		Logger:  slog.New(slog.NewTextHandler(r.logs, nil)),
		Getenv:  loopbackEnv(nil),
		Started: func(i Info) { started <- i },
		Exec:    func(rt *Runtime) api.ExecFunc { rts <- rt; return nil },
	}
	go func() { r.done <- d.Run(ctx, dir) }()
	select {
	case r.info = <-started:
	case err := <-r.done:
		cancel()
		t.Fatalf("daemon did not start: %v", err)
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatal("daemon did not start in 30 s")
	}
	t.Cleanup(func() { r.stop(t) })
	return r, <-rts
}

// newNetParty is a repo folder with one account whose first chain block
// (its profile, what a contact add fetches) declares the folder's node.
func newNetParty(t *testing.T, name string, role protocol.Role) *reqParty {
	t.Helper()
	p := &reqParty{dir: filepath.Join(t.TempDir(), "repo")}
	withRepo(t, p.dir, true, func(r *keyshare.Repo) {
		key, err := p2p.LoadOrCreateKey(p.dir)
		if err != nil {
			t.Fatal(err)
		}
		if p.node, err = peer.IDFromPrivateKey(key); err != nil {
			t.Fatal(err)
		}
		k, err := r.CreateAccount(t.Context(), name, role, nil, keyshare.DeviceInfo{PeerID: p.node.String(), Name: name + " node"})
		if err != nil {
			t.Fatal(err)
		}
		p.id = k.ID
	})
	return p
}

// await polls cond every 50 ms for up to 30 s.
func await(t *testing.T, what string, cond func() bool, logs ...*running) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			var b strings.Builder
			for _, r := range logs {
				b.WriteString("\n--- " + r.info.PeerID.String() + ":\n" + r.logs.String())
			}
			t.Fatalf("timed out waiting until %s%s", what, b.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestDaemonFetchesRecordWrittenForPatient runs three daemons: a clinic
// and a patient who added each other as contacts, and a stranger who
// added the patient. The clinic writes a record for the patient: her
// node fetches it over the network while she is locked (it stays pending:
// no claim of it counts), and acknowledges it once she unlocks, after
// which it lists as readable and acknowledged. The stranger's record for
// her (his chain on her node, as chain sync can bring it) and the clinic's
// record about the stranger naming her as a reader are not fetched.
func TestDaemonFetchesRecordWrittenForPatient(t *testing.T) {
	ctx := t.Context()
	clinic := newNetParty(t, "Dr Who", protocol.RoleClinician)
	patient := newNetParty(t, "Pat", protocol.RolePatient)
	stranger := newNetParty(t, "Mallory", protocol.RoleClinician)
	cd, crt := startDaemonRT(t, clinic.dir)
	pd, prt := startDaemonRT(t, patient.dir)
	sd, srt := startDaemonRT(t, stranger.dir)
	all := []*running{cd, pd, sd}
	addr := func(r *running) peer.AddrInfo { return peer.AddrInfo{ID: r.info.PeerID, Addrs: r.info.Listen} }

	// Contacts, as `contact add ADDRESS ACCOUNT` makes them.
	for _, c := range []struct {
		rt      *Runtime
		at      *running
		account protocol.AccountID
	}{{crt, pd, patient.id}, {prt, cd, clinic.id}, {srt, pd, patient.id}, {crt, sd, stranger.id}} {
		if _, err := c.rt.Sync.Profile(ctx, addr(c.at), c.account); err != nil {
			t.Fatal(err)
		}
	}
	// The stranger's chain reaches the patient's node the way chain sync
	// can bring a chain by itself (an ack on a contact's chain pulls in
	// its author's): he is known there, not a contact.
	offered := map[cid.Cid][]byte{}
	sinfo, err := srt.Repo.Account(ctx, stranger.id)
	if err != nil {
		t.Fatal(err)
	}
	raws, err := srt.Repo.ChainBack(ctx, sinfo.Head, keyshare.NoneHeld, 1000, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	for _, raw := range raws {
		offered[protocol.BlockCID(raw)] = raw
	}
	if _, err := prt.Repo.ApplyChains(ctx, []cid.Cid{sinfo.Head}, offered); err != nil {
		t.Fatal(err)
	}
	if ok, err := prt.Repo.IsContact(ctx, stranger.id); err != nil || ok {
		t.Fatalf("the stranger is a contact of the patient's repo: %v %v", ok, err)
	}

	write := func(rt *Runtime, author protocol.AccountID, nr keyshare.NewRecord) cid.Cid {
		t.Helper()
		k, err := rt.Repo.Unlock(ctx, author, nil)
		if err != nil {
			t.Fatal(err)
		}
		nr.Kind, nr.MediaType = protocol.KindNote, "text/plain"
		c, err := rt.Repo.AddRecord(ctx, k, nr)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	headOn := func(rt *Runtime, id protocol.AccountID) func() bool {
		want, err := rt.Repo.Account(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return func() bool {
			got, err := prt.Repo.Account(ctx, id)
			return err == nil && got.Head.Equals(want.Head)
		}
	}
	// First the records that must not be fetched, and their chains on
	// the patient's node.
	fromStranger := write(srt, stranger.id, keyshare.NewRecord{Title: "Buy now", Subject: patient.id, Body: strings.NewReader("spam")})
	await(t, "the stranger's record entry reaches the patient's node", headOn(srt, stranger.id), all...)
	aboutStranger := write(crt, clinic.id, keyshare.NewRecord{Title: "Mallory's lipids", Subject: stranger.id,
		CC: []protocol.AccountID{patient.id}, Body: strings.NewReader("LDL 4.0")})
	await(t, "the clinic's record about the stranger reaches the patient's node", headOn(crt, clinic.id), all...)

	// Then the lab panel for the patient.
	const body = "glucose 5.1 mmol/L"
	lab := write(crt, clinic.id, keyshare.NewRecord{Title: "Lab panel", Subject: patient.id, Body: strings.NewReader(body)})
	await(t, "the patient's node fetched the lab panel", func() bool {
		ok, err := prt.Repo.Store().IsPinned(ctx, lab)
		return err == nil && ok
	}, all...)
	proof := func() keyshare.Proof {
		a, err := prt.Repo.AccessFor(ctx, lab, patient.id)
		if err != nil {
			t.Fatal(err)
		}
		return a.Proof
	}
	// She has no session: fetched, not acknowledged, so it counts for
	// nothing on her node (it serves it to nobody, the clinic included).
	if p := proof(); p != keyshare.ProofPending {
		t.Fatalf("the lab panel is %s before she unlocked", p)
	}
	if d, err := prt.Repo.MayServe(ctx, cd.info.PeerID.String(), lab); err != nil || d.Allow {
		t.Fatalf("the patient's node serves the pending record: %+v %v", d, err)
	}

	// She unlocks: her node acknowledges it, and it lists as readable.
	if _, err := prt.Sessions.Unlock(ctx, patient.id, nil, time.Hour); err != nil {
		t.Fatal(err)
	}
	await(t, "the patient's node acknowledges the lab panel", func() bool { return proof() == keyshare.ProofAcknowledged }, all...)
	k, err := prt.Sessions.Keys(patient.id)
	if err != nil {
		t.Fatal(err)
	}
	listed, err := prt.Repo.List(ctx, k, false)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, l := range listed {
		if l.Record == lab {
			found = l.Readable && l.Acked && l.Title == "Lab panel" && l.Author == clinic.id && l.Error == ""
		}
	}
	if !found {
		t.Fatalf("the lab panel is not listed readable and acknowledged: %+v", listed)
	}
	_, rc, err := prt.Repo.OpenRecord(ctx, k, lab)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || string(got) != body {
		t.Fatalf("the patient reads %q: %v", got, err)
	}

	// Nothing of the other two records is on her node, nor wanted.
	wanted, err := prt.Repo.WantedRecords(ctx, pd.info.PeerID.String())
	if err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]cid.Cid{"the stranger's record": fromStranger, "the record about the stranger": aboutStranger} {
		if has, err := prt.Repo.Store().Blockstore().Has(ctx, c); err != nil || has {
			t.Errorf("the patient's node holds %s (%v)", name, err)
		}
		for _, w := range wanted {
			if w.Record == c {
				t.Errorf("the patient's node wants %s: %+v", name, w)
			}
		}
	}
}
