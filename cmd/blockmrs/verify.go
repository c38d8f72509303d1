package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/node/ops"
)

var verifyCmd = &command{name: "verify", summary: "check every chain, the access index and a record's chain of custody", run: runVerify}

func runVerify(ctx context.Context, args []string) error {
	f := newFlags("verify", "[flags] [CID]", `
Verify re-checks every chain the repo holds from head to first block
(signatures, links, sequence numbers), rebuilds the access index from the
chains and compares it with the stored one (repairing differences), lists
fork evidence (a fork a recovery settled is shown as "superseded by
recovery": the branch the replaced key signed is kept and counts for
nothing; it is not a problem), and reads every stored block and checks that its bytes
hash to its CID (as 'ipfs repo verify' does), naming each bad block and
the records or chain it belongs to; on a terminal it shows progress on
stderr. --chains skips the block re-hash (the quick check). Given a
record CID it checks the chains and shows that record's chain of
custody instead of re-hashing every block: who signed it in which block,
whom it is about, every block of its content hash-checked against the
CID, who may read it and by which entry, who was revoked; when the acting
account may read the record its keys are unlocked and the content is
decrypted and authenticated too. Without a CID it also checks the
node's audit log ('blockmrs audit'): an entry edited, removed or
reordered, or cut off the end, is a problem. It exits with status 1 when anything is
wrong. With --json it prints the report as data; of one record, what GET
/api/v1/records/{cid}/verify answers.`, `
blockmrs verify
blockmrs verify --chains
blockmrs verify bafybeib...`)
	f.withAccount()
	chains := f.Bool("chains", false, "check the chains and the index only, not every stored block (quick)")
	pos, err := f.parseOptionalArg(args)
	if err != nil {
		return err
	}
	var c cid.Cid
	if len(pos) == 1 {
		if c, err = parseCID(pos[0]); err != nil {
			return err
		}
	}
	return f.withRepo(ctx, func(repo *keyshare.Repo) error {
		return verifyRepo(ctx, f, repo, c, !*chains && !c.Defined())
	})
}

// verifyRepo is verify's work in the open repo; c is the record to check,
// if one was given; with blocks every stored block is re-hashed.
func verifyRepo(ctx context.Context, f *cmdFlags, repo *keyshare.Repo, c cid.Cid, blocks bool) error {
	opts := keyshare.VerifyOptions{Record: c, Blocks: blocks}
	progress := &progressLine{w: f.errOut()}
	if blocks && f.stderrIsTerminal() {
		opts.Progress = progress.show
	}
	var noKeys string // why the record is not decrypted
	if c.Defined() {
		var err error
		if opts.Keys, noKeys, err = verifyKeys(ctx, f, repo, c); err != nil {
			return err
		}
	}
	rep, err := repo.Verify(ctx, opts)
	progress.done() // before the report, which may share the terminal
	if err != nil {
		return err
	}
	var auditRep *ops.AuditCheck
	if !c.Defined() {
		// The node's audit log too: tampering is a problem of the repo.
		a, err := ops.VerifyAudit(ctx, repo)
		if err != nil {
			return err
		}
		auditRep = &a
		if len(a.Problems) > 0 {
			rep.Problems = append(rep.Problems, a.Problems...)
			rep.OK = false
		}
	}
	problems := rep.AllProblems()
	if f.json {
		// Of one record, what GET /api/v1/records/{cid}/verify answers.
		var v any = rep
		if c.Defined() {
			v = ops.CustodyOf(rep)
		}
		if err := f.printJSON(v); err != nil {
			return err
		}
	} else {
		nm, err := loadNames(ctx, repo)
		if err != nil {
			return err
		}
		if auditRep != nil && len(auditRep.Problems) == 0 {
			// No counts: reads add entries, and verify's text stays the
			// same between two runs of an unchanged repo.
			fmt.Fprintln(f.out(), "audit log ok")
		}
		printVerify(f, rep, nm, noKeys)
	}
	if !rep.OK {
		if len(problems) == 0 {
			return errors.New("verification failed")
		}
		more := ""
		if len(problems) > 1 {
			more = fmt.Sprintf(" (and %d more)", len(problems)-1)
		}
		return fmt.Errorf("verification failed: %s%s", problems[0], more)
	}
	return nil
}

// verifyKeys unlocks the acting account when it may read record c, so
// Verify checks the envelope and content too. Otherwise it says why not:
// a repo without a local account, an account that is no reader, or
// encrypted keys with no passphrase set and no terminal (then verify
// checks what it can rather than fail).
func verifyKeys(ctx context.Context, f *cmdFlags, repo *keyshare.Repo, c cid.Cid) (*keyshare.Keys, string, error) {
	me, ok, err := f.selectedIfAny(ctx, repo)
	if err != nil {
		return nil, "", err
	}
	if !ok {
		return nil, "this repo has no account of its own", nil
	}
	a, err := repo.Access(ctx, c)
	if err != nil {
		return nil, "", err
	}
	if _, ok := a.Reader(me.ID); !ok {
		return nil, clean(me.Name) + " may not read it", nil
	}
	if !keysWithoutPrompt(ctx, me) && !haveTTY(ctx) {
		slog.Debug("verify without keys: encrypted and no terminal", "account", me.ID)
		return nil, fmt.Sprintf("the keys of %s are encrypted: set $%s to decrypt too", clean(me.Name), envPassphrase), nil
	}
	k, err := unlock(ctx, repo, me)
	return k, "", err
}

func printVerify(f *cmdFlags, rep *keyshare.VerifyReport, nm names, noKeys string) {
	for _, c := range rep.Chains {
		name := clean(c.Name)
		if name == "" {
			name = string(c.Account)
		}
		if len(c.Problems) == 0 {
			fmt.Fprintf(f.out(), "ok %s %d blocks %d entries\n", name, c.Blocks, c.Entries)
			continue
		}
		for _, p := range c.Problems {
			fmt.Fprintf(f.out(), "FAIL %s (%s): %s\n", name, c.Account, p)
		}
	}
	if len(rep.IndexProblems) == 0 {
		fmt.Fprintf(f.out(), "index ok, %d records\n", rep.Records)
	} else {
		for _, p := range rep.IndexProblems {
			fmt.Fprintf(f.out(), "index (repaired): %s\n", p)
		}
	}
	if len(rep.Forks) == 0 {
		fmt.Fprintln(f.out(), "forks: none")
	}
	for _, fk := range rep.Forks {
		fmt.Fprintf(f.out(), "FORK %s signed two blocks at seq %d: %s and %s\n", nm.long(fk.Account), fk.Seq, fk.Blocks[0], fk.Blocks[1])
	}
	for _, s := range rep.SupersededNotes(nm.long) {
		fmt.Fprintf(f.out(), "superseded by recovery: %s\n", s)
	}
	for _, p := range rep.Problems {
		fmt.Fprintf(f.out(), "problem: %s\n", p)
	}
	if rep.BlocksChecked > 0 && len(rep.BadBlocks) == 0 {
		fmt.Fprintf(f.out(), "blocks ok, %d re-hashed (%s)\n", rep.BlocksChecked, humanBytes(rep.BlockBytes))
	}
	for _, b := range rep.BadBlocks {
		fmt.Fprintf(f.out(), "BAD BLOCK %s: %s\n", b.CID, clean(b.PartOf(nm.long)))
	}
	if rr := rep.Record; rr != nil {
		printCustody(f, rr, nm, noKeys)
	}
	if rep.OK {
		fmt.Fprintln(f.out(), "verified: ok")
	} else {
		fmt.Fprintln(f.out(), "verified: PROBLEMS FOUND")
	}
}

// printCustody prints one record's chain of custody.
func printCustody(f *cmdFlags, rr *keyshare.RecordReport, nm names, noKeys string) {
	a := rr.Access
	if a == nil {
		for _, p := range rr.Problems {
			fmt.Fprintf(f.out(), "record problem: %s\n", p)
		}
		return
	}
	t := f.newTable()
	fmt.Fprintf(t, "record\t%s\n", a.Record)
	if a.Known {
		fmt.Fprintf(t, "  author\t%s\n", clean(nm.long(a.Author)))
		fmt.Fprintf(t, "  signed in block\t%s (seq %d, %s)\n", a.Entry, a.Entry.Seq, formatTime(a.Created))
		fmt.Fprintf(t, "  subject\t%s\n", clean(nm.long(a.Subject)))
		if a.Supersedes != "" {
			fmt.Fprintf(t, "  supersedes\t%s\n", a.Supersedes)
		}
		if a.Hidden {
			fmt.Fprintf(t, "  hidden\tyes\n")
		}
		printRekey(t, rr.Rekey, a, nm)
		check := "CID matches"
		if len(rr.Problems) > 0 && !rr.Decrypted {
			check = "not all verified (see the problems below)"
		}
		switch {
		case a.Rekeyed != nil && rr.Blocks == 0:
			fmt.Fprintf(t, "  blocks\tnot kept here (re-keyed: read %s)\n", a.Rekeyed.New)
		case rr.Decrypted:
			fmt.Fprintf(t, "  blocks\t%d checked, %d bytes, %s\n", rr.Blocks, rr.Size, check)
			fmt.Fprintf(t, "  decrypted\tyes, authenticated; title %q\n", clean(rr.Title))
		default:
			fmt.Fprintf(t, "  blocks\t%d checked, %d bytes, %s\n", rr.Blocks, rr.Size, check)
			why := noKeys
			if why == "" {
				why = "see the problems below"
			}
			fmt.Fprintf(t, "  decrypted\tno: %s\n", why)
		}
		for _, r := range a.Readers {
			exp := ""
			if !r.Expires.IsZero() {
				exp = ", until " + formatTime(r.Expires)
			}
			fmt.Fprintf(t, "  reader\t%s: %s via %s%s\n", clean(nm.of(r.Account)), r.Role, r.Via, exp)
		}
		for _, r := range a.Revoked {
			fmt.Fprintf(t, "  revoked\t%s by %s\n", clean(nm.of(r.Account)), r.Via)
		}
		for _, r := range a.Expired {
			fmt.Fprintf(t, "  expired\t%s at %s\n", clean(nm.of(r.Account)), r.Expires.Format(time.RFC3339))
		}
	}
	for _, p := range rr.Problems {
		fmt.Fprintf(t, "  PROBLEM\t%s\n", clean(p))
	}
	t.Flush()
}

// progressLine shows the block re-hash's progress on a terminal, at most
// four times a second, and clears the line when done.
type progressLine struct {
	w     io.Writer
	last  time.Time
	shown bool
}

func (p *progressLine) show(v keyshare.VerifyProgress) {
	if now := time.Now(); now.Sub(p.last) >= 250*time.Millisecond {
		p.last, p.shown = now, true
		fmt.Fprintf(p.w, "\rverifying blocks: %d, %s", v.Blocks, humanBytes(v.Bytes))
	}
}

func (p *progressLine) done() {
	if p.shown {
		fmt.Fprint(p.w, "\r\033[K")
	}
}

// humanBytes formats a byte count: "512 B", "3.1 MiB".
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// printRekey prints what verify found of a re-key (rk may be nil): on a
// re-keyed record its new version, on a new version its provenance and
// what could be compared.
func printRekey(t io.Writer, rk *keyshare.RekeyReport, a *keyshare.Access, nm names) {
	switch {
	case rk == nil:
		return
	case a.Rekeyed != nil:
		fmt.Fprintf(t, "  re-keyed\tby %s as %s (%s); this ciphertext is served to nobody\n", clean(nm.of(rk.By)), rk.New, rk.Via)
		return
	}
	fmt.Fprintf(t, "  re-keyed\tby %s from %s written by %s (%s)\n", clean(nm.of(rk.By)), rk.Record, clean(nm.of(rk.Author)), rk.Via)
	check := "content " + rk.Content
	if rk.Envelope != "" {
		check = "envelope " + rk.Envelope + ", " + check
	}
	fmt.Fprintf(t, "  re-key check\t%s: %s\n", check, clean(rk.Note))
}
