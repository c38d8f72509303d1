package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/term"

	"github.com/blockmrs/blockmrs/protocol"
)

var getCmd = &command{name: "get", summary: "decrypt a record to a file or stdout", run: runGet}

func runGet(ctx context.Context, args []string) (err error) {
	f := newFlags("get", "[flags] CID", `
Get decrypts a record the acting account may read and writes its content
to stdout, or with -o to FILE. Decryption authenticates the content as it
goes, so success is reported only after the last byte checked out; with -o
the content goes to a temporary file next to FILE that is renamed only
then, so a failed get leaves no partial file. To stdout a failure can come
after some content was written: the exit status is then 1. A revoked or
expired grant fails with the reason.`, `
blockmrs get -o results.pdf bafybeib...
blockmrs get bafkrei... | jq .`)
	f.withAccount()
	out := f.String("o", "-", "write the content to `FILE` (- for stdout)")
	pos, err := f.parse(args)
	if err != nil {
		return err
	}
	if err := f.checkArgs(pos, false, "CID"); err != nil {
		return err
	}
	c, err := parseCID(pos[0])
	if err != nil {
		return err
	}
	if *out == "-" && f.json {
		return usagef("--json needs -o FILE: the content goes to stdout")
	}
	repo, err := f.openRepo(ctx)
	if err != nil {
		return err
	}
	defer closeRepo(repo, &err)
	_, keys, err := f.unlockSelected(ctx, repo)
	if err != nil {
		return err
	}
	env, body, err := repo.OpenRecord(ctx, keys, c)
	if err != nil {
		return err
	}
	defer body.Close()
	if *out == "-" && term.IsTerminal(int(os.Stdout.Fd())) && !textual(env.MediaType) {
		return fmt.Errorf("%s is %s, not text: use -o FILE rather than printing it on the terminal", c, env.MediaType)
	}
	n, err := writeOutput(*out, func(w io.Writer) error {
		_, err := io.Copy(w, body)
		return err
	})
	if err != nil {
		return fmt.Errorf("%s: %w", c, err)
	}
	if f.json {
		return printJSON(struct {
			CID       string        `json:"cid"`
			Title     string        `json:"title"`
			Kind      protocol.Kind `json:"kind"`
			MediaType string        `json:"media_type"`
			FileName  string        `json:"file_name,omitempty"`
			Bytes     int64         `json:"bytes"`
			Path      string        `json:"path"`
		}{c.String(), env.Title, env.Kind, env.MediaType, env.FileName, n, *out})
	}
	return nil
}

// textual reports whether a media type is fit for a terminal.
func textual(mt string) bool {
	mt = strings.ToLower(mt)
	return strings.HasPrefix(mt, "text/") || strings.Contains(mt, "json") || strings.Contains(mt, "xml")
}
