// Command blockmrs is the BlockMRS command line: a patient-controlled,
// encrypted medical-record store. Run "blockmrs help" for the commands.
//
// Exit status: 0 on success, 1 when the command failed, 2 when it was
// called wrongly (unknown command or flag, missing or extra argument,
// unparseable value). Errors are one line on stderr.
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
		addCmd, lsCmd, getCmd,
		grantCmd, revokeCmd, hideCmd, unhideCmd, requestCmd, requestsCmd, approveCmd, denyCmd,
		verifyCmd, logCmd, keyCmd, catCmd,
		exportCmd, importCmd, gcCmd, deviceCmd, replicaCmd, daemonCmd, peersCmd, versionCmd,
	}
}

func main() { os.Exit(run(os.Args[1:])) }

// run runs the command line args in this process (see execute: a command
// that finds the repo held by a running daemon runs inside it).
func run(args []string) int {
	setupLogging()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() { <-ctx.Done(); stop() }() // a second Ctrl-C kills at once
	return execute(ctx, osInvocation(), args)
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
