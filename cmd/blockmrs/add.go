package main

import (
	"context"
	"fmt"
	"io"
	"mime"
	"path/filepath"

	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/node/ops"
	"github.com/blockmrs/blockmrs/protocol"
)

var addCmd = &command{name: "add", summary: "encrypt and add a record (a file, a FHIR resource, a note)", run: runAdd}

func runAdd(ctx context.Context, args []string) error {
	f := newFlags("add", "[flags] FILE|-", `
Add encrypts a file (- reads stdin) with a key made for this record alone,
stores it as content-addressed blocks and signs a record entry on the
acting account's chain, with the record key wrapped for the subject and
the author. With --for the record is about another account (a clinician
writing for a patient): that account reads it, and only it can share it.
A FHIR record (--kind fhir) must be one JSON resource with a resourceType.
The title, type and file name travel inside the encrypted envelope. It
prints the record's CID.`, `
blockmrs add --title "Blood test 2026-11" results.pdf
blockmrs add --kind fhir --for alice observation.json`)
	f.withAccount()
	title := f.String("title", "", "the record's `TITLE` (default: the file's name)")
	kindFlag := f.String("kind", "file", "the record's `KIND`: file, fhir or note")
	mediaType := f.String("type", "", "the content's media `TYPE` (default: from the kind, else the file's extension)")
	forFlag := f.String("for", "", "the `ACCOUNT` the record is about (NAME, ID or ID suffix; default: yourself)")
	supersedes := f.String("supersedes", "", "the `CID` of the record this one replaces")
	pos, err := f.parseArgs(args, false, "FILE")
	if err != nil {
		return err
	}
	file := pos[0]
	kind, err := protocol.ParseKind(*kindFlag)
	if err != nil {
		return usagef("--kind: %v", err)
	}
	if *mediaType != "" {
		if _, _, err := mime.ParseMediaType(*mediaType); err != nil {
			return usagef("--type %q: %v", truncate(*mediaType, 80), err)
		}
	}
	if *supersedes != "" {
		if _, err := parseCID(*supersedes); err != nil {
			return err
		}
	}
	fileName := ""
	if file != "-" {
		fileName = filepath.Base(file)
	}

	return f.withInputFor(ctx, file, *forFlag, func(repo *keyshare.Repo, keys *keyshare.Keys, subject protocol.AccountID, in io.Reader) error {
		added, err := ops.AddRecord(ctx, repo, keys, ops.NewRecord{
			Title: *title, Kind: kind, MediaType: *mediaType, FileName: fileName,
			For: string(subject), Supersedes: *supersedes,
		}, in)
		if err != nil {
			return fmt.Errorf("add %s: %w", file, err)
		}
		if f.json {
			return f.printJSON(added)
		}
		fmt.Fprintln(f.out(), added.CID)
		return nil
	})
}
