package main

import (
	"context"
	"fmt"

	"github.com/blockmrs/blockmrs/keyshare"
)

var gcCmd = &command{name: "gc", summary: "delete blocks no chain, fork evidence or record pin needs", run: runGC}

func runGC(ctx context.Context, args []string) error {
	f := newFlags("gc", "[flags]", `
Gc deletes every stored block that no chain head, fork evidence or pinned
record reaches (left over from interrupted adds, or imported and no longer
linked) and prints how many blocks and bytes it freed. Records added
here are pinned; chains are kept from their heads. The leftovers of an
add that was killed are also removed the next time the repo is opened.`, `
blockmrs gc`)
	if _, err := f.parseArgs(args, false); err != nil {
		return err
	}
	return f.withRepo(ctx, func(repo *keyshare.Repo) error {
		// Repo.GC, not Store().GC: chain heads are GC roots, not pins, so
		// the store alone would delete every chain.
		st, err := repo.GC(ctx)
		if err != nil {
			return err
		}
		// Opening the repo already swept what interrupted adds left.
		rec := repo.TakeRecovered()
		st.Removed += rec.Removed
		st.RemovedBytes += rec.RemovedBytes
		st.Interrupted += rec.Interrupted
		if f.json {
			return f.printJSON(struct {
				Removed      int   `json:"removed"`
				RemovedBytes int64 `json:"removed_bytes"`
				Kept         int   `json:"kept"`
				Interrupted  int   `json:"interrupted_adds"`
			}{st.Removed, st.RemovedBytes, st.Kept, st.Interrupted})
		}
		fmt.Fprintf(f.out(), "removed %d block(s), %d bytes freed; kept %d\n", st.Removed, st.RemovedBytes, st.Kept)
		if st.Interrupted > 0 {
			fmt.Fprintf(f.out(), "cleared %d interrupted add(s)\n", st.Interrupted)
		}
		return nil
	})
}
