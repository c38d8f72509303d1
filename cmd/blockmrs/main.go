// Command blockmrs is the BlockMRS command line: a patient-controlled,
// encrypted medical-record store. Run "blockmrs help" for the commands.
//
// Exit status: 0 on success, 1 when the command failed, 2 when it was
// called wrongly (unknown command or flag, missing or extra argument,
// unparseable value), 128+N when signal N stopped it (130 for SIGINT,
// 143 for SIGTERM; the daemon exits 0 after a clean shutdown). Errors are
// one line on stderr.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

// command is one subcommand. run parses its own flags from args.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string) error
}

// commands is the command table, in the order help lists it. It is filled
// in init so that help can refer to it.
var commands []*command

func init() {
	commands = []*command{
		initCmd, idCmd, accountsCmd, contactCmd,
		addCmd, lsCmd, getCmd, fhirCmd, labCmd, labsCmd,
		grantCmd, grantsCmd, revokeCmd, jobsCmd, readersCmd, hideCmd, unhideCmd, requestCmd, requestsCmd, approveCmd, denyCmd, guardianCmd,
		attestCmd, trustCmd, directoryCmd,
		verifyCmd, auditCmd, logCmd, keyCmd, catCmd,
		exportCmd, importCmd, gcCmd, deviceCmd, replicaCmd, emergencyCmd, recoveryCmd, daemonCmd, peersCmd, unlockCmd, lockCmd, sessionsCmd, openCmd, versionCmd,
	}
}

func main() { os.Exit(run(os.Args[1:])) }

// run runs the command line args in this process (see execute: a command
// that finds the repo held by a running daemon runs inside it).
//
// The first SIGINT or SIGTERM cancels the command's context with a
// *signalError as its cause; every command stops on it (input waits
// included, see input.go) and exits 128+N. A second one kills at once.
func run(args []string) int {
	setupLogging()
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		sig := <-sigs
		signal.Stop(sigs) // the default again: a second signal kills at once
		s, _ := sig.(syscall.Signal)
		cancel(&signalError{s})
	}()
	return execute(ctx, osInvocation(), args)
}

// signalError is the cause of a command's cancellation by a signal.
type signalError struct{ sig syscall.Signal }

func (e *signalError) Error() string {
	if e.sig == syscall.SIGTERM {
		return "terminated"
	}
	return "interrupted"
}

// exitStatus is what shells report for a process the signal ended.
func (e *signalError) exitStatus() int { return 128 + int(e.sig) }

// cancelledBy replaces a cancellation error with ctx's cause when there is
// one (a signal, the daemon stopping), so that the report names it.
func cancelledBy(ctx context.Context, err error) error {
	if errors.Is(err, context.Canceled) {
		if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) {
			return cause
		}
	}
	return err
}

func lookup(name string) *command {
	for _, c := range commands {
		if c.name == name {
			return c
		}
	}
	return nil
}

// report prints err as one line on inv's stderr (help asked for: the
// help on its stdout) and returns the exit status.
func report(inv *invocation, name string, err error) int {
	var help *helpShown
	if errors.As(err, &help) {
		fmt.Fprint(inv.stdout, help.text)
		return 0
	}
	if err == nil || errors.Is(err, errHelpShown) {
		return 0
	}
	if errors.Is(err, errNeedPassphrase) {
		return 1 // the client asks for the passphrase and runs the command again
	}
	var sub *subcommandError
	if errors.As(err, &sub) {
		name = sub.name
	}
	var ue *usageError
	if errors.As(err, &ue) {
		fmt.Fprintf(inv.stderr, "blockmrs: %s: %s (see 'blockmrs %s --help')\n", name, oneLine(err.Error()), name)
		return 2
	}
	var sig *signalError
	if errors.As(err, &sig) {
		fmt.Fprintf(inv.stderr, "blockmrs: %s: %s\n", name, sig)
		return sig.exitStatus()
	}
	if errors.Is(err, context.Canceled) {
		err = errors.New("interrupted")
	}
	fmt.Fprintf(inv.stderr, "blockmrs: %s: %s\n", name, oneLine(err.Error()))
	return 1
}

// oneLine folds an error text onto one line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

func printCommands(w io.Writer) {
	fmt.Fprintf(w, "Usage: blockmrs COMMAND [flags] [arguments]\n\n")
	fmt.Fprintf(w, "BlockMRS keeps medical records encrypted, one key per record, in a local\n")
	fmt.Fprintf(w, "repo ($%s, default ~/.blockmrs); signed chains decide who may read\n", envPath)
	fmt.Fprintf(w, "what.\n\nCommands:\n")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-9s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, "  %-9s %s\n", "help", "show this list, or a command's help (blockmrs help COMMAND)")
	fmt.Fprintf(w, "\nEvery command takes --help, --repo FOLDER and --json. Set $%s\n", envPassphrase)
	fmt.Fprintf(w, "to unlock keys in scripts, $%s=debug for logs on stderr.\n", envLog)
}

// setupLogging sends log/slog to stderr, quiet unless $BLOCKMRS_LOG asks.
func setupLogging() {
	level := slog.Level(100) // nothing
	switch strings.ToLower(os.Getenv(envLog)) {
	case "debug":
		level = slog.LevelDebug
	case "info":
		level = slog.LevelInfo
	case "warn":
		level = slog.LevelWarn
	case "error":
		level = slog.LevelError
	}
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})))
}
