package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"sync"
	"time"

	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/node/ops"
	"github.com/blockmrs/blockmrs/protocol"
)

var fhirCmd = &command{name: "fhir", summary: "import FHIR R4 bundles as records, export them, the patient summary", run: runFHIR}

const fhirHelp = `Usage: blockmrs fhir import [flags] FILE|-
       blockmrs fhir export [flags] [-o FILE]
       blockmrs fhir summary [flags] [-o FILE]

Fhir import stores the resources of a FHIR R4 JSON export (a Bundle, a
single resource or Bulk Data NDJSON) as records, one per resource;
importing the same export again adds only what changed. Fhir export
writes every FHIR resource you may read as one Bundle. Fhir summary
builds an International Patient Summary from your records. Run 'blockmrs
fhir import --help' (export, summary) for the flags.

Example:
  blockmrs fhir import patient-export.json
  blockmrs fhir export -o everything.json
`

func runFHIR(ctx context.Context, args []string) error {
	return runNested(ctx, "fhir", fhirHelp, args,
		subcommand{[]string{"import"}, runFHIRImport},
		subcommand{[]string{"export"}, runFHIRExport},
		subcommand{[]string{"summary"}, runFHIRSummary})
}

func runFHIRImport(ctx context.Context, args []string) error {
	f := newFlags("fhir import", "[flags] FILE|-", `
Fhir import reads FHIR R4 JSON (- reads stdin): a Bundle of any type
(transaction, batch, collection, searchset, document), a single resource,
or Bulk Data NDJSON, as a stream, and stores one record per resource,
signed by you, with its resource type, clinical date, code and id in the
sealed envelope and a title made from them. Every resource is validated
against the R4 definitions first: an unknown resource type, a wrongly
typed field or a missing required field is refused with its position
and JSON path, and nothing is stored; so is FHIR XML. A UTF-8
byte-order mark is fine.

A resource already held by one of the subject's records (same type, id
and content) is not stored again; one whose content changed is stored as
a new version that supersedes the old record. Resources of more than
one Patient, or a Patient that names another account, are refused unless
--patient says which Patient is the account (the others are skipped).
With --one-record the whole file is one record, as 'add --kind fhir'
stores it. It prints one line of counts; --json gives the counts and
lists resources with their records: all of a small import, the first 500
of each kind (added, superseded, unchanged, skipped) of a big one
("truncated": true).`, `
blockmrs fhir import patient-export.json
blockmrs fhir import --for Pat --patient 8f3c2d1e labs.ndjson
cat bundle.json | blockmrs fhir import -`)
	f.withAccount()
	forFlag := f.String("for", "", "the `ACCOUNT` the resources are about (NAME, ID or ID suffix; default: yourself)")
	patient := f.String("patient", "", "the `ID` (or fullUrl) of the Patient who is the account, when the input names several")
	oneRecord := f.Bool("one-record", false, "store the whole file as one record")
	pos, err := f.parseArgs(args, false, "FILE")
	if err != nil {
		return err
	}
	file := pos[0]
	fileName := ""
	if file != "-" {
		fileName = filepath.Base(file)
	}
	return f.withInputFor(ctx, file, *forFlag, func(repo *keyshare.Repo, keys *keyshare.Keys, subject protocol.AccountID, in io.Reader) error {
		progress, done := f.progressLine("read %s resources")
		out, err := ops.FHIRImport(ctx, repo, keys, ops.FHIRImportRequest{For: string(subject), Patient: *patient, OneRecord: *oneRecord, FileName: fileName}, in,
			func(p ops.ImportProgress) { progress(p.Read) })
		done()
		if err != nil {
			return fmt.Errorf("%s: %w", file, err)
		}
		if f.json {
			return f.printJSON(out)
		}
		fmt.Fprintln(f.out(), out.Line())
		return nil
	})
}

func runFHIRExport(ctx context.Context, args []string) error {
	f := newFlags("fhir export", "[flags]", `
Fhir export writes every FHIR resource you may read now (your records and
those shared with you; current versions, not the ones they superseded)
as one FHIR R4 Bundle of type collection, to stdout or with -o to FILE.
Each resource is byte-exact as it was stored, with the fullUrl it came
with, so references between them resolve and importing the export into
another repo gives the same records. --type keeps one resource type,
--since the records dated on or after a day (their clinical date, else
the day they were written).`, `
blockmrs fhir export -o everything.json
blockmrs fhir export --type Observation --since 2024-01-01 -o labs.json`)
	f.withAccount()
	out := f.String("o", "-", "write the Bundle to `FILE` (- for stdout)")
	typ := f.String("type", "", "keep only resources of `TYPE` (Observation, Condition, ...)")
	since := f.String("since", "", "keep only records dated on or after `DATE` (YYYY, YYYY-MM or YYYY-MM-DD)")
	if _, err := f.parseArgs(args, false); err != nil {
		return err
	}
	if *out == "-" && f.json {
		return usagef("--json needs -o FILE: the Bundle goes to stdout")
	}
	return f.withKeys(ctx, func(repo *keyshare.Repo, keys *keyshare.Keys) error {
		var res ops.FHIRExported
		n, err := f.writeOutput(*out, func(w io.Writer) error {
			var err error
			res, err = ops.FHIRExport(ctx, repo, keys, ops.FHIRExportRequest{Type: *typ, Since: *since}, w)
			return err
		})
		if err != nil {
			return err
		}
		if *out == "-" {
			return nil
		}
		if f.json {
			return f.printJSON(struct {
				ops.FHIRExported
				File  string `json:"file"`
				Bytes int64  `json:"bytes"`
			}{res, *out, n})
		}
		fmt.Fprintf(f.out(), "%s to %s, %s bytes\n", res.Line(), *out, ops.Thousands(int(n)))
		return nil
	})
}

func runFHIRSummary(ctx context.Context, args []string) error {
	f := newFlags("fhir summary", "[flags]", `
Fhir summary builds an International Patient Summary (IPS) of the acting
account from its FHIR records: a FHIR R4 document Bundle whose
Composition (LOINC 60591-5) has the Medications (10160-0), Allergies
(48765-2) and Problems (11450-4) sections, each listing your records of
that kind or saying there is no information, and the latest laboratory
results; then your Patient resource and every resource the sections
name, byte-exact. Hidden records are left out. It writes to stdout, or
with -o to FILE.`, `
blockmrs fhir summary -o summary.json`)
	f.withAccount()
	out := f.String("o", "-", "write the summary to `FILE` (- for stdout)")
	if _, err := f.parseArgs(args, false); err != nil {
		return err
	}
	if *out == "-" && f.json {
		return usagef("--json needs -o FILE: the summary goes to stdout")
	}
	return f.withKeys(ctx, func(repo *keyshare.Repo, keys *keyshare.Keys) error {
		doc, err := ops.FHIRSummary(ctx, repo, keys, time.Now())
		if err != nil {
			return err
		}
		n, err := f.writeOutput(*out, func(w io.Writer) error {
			_, err := w.Write(doc)
			return err
		})
		if err != nil || *out == "-" {
			return err
		}
		if f.json {
			return f.printJSON(struct {
				File  string `json:"file"`
				Bytes int64  `json:"bytes"`
			}{*out, n})
		}
		fmt.Fprintf(f.out(), "wrote the patient summary to %s, %s bytes\n", *out, ops.Thousands(int(n)))
		return nil
	})
}

// withInputFor is withKeys for a command that writes records from a file
// (- for stdin) about the account the --for flag names (forFlag; ""
// for the acting account's own): the account is resolved and the input
// opened before the keys are unlocked, so a mistyped name or file fails
// before any passphrase prompt.
func (f *cmdFlags) withInputFor(ctx context.Context, file, forFlag string, fn func(repo *keyshare.Repo, keys *keyshare.Keys, subject protocol.AccountID, in io.Reader) error) error {
	return f.withRepo(ctx, func(repo *keyshare.Repo) error {
		var subject protocol.AccountID
		if forFlag != "" {
			s, err := resolveFlag(ctx, repo, "for", forFlag)
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
		_, keys, err := f.unlockSelected(ctx, repo)
		if err != nil {
			return err
		}
		return fn(repo, keys, subject, in)
	})
}

// progressLine returns a function that shows a count on stderr, on one
// line rewritten at most every 200 ms, when stderr is a terminal, and a
// function that clears that line. format has one %s, the count.
func (f *cmdFlags) progressLine(format string) (func(n int), func()) {
	if !f.stderrIsTerminal() {
		return func(int) {}, func() {}
	}
	var mu sync.Mutex
	var last time.Time
	shown := false
	show := func(n int) {
		mu.Lock()
		defer mu.Unlock()
		if time.Since(last) < 200*time.Millisecond {
			return
		}
		last, shown = time.Now(), true
		fmt.Fprintf(f.errOut(), "\r"+format+"…\033[K", ops.Thousands(n))
	}
	done := func() {
		mu.Lock()
		defer mu.Unlock()
		if shown {
			fmt.Fprint(f.errOut(), "\r\033[K")
		}
	}
	return show, done
}
