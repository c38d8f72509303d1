package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/blockmrs/blockmrs/keyshare"
)

var getCmd = &command{name: "get", summary: "decrypt a record to a file or stdout", run: runGet}

func runGet(ctx context.Context, args []string) error {
	f := newFlags("get", "[flags] CID", `
Get decrypts a record the acting account may read and writes its content
to stdout, or with -o to FILE. Decryption authenticates the content as it
goes, so success is reported only after the last byte checked out; with -o
the content goes to a temporary file next to FILE that is renamed only
then, so a failed get leaves no partial file. FILE names a file: like
curl -o and age -o, get refuses a folder (write to FOLDER/NAME instead), a
path whose folder does not exist, and any path inside the repo folder
(which holds the account keys). To stdout a failure can come
after some content was written: the exit status is then 1. A revoked or
expired grant fails with the reason.`, `
blockmrs get -o results.pdf bafybeib...
blockmrs get bafkrei... | jq .`)
	f.withAccount()
	out := f.String("o", "-", "write the content to `FILE` (- for stdout)")
	_, cids, err := f.parseCIDArgs(args, false)
	if err != nil {
		return err
	}
	c := cids[0]
	if *out == "-" && f.json {
		return usagef("--json needs -o FILE: the content goes to stdout")
	}
	return f.withKeys(ctx, func(repo *keyshare.Repo, keys *keyshare.Keys) error {
		env, body, err := repo.OpenRecord(ctx, keys, c)
		if err != nil {
			return err
		}
		defer body.Close()
		if *out == "-" && f.stdoutIsTerminal() && !textual(env.MediaType) {
			return fmt.Errorf("%s is %s, not text: use -o FILE rather than printing it on the terminal", c, env.MediaType)
		}
		n, err := f.writeOutput(*out, func(w io.Writer) error {
			_, err := io.Copy(w, body)
			return err
		})
		if err != nil {
			return fmt.Errorf("%s: %w", c, err)
		}
		if f.json {
			return f.printJSON(struct {
				recordJSON
				FileName string `json:"file_name,omitempty"`
				Bytes    int64  `json:"bytes"`
				Path     string `json:"path"`
			}{recordJSON{c.String(), env.Title, env.Kind, env.MediaType}, env.FileName, n, *out})
		}
		return nil
	})
}

// textual reports whether a media type is fit for a terminal.
func textual(mt string) bool {
	mt = strings.ToLower(mt)
	return strings.HasPrefix(mt, "text/") || strings.Contains(mt, "json") || strings.Contains(mt, "xml")
}
