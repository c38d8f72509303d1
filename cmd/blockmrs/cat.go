package main

import (
	"context"
	"fmt"
	"io"

	"github.com/blockmrs/blockmrs/keyshare"
)

var catCmd = &command{name: "cat", summary: "print a record's raw ciphertext (cat --raw CID)", run: runCat}

func runCat(ctx context.Context, args []string) error {
	f := newFlags("cat", "--raw [flags] CID", `
Cat --raw writes a record's raw ciphertext (an age file, exactly the bytes
its CID names) to stdout, reading every block and checking its hash as it
goes. It needs no keys. To read the content use 'blockmrs get CID'; to
decrypt the ciphertext elsewhere see 'blockmrs key export'.`, `
blockmrs cat --raw bafybeib... > record.age`)
	raw := f.Bool("raw", false, "print the ciphertext (required: cat never decrypts)")
	pos, err := f.parseArgs(args, false, "CID")
	if err != nil {
		return err
	}
	if !*raw {
		return usagef("cat only prints ciphertext, with --raw; use 'blockmrs get %s' for the content", truncate(pos[0], 80))
	}
	if f.json {
		return usagef("--json does not apply: cat --raw writes the ciphertext to stdout")
	}
	c, err := parseCID(pos[0])
	if err != nil {
		return err
	}
	return f.withRepo(ctx, func(repo *keyshare.Repo) error {
		rc, err := repo.Store().Cat(ctx, c)
		if err != nil {
			return err
		}
		defer rc.Close()
		if _, err := io.Copy(f.out(), rc); err != nil {
			return fmt.Errorf("%s: %w", c, err)
		}
		return nil
	})
}
