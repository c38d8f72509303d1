package fhir

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"sync/atomic"
	"testing"
	"time"

	"github.com/blockmrs/blockmrs/protocol/fhir/fhirtest"
)

// BenchmarkReadResources reads and validates a 1,111-resource
// Synthea-shaped transaction Bundle (the bundle has that many
// resources); run it with -cpu 1,2 to see what the parallel validation
// gives.
func BenchmarkReadResources(b *testing.B) {
	data := fhirtest.Synthea(1, 1111)
	if _, _, err := codecs(); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	total := 0
	for b.Loop() {
		err := ReadResources(context.Background(), bytes.NewReader(data), func(*Resource) error {
			total++
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(total)/b.Elapsed().Seconds(), "resources/s")
}

// BenchmarkReadResources50MB streams a Synthea-shaped Bundle of about
// 50 MB from a file and reports the peak of live heap above what was
// live before (sampled every millisecond): the reader's memory, which
// should not grow with the input.
func BenchmarkReadResources50MB(b *testing.B) {
	path := filepath.Join(b.TempDir(), "bundle.json")
	data := fhirtest.Synthea(1, 23500)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		b.Fatal(err)
	}
	size := int64(len(data))
	data = nil
	if _, _, err := codecs(); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(size)
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	live := func() int64 {
		metrics.Read(sample)
		return int64(sample[0].Value.Uint64())
	}
	var peak atomic.Int64
	for b.Loop() {
		runtime.GC()
		base := live()
		stop := make(chan struct{})
		done := make(chan struct{})
		go func() {
			defer close(done)
			t := time.NewTicker(time.Millisecond)
			defer t.Stop()
			for {
				select {
				case <-stop:
					return
				case <-t.C:
					if d := live() - base; d > peak.Load() {
						peak.Store(d)
					}
				}
			}
		}()
		f, err := os.Open(path)
		if err != nil {
			b.Fatal(err)
		}
		err = ReadResources(context.Background(), f, func(*Resource) error { return nil })
		f.Close()
		close(stop)
		<-done
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(peak.Load())/(1<<20), "peak-heap-MiB")
	b.ReportMetric(float64(size)/(1<<20), "input-MiB")
}
