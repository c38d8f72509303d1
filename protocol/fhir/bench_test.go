package fhir

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"sync/atomic"
	"syscall"
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
	cpu0 := cpuTime(b)
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
	// CPU time (user and system, all threads) per resource: what the
	// rate would be on idle cores, whatever else the machine runs.
	b.ReportMetric(float64((cpuTime(b)-cpu0).Microseconds())/float64(total), "cpu-µs/resource")
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkReadResourcesMemory streams Synthea-shaped Bundles of about
// 5 and 50 MB from a file and reports the peak of heap in use above what
// was in use before (sampled every millisecond; it counts garbage not
// yet swept, so it follows GOGC): the reader's memory, which should not
// grow with the input.
func BenchmarkReadResourcesMemory(b *testing.B) {
	for _, n := range []int{2350, 23500} {
		b.Run(fmt.Sprintf("%dresources", n), func(b *testing.B) { benchMemory(b, n) })
	}
}

func benchMemory(b *testing.B, n int) {
	path := filepath.Join(b.TempDir(), "bundle.json")
	data := fhirtest.Synthea(1, n)
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
