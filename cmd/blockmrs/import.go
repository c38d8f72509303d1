package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/protocol"
	"github.com/blockmrs/blockmrs/store"
)

var importCmd = &command{name: "import", summary: "import chains and records from a CAR file, then acknowledge new records", run: runImport}

func runImport(ctx context.Context, args []string) error {
	f := newFlags("import", "[flags] FILE.car|-", `
Import reads a CAR file from 'blockmrs export' (- reads stdin), verifies
every chain in it (signatures, links, no fork, no rollback) before storing
anything, and prints the accounts it added or advanced. A fork a recovery
settles is not refused (PROTOCOL.md §8): the chain follows the recovery,
and the other branch, signed by the key it replaced, is kept as evidence
("superseded by recovery"). A bad file is
rejected whole and leaves the repo as it was. Then, when the import
brought records others wrote about the acting account, it acknowledges
them with a signed ack entry on that account's chain, if its keys can be
unlocked: not encrypted, $BLOCKMRS_PASSPHRASE set, or a terminal to ask on
(otherwise it says so; a later grant of such a record acknowledges it
too). --no-ack skips this.

Only blocks reachable from the CAR's roots are stored; the others are
counted ("skipped N blocks not reachable from the roots") and dropped. A
CAR holding more than --max-size of blocks (default 1 GiB) is refused
before anything is stored: the import stages every block on disk first.`, `
blockmrs import dr-jones.car
blockmrs import --max-size 4GiB full-history.car`)
	f.withAccount()
	noAck := f.Bool("no-ack", false, "do not acknowledge new records about the account")
	maxSize := f.String("max-size", "1GiB", "refuse a CAR holding more than `SIZE` of blocks (e.g. 500MiB, 4GiB)")
	pos, err := f.parseArgs(args, false, "FILE")
	if err != nil {
		return err
	}
	limit, err := parseSize(*maxSize)
	if err != nil {
		return usagef("--max-size: %v", err)
	}
	return importAndReport(ctx, f, pos[0], !*noAck, limit)
}

// parseSize reads a byte count with an optional binary unit (KiB, MiB,
// GiB, TiB; K, M, G, T and KB, MB, GB, TB mean the same).
func parseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	i := len(t)
	for i > 0 && (t[i-1] < '0' || t[i-1] > '9') {
		i--
	}
	n, err := strconv.ParseInt(t[:i], 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%q is not a size such as 500MiB or 4GiB", s)
	}
	shift := map[string]uint{"": 0, "b": 0, "k": 10, "kb": 10, "kib": 10, "m": 20, "mb": 20, "mib": 20,
		"g": 30, "gb": 30, "gib": 30, "t": 40, "tb": 40, "tib": 40}
	sh, ok := shift[strings.ToLower(strings.TrimSpace(t[i:]))]
	if !ok || n > (1<<62)>>sh {
		return 0, fmt.Errorf("%q is not a size such as 500MiB or 4GiB", s)
	}
	return n << sh, nil
}

// importAndReport is import (contact add FILE runs ops.ImportContact): it
// imports the CAR file name ("-": stdin) holding at most maxSize block
// bytes (0: the default), with ack acknowledges the new records about the
// acting account, and prints what changed. A failed acknowledgement is reported
// after the summary.
func importAndReport(ctx context.Context, f *cmdFlags, name string, ack bool, maxSize int64) error {
	return f.withRepo(ctx, func(repo *keyshare.Repo) error {
		sum, err := importFile(ctx, f, repo, name, maxSize)
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
	// Skipped counts blocks not reachable from the CAR's roots (not
	// stored).
	Skipped      int   `json:"skipped_blocks"`
	SkippedBytes int64 `json:"skipped_bytes"`
	// Acknowledged counts ack entries written after the import; AckNote
	// says why none were when some could have been.
	Acknowledged int    `json:"acknowledged"`
	AckNote      string `json:"ack_note,omitempty"`
	// Covered counts the record keys given to the account's standing
	// grantees for the records acknowledged.
	Covered int `json:"covered,omitempty"`
	// Superseded lists the forks a recovery settled in this import
	// (PROTOCOL.md §8): the chain switched to the recovery's branch, or
	// kept its recovery and the arriving branch as evidence.
	Superseded []keyshare.Superseded `json:"superseded,omitempty"`

	names names
}

// importFile imports the CAR file name ("-": stdin).
func importFile(ctx context.Context, f *cmdFlags, repo *keyshare.Repo, name string, maxSize int64) (*importSummary, error) {
	before, err := loadNames(ctx, repo)
	if err != nil {
		return nil, err
	}
	in, err := f.openInput(ctx, name)
	if err != nil {
		return nil, err
	}
	defer in.Close()
	res, err := repo.ImportCARLimit(ctx, in, maxSize)
	if errors.Is(err, store.ErrImportLimit) {
		return nil, fmt.Errorf("%w; raise the limit with --max-size (blockmrs import --max-size 4GiB)", err)
	}
	if err != nil {
		return nil, err
	}
	return summarizeImport(ctx, repo, before, res)
}

// summarizeImport turns what an import changed into a summary; before
// holds the names known before it.
func summarizeImport(ctx context.Context, repo *keyshare.Repo, before names, res *keyshare.ImportResult) (*importSummary, error) {
	var err error
	sum := &importSummary{Added: []keyshare.AccountInfo{}, Updated: []keyshare.AccountInfo{}, Unchanged: res.Unchanged, NewBlocks: res.NewBlocks,
		Skipped: res.Skipped, SkippedBytes: res.SkippedBytes, Superseded: res.Superseded}
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
	if s.Acknowledged, err = repo.Acknowledge(ctx, keys); err != nil {
		return err
	}
	s.Covered, err = repo.CoverStanding(ctx, keys)
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
	for _, sp := range s.Superseded {
		what := "kept its recovery; the arriving branch is superseded by recovery"
		if sp.Switched {
			what = "switched to the arriving recovery; the branch held here is superseded by recovery"
		}
		fmt.Fprintf(f.out(), "chain of %s, block %d: %s (kept as evidence)\n", cell(s.names.of(sp.Account)), sp.Seq, what)
	}
	if s.Skipped > 0 {
		fmt.Fprintf(f.out(), "skipped %d blocks not reachable from the roots (%d bytes, not stored)\n", s.Skipped, s.SkippedBytes)
	}
	if s.Acknowledged > 0 {
		fmt.Fprintf(f.out(), "acknowledged %d record(s)\n", s.Acknowledged)
	}
	if s.Covered > 0 {
		fmt.Fprintf(f.out(), "gave standing grantees %d record key(s)\n", s.Covered)
	}
	if s.AckNote != "" {
		fmt.Fprintln(f.out(), s.AckNote)
	}
	return nil
}
