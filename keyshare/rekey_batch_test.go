package keyshare

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/blockmrs/blockmrs/protocol"
)

// A re-key job of 600 records (over stagedRecords) is one staged commit,
// all or nothing: when a record fails half way (its content went from
// this node after the job was made) nothing is written — the chain, the
// old records, their readers and the pins are as they were, the failed
// record says why and the others are left pending; a job without that
// record re-keys all of them, their entries packed into fewer blocks than
// records, each record's entries in one block, the grantee revoked from
// every new version and the old copies gone.
func TestRekeyJobLargeAllOrNothing(t *testing.T) {
	ctx := context.Background()
	repo := openTempRepo(t)
	k, err := repo.CreateAccount(ctx, "Pat", protocol.RolePatient, nil)
	if err != nil {
		t.Fatal(err)
	}
	gus := newParty(t, "Gus", protocol.RoleClinician)
	send(t, gus, &party{repo: repo, keys: k})
	const n = 600
	batch, err := repo.NewBatch(ctx, k)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if _, err := batch.Add(NewRecord{Title: "note", Kind: protocol.KindNote, MediaType: "text/plain", Body: strings.NewReader(fmt.Sprintf("note %d", i))}); err != nil {
			t.Fatal(err)
		}
	}
	recs, err := batch.Commit()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := repo.Grant(ctx, k, recs, gus.keys.ID, time.Time{}); err != nil {
		t.Fatal(err)
	}
	before, err := repo.state(ctx, k.ID)
	if err != nil {
		t.Fatal(err)
	}
	pins := func() int {
		ps, err := repo.st.Pins(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return len(ps)
	}
	pinsBefore := pins()

	// Record 400's content goes after the job is made.
	j, err := repo.NewRekeyJob(ctx, k, gus.keys.ID, recs)
	if err != nil {
		t.Fatal(err)
	}
	broken := recs[400]
	if err := repo.st.Unpin(ctx, broken); err != nil {
		t.Fatal(err)
	}
	if err := repo.deleteRecords(ctx, []cid.Cid{broken}); err != nil {
		t.Fatal(err)
	}
	got, err := repo.RunRekeyJob(ctx, k, j.ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != JobInterrupted || got.Failed != 1 || got.Done != 0 || len(got.Left()) != n-1 || !strings.Contains(got.Error, "nothing was re-keyed") {
		t.Fatalf("job after a failure half way: state %s, done %d, failed %d, left %d, error %q", got.State, got.Done, got.Failed, len(got.Left()), got.Error)
	}
	if jr := got.Records[400]; jr.State != JobRecordFailed || jr.Error == "" {
		t.Fatalf("the broken record's row: %+v", jr)
	}
	after, err := repo.state(ctx, k.ID)
	if err != nil {
		t.Fatal(err)
	}
	if after.Head != before.Head || after.Seq != before.Seq {
		t.Fatalf("the chain moved from %d to %d on a failed re-key", before.Seq, after.Seq)
	}
	if p := pins(); p != pinsBefore-1 {
		t.Fatalf("%d records pinned after the failed re-key, want %d (the %d before, less the broken one)", p, pinsBefore-1, pinsBefore)
	}
	for _, c := range []cid.Cid{recs[0], recs[399], recs[599]} {
		a, err := repo.AccessFor(ctx, c, k.ID)
		if err != nil {
			t.Fatal(err)
		}
		if _, reads := a.Reader(gus.keys.ID); a.Rekeyed != nil || !reads {
			t.Fatalf("%s after the failed re-key: re-keyed %v, Gus reads %v", c, a.Rekeyed, reads)
		}
	}

	// Without the broken record: every one re-keyed, in one commit.
	rest := append(recs[:400:400], recs[401:]...)
	j2, err := repo.NewRekeyJob(ctx, k, gus.keys.ID, rest)
	if err != nil {
		t.Fatal(err)
	}
	done, err := repo.RunRekeyJob(ctx, k, j2.ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	if done.State != JobDone || done.Done != n-1 {
		t.Fatalf("job without the broken record: state %s, done %d of %d (%s)", done.State, done.Done, n-1, done.Error)
	}
	final, err := repo.state(ctx, k.ID)
	if err != nil {
		t.Fatal(err)
	}
	if added := final.Seq - before.Seq; added == 0 || added >= n-1 {
		t.Fatalf("%d chain blocks for %d re-keys, want fewer blocks than records", added, n-1)
	}
	blocksUsed := map[string]bool{}
	for _, jr := range done.Records {
		newCID, err := cid.Decode(jr.New)
		if err != nil {
			t.Fatal(err)
		}
		old, _ := cid.Decode(jr.Record)
		a, err := repo.AccessFor(ctx, newCID, k.ID)
		if err != nil {
			t.Fatal(err)
		}
		if a.RekeyOf == nil || a.RekeyOf.Record != jr.Record || a.Entry == nil || a.Entry.Block != jr.Block || a.RekeyOf.Via.Block != jr.Block {
			t.Fatalf("new version %s: rekey of %+v, entry %+v, job says block %s", newCID, a.RekeyOf, a.Entry, jr.Block)
		}
		if _, reads := a.Reader(gus.keys.ID); reads {
			t.Fatalf("Gus reads the new version %s", newCID)
		}
		if has, _ := repo.st.Blockstore().Has(ctx, old); has {
			t.Fatalf("the old copy of %s is still here", old)
		}
		blocksUsed[jr.Block] = true
	}
	if uint64(len(blocksUsed)) != final.Seq-before.Seq {
		t.Errorf("the re-keys sit in %d blocks, the chain grew by %d", len(blocksUsed), final.Seq-before.Seq)
	}
}
