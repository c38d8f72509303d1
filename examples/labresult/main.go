// Command labresult shows how a third-party app uses BlockMRS as a
// library: a lab system with its own account writes a FHIR Observation
// for a patient, shares it from the start with the clinician who ordered
// the test, and hands both of them a CAR file. The patient and the
// clinician each read it in their own repo and check who signed it.
//
// Run it with no arguments; it works in a temporary folder:
//
//	go run ./examples/labresult
package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/ipfs/go-cid"

	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/protocol"
)

// observation is the lab result: a FHIR R4 Observation.
const observation = `{
  "resourceType": "Observation",
  "status": "final",
  "code": {"coding": [{"system": "http://loinc.org", "code": "718-7", "display": "Hemoglobin [Mass/volume] in Blood"}]},
  "valueQuantity": {"value": 13.2, "unit": "g/dL", "system": "http://unitsofmeasure.org", "code": "g/dL"},
  "effectiveDateTime": "2026-11-20T08:30:00Z"
}`

func main() {
	dir, err := os.MkdirTemp("", "blockmrs-labresult-")
	if err != nil {
		fail(err)
	}
	defer os.RemoveAll(dir)
	if err := run(context.Background(), dir, os.Stdout); err != nil {
		fail(err)
	}
}

func fail(err error) {
	slog.Error("labresult", "err", err)
	os.Exit(1)
}

// participant is one repo with one account in it.
type participant struct {
	repo *keyshare.Repo
	keys *keyshare.Keys
}

func open(ctx context.Context, dir, name string, role protocol.Role) (*participant, error) {
	repo, err := keyshare.Open(ctx, dir, keyshare.Options{Create: true})
	if err != nil {
		return nil, err
	}
	keys, err := repo.CreateAccount(ctx, name, role, nil)
	if err != nil {
		repo.Close()
		return nil, err
	}
	return &participant{repo: repo, keys: keys}, nil
}

// hand exports from's chain (profile only, or everything) and imports it
// into to, as a CAR file would travel between machines.
func hand(ctx context.Context, from, to *participant, profileOnly bool) error {
	var car bytes.Buffer
	var err error
	if profileOnly {
		err = from.repo.ExportProfile(ctx, &car, from.keys.ID)
	} else {
		// Only what the receiver may read travels.
		_, err = from.repo.ExportCAR(ctx, &car, from.keys.ID, keyshare.ExportOptions{For: to.keys.ID})
	}
	if err != nil {
		return err
	}
	_, err = to.repo.ImportCAR(ctx, &car)
	return err
}

func run(ctx context.Context, dir string, out io.Writer) error {
	patient, err := open(ctx, filepath.Join(dir, "patient"), "Pat Doe", protocol.RolePatient)
	if err != nil {
		return err
	}
	defer patient.repo.Close()
	doctor, err := open(ctx, filepath.Join(dir, "doctor"), "Dr Grey", protocol.RoleClinician)
	if err != nil {
		return err
	}
	defer doctor.repo.Close()
	lab, err := open(ctx, filepath.Join(dir, "lab"), "City Lab", protocol.RoleApp)
	if err != nil {
		return err
	}
	defer lab.repo.Close()

	// The lab learns the patient's and the doctor's public keys.
	for _, p := range []*participant{patient, doctor} {
		if err := hand(ctx, p, lab, true); err != nil {
			return fmt.Errorf("exchange profiles: %w", err)
		}
	}

	// The lab writes the result for the patient, shared with the doctor.
	rec, err := lab.repo.AddRecord(ctx, lab.keys, keyshare.NewRecord{
		Title:     "Hemoglobin, 2026-11-20",
		Kind:      protocol.KindFHIR,
		MediaType: "application/fhir+json",
		Subject:   patient.keys.ID,
		CC:        []protocol.AccountID{doctor.keys.ID},
		Body:      strings.NewReader(observation),
	})
	if err != nil {
		return fmt.Errorf("add lab result: %w", err)
	}
	fmt.Fprintf(out, "lab wrote %s for %s\n", rec, patient.keys.ID)

	// The lab's chain travels to the patient and the doctor.
	for _, p := range []*participant{patient, doctor} {
		if err := hand(ctx, lab, p, false); err != nil {
			return fmt.Errorf("deliver: %w", err)
		}
		if err := show(ctx, p, rec, out); err != nil {
			return err
		}
	}
	return nil
}

// show reads the record as p and prints who signed it and who can read it.
func show(ctx context.Context, p *participant, rec cid.Cid, out io.Writer) error {
	env, body, err := p.repo.OpenRecord(ctx, p.keys, rec)
	if err != nil {
		return fmt.Errorf("%s opens the result: %w", p.keys.ID, err)
	}
	defer body.Close()
	data, err := io.ReadAll(body)
	if err != nil {
		return err
	}
	rt, err := protocol.ValidateFHIR(data)
	if err != nil {
		return err
	}
	rep, err := p.repo.Verify(ctx, keyshare.VerifyOptions{Record: rec, Keys: p.keys})
	if err != nil {
		return err
	}
	if !rep.OK {
		return fmt.Errorf("verify failed: %+v", rep)
	}
	a := rep.Record.Access
	author, _ := p.repo.Account(ctx, a.Author)
	me, _ := p.repo.Account(ctx, p.keys.ID)
	fmt.Fprintf(out, "%s read %q: a FHIR %s of %d bytes, signed by %s in %s\n", me.Name, env.Title, rt, len(data), author.Name, a.Entry)
	for _, r := range a.Readers {
		acct, _ := p.repo.Account(ctx, r.Account)
		fmt.Fprintf(out, "  readable by %s (%s)\n", acct.Name, r.Role)
	}
	return nil
}
