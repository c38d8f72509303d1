package main

import (
	"context"
	"fmt"
	"io"

	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/protocol"
)

var exportCmd = &command{name: "export", summary: "write the account's chain and records as a CAR file", run: runExport}

func runExport(ctx context.Context, args []string) error {
	f := newFlags("export", "[flags] FILE.car|-", `
Export writes the acting account's chain and every block it links (its
records' ciphertext, the chains of records others wrote about it) as a
CARv1 file rooted at the chain's head: all another repo needs to verify
the chain and read what it was granted ('blockmrs import'). It holds
ciphertext, signed entries and wrapped keys only, no plaintext or private
keys. With --for, only the records that account may read travel (the
chains stay whole, since they are needed to verify anything); such a CAR
imports into BlockMRS but is not a complete DAG for a stock IPFS node.`, `
blockmrs export alice.car
blockmrs export --for "Dr Jones" for-jones.car`)
	f.withAccount()
	forAcct := f.String("for", "", "include only the records `ACCOUNT` may read (NAME, ID or ID suffix)")
	pos, err := f.parseArgs(args, false, "FILE")
	if err != nil {
		return err
	}
	file := pos[0]
	if file == "-" && f.json {
		return usagef("--json and export to - both want stdout")
	}
	return f.withSelected(ctx, func(repo *keyshare.Repo, info keyshare.AccountInfo) error {
		var opts keyshare.ExportOptions
		if *forAcct != "" {
			to, err := resolveFlag(ctx, repo, "for", *forAcct)
			if err != nil {
				return err
			}
			opts.For = to.ID
		}
		var missing int
		n, err := f.writeOutput(file, func(w io.Writer) error {
			var err error
			missing, err = repo.ExportCAR(ctx, w, info.ID, opts)
			return err
		})
		if err != nil {
			return err // the command's name already says "export"
		}
		if file == "-" {
			return nil
		}
		if f.json {
			return f.printJSON(struct {
				Account protocol.AccountID `json:"account"`
				Head    string             `json:"head"`
				Seq     uint64             `json:"seq"`
				File    string             `json:"file"`
				Bytes   int64              `json:"bytes"`
				Missing int                `json:"missing_blocks"`
			}{info.ID, info.Head.String(), info.Seq, file, n, missing})
		}
		fmt.Fprintf(f.out(), "exported the chain of %s (seq %d) to %s, %d bytes\n", clean(label(info)), info.Seq, file, n)
		if missing > 0 {
			fmt.Fprintf(f.errOut(), "note: %d linked block(s) this repo never received (others' records) were left out; the CAR is a partial DAG\n", missing)
		}
		return nil
	})
}
