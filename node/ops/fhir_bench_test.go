package ops

import (
	"bytes"
	"context"
	"io"
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

// BenchmarkFHIRExport measures FHIRExport of 10,000 records.
func BenchmarkFHIRExport(b *testing.B) {
	ctx := context.Background()
	r, err := keyshare.Open(ctx, b.TempDir(), keyshare.Options{Create: true})
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	k, err := r.CreateAccount(ctx, "Pat", protocol.RolePatient, nil)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := FHIRImport(ctx, r, k, FHIRImportRequest{}, bytes.NewReader(fhirtest.Synthea(1, 10000)), nil); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(10000, "records/op")
	for b.Loop() {
		if _, err := FHIRExport(ctx, r, k, FHIRExportRequest{}, io.Discard); err != nil {
			b.Fatal(err)
		}
	}
}
