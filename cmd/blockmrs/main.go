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

func run(args []string) int {
	setupLogging()
	if len(args) == 0 {
		printCommands(os.Stderr)
		return 2
	}
	name, args := args[0], args[1:]
	if name == "help" || name == "-h" || name == "-help" || name == "--help" {
		if len(args) == 0 {
			printCommands(os.Stdout)
			return 0
		}
		name, args = args[0], []string{"--help"}
	}
	cmd := lookup(name)
	if cmd == nil {
		fmt.Fprintf(os.Stderr, "blockmrs: unknown command %q (run 'blockmrs help')\n", oneLine(name))
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() { <-ctx.Done(); stop() }() // a second Ctrl-C kills at once
	slog.Debug("run", "command", cmd.name)
	return report(cmd.name, cmd.run(ctx, args))
}

func lookup(name string) *command {
	for _, c := range commands {
		if c.name == name {
			return c
		}
	}
	return nil
}

// report prints err as one line and returns the exit status.
func report(name string, err error) int {
	if err == nil || errors.Is(err, errHelpShown) {
		return 0
	}
	var sub *subcommandError
	if errors.As(err, &sub) {
		name = sub.name
	}
	var ue *usageError
	if errors.As(err, &ue) {
		fmt.Fprintf(os.Stderr, "blockmrs: %s: %s (see 'blockmrs %s --help')\n", name, oneLine(err.Error()), name)
		return 2
	}
	if errors.Is(err, context.Canceled) {
		err = errors.New("interrupted")
	}
	fmt.Fprintf(os.Stderr, "blockmrs: %s: %s\n", name, oneLine(err.Error()))
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
