package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"time"
)

var openCmd = &command{name: "open", summary: "print (and open) a one-time login link into the running daemon's web app", run: runOpen}

func runOpen(ctx context.Context, args []string) error {
	f := newFlags("open", "[flags]", `
Open asks the daemon running for this repo for a one-time login link into
its web app and prints it. The link works once, within 2 minutes, in one
browser on this computer: it becomes a session cookie there (ending after
15 minutes without use, or when the daemon stops). On a desktop it also
tries to open the link in your browser with xdg-open; --print only prints
it. It needs a running daemon ('blockmrs daemon').`, `
blockmrs open
blockmrs open --print`)
	printOnly := f.Bool("print", false, "only print the link; do not start a browser")
	if _, err := f.parseArgs(args, false); err != nil {
		return err
	}
	c, err := f.daemonClient()
	if err != nil {
		return err
	}
	link, err := c.LoginLink(ctx)
	if err != nil {
		return err
	}
	if f.json {
		return f.printJSON(link)
	}
	fmt.Fprintln(f.out(), link.URL)
	if *printOnly || f.invocation().inDaemon() {
		return nil
	}
	if opened := openBrowser(link.URL); opened {
		fmt.Fprintf(f.errOut(), "opening it in your browser; if nothing opens, paste the link above into one (it works once, until %s)\n",
			link.Expires.Local().Format(time.TimeOnly))
	} else {
		fmt.Fprintf(f.errOut(), "open the link above in a browser on this computer (it works once, until %s)\n",
			link.Expires.Local().Format(time.TimeOnly))
	}
	return nil
}

// openBrowser starts xdg-open on url when a desktop session is there and
// reports whether it started; it never waits for the browser.
func openBrowser(url string) bool {
	if os.Getenv("DISPLAY") == "" && os.Getenv("WAYLAND_DISPLAY") == "" {
		return false
	}
	path, err := exec.LookPath("xdg-open")
	if err != nil {
		return false
	}
	cmd := exec.Command(path, url)
	if cmd.Start() != nil {
		return false
	}
	go cmd.Wait() // reaped if it ends before we do
	return true
}
