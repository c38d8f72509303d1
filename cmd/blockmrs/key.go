package main

import (
	"context"
	"fmt"

	"github.com/blockmrs/blockmrs/keyshare"
)

var keyCmd = &command{name: "key", summary: "export a record's key for the stock age tool (key export CID)", run: runKey}

const keyHelp = `Usage: blockmrs key export [flags] CID

Key export prints the key of one record the acting account may read, as
an age identity line (AGE-SECRET-KEY-1...). With the record's ciphertext
('blockmrs cat --raw CID') it decrypts with the stock age tool. Anyone
holding it can read that record, and only that record, for good: treat it
like the record itself. Run 'blockmrs key export --help' for the flags.

Example:
  blockmrs key export bafybeib... > record.key
  blockmrs cat --raw bafybeib... | age -d -i record.key > record.pdf
`

func runKey(ctx context.Context, args []string) error {
	return runNested(ctx, "key", keyHelp, args, subcommand{[]string{"export"}, runKeyExport})
}

func runKeyExport(ctx context.Context, args []string) error {
	f := newFlags("key export", "[flags] CID", `
Key export prints the key of one record the acting account may read, as
an age identity line (AGE-SECRET-KEY-1...). With the record's ciphertext
('blockmrs cat --raw CID') it decrypts with the stock age tool. Anyone
holding it can read that record, and only that record, for good.`, `
blockmrs key export bafybeib... > record.key
blockmrs cat --raw bafybeib... | age -d -i record.key > record.pdf`)
	f.withAccount()
	_, cids, err := f.parseCIDArgs(args, false)
	if err != nil {
		return err
	}
	c := cids[0]
	return f.withKeys(ctx, func(repo *keyshare.Repo, keys *keyshare.Keys) error {
		key, _, err := repo.RecordKey(ctx, keys, c)
		if err != nil {
			return err
		}
		if f.json {
			return f.printJSON(struct {
				CID string `json:"cid"`
				Key string `json:"key"`
			}{c.String(), key.String()})
		}
		fmt.Fprintln(f.out(), key.String())
		return nil
	})
}
