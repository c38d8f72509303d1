package keyshare

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	carv2 "github.com/ipld/go-car/v2"
	carblockstore "github.com/ipld/go-car/v2/blockstore"

	"github.com/blockmrs/blockmrs/protocol"
)

// A stranger who learns a record's CID writes a backdated record entry
// claiming it. The real subject and grantees keep their access; the false
// claim is reported.
func TestBackdatedClaimCannotStealRecord(t *testing.T) {
	ctx := context.Background()
	patient := newParty(t, "Pat", protocol.RolePatient)
	doctor := newParty(t, "Doc", protocol.RoleClinician)
	send(t, doctor, patient)
	rec, err := patient.repo.AddRecord(ctx, patient.keys, NewRecord{Title: "scan", Kind: protocol.KindNote, MediaType: "text/plain", Body: strings.NewReader("secret")})
	if err != nil {
		t.Fatal(err)
	}

	// Mallory's whole chain is dated 1970.
	mallory := newParty(t, "Mallory", protocol.RolePatient)
	f := &recordFacts{}
	getJSON(ctx, patient.repo.ds, keyRecordFacts(rec), f)
	mallory.repo.clock = func() time.Time { return time.UnixMilli(0) }
	mallory.repo.mu.Lock()
	_, err = mallory.repo.appendBlock(ctx, mallory.keys, []protocol.Entry{protocol.NewEntry(&protocol.Record{
		Record: protocol.NewLink(rec), Subject: mallory.keys.Public(), Meta: f.Claims[0].Meta,
		Keys: []protocol.WrappedKey{{To: mallory.keys.Public(), Key: []byte("not a real key")}},
	})})
	mallory.repo.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	// Her export does not hold the record's blocks; hand over her chain only.
	var car bytes.Buffer
	mst, _ := mallory.repo.state(ctx, mallory.keys.ID)
	head := mst.head()
	if err := exportChainOnly(ctx, mallory.repo, &car, head); err != nil {
		t.Fatal(err)
	}
	if _, err := patient.repo.ImportCAR(ctx, &car); err != nil {
		t.Fatal(err)
	}

	// The patient still reads and grants her record.
	env, body, err := patient.repo.OpenRecord(ctx, patient.keys, rec)
	if err != nil {
		t.Fatalf("patient lost her record: %v", err)
	}
	data, _ := io.ReadAll(body)
	body.Close()
	if string(data) != "secret" || env.Title != "scan" {
		t.Fatalf("read %q", data)
	}
	if _, err := patient.repo.Grant(ctx, patient.keys, []cid.Cid{rec}, doctor.keys.ID, time.Time{}); err != nil {
		t.Fatalf("patient cannot grant her record: %v", err)
	}
	a, _ := patient.repo.AccessFor(ctx, rec, doctor.keys.ID)
	if _, ok := a.Reader(doctor.keys.ID); !ok || a.Subject != patient.keys.ID {
		t.Fatalf("grantee lost access: %+v", a)
	}
	// Mallory cannot grant it under her claim either: she has no key.
	rep, err := patient.repo.Verify(ctx, VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK || !strings.Contains(strings.Join(rep.Problems, "\n"), "another record entry claims this CID") {
		t.Fatalf("contested CID not reported: %+v", rep.Problems)
	}
}

// exportChainOnly writes a CARv1 of a chain's blocks only (the record it
// claims is not Mallory's to include), with go-car as the writer.
func exportChainOnly(ctx context.Context, r *Repo, w io.Writer, head cid.Cid) error {
	path := filepath.Join(os.TempDir(), fmt.Sprintf("chain-%d.car", time.Now().UnixNano()))
	defer os.Remove(path)
	bs, err := carblockstore.OpenReadWrite(path, []cid.Cid{head}, carv2.WriteAsCarV1(true))
	if err != nil {
		return err
	}
	for c := head; ; {
		blk, err := r.Store().Blockstore().Get(ctx, c)
		if err != nil {
			return err
		}
		if err := bs.Put(ctx, blk); err != nil {
			return err
		}
		b, err := protocol.DecodeBlock(blk.RawData())
		if err != nil {
			return err
		}
		if b.Prev == nil {
			break
		}
		c = b.Prev.Cid
	}
	if err := bs.Finalize(); err != nil {
		return err
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	_, err = w.Write(data)
	return err
}
