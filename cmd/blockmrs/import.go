package main

import (
	"context"
	"fmt"

	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/protocol"
)

var importCmd = &command{name: "import", summary: "import chains and records from a CAR file, then acknowledge new records", run: runImport}

func runImport(ctx context.Context, args []string) error {
	f := newFlags("import", "[flags] FILE.car|-", `
Import reads a CAR file from 'blockmrs export' (- reads stdin), verifies
every chain in it (signatures, links, no fork, no rollback) before storing
anything, and prints the accounts it added or advanced. A bad file is
rejected whole and leaves the repo as it was. Then, when the import
brought records others wrote about the acting account, it acknowledges
them with a signed ack entry on that account's chain, if its keys can be
unlocked: not encrypted, $BLOCKMRS_PASSPHRASE set, or a terminal to ask on
(otherwise it says so; a later grant of such a record acknowledges it
too). --no-ack skips this.`, `
blockmrs import dr-jones.car`)
	f.withAccount()
	noAck := f.Bool("no-ack", false, "do not acknowledge new records about the account")
	pos, err := f.parseArgs(args, false, "FILE")
	if err != nil {
		return err
	}
	return importAndReport(ctx, f, pos[0], !*noAck)
}

// importAndReport is import and contact add: it imports the CAR file name
// ("-": stdin), with ack acknowledges the new records about the acting
// account, and prints what changed. A failed acknowledgement is reported
// after the summary.
func importAndReport(ctx context.Context, f *cmdFlags, name string, ack bool) error {
	return f.withRepo(ctx, func(repo *keyshare.Repo) error {
		sum, err := importFile(ctx, f, repo, name)
		if err != nil {
			return err
		}
		var ackErr error
		if ack {
			ackErr = sum.acknowledge(ctx, f, repo)
		}
		if f.json {
			if err := f.printJSON(sum); err != nil {
				return err
			}
		} else if err := sum.print(f); err != nil {
			return err
		}
		if ackErr != nil {
			return fmt.Errorf("imported, but acknowledging failed: %w", ackErr)
		}
		return nil
	})
}

// importSummary says what an import changed.
type importSummary struct {
	Added     []keyshare.AccountInfo `json:"added"`
	Updated   []keyshare.AccountInfo `json:"updated"`
	Unchanged []protocol.AccountID   `json:"unchanged,omitempty"`
	NewBlocks int                    `json:"new_chain_blocks"`
	// Acknowledged counts ack entries written after the import; AckNote
	// says why none were when some could have been.
	Acknowledged int    `json:"acknowledged"`
	AckNote      string `json:"ack_note,omitempty"`

	names names
}

// importFile imports the CAR file name ("-": stdin).
func importFile(ctx context.Context, f *cmdFlags, repo *keyshare.Repo, name string) (*importSummary, error) {
	before, err := loadNames(ctx, repo)
	if err != nil {
		return nil, err
	}
	in, err := f.openInput(ctx, name)
	if err != nil {
		return nil, err
	}
	defer in.Close()
	res, err := repo.ImportCAR(ctx, in)
	if err != nil {
		return nil, err
	}
	return summarizeImport(ctx, repo, before, res)
}

// summarizeImport turns what an import changed into a summary; before
// holds the names known before it.
func summarizeImport(ctx context.Context, repo *keyshare.Repo, before names, res *keyshare.ImportResult) (*importSummary, error) {
	var err error
	sum := &importSummary{Added: []keyshare.AccountInfo{}, Updated: []keyshare.AccountInfo{}, Unchanged: res.Unchanged, NewBlocks: res.NewBlocks}
	for _, a := range res.Accounts {
		if _, known := before[a.ID]; known {
			sum.Updated = append(sum.Updated, a)
		} else {
			sum.Added = append(sum.Added, a)
		}
	}
	if sum.names, err = loadNames(ctx, repo); err != nil {
		return nil, err
	}
	return sum, nil
}

// acknowledge writes ack entries for records about the acting account
// that accounts advanced by this import wrote, when its keys can be had.
func (s *importSummary) acknowledge(ctx context.Context, f *cmdFlags, repo *keyshare.Repo) error {
	me, ok, err := f.selectedIfAny(ctx, repo)
	if !ok {
		return err // nil for a repo without accounts of its own: nothing to acknowledge
	}
	advanced := map[protocol.AccountID]bool{}
	for _, a := range append(append([]keyshare.AccountInfo{}, s.Added...), s.Updated...) {
		advanced[a.ID] = true
	}
	recs, err := repo.RecordsOf(ctx, me.ID)
	if err != nil {
		return err
	}
	candidates := 0
	for _, a := range recs {
		if a.Known && a.Subject == me.ID && a.Author != me.ID && advanced[a.Author] {
			candidates++
		}
	}
	if candidates == 0 {
		return nil
	}
	if !keysWithoutPrompt(ctx, me) && !haveTTY(ctx) {
		s.AckNote = fmt.Sprintf("not acknowledged: the keys of %s are encrypted and there is no terminal (set $%s)", me.Name, envPassphrase)
		return nil
	}
	keys, err := unlock(ctx, repo, me)
	if err != nil {
		return err
	}
	s.Acknowledged, err = repo.Acknowledge(ctx, keys)
	return err
}

func (s *importSummary) print(f *cmdFlags) error {
	t := f.newTable()
	for _, a := range s.Added {
		fmt.Fprintf(t, "added\t%s\t%s\t%s\tseq %d\n", cell(a.Name), a.Role, a.ID, a.Seq)
	}
	for _, a := range s.Updated {
		fmt.Fprintf(t, "updated\t%s\t%s\t%s\tseq %d\n", cell(a.Name), a.Role, a.ID, a.Seq)
	}
	for _, id := range s.Unchanged {
		fmt.Fprintf(t, "unchanged\t%s\t\t%s\t\n", cell(s.names.of(id)), id)
	}
	if err := t.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(f.out(), "%d new chain block(s)\n", s.NewBlocks)
	if s.Acknowledged > 0 {
		fmt.Fprintf(f.out(), "acknowledged %d record(s)\n", s.Acknowledged)
	}
	if s.AckNote != "" {
		fmt.Fprintln(f.out(), s.AckNote)
	}
	return nil
}
