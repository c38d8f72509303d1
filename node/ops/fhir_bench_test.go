package ops

import (
	"bytes"
	"context"
	"io"
	"runtime"
	"testing"

	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/protocol"
	"github.com/blockmrs/blockmrs/protocol/fhir/fhirtest"
)

// BenchmarkFHIRImport measures FHIRImport of a Synthea-shaped bundle of
// 1,111 resources into an empty repo (read, validate, store, seal, wrap,
// one chain commit), in process; BENCHMARKS.md has the command line's
// numbers (scripts/bench-fhir.sh).
func BenchmarkFHIRImport(b *testing.B) {
	ctx := context.Background()
	input := fhirtest.Synthea(1, 1111)
	b.SetBytes(int64(len(input)))
	b.ReportMetric(1111, "resources/op")
	for b.Loop() {
		b.StopTimer()
		r, err := keyshare.Open(ctx, b.TempDir(), keyshare.Options{Create: true})
		if err != nil {
			b.Fatal(err)
		}
		k, err := r.CreateAccount(ctx, "Pat", protocol.RolePatient, nil)
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if _, err := FHIRImport(ctx, r, k, FHIRImportRequest{}, bytes.NewReader(input), nil); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		r.Close()
		b.StartTimer()
	}
}

// importedRepo returns a repo (closed at the benchmark's end) with a
// patient's account holding the n resources of a Synthea-shaped bundle,
// one record each.
func importedRepo(b *testing.B, n int) (*keyshare.Repo, *keyshare.Keys) {
	ctx := context.Background()
	r, err := keyshare.Open(ctx, b.TempDir(), keyshare.Options{Create: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { r.Close() })
	k, err := r.CreateAccount(ctx, "Pat", protocol.RolePatient, nil)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := FHIRImport(ctx, r, k, FHIRImportRequest{}, bytes.NewReader(fhirtest.Synthea(1, n)), nil); err != nil {
		b.Fatal(err)
	}
	return r, k
}

// BenchmarkFHIRExport measures FHIRExport of 10,000 records.
func BenchmarkFHIRExport(b *testing.B) {
	ctx := context.Background()
	r, k := importedRepo(b, 10000)
	b.ReportMetric(10000, "records/op")
	for b.Loop() {
		if _, err := FHIRExport(ctx, r, k, FHIRExportRequest{}, io.Discard); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFHIRIndexFor measures what a re-import pays before reading its
// input: FHIRIndexFor over a repo holding 10,000 FHIR records of the
// subject (each sealed envelope opened). It reports the index's live
// size (heap in use with the index held, less without) besides the
// allocations.
func BenchmarkFHIRIndexFor(b *testing.B) {
	ctx := context.Background()
	r, k := importedRepo(b, 10000)
	// Once before timing: what the import left cached (and the index
	// drops) is not counted as the index's.
	if _, err := r.FHIRIndexFor(ctx, k, k.ID); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ReportMetric(10000, "records/op")
	var live int64
	for b.Loop() {
		before := heapInUse()
		ix, err := r.FHIRIndexFor(ctx, k, k.ID)
		if err != nil {
			b.Fatal(err)
		}
		if ix.Len() < 9000 {
			b.Fatalf("index holds %d resources, want about 10,000", ix.Len())
		}
		if after := heapInUse(); after > before {
			live = max(live, after-before)
		}
		runtime.KeepAlive(ix)
	}
	b.ReportMetric(float64(live)/(1<<20), "index-MiB")
}

// heapInUse returns the live heap after a collection.
func heapInUse() int64 {
	runtime.GC()
	return liveHeap()
}
