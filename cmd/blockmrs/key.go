package main

import (
	"context"
	"fmt"
	"os"
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
	if len(args) == 0 {
		return usagef("missing subcommand: export")
	}
	switch args[0] {
	case "export":
		return inSubcommand("key export", runKeyExport(ctx, args[1:]))
	case "-h", "-help", "--help":
		fmt.Fprint(os.Stdout, keyHelp)
		return errHelpShown
	}
	return usagef("unknown subcommand %q (want export)", truncate(args[0], 40))
}

func runKeyExport(ctx context.Context, args []string) (err error) {
	f := newFlags("key export", "[flags] CID", `
Key export prints the key of one record the acting account may read, as
an age identity line (AGE-SECRET-KEY-1...). With the record's ciphertext
('blockmrs cat --raw CID') it decrypts with the stock age tool. Anyone
holding it can read that record, and only that record, for good.`, `
blockmrs key export bafybeib... > record.key
blockmrs cat --raw bafybeib... | age -d -i record.key > record.pdf`)
	f.withAccount()
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
	repo, err := f.openRepo(ctx)
	if err != nil {
		return err
	}
	defer closeRepo(repo, &err)
	_, keys, err := f.unlockSelected(ctx, repo)
	if err != nil {
		return err
	}
	key, _, err := repo.RecordKey(ctx, keys, c)
	if err != nil {
		return err
	}
	if f.json {
		return printJSON(struct {
			CID string `json:"cid"`
			Key string `json:"key"`
		}{c.String(), key.String()})
	}
	fmt.Println(key.String())
	return nil
}
