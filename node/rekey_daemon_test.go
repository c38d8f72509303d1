package node

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/blockmrs/blockmrs/internal/stocktools"
	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/node/ops"
	"github.com/blockmrs/blockmrs/protocol"
)

// TestDaemonRevokeAndRekey runs three daemons on 127.0.0.1: a patient who
// shared a record with her GP and with a clinic, then revokes the clinic
// with re-key. The GP's node fetches the new version by itself and reads
// it (and stock age decrypts it with the key exported there); both old
// copies are dropped; the patient's node refuses the clinic the old CID's
// blocks (re-keyed: served to nobody) and the new one's (no reader), and
// the clinic's node fails to fetch either over the network.
func TestDaemonRevokeAndRekey(t *testing.T) {
	ctx := t.Context()
	patient := newNetParty(t, "Pat", protocol.RolePatient)
	gp := newNetParty(t, "Dr Grey", protocol.RoleClinician)
	clinic := newNetParty(t, "Clinic", protocol.RoleClinic)
	pd, prt := startDaemonRT(t, patient.dir)
	gd, grt := startDaemonRT(t, gp.dir)
	cd, crt := startDaemonRT(t, clinic.dir)
	all := []*running{pd, gd, cd}
	addr := func(r *running) peer.AddrInfo { return peer.AddrInfo{ID: r.info.PeerID, Addrs: r.info.Listen} }
	for _, c := range []struct {
		rt      *Runtime
		at      *running
		account protocol.AccountID
	}{{grt, pd, patient.id}, {crt, pd, patient.id}, {prt, gd, gp.id}, {prt, cd, clinic.id}} {
		if _, err := c.rt.Sync.Profile(ctx, addr(c.at), c.account); err != nil {
			t.Fatal(err)
		}
	}

	pk, err := prt.Repo.Unlock(ctx, patient.id, nil)
	if err != nil {
		t.Fatal(err)
	}
	body := bytes.Repeat([]byte("HbA1c 5.4 % on 2019-03-02\n"), 60_000) // about 1.5 MB: two blocks and a root
	rec, err := prt.Repo.AddRecord(ctx, pk, keyshare.NewRecord{Title: "HbA1c", Kind: protocol.KindNote, MediaType: "text/plain", Body: bytes.NewReader(body)})
	if err != nil {
		t.Fatal(err)
	}
	until := time.Now().Add(30 * 24 * time.Hour)
	if _, err := prt.Repo.Grant(ctx, pk, []cid.Cid{rec}, gp.id, until); err != nil {
		t.Fatal(err)
	}
	if _, err := prt.Repo.Grant(ctx, pk, []cid.Cid{rec}, clinic.id, time.Time{}); err != nil {
		t.Fatal(err)
	}
	pinned := func(rt *Runtime, c cid.Cid) func() bool {
		return func() bool { ok, err := rt.Repo.Store().IsPinned(ctx, c); return err == nil && ok }
	}
	held := func(rt *Runtime, c cid.Cid) bool {
		ok, err := rt.Repo.Store().Blockstore().Has(ctx, c)
		return err == nil && ok
	}
	await(t, "the GP's node fetched the record", pinned(grt, rec), all...)
	await(t, "the clinic's node fetched the record", pinned(crt, rec), all...)
	var oldBlocks []cid.Cid
	if err := prt.Repo.Store().Walk(ctx, rec, func(b blocks.Block) error { oldBlocks = append(oldBlocks, b.Cid()); return nil }); err != nil {
		t.Fatal(err)
	}

	// Revoke the clinic, with re-key, as the API and the command line do.
	job, err := ops.StartRekey(ctx, prt.Repo, pk, ops.RevokeRequest{Records: []string{rec.String()}, From: string(clinic.id)})
	if err != nil {
		t.Fatal(err)
	}
	var progress []int
	end, err := ops.RunRekey(ctx, prt.Repo, pk, job.ID, func(j ops.Job) { progress = append(progress, j.Done) })
	if err != nil || end.State != keyshare.JobDone || end.Done != 1 || len(progress) < 2 || progress[len(progress)-1] != 1 {
		t.Fatalf("job %+v (progress %v): %v", end, progress, err)
	}
	nw, err := cid.Decode(end.Records[0].New)
	if err != nil {
		t.Fatal(err)
	}

	// The GP's node gets the new version by itself, reads it, drops the
	// old copy.
	await(t, "the GP's node fetched the new version", pinned(grt, nw), all...)
	gk, err := grt.Repo.Unlock(ctx, gp.id, nil)
	if err != nil {
		t.Fatal(err)
	}
	env, rc, err := grt.Repo.OpenRecord(ctx, gk, nw)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Equal(got, body) || env.Title != "HbA1c" {
		t.Fatalf("the GP reads %d bytes titled %q: %v", len(got), env.Title, err)
	}
	if a, err := grt.Repo.AccessFor(ctx, nw, gp.id); err != nil || a.RekeyOf == nil || a.RekeyOf.Record != rec.String() {
		t.Fatalf("the GP's view of the new version: %+v %v", a, err)
	} else if r, ok := a.Reader(gp.id); !ok || !r.Expires.Equal(until.UTC().Truncate(time.Millisecond)) {
		t.Fatalf("the GP's grant on the new version: %+v (want until %s)", r, until)
	}
	await(t, "the GP's node dropped the old copy", func() bool { return !held(grt, rec) }, all...)
	await(t, "the clinic's node dropped its revoked copy", func() bool { return !held(crt, rec) }, all...)
	if held(prt, rec) {
		t.Fatal("the patient's node keeps the old ciphertext")
	}

	// Stock age decrypts the new version with the key exported on the
	// GP's node and the raw ciphertext there.
	key, _, err := grt.Repo.RecordKey(ctx, gk, nw)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	keyFile, ctFile := filepath.Join(dir, "new.key"), filepath.Join(dir, "new.age")
	if err := os.WriteFile(keyFile, []byte(key.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	raw, err := grt.Repo.Store().Cat(ctx, nw)
	if err != nil {
		t.Fatal(err)
	}
	stocktools.WriteFile(t, ctFile, raw)
	raw.Close()
	plain, err := exec.Command(stocktools.Age(t), "-d", "-i", keyFile, ctFile).Output()
	if err != nil || !bytes.Equal(plain, body) {
		t.Fatalf("stock age -d of the new version: %d bytes, %v", len(plain), err)
	}

	// The patient's node refuses the clinic both versions, by rule; the
	// GP the old one.
	for _, c := range []struct {
		to   *running
		c    cid.Cid
		rule keyshare.Rule
	}{{cd, rec, keyshare.RuleServeRekeyed}, {cd, oldBlocks[len(oldBlocks)-1], keyshare.RuleServeRekeyed}, {cd, nw, keyshare.RuleServeNoReader}, {gd, rec, keyshare.RuleServeRekeyed}} {
		d, err := prt.Repo.MayServe(ctx, c.to.info.PeerID.String(), c.c)
		if err != nil || d.Allow || d.Rule != c.rule {
			t.Fatalf("%s to %s: %+v %v, want refused by %s", c.c, c.to.info.PeerID, d, err, c.rule)
		}
	}
	if d, err := prt.Repo.MayServe(ctx, gd.info.PeerID.String(), nw); err != nil || !d.Allow {
		t.Fatalf("the new version to the GP: %+v %v", d, err)
	}
	// And over the network: the clinic's node asks the patient's and the
	// GP's nodes for each and gets nothing.
	for _, c := range []cid.Cid{rec, nw} {
		fctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		err := crt.Exchange.Fetch(fctx, c, pd.info.PeerID, gd.info.PeerID)
		cancel()
		if err == nil || held(crt, c) {
			t.Fatalf("the clinic's node fetched %s: %v", c, err)
		}
	}
}
