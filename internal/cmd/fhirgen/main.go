// Command fhirgen writes Synthea-shaped FHIR R4 test data
// (protocol/fhir/fhirtest) for benchmarks: a transaction Bundle of -n
// resources, or of at least -mb MiB, on stdout; with -split FOLDER, each
// resource as a file of its own there instead (for one-by-one adds).
// With -rich the resources carry what fuller exports do besides
// (fhirtest.SyntheaRich: narratives, reference ranges): 1,111 of them
// make 3.9 MB, the size of a real Synthea export of that many.
// scripts/bench-fhir.sh runs it.
//
// Usage:
//
//	fhirgen [-seed N] [-rich] (-n RESOURCES | -mb MIB) [-split FOLDER]
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/blockmrs/blockmrs/protocol/fhir/fhirtest"
)

func main() {
	seed := flag.Int64("seed", 1, "the generator's `SEED`")
	n := flag.Int("n", 0, "the number of `RESOURCES`")
	mb := flag.Int("mb", 0, "instead of -n: at least `MIB` MiB of Bundle")
	split := flag.String("split", "", "write each resource to a file in `FOLDER`")
	rich := flag.Bool("rich", false, "narratives and reference ranges, as fuller exports have")
	flag.Parse()
	bundle, entries := fhirtest.Synthea, fhirtest.SyntheaEntries
	if *rich {
		bundle, entries = fhirtest.SyntheaRich, fhirtest.SyntheaRichEntries
	}
	if err := run(bundle, entries, *seed, *n, *mb, *split); err != nil {
		fmt.Fprintln(os.Stderr, "fhirgen:", err)
		os.Exit(1)
	}
}

// run writes the output: bundle and entries generate it.
func run(bundle func(int64, int) []byte, entries func(int64, int) []fhirtest.Entry, seed int64, n, mb int, split string) error {
	if (n > 0) == (mb > 0) {
		return fmt.Errorf("give -n or -mb")
	}
	if mb > 0 {
		// Grow n until the Bundle is big enough (resources average about
		// 2 KB).
		n = mb << 20 / 2048
		for {
			if b := bundle(seed, n); len(b) >= mb<<20 {
				_, err := os.Stdout.Write(b)
				return err
			}
			n += n / 10
		}
	}
	if split == "" {
		_, err := os.Stdout.Write(bundle(seed, n))
		return err
	}
	for i, e := range entries(seed, n) {
		if err := os.WriteFile(filepath.Join(split, fmt.Sprintf("%05d-%s.json", i, e.ResourceType)), e.Resource, 0o644); err != nil {
			return err
		}
	}
	return nil
}
