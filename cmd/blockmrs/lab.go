package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/node/ops"
	"github.com/blockmrs/blockmrs/protocol/fhir"
)

var labCmd = &command{name: "lab", summary: "write a lab panel for a patient as FHIR Observations (lab add)", run: runLab}

const labHelp = `Usage: blockmrs lab add [flags] --for PATIENT VALUE...
       blockmrs lab fields [flags]

Lab add writes a lab panel for a patient: one FHIR R4 Observation record
per value, signed by you. Run 'blockmrs lab add --help' for the fields and
the flags; 'blockmrs labs' shows the values over time.
Lab fields lists the panel's fields (--json: their codes, units, bounds).

Example:
  blockmrs lab add --for Pat --date 2026-12-01 fasting-glucose=95 ldl=110
`

func runLab(ctx context.Context, args []string) error {
	return runNested(ctx, "lab", labHelp, args, subcommand{[]string{"add"}, runLabAdd}, subcommand{[]string{"fields"}, runLabFields})
}

func runLabFields(ctx context.Context, args []string) error {
	f := newFlags("lab fields", "[flags]", `
Lab fields lists the lab panel's fields: the key 'blockmrs lab add' takes,
the name, the LOINC code and the unit. With --json it prints what GET
/api/v1/labs/panel answers (bounds and coded answers included).`, `
blockmrs lab fields`)
	if _, err := f.parseArgs(args, false); err != nil {
		return err
	}
	f.bind(ctx)
	if f.json {
		return f.printJSON(ops.LabFields())
	}
	fmt.Fprint(f.out(), labFieldsHelp())
	return nil
}

// labFieldsHelp lists the panel's fields for the help text.
func labFieldsHelp() string {
	var b strings.Builder
	for _, l := range fhir.Labs {
		unit := l.Unit
		if len(l.Answers) > 0 {
			texts := make([]string, len(l.Answers))
			for i, a := range l.Answers {
				texts[i] = a.Text
			}
			unit = strings.Join(texts, " ")
		}
		fmt.Fprintf(&b, "  %-16s %-24s LOINC %-8s %s\n", l.Key, l.Name, l.LOINC, unit)
	}
	return b.String()
}

func runLabAdd(ctx context.Context, args []string) error {
	f := newFlags("lab add", "[flags] --for PATIENT FIELD=VALUE... 'other:NAME=VALUE [UNIT]'...", `
Lab add writes a lab panel for the patient --for names (a contact: see
'blockmrs contact add'): one FHIR R4 Observation record per value, with
status final, its LOINC code and a UCUM unit, the date it was measured
(--date, default now) and the patient as subject, each an ordinary fhir
record about the patient that you author and sign (as 'blockmrs add
--kind fhir --for' would). Each value is FIELD=VALUE, a field of the
panel with the value in the unit shown:

`+labFieldsHelp()+`
Anything else is 'other:NAME=VALUE [UNIT]' (quote it): a value with a
text name and no LOINC code (the value follows the last =); a number with an optional unit as written,
or text. Values are checked loosely (a number, finite, within bounds that
catch a typo or a wrong unit) before anything is written: one bad value
writes nothing. It prints each record's CID and title.`, `
blockmrs lab add --for Pat fasting-glucose=95 ldl=110 pulse=72
blockmrs lab add --for Pat --date 2026-12-01 blood-group=O+ 'other:Vitamin D=30 ng/mL'`)
	f.withAccount()
	forFlag := f.String("for", "", "the `PATIENT` the values are for (NAME, ID or ID suffix of a contact)")
	date := f.String("date", "", "when the values were measured: a `DATE` (2026-12-01) or an RFC 3339 date-time (default now)")
	pos, err := f.parseArgs(args, true, "VALUE")
	if err != nil {
		return err
	}
	if *forFlag == "" {
		return usagef("missing --for PATIENT")
	}
	values := make([]ops.LabValue, 0, len(pos))
	for _, a := range pos {
		v, err := parseLabArg(a)
		if err != nil {
			return err
		}
		values = append(values, v)
	}
	return f.withKeysFor(ctx, "for", *forFlag, func(repo *keyshare.Repo, keys *keyshare.Keys, patient keyshare.AccountInfo) error {
		out, err := ops.AddLabs(ctx, repo, keys, ops.LabPanel{For: string(patient.ID), Effective: *date, Values: values})
		if err != nil {
			if len(out.Records) > 0 && !f.json {
				for _, r := range out.Records {
					fmt.Fprintf(f.errOut(), "wrote %s %s\n", r.CID, clean(r.Title))
				}
			}
			return err
		}
		if f.json {
			return f.printJSON(out)
		}
		for _, r := range out.Records {
			fmt.Fprintf(f.out(), "%s\t%s\n", r.CID, clean(r.Title))
		}
		return nil
	})
}

// parseLabArg parses FIELD=VALUE or other:NAME=VALUE [UNIT]; a bad one
// is a usage error.
func parseLabArg(a string) (ops.LabValue, error) {
	if rest, ok := strings.CutPrefix(a, "other:"); ok {
		// The value follows the last "=", so a name may hold one.
		i := strings.LastIndex(rest, "=")
		if i < 0 {
			i = len(rest)
		}
		name, val := rest[:i], strings.TrimPrefix(rest[i:], "=")
		if strings.TrimSpace(name) == "" || strings.TrimSpace(val) == "" {
			return ops.LabValue{}, usagef("%q: want 'other:NAME=VALUE [UNIT]'", truncate(a, 60))
		}
		v := ops.LabValue{Name: strings.TrimSpace(name), Value: strings.TrimSpace(val)}
		// "30 ng/mL": a number, then its unit; anything else is text.
		if num, unit, ok := strings.Cut(v.Value, " "); ok {
			if _, err := fhir.ParseDecimal(num); err == nil {
				v.Value, v.Unit = num, strings.TrimSpace(unit)
			}
		}
		return v, nil
	}
	key, val, ok := strings.Cut(a, "=")
	if !ok || key == "" || val == "" {
		return ops.LabValue{}, usagef("%q: want FIELD=VALUE (fields: %s) or 'other:NAME=VALUE [UNIT]'", truncate(a, 60), strings.Join(fhir.Keys(), ", "))
	}
	if _, ok := fhir.LabByKey(key); !ok {
		return ops.LabValue{}, usagef("%q is not a panel field (fields: %s; anything else is 'other:NAME=VALUE [UNIT]')", truncate(key, 40), strings.Join(fhir.Keys(), ", "))
	}
	return ops.LabValue{Test: key, Value: val}, nil
}
