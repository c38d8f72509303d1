package main

// This file holds what every subcommand shares: flag parsing (flags may
// come before or after positional arguments), help text, the repo path,
// account selection, passphrases, JSON output, output files and error
// kinds.

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/ipfs/go-cid"
	"golang.org/x/term"

	"github.com/blockmrs/blockmrs/keyshare"
	bmnode "github.com/blockmrs/blockmrs/node"
	"github.com/blockmrs/blockmrs/protocol"
)

// Environment variables the command reads.
const (
	envPath       = bmnode.EnvPath        // repo folder
	envPassphrase = "BLOCKMRS_PASSPHRASE" // passphrase for scripts (never prompted when set)
	envLog        = "BLOCKMRS_LOG"        // debug, info, warn or error; quiet when unset
)

// usageError is a mistake in how the command was called: an unknown
// command or flag, a missing or extra argument, an unparseable value. It
// exits with status 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error { return &usageError{fmt.Sprintf(format, a...)} }

// errHelpShown says help was asked for: exit 0. The error is a
// *helpShown carrying the text, which report prints on the invocation's
// stdout; errors.Is(err, errHelpShown) tells it.
var errHelpShown = errors.New("help shown")

// helpShown is help asked for: report prints text on stdout.
type helpShown struct{ text string }

func (h *helpShown) Error() string        { return errHelpShown.Error() }
func (h *helpShown) Is(target error) bool { return target == errHelpShown }

// showHelp returns the error that makes report print text.
func showHelp(text string) error { return &helpShown{text: text} }

// subcommandError carries the full name of a nested subcommand ("contact
// add") so the error line names it.
type subcommandError struct {
	name string
	err  error
}

func (e *subcommandError) Error() string { return e.err.Error() }
func (e *subcommandError) Unwrap() error { return e.err }

func inSubcommand(name string, err error) error {
	if err == nil || errors.Is(err, errHelpShown) {
		return err
	}
	return &subcommandError{name: name, err: err}
}

// subcommand is a nested subcommand ("add" of "contact add").
type subcommand struct {
	names []string // its name, then any aliases
	run   func(ctx context.Context, args []string) error
}

// runNested runs the nested subcommand of parent that args[0] names, or
// for -h, -help and --help prints help, the parent's help text.
func runNested(ctx context.Context, parent, help string, args []string, subs ...subcommand) error {
	want := make([]string, len(subs))
	for i, s := range subs {
		want[i] = s.names[0]
	}
	if len(args) == 0 {
		return usagef("missing subcommand: %s", strings.Join(want, " or "))
	}
	for _, s := range subs {
		if slices.Contains(s.names, args[0]) {
			return inSubcommand(parent+" "+s.names[0], s.run(ctx, args[1:]))
		}
	}
	switch args[0] {
	case "-h", "-help", "--help":
		return showHelp(help)
	}
	return usagef("unknown subcommand %q (want %s)", truncate(args[0], 40), strings.Join(want, " or "))
}

// cmdFlags is a subcommand's flag set with the flags every command has
// (--repo, --json, and --account where an account acts) and its help text.
type cmdFlags struct {
	*flag.FlagSet
	name     string // "add", "contact add"
	synopsis string // "[flags] FILE|-"
	desc     string // one paragraph
	example  string // one or more example lines

	repo    string
	account string
	json    bool

	inv *invocation // the run's stdio, set by bind
}

func newFlags(name, synopsis, desc, example string) *cmdFlags {
	f := &cmdFlags{FlagSet: flag.NewFlagSet(name, flag.ContinueOnError), name: name, synopsis: synopsis, desc: desc, example: example}
	f.SetOutput(io.Discard) // errors become one line, help goes to stdout
	f.StringVar(&f.repo, "repo", "", "the repo `FOLDER` (default $"+envPath+", else ~/.blockmrs)")
	f.BoolVar(&f.json, "json", false, "print one JSON document on stdout")
	return f
}

// withAccount adds --account: the local account that acts.
func (f *cmdFlags) withAccount() *cmdFlags {
	f.StringVar(&f.account, "account", "", "act as this local `ACCOUNT`: NAME, ID or an ID suffix of 6+ characters (default: the repo's default account)")
	return f
}

// parse parses args, allowing flags before, between and after positional
// arguments ("--" ends flags), and returns the positional arguments.
func (f *cmdFlags) parse(args []string) ([]string, error) {
	var pos []string
	for {
		if err := f.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				var help strings.Builder
				f.printHelp(&help)
				return nil, showHelp(help.String())
			}
			return nil, usagef("%v", err)
		}
		rest := f.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if used := len(args) - len(rest); used > 0 && args[used-1] == "--" && !f.takesValue(args[:used-1]) {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// takesValue reports whether the last of the parsed args is a flag that
// takes the next argument as its value (so a following "--" is a value,
// not the end of flags).
func (f *cmdFlags) takesValue(parsed []string) bool {
	if len(parsed) == 0 {
		return false
	}
	last := parsed[len(parsed)-1]
	if !strings.HasPrefix(last, "-") || strings.Contains(last, "=") || last == "--" {
		return false
	}
	fl := f.Lookup(strings.TrimLeft(last, "-"))
	if fl == nil {
		return false
	}
	if b, ok := fl.Value.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() {
		return false
	}
	return true
}

// printHelp writes the command's help: synopsis, description, flags,
// example.
func (f *cmdFlags) printHelp(w io.Writer) {
	fmt.Fprintf(w, "Usage: blockmrs %s %s\n\n%s\n\nFlags:\n", f.name, f.synopsis, strings.TrimSpace(f.desc))
	f.VisitAll(func(fl *flag.Flag) {
		typ, usage := flag.UnquoteUsage(fl)
		dash := "--"
		if len(fl.Name) == 1 {
			dash = "-"
		}
		line := "  " + dash + fl.Name
		if typ != "" {
			line += " " + typ
		}
		if fl.DefValue != "" && fl.DefValue != "false" {
			usage += fmt.Sprintf(" (default %q)", fl.DefValue)
		}
		fmt.Fprintf(w, "%s\n      %s\n", line, usage)
	})
	fmt.Fprintf(w, "\nExample:\n")
	for _, l := range strings.Split(strings.TrimSpace(f.example), "\n") {
		fmt.Fprintf(w, "  %s\n", strings.TrimSpace(l))
	}
}

// checkArgs checks the number of positional arguments: names lists the
// required ones; with variadic the last may repeat.
func (f *cmdFlags) checkArgs(pos []string, variadic bool, names ...string) error {
	if len(pos) < len(names) {
		return usagef("missing %s argument", names[len(pos)])
	}
	if !variadic && len(pos) > len(names) {
		return usagef("unexpected argument %q", pos[len(names)])
	}
	return nil
}

// parseArgs parses args and checks the positional arguments (see
// checkArgs).
func (f *cmdFlags) parseArgs(args []string, variadic bool, names ...string) ([]string, error) {
	pos, err := f.parse(args)
	if err != nil {
		return nil, err
	}
	if err := f.checkArgs(pos, variadic, names...); err != nil {
		return nil, err
	}
	return pos, nil
}

// parseOptionalArg parses args for a command that takes at most one
// positional argument.
func (f *cmdFlags) parseOptionalArg(args []string) ([]string, error) {
	pos, err := f.parse(args)
	if err != nil {
		return nil, err
	}
	if len(pos) > 1 {
		return nil, usagef("unexpected argument %q", pos[1])
	}
	return pos, nil
}

// parseCIDArgs parses args for a command whose positional arguments are
// record CIDs: exactly one, or with variadic one or more. It returns them
// as given and parsed.
func (f *cmdFlags) parseCIDArgs(args []string, variadic bool) ([]string, []cid.Cid, error) {
	pos, err := f.parseArgs(args, variadic, "CID")
	if err != nil {
		return nil, nil, err
	}
	cids, err := parseCIDs(pos)
	if err != nil {
		return nil, nil, err
	}
	return pos, cids, nil
}

// repoPath resolves the repo folder: --repo, else $BLOCKMRS_PATH, else
// ~/.blockmrs.
func (f *cmdFlags) repoPath() (string, error) {
	return bmnode.RepoPath(f.repo)
}

// label names an account for people: "alice (…abcdefgh)".
func label(a keyshare.AccountInfo) string {
	return fmt.Sprintf("%s (%s)", a.Name, a.ID.Short())
}

// keysWithoutPrompt reports whether a's keys can be unlocked without
// asking anyone.
func keysWithoutPrompt(ctx context.Context, a keyshare.AccountInfo) bool {
	_, set := passphraseGiven(ctx)
	return !a.Encrypted || set
}

// unlock unlocks a local account's keys: directly when they are not
// encrypted, with $BLOCKMRS_PASSPHRASE (inside the daemon: the client's
// passphrase) when it is set, else by asking on the terminal (three
// tries; inside the daemon the client asks, once).
func unlock(ctx context.Context, r *keyshare.Repo, a keyshare.AccountInfo) (*keyshare.Keys, error) {
	if !a.Encrypted {
		return r.Unlock(ctx, a.ID, nil)
	}
	if s := daemonSessions(ctx); s != nil {
		if k, err := s.Keys(a.ID); err == nil {
			return k, nil // an unlocked session: no passphrase, no scrypt
		}
	}
	if p, ok := passphraseGiven(ctx); ok {
		return r.Unlock(ctx, a.ID, p)
	}
	if inv := invocationOf(ctx); inv.inDaemon() {
		p, err := passphraseFor(ctx, a)
		if err != nil {
			return nil, err
		}
		return r.Unlock(ctx, a.ID, p)
	}
	noTTY := noTTYError(a)
	tty, err := openTTY()
	if err != nil {
		return nil, noTTY
	}
	defer tty.Close()
	for try := 1; ; try++ {
		p, err := readPassword(ctx, tty, fmt.Sprintf("Passphrase for %s: ", label(a)))
		if err != nil {
			return nil, err
		}
		k, err := r.Unlock(ctx, a.ID, p)
		clear(p)
		if errors.Is(err, keyshare.ErrWrongPassphrase) && try < 3 {
			fmt.Fprintln(tty, "Wrong passphrase, try again.")
			continue
		}
		return k, err
	}
}

// noTTYError says that a passphrase is needed and cannot be asked for.
func noTTYError(a keyshare.AccountInfo) error {
	return fmt.Errorf("the keys of %s are encrypted and there is no terminal to ask for the passphrase: set $%s, or 'blockmrs unlock' it in the daemon", label(a), envPassphrase)
}

// passphraseFor returns the passphrase for a, when ctx's command runs
// inside the daemon: the one the client sent, else the client is asked to
// prompt for it on its terminal (the command then runs again with it).
func passphraseFor(ctx context.Context, a keyshare.AccountInfo) ([]byte, error) {
	if p, ok := passphraseGiven(ctx); ok {
		return p, nil
	}
	inv := invocationOf(ctx)
	if !inv.inDaemon() || !inv.tty || inv.need == nil {
		return nil, noTTYError(a)
	}
	if err := inv.need.NeedPassphrase(fmt.Sprintf("Passphrase for %s: ", label(a))); err != nil {
		return nil, err
	}
	return nil, errNeedPassphrase
}

// openTTY opens the controlling terminal, if there is one.
func openTTY() (*os.File, error) {
	f, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	if !term.IsTerminal(int(f.Fd())) {
		f.Close()
		return nil, errors.New("/dev/tty is not a terminal")
	}
	return f, nil
}

// readPassword prompts on tty and reads a line without echo. Ctrl-C
// (ctx cancelled) restores the terminal and returns.
func readPassword(ctx context.Context, tty *os.File, prompt string) ([]byte, error) {
	fd := int(tty.Fd())
	state, err := term.GetState(fd)
	if err != nil {
		return nil, fmt.Errorf("read passphrase: %w", err)
	}
	fmt.Fprint(tty, prompt)
	type result struct {
		p   []byte
		err error
	}
	ch := make(chan result, 1)
	go func() {
		p, err := term.ReadPassword(fd)
		ch <- result{p, err}
	}()
	select {
	case res := <-ch:
		fmt.Fprintln(tty)
		if res.err != nil {
			return nil, fmt.Errorf("read passphrase: %w", res.err)
		}
		return res.p, nil
	case <-ctx.Done():
		_ = term.Restore(fd, state)
		fmt.Fprintln(tty)
		return nil, ctx.Err()
	}
}

// parseCID parses a record CID argument; a bad one is a usage error.
func parseCID(s string) (cid.Cid, error) {
	c, err := cid.Decode(s)
	if err != nil {
		return cid.Undef, usagef("bad CID %q: %v", truncate(s, 80), err)
	}
	return c, nil
}

// parseCIDs parses a list of record CIDs (the arguments of grant, revoke,
// hide, unhide, request --records). A CID given twice, in any spelling, is
// a usage error saying so, rather than a failure deep in signing.
func parseCIDs(ss []string) ([]cid.Cid, error) {
	out := make([]cid.Cid, 0, len(ss))
	seen := make(map[string]string, len(ss))
	for _, s := range ss {
		c, err := parseCID(s)
		if err != nil {
			return nil, err
		}
		if first, dup := seen[c.KeyString()]; dup {
			if first != s {
				return nil, usagef("CID %s given twice (also as %s)", truncate(first, 80), truncate(s, 80))
			}
			return nil, usagef("CID %s given twice", truncate(s, 80))
		}
		seen[c.KeyString()] = s
		out = append(out, c)
	}
	return out, nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// printJSON writes v as one indented JSON document on stdout.
func (f *cmdFlags) printJSON(v any) error {
	enc := json.NewEncoder(f.out())
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("write JSON: %w", err)
	}
	return nil
}

// newTable returns a tab-separated table writer on stdout; Flush it.
func (f *cmdFlags) newTable() *tabwriter.Writer {
	return tabwriter.NewWriter(f.out(), 0, 4, 2, ' ', 0)
}

// printTable prints v as one JSON document with --json, else the table
// that rows writes (tab-separated cells, aligned when rows is done).
func (f *cmdFlags) printTable(v any, rows func(t io.Writer) error) error {
	if f.json {
		return f.printJSON(v)
	}
	t := f.newTable()
	if err := rows(t); err != nil {
		return err
	}
	return t.Flush()
}

// recordJSON is what the JSON output of add and get says about a record.
type recordJSON struct {
	CID       string        `json:"cid"`
	Title     string        `json:"title"`
	Kind      protocol.Kind `json:"kind"`
	MediaType string        `json:"media_type"`
}

// names maps account IDs to display names for tables.
type names map[protocol.AccountID]string

func loadNames(ctx context.Context, r *keyshare.Repo) (names, error) {
	accts, err := r.Accounts(ctx)
	if err != nil {
		return nil, err
	}
	n := names{}
	for _, a := range accts {
		n[a.ID] = a.Name
	}
	return n, nil
}

// of returns id's name, or the short ID when the repo does not know it.
func (n names) of(id protocol.AccountID) string {
	if id == "" {
		return "-"
	}
	if s, ok := n[id]; ok && s != "" {
		return s
	}
	return id.Short()
}

// long returns "name (ID)".
func (n names) long(id protocol.AccountID) string {
	if s, ok := n[id]; ok && s != "" {
		return fmt.Sprintf("%s (%s)", s, id)
	}
	return string(id)
}

// pathErrorAs makes an error about the file resolved name it as the user
// gave it (given), as it reads when the command runs in its own folder.
func pathErrorAs(err error, resolved, given string) error {
	var pe *fs.PathError
	if resolved != given && errors.As(err, &pe) && pe.Path == resolved {
		return &fs.PathError{Op: pe.Op, Path: given, Err: pe.Err}
	}
	return err
}

// writeOutput writes what fill writes to path ("-": stdout; a relative
// path is relative to the command's folder). A file is written to a
// temporary file next to path, synced and renamed only when fill
// succeeded, so a failure leaves no partial file (and an existing file
// untouched). New files are readable by their owner only. Before anything
// is written, outputFile refuses a path inside the repo folder, a folder,
// and a path whose folder does not exist, each in one line naming the path
// as the user gave it.
func (f *cmdFlags) writeOutput(path string, fill func(io.Writer) error) (n int64, err error) {
	if path == "-" {
		cw := &countWriter{w: f.out()}
		err := fill(cw)
		return cw.n, err
	}
	given := path
	path, err = f.outputFile(given)
	if err != nil {
		return 0, err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".blockmrs-*")
	if err != nil {
		return 0, fmt.Errorf("write %s: %w", given, underlying(err))
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	cw := &countWriter{w: tmp}
	if err := fill(cw); err != nil {
		return cw.n, err
	}
	if err := tmp.Sync(); err != nil {
		return cw.n, fmt.Errorf("write %s: %w", given, underlying(err))
	}
	if err := tmp.Close(); err != nil {
		return cw.n, fmt.Errorf("write %s: %w", given, underlying(err))
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return cw.n, fmt.Errorf("write %s: %w", given, underlying(err))
	}
	return cw.n, nil
}

// outputFile checks an output path the user gave and returns the file to
// write: the given path with the symlinks of its folder resolved (so the
// folder checked is the folder written). It refuses
//   - a path inside the repo folder: after resolving symlinks (of the
//     folder, and of the file itself when it exists), any of its folders
//     is the repo folder, compared by identity (device and inode), so
//     "..", a symlink or a bind mount leads nowhere else. This keeps
//     every command from overwriting a key file or a block;
//   - a folder, or a path ending in "/": like curl -o and age -o, output
//     goes to the file named, never into a folder;
//   - a path whose folder does not exist (naming the path, not a
//     temporary file).
func (f *cmdFlags) outputFile(given string) (string, error) {
	abs, err := filepath.Abs(f.path(given))
	if err != nil {
		return "", fmt.Errorf("%s: %w", given, err)
	}
	dirGiven := filepath.Dir(strings.TrimRight(given, "/"))
	dir, err := filepath.EvalSymlinks(filepath.Dir(abs))
	if errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("%s: the folder %s does not exist: create it or choose another path", given, dirGiven)
	}
	if err == nil {
		if st, serr := os.Stat(dir); serr == nil && !st.IsDir() {
			err = syscall.ENOTDIR
		}
	}
	if errors.Is(err, syscall.ENOTDIR) {
		return "", fmt.Errorf("%s: %s is not a folder", given, dirGiven)
	}
	if err != nil {
		return "", fmt.Errorf("%s: %w", given, underlying(err))
	}
	file := filepath.Join(dir, filepath.Base(abs))
	repo, err := f.repoFolder()
	if err != nil {
		return "", err
	}
	if insideFolder(file, repo) {
		return "", fmt.Errorf("%s is inside the repo folder: choose a path outside the repo", given)
	}
	st, err := os.Stat(file) // follows a symlink at file
	if err == nil && st.IsDir() {
		return "", fmt.Errorf("%s is a folder: give a file name, as in %s", given, filepath.Join(given, "NAME"))
	}
	if strings.HasSuffix(given, "/") {
		return "", fmt.Errorf("%s ends in / (a folder): give a file name", given)
	}
	if err == nil {
		if target, err := filepath.EvalSymlinks(file); err == nil && insideFolder(target, repo) {
			return "", fmt.Errorf("%s is inside the repo folder: choose a path outside the repo", given)
		}
	}
	return file, nil
}

// repoFolder returns the repo folder's file info: inside the daemon the
// daemon's repo, else the folder --repo, $BLOCKMRS_PATH or the default
// names.
func (f *cmdFlags) repoFolder() (os.FileInfo, error) {
	var dir string
	if inv := f.invocation(); inv.inDaemon() {
		dir = inv.rt.Repo.Dir()
	} else {
		var err error
		if dir, err = f.repoPath(); err != nil {
			return nil, err
		}
	}
	st, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("repo folder: %w", err)
	}
	return st, nil
}

// insideFolder reports whether path (absolute, symlinks resolved) is the
// folder root or lies under it: whether path or any folder above it is the
// same file as root.
func insideFolder(path string, root os.FileInfo) bool {
	for {
		if st, err := os.Stat(path); err == nil && os.SameFile(st, root) {
			return true
		}
		up := filepath.Dir(path)
		if up == path {
			return false
		}
		path = up
	}
}

// underlying strips the *fs.PathError or *os.LinkError off err, whose
// path would be a temporary file the user never named.
func underlying(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	var le *os.LinkError
	if errors.As(err, &le) {
		return le.Err
	}
	return err
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// clean makes text that others wrote (names, titles) safe to print: no
// control characters (terminal escapes), whitespace runs folded to one
// space.
func clean(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) && r != '\t' && r != '\n' {
			return -1
		}
		return r
	}, s)
	return strings.Join(strings.Fields(s), " ")
}

// formatTime formats a time for tables and logs (UTC, to the second).
func formatTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}
