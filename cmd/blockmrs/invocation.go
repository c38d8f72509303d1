package main

// This file holds how one run of a command gets its stdio, working folder,
// repo and passphrase (an invocation), and how a run moves into the
// daemon: a command that finds the repo locked by a running daemon is run
// again inside that daemon through its local API (POST /api/v1/exec), the
// way Kubo's commands run inside its daemon. Inside the daemon the very
// same command table runs with the daemon's open repo, the client's stdio
// (framed over the HTTP response, stdin over the request body), the
// client's working folder and the client's passphrase.
//
// Rules for command code, so that every command works both ways:
//   - write output with f.out(), f.errOut(), f.printJSON, f.printTable
//     or f.newTable, never fmt.Print* or os.Stdout/os.Stderr (a test
//     checks this);
//   - read files and stdin with f.openInput, write files with
//     f.writeOutput (relative names are resolved against the client's
//     folder);
//   - get the repo with f.withRepo (or withSelected, withKeys, ...), and
//     keys with unlock / f.unlockSelected.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"syscall"

	"github.com/libp2p/go-libp2p/core/host"
	"golang.org/x/term"

	"github.com/blockmrs/blockmrs/keyshare"
	bmnode "github.com/blockmrs/blockmrs/node"
	"github.com/blockmrs/blockmrs/node/api"
)

// invocation is one run of a command.
type invocation struct {
	stdin          io.Reader
	stdout, stderr io.Writer

	// Set inside the daemon only:
	rt         *bmnode.Runtime    // the running daemon (its open repo)
	cwd        string             // the client's working folder
	passphrase []byte             // the client's passphrase, nil if none
	tty        bool               // the client can ask for a passphrase
	stdoutTTY  bool               // the client's stdout is a terminal
	need       api.NeedPassphrase // asks the client for a passphrase
}

// inDaemon reports whether the command runs inside the daemon.
func (inv *invocation) inDaemon() bool { return inv.rt != nil }

// osInvocation is a run in this process, on its own stdio.
func osInvocation() *invocation {
	return &invocation{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr}
}

type invocationKey struct{}

func withInvocation(ctx context.Context, inv *invocation) context.Context {
	return context.WithValue(ctx, invocationKey{}, inv)
}

// invocationOf returns the run ctx belongs to; this process's stdio when
// none was set.
func invocationOf(ctx context.Context) *invocation {
	if inv, ok := ctx.Value(invocationKey{}).(*invocation); ok {
		return inv
	}
	return osInvocation()
}

// bind ties f to ctx's invocation, for the output helpers that take no
// ctx; withRepo and selected call it.
func (f *cmdFlags) bind(ctx context.Context) {
	if f.inv == nil {
		f.inv = invocationOf(ctx)
	}
}

func (f *cmdFlags) invocation() *invocation {
	if f.inv == nil {
		f.inv = osInvocation()
	}
	return f.inv
}

// out is the command's stdout.
func (f *cmdFlags) out() io.Writer { return f.invocation().stdout }

// errOut is the command's stderr.
func (f *cmdFlags) errOut() io.Writer { return f.invocation().stderr }

// path resolves a file name the user gave: relative names are relative
// to the folder the command was started in.
func (f *cmdFlags) path(name string) string {
	inv := f.invocation()
	if inv.cwd == "" || filepath.IsAbs(name) {
		return name
	}
	return filepath.Join(inv.cwd, name)
}

// stdoutIsTerminal reports whether the command's stdout is a terminal.
func (f *cmdFlags) stdoutIsTerminal() bool {
	inv := f.invocation()
	if inv.inDaemon() {
		return inv.stdoutTTY
	}
	o, ok := inv.stdout.(*os.File)
	return ok && term.IsTerminal(int(o.Fd()))
}

// stderrIsTerminal reports whether the command's stderr is a terminal
// (for progress lines). Inside the daemon it says no: the client does not
// tell, and progress is not worth a frame of its own.
func (f *cmdFlags) stderrIsTerminal() bool {
	inv := f.invocation()
	if inv.inDaemon() {
		return false
	}
	o, ok := inv.stderr.(*os.File)
	return ok && term.IsTerminal(int(o.Fd()))
}

// notInDaemon lists the commands that never run inside a daemon.
var notInDaemon = []string{"daemon", "init"}

// errNeedPassphrase ends a command inside the daemon that asked the
// client for a passphrase (api.FramePassphrase); the client prints
// nothing for it, asks and runs the command again.
var errNeedPassphrase = errors.New("passphrase needed")

// execute runs the command line args in inv and returns the exit status.
// In this process, a command that finds the repo locked by a running
// daemon is sent to that daemon.
func execute(ctx context.Context, inv *invocation, args []string) int {
	if len(args) == 0 {
		printCommands(inv.stderr)
		return 2
	}
	all := args
	name, args := args[0], args[1:]
	if name == "help" || name == "-h" || name == "-help" || name == "--help" {
		if len(args) == 0 {
			printCommands(inv.stdout)
			return 0
		}
		name, args = args[0], []string{"--help"}
	}
	cmd := lookup(name)
	if cmd == nil {
		fmt.Fprintf(inv.stderr, "blockmrs: unknown command %q (run 'blockmrs help')\n", oneLine(name))
		return 2
	}
	if inv.inDaemon() && slices.Contains(notInDaemon, cmd.name) {
		return report(inv, cmd.name, fmt.Errorf("cannot run inside the daemon: stop the daemon, then run 'blockmrs %s'", cmd.name))
	}
	slog.Debug("run", "command", cmd.name, "in_daemon", inv.inDaemon())
	err := cancelledBy(ctx, cmd.run(withInvocation(ctx, inv), args))
	var locked *repoLockedError
	if !inv.inDaemon() && errors.As(err, &locked) {
		if code, ok := runInDaemon(ctx, inv, locked, cmd.name, all); ok {
			return code
		}
	}
	return report(inv, cmd.name, err)
}

// repoLockedError is opening a repo another process holds; it carries the
// repo folder so that the command can be sent to the daemon.
type repoLockedError struct {
	dir string
	err error
}

func (e *repoLockedError) Error() string { return e.err.Error() }
func (e *repoLockedError) Unwrap() error { return e.err }

// runInDaemon sends the command line args to the daemon running for the
// repo in locked.dir and returns its exit status; ok is false when no
// daemon can take it (the repo is held by another command, or api.addr is
// missing) and the lock error should be reported as is.
func runInDaemon(ctx context.Context, inv *invocation, locked *repoLockedError, name string, args []string) (code int, ok bool) {
	if !lockHeld(locked.dir) {
		return 0, false // released meanwhile: the caller reports "in use"; a retry will run directly
	}
	c, err := api.NewClient(locked.dir)
	if errors.Is(err, api.ErrNoDaemon) {
		return 0, false
	}
	if slices.Contains(notInDaemon, name) {
		return report(inv, name, errors.New("a daemon is running for this repo: stop it first (this command does not run through it)")), true
	}
	if err != nil {
		return report(inv, name, err), true
	}
	cwd, err := os.Getwd()
	if err != nil {
		return report(inv, name, fmt.Errorf("working folder: %w", err)), true
	}
	req := api.ExecRequest{Args: args, Cwd: cwd}
	if p, set := os.LookupEnv(envPassphrase); set {
		req.Passphrase = []byte(p)
	}
	if o, isFile := inv.stdout.(*os.File); isFile {
		req.StdoutTTY = term.IsTerminal(int(o.Fd()))
	}
	var stdin io.Reader
	if i, isFile := inv.stdin.(*os.File); !isFile || !term.IsTerminal(int(i.Fd())) {
		stdin = inv.stdin // a terminal's input is never streamed
	}
	req.TTY = req.Passphrase == nil && haveTTY(ctx)
	slog.Debug("through the daemon", "command", name)
	code, err = c.Exec(ctx, req, stdin, inv.stdout, inv.stderr)
	var need *api.PassphraseNeededError
	if errors.As(err, &need) && !need.StdinUsed {
		p, perr := askPassphrase(ctx, need.Prompt)
		if perr != nil {
			return report(inv, name, perr), true
		}
		req.Passphrase, req.TTY = p, false
		code, err = c.Exec(ctx, req, stdin, inv.stdout, inv.stderr)
		clear(p)
	}
	if errors.As(err, &need) {
		err = fmt.Errorf("the keys are encrypted and the command had begun reading stdin: set $%s", envPassphrase)
	}
	if errors.Is(err, api.ErrDaemonStopped) {
		err = fmt.Errorf("%w: check with 'blockmrs log' or 'blockmrs ls' before running it again", err)
	}
	if err != nil {
		return report(inv, name, cancelledBy(ctx, err)), true
	}
	return code, true
}

// askPassphrase asks once on the terminal.
func askPassphrase(ctx context.Context, prompt string) ([]byte, error) {
	tty, err := openTTY()
	if err != nil {
		return nil, fmt.Errorf("no terminal to ask for the passphrase: set $%s", envPassphrase)
	}
	defer tty.Close()
	return readPassword(ctx, tty, prompt)
}

// lockHeld reports whether some process holds the lock of the repo in
// dir (a daemon, or another command). A missing lock file is not held.
func lockHeld(dir string) bool {
	f, err := os.OpenFile(filepath.Join(dir, "repo.lock"), os.O_RDWR, 0)
	if err != nil {
		return false
	}
	defer f.Close()
	err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	if err == nil {
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		return false
	}
	return errors.Is(err, syscall.EWOULDBLOCK)
}

// execInDaemon is the daemon's api.ExecFunc: it runs the command table
// against the daemon's repo, on the client's stdio.
func execInDaemon(rt *bmnode.Runtime) api.ExecFunc {
	return func(ctx context.Context, req api.ExecRequest, stdin io.Reader, stdout, stderr io.Writer) int {
		inv := &invocation{
			stdin: stdin, stdout: stdout, stderr: stderr,
			rt: rt, cwd: req.Cwd, passphrase: req.Passphrase, tty: req.TTY, stdoutTTY: req.StdoutTTY,
		}
		inv.need, _ = stdout.(api.NeedPassphrase)
		code := execute(ctx, inv, req.Args)
		if rt.Logger != nil { // who holds the token can run anything: say what ran
			rt.Logger.Info("command run through the API", "command", oneLine(truncate(req.Args[0], 40)), "status", code)
		}
		return code
	}
}

// haveTTY reports whether a terminal is there to ask on: inside the
// daemon, whether the client said it has one.
func haveTTY(ctx context.Context) bool {
	if inv := invocationOf(ctx); inv.inDaemon() {
		return inv.tty
	}
	f, err := openTTY()
	if err != nil {
		return false
	}
	f.Close()
	return true
}

// passphraseGiven returns the passphrase given without asking: inside the
// daemon the client's, else $BLOCKMRS_PASSPHRASE.
func passphraseGiven(ctx context.Context) ([]byte, bool) {
	if inv := invocationOf(ctx); inv.inDaemon() {
		return inv.passphrase, inv.passphrase != nil
	}
	p, ok := os.LookupEnv(envPassphrase)
	return []byte(p), ok
}

// daemonSessions returns the daemon's unlock sessions when ctx's command
// runs inside the daemon.
func daemonSessions(ctx context.Context) *keyshare.Sessions {
	if inv := invocationOf(ctx); inv.inDaemon() {
		return inv.rt.Sessions
	}
	return nil
}

// daemonRepo returns the daemon's open repo when ctx's command runs
// inside the daemon.
func daemonRepo(ctx context.Context) *keyshare.Repo {
	if inv := invocationOf(ctx); inv.inDaemon() {
		return inv.rt.Repo
	}
	return nil
}

// daemonHost returns the running node's host when ctx's command runs
// inside the daemon, else nil.
func daemonHost(ctx context.Context) host.Host {
	if inv := invocationOf(ctx); inv.inDaemon() {
		return inv.rt.Host
	}
	return nil
}
