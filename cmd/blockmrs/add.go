package main

import (
	"context"
	"fmt"
	"mime"
	"path/filepath"

	"github.com/ipfs/go-cid"

	"github.com/blockmrs/blockmrs/keyshare"
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
	mt := *mediaType
	if mt == "" {
		mt = guessMediaType(kind, file)
	} else if _, _, err := mime.ParseMediaType(mt); err != nil {
		return usagef("--type %q: %v", truncate(mt, 80), err)
	}
	var super cid.Cid
	if *supersedes != "" {
		if super, err = parseCID(*supersedes); err != nil {
			return err
		}
	}
	fileName := ""
	if file != "-" {
		fileName = filepath.Base(file)
	}
	if *title == "" {
		*title = fileName
		if *title == "" {
			*title = "untitled"
		}
	}

	return f.withRepo(ctx, func(repo *keyshare.Repo) error {
		var subject protocol.AccountID
		if *forFlag != "" {
			s, err := resolveFlag(ctx, repo, "for", *forFlag)
			if err != nil {
				return err
			}
			subject = s.ID
		}
		in, err := f.openInput(ctx, file)
		if err != nil {
			return err
		}
		defer in.Close()
		me, keys, err := f.unlockSelected(ctx, repo)
		if err != nil {
			return err
		}
		if subject == "" {
			subject = me.ID
		}
		c, err := repo.AddRecord(ctx, keys, keyshare.NewRecord{
			Title: *title, Kind: kind, MediaType: mt, FileName: fileName,
			Subject: subject, Supersedes: super, Body: in,
		})
		if err != nil {
			return fmt.Errorf("add %s: %w", file, err)
		}
		if f.json {
			return f.printJSON(struct {
				recordJSON
				Author  protocol.AccountID `json:"author"`
				Subject protocol.AccountID `json:"subject"`
			}{recordJSON{c.String(), *title, kind, mt}, me.ID, subject})
		}
		fmt.Fprintln(f.out(), c)
		return nil
	})
}

// guessMediaType picks a record's media type from its kind, else from
// the file's extension.
func guessMediaType(kind protocol.Kind, file string) string {
	switch kind {
	case protocol.KindFHIR:
		return "application/fhir+json"
	case protocol.KindNote:
		return "text/plain; charset=utf-8"
	}
	if t := mime.TypeByExtension(filepath.Ext(file)); t != "" && file != "-" {
		return t
	}
	return "application/octet-stream"
}
