package keyshare

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/blockmrs/blockmrs/protocol"
)

// A clinician with two patients hands each only what that patient may
// read; the patient's repo works with the partial chain: it lists, reads,
// grants, collects garbage and exports.
func TestExportForOneReader(t *testing.T) {
	ctx := context.Background()
	doc := newParty(t, "Doc", protocol.RoleClinician)
	ann := newParty(t, "Ann", protocol.RolePatient)
	ben := newParty(t, "Ben", protocol.RolePatient)
	other := newParty(t, "Other Doc", protocol.RoleClinician)
	send(t, ann, doc)
	send(t, ben, doc)
	send(t, other, ann)
	recBen, err := doc.repo.AddRecord(ctx, doc.keys, NewRecord{Title: "ben", Kind: protocol.KindNote, MediaType: "text/plain", Subject: ben.keys.ID, Body: strings.NewReader("for ben")})
	if err != nil {
		t.Fatal(err)
	}
	// Ben's record comes first, so the block Ann acknowledges links it
	// through its history.
	recAnn, err := doc.repo.AddRecord(ctx, doc.keys, NewRecord{Title: "ann", Kind: protocol.KindNote, MediaType: "text/plain", Subject: ann.keys.ID, Body: strings.NewReader("for ann")})
	if err != nil {
		t.Fatal(err)
	}

	var car bytes.Buffer
	if _, err := doc.repo.ExportCAR(ctx, &car, doc.keys.ID, ExportOptions{For: ann.keys.ID}); err != nil {
		t.Fatal(err)
	}
	if _, err := ann.repo.ImportCAR(ctx, &car); err != nil {
		t.Fatal(err)
	}
	if has, _ := ann.repo.Store().Blockstore().Has(ctx, recBen); has {
		t.Fatal("Ben's record travelled to Ann")
	}
	if _, data, err := readAll(t, ann, recAnn); err != nil || string(data) != "for ann" {
		t.Fatalf("Ann reads her record: %v", err)
	}
	if _, err := ann.repo.GC(ctx); err != nil {
		t.Fatalf("gc with a partial chain: %v", err)
	}
	if _, data, err := readAll(t, ann, recAnn); err != nil || string(data) != "for ann" {
		t.Fatalf("Ann's record after gc: %v", err)
	}

	// Ann shares the clinician's record with another clinician; her full
	// export leaves out the block she never had, and still carries what
	// the other clinician needs.
	if _, err := ann.repo.Grant(ctx, ann.keys, []cid.Cid{recAnn}, other.keys.ID, time.Time{}); err != nil {
		t.Fatal(err)
	}
	car.Reset()
	missing, err := ann.repo.ExportCAR(ctx, &car, ann.keys.ID)
	if err != nil {
		t.Fatal(err)
	}
	if missing != 1 {
		t.Fatalf("missing = %d, want 1 (Ben's record)", missing)
	}
	if _, err := other.repo.ImportCAR(ctx, &car); err != nil {
		t.Fatal(err)
	}
	if _, data, err := readAll(t, other, recAnn); err != nil || string(data) != "for ann" {
		t.Fatalf("other clinician reads the shared record: %v", err)
	}
	mustVerify(t, other)
	mustVerify(t, ann)
}
