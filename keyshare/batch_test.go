package keyshare

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/blockmrs/blockmrs/protocol"
)

// obsRecord is a FHIR record of one small Observation, with its clinical
// fields as an importer would give them.
func obsRecord(i int, subject protocol.AccountID) NewRecord {
	raw := fmt.Appendf(nil, `{"resourceType":"Observation","id":"obs-%d","status":"final","code":{"text":"test %d"},"valueString":"%s"}`,
		i, i, strings.Repeat("v", 1500))
	sum := sha256.Sum256(raw)
	return NewRecord{
		Title: fmt.Sprintf("test %d", i), Kind: protocol.KindFHIR, MediaType: "application/fhir+json", Subject: subject,
		FHIR: &protocol.Clinical{ResourceType: "Observation", ID: fmt.Sprintf("obs-%d", i), Date: "2019-03-02", Digest: sum[:]},
		Body: bytes.NewReader(raw),
	}
}

// repoState is what a failed batch must leave unchanged: every block
// held, every pin, every chain head.
func repoState(t *testing.T, r *Repo) []string {
	t.Helper()
	ctx := context.Background()
	var out []string
	keys, err := r.st.Blockstore().AllKeysChan(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for c := range keys {
		out = append(out, "block "+c.String())
	}
	pins, err := r.st.Pins(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range pins {
		out = append(out, "pin "+c.String())
	}
	accts, err := r.Accounts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range accts {
		out = append(out, fmt.Sprintf("head %s %d %s", a.ID, a.Seq, a.Head))
	}
	markers, err := listKeys(ctx, r.ds, addingPrefix)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range markers {
		out = append(out, "adding "+k.String())
	}
	slices.Sort(out)
	return out
}

func sameState(t *testing.T, what string, before, after []string) {
	t.Helper()
	if !slices.Equal(before, after) {
		t.Fatalf("%s changed the repo:\nbefore: %v\nafter:  %v", what, before, after)
	}
}

// A batch of 2,500 FHIR records commits in one step: every record is
// listed with its clinical fields and readable, the entries fill as few
// chain blocks as the size limit allows, in order, and the chain
// verifies.
func TestBatchAddsManyRecordsInFewBlocks(t *testing.T) {
	ctx := context.Background()
	p := newParty(t, "Pat", protocol.RolePatient)
	seqBefore := mustAccount(t, p).Seq
	b, err := p.repo.NewBatch(ctx, p.keys)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Abort()
	const n = 2500
	for i := range n {
		j, err := b.Add(obsRecord(i, ""))
		if err != nil {
			t.Fatal(err)
		}
		if j != i {
			t.Fatalf("Add gave index %d, want %d", j, i)
		}
	}
	cids, err := b.Commit()
	if err != nil {
		t.Fatal(err)
	}
	if len(cids) != n {
		t.Fatalf("%d CIDs, want %d", len(cids), n)
	}
	acct := mustAccount(t, p)
	blocks := int(acct.Seq - seqBefore)
	// Each entry is about 1.3 KB: at least two blocks, and greedy.
	var sizes []int
	total := 0
	for i := range blocks {
		c, _, err := p.repo.blockAt(ctx, p.keys.ID, seqBefore+1+uint64(i))
		if err != nil {
			t.Fatal(err)
		}
		blk, err := p.repo.readBlock(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		for j, e := range blk.Entries {
			rec, ok := e.Body.(*protocol.Record)
			if !ok || !rec.Record.Cid.Equals(cids[total+j]) {
				t.Fatalf("block %d entry %d is not record %d", i, j, total+j)
			}
		}
		total += len(blk.Entries)
		raw, err := p.repo.st.Blockstore().Get(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		sizes = append(sizes, len(raw.RawData()))
	}
	if total != n {
		t.Fatalf("chain blocks hold %d entries, want %d", total, n)
	}
	if blocks < 2 {
		t.Fatalf("%d records of 1.3 KB entries fit in %d block", n, blocks)
	}
	for i, s := range sizes[:len(sizes)-1] {
		if s > protocol.MaxBlockSize || s < protocol.MaxBlockSize-8<<10 {
			t.Fatalf("block %d of %d is %d bytes: not filled to the limit (%v)", i, blocks, s, sizes)
		}
	}
	list, err := p.repo.List(ctx, p.keys, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != n {
		t.Fatalf("listed %d records, want %d", len(list), n)
	}
	for _, l := range list {
		if l.FHIR == nil || l.FHIR.ResourceType != "Observation" || l.FHIR.Date != "2019-03-02" || !strings.HasPrefix(l.FHIR.ID, "obs-") {
			t.Fatalf("row %s: clinical fields %+v", l.Record, l.FHIR)
		}
	}
	_, data, err := readAll(t, p, cids[1234])
	if err != nil || !bytes.Contains(data, []byte(`"id":"obs-1234"`)) {
		t.Fatalf("record 1234: %q, %v", data, err)
	}
	mustVerify(t, p)
}

func mustAccount(t *testing.T, p *party) AccountInfo {
	t.Helper()
	a, err := p.repo.Account(context.Background(), p.keys.ID)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// A batch failing anywhere leaves nothing: a bad record at position 900
// (its content is not FHIR, or its digest is wrong), a cancelled
// context, an unknown subject. The chain, the pins, the blocks are as
// before, and no marker is left.
func TestBatchFailureStoresNothing(t *testing.T) {
	ctx := context.Background()
	p := newParty(t, "Pat", protocol.RolePatient)
	if _, err := p.repo.AddRecord(ctx, p.keys, NewRecord{Title: "kept", Kind: protocol.KindNote, MediaType: "text/plain", Body: strings.NewReader("kept")}); err != nil {
		t.Fatal(err)
	}
	before := repoState(t, p.repo)
	for _, tc := range []struct {
		name string
		bad  func(i int, nr *NewRecord, cancel func())
		want string
	}{
		{"not JSON", func(i int, nr *NewRecord, _ func()) {
			if i == 900 {
				nr.Body, nr.FHIR.Digest = strings.NewReader("<Observation/>"), nil
			}
		}, "record 900: FHIR: invalid JSON"},
		{"wrong digest", func(i int, nr *NewRecord, _ func()) {
			if i == 900 {
				nr.FHIR.Digest = make([]byte, 32)
			}
		}, "record 900: FHIR: the clinical digest"},
		{"wrong type", func(i int, nr *NewRecord, _ func()) {
			if i == 900 {
				nr.FHIR.ResourceType = "Patient"
			}
		}, "record 900: FHIR: the envelope says Patient"},
		{"unknown subject", func(i int, nr *NewRecord, _ func()) {
			if i == 900 {
				nr.Subject = protocol.AccountIDFromKey(make([]byte, 32))
			}
		}, "record 900: subject:"},
		{"cancelled", func(i int, _ *NewRecord, cancel func()) {
			if i == 900 {
				cancel()
			}
		}, "context canceled"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bctx, cancel := context.WithCancel(ctx)
			defer cancel()
			b, err := p.repo.NewBatch(bctx, p.keys)
			if err != nil {
				t.Fatal(err)
			}
			defer b.Abort()
			var addErr error
			for i := 0; i < 1000 && addErr == nil; i++ {
				nr := obsRecord(i, "")
				tc.bad(i, &nr, cancel)
				_, addErr = b.Add(nr)
			}
			_, err = b.Commit()
			if err == nil {
				t.Fatal("the batch committed")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q, want it to say %q", err, tc.want)
			}
			if addErr != nil && !errors.Is(err, addErr) && err.Error() != addErr.Error() {
				t.Fatalf("Add said %q, Commit %q", addErr, err)
			}
			sameState(t, tc.name, before, repoState(t, p.repo))
		})
	}
	// One record, through AddRecord: the error has no index.
	_, err := p.repo.AddRecord(ctx, p.keys, NewRecord{Title: "x", Kind: protocol.KindFHIR, MediaType: "application/fhir+json", Body: strings.NewReader("[]")})
	if err == nil || strings.HasPrefix(err.Error(), "record 0") {
		t.Fatalf("AddRecord of a bad FHIR record: %v", err)
	}
	sameState(t, "AddRecord", before, repoState(t, p.repo))
}

// Dropped records are stored, then left out at Commit: neither claimed
// nor kept.
func TestBatchDrop(t *testing.T) {
	ctx := context.Background()
	p := newParty(t, "Pat", protocol.RolePatient)
	before := repoState(t, p.repo)
	b, err := p.repo.NewBatch(ctx, p.keys)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		if _, err := b.Add(obsRecord(i, "")); err != nil {
			t.Fatal(err)
		}
		if i != 4 {
			b.Drop(i)
		}
	}
	cids, err := b.Commit()
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range cids {
		if c.Defined() != (i == 4) {
			t.Fatalf("CIDs %v: want only record 4's", cids)
		}
	}
	after := repoState(t, p.repo)
	// The new record's block and pin, one chain block, a new head.
	if len(after) != len(before)+3 {
		t.Fatalf("repo before %v\nafter %v", before, after)
	}
	list, err := p.repo.List(ctx, p.keys, true)
	if err != nil || len(list) != 1 || !list[0].Record.Equals(cids[4]) {
		t.Fatalf("list %v, %v", list, err)
	}
}

// A process killed in the middle of a batch (records stored, nothing
// committed) leaves nothing after the next Open; so does one killed
// after the records were pinned but before the chain commit.
func TestBatchInterruptedLeavesNothing(t *testing.T) {
	if dir := os.Getenv("BLOCKMRS_BATCH_CRASH_CHILD"); dir != "" {
		batchCrashChild(dir)
		return
	}
	ctx := context.Background()
	dir := t.TempDir()
	r, err := Open(ctx, dir, Options{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	k, err := r.CreateAccount(ctx, "Pat", protocol.RolePatient, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.AddRecord(ctx, k, NewRecord{Title: "kept", Kind: protocol.KindNote, MediaType: "text/plain", Body: strings.NewReader("kept")}); err != nil {
		t.Fatal(err)
	}
	before := repoState(t, r)
	r.Close()

	cmd := exec.Command(os.Args[0], "-test.run=^TestBatchInterruptedLeavesNothing$")
	cmd.Env = append(os.Environ(), "BLOCKMRS_BATCH_CRASH_CHILD="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	stored := false
	for sc.Scan() {
		if sc.Text() == "stored" {
			stored = true
			break
		}
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	if !stored {
		t.Fatal("the child did not store records")
	}
	r, err = Open(ctx, dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := r.TakeRecovered(); got.Removed == 0 {
		t.Fatalf("Open removed nothing after the kill: %+v", got)
	}
	sameState(t, "a killed batch", before, repoState(t, r))

	// Killed after the store commit (records pinned), before the chain's.
	b, err := r.NewBatch(ctx, k)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		if _, err := b.Add(obsRecord(i, "")); err != nil {
			t.Fatal(err)
		}
	}
	close(b.jobs)
	b.wg.Wait()
	if err := b.sb.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if pins, _ := r.st.Pins(ctx); len(pins) < 51 {
		t.Fatalf("%d pins after the store commit", len(pins))
	}
	r.Close()
	r, err = Open(ctx, dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	sameState(t, "a batch killed before its chain commit", before, repoState(t, r))
}

// batchCrashChild opens the repo in dir, stores records in a batch, says
// "stored" and waits to be killed.
func batchCrashChild(dir string) {
	ctx := context.Background()
	r, err := Open(ctx, dir, Options{})
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(1)
	}
	acct, err := r.Resolve(ctx, "Pat", true)
	if err != nil {
		fmt.Println("account:", err)
		os.Exit(1)
	}
	k, err := r.Unlock(ctx, acct.ID, nil)
	if err != nil {
		fmt.Println("unlock:", err)
		os.Exit(1)
	}
	b, err := r.NewBatch(ctx, k)
	if err != nil {
		fmt.Println("batch:", err)
		os.Exit(1)
	}
	for i := range 200 {
		if _, err := b.Add(obsRecord(i, "")); err != nil {
			fmt.Println("add:", err)
			os.Exit(1)
		}
	}
	// Let the workers store what was queued, then keep adding.
	for len(b.sb.Roots()) < 100 {
		time.Sleep(time.Millisecond)
	}
	fmt.Println("stored")
	for i := 200; ; i++ {
		if _, err := b.Add(obsRecord(i, "")); err != nil {
			select {}
		}
	}
}
