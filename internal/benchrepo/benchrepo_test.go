package benchrepo

import (
	"io"
	"strings"
	"testing"

	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/protocol"
)

// The filled records are real: the patient lists every one, under its
// title and kind, written by the clinician, and its content decrypts.
func TestFill(t *testing.T) {
	ctx := t.Context()
	repo, err := keyshare.Open(ctx, t.TempDir(), keyshare.Options{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	defer repo.Close()
	k, err := repo.CreateAccount(ctx, "Pat", protocol.RolePatient, nil)
	if err != nil {
		t.Fatal(err)
	}
	info, err := repo.Account(ctx, k.ID)
	if err != nil {
		t.Fatal(err)
	}
	const n = perBlock + 7 // two chain blocks
	cids, err := Fill(ctx, repo, info, n)
	if err != nil {
		t.Fatal(err)
	}
	if len(cids) != n {
		t.Fatalf("%d CIDs, want %d", len(cids), n)
	}
	list, err := repo.List(ctx, k, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != n {
		t.Fatalf("listed %d records, want %d", len(list), n)
	}
	titles := map[string]protocol.Kind{}
	for _, l := range list {
		if !l.Readable || l.Error != "" {
			t.Fatalf("record %s: readable %v, error %q", l.Record, l.Readable, l.Error)
		}
		dr, err := repo.Account(ctx, l.Author)
		if err != nil || dr.Name != ClinicianName {
			t.Fatalf("record %s written by %q (%v)", l.Record, dr.Name, err)
		}
		titles[l.Title] = l.Kind
	}
	if titles["Record 0"] != protocol.KindFile || titles["Record 1"] != protocol.KindFHIR || titles[("Record 506")] != protocol.KindNote {
		t.Fatalf("titles and kinds: %v", titles)
	}
	env, rc, err := repo.OpenRecord(ctx, k, cids[1])
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		t.Fatal(err)
	}
	if env.Title != "Record 1" || !strings.Contains(string(body), `"resourceType":"Observation"`) {
		t.Fatalf("record 1: %q, content %q", env.Title, body)
	}
	if _, err := protocol.ValidateFHIR(body); err != nil {
		t.Fatalf("record 1's FHIR: %v", err)
	}
}
