package store

import (
	"context"
	"crypto/sha256"
	"io"
	"runtime"
	"sync"
	"testing"
	"time"
)

// heapPeak samples HeapInuse until stopped and reports the peak.
type heapPeak struct {
	stop chan struct{}
	done sync.WaitGroup
	peak uint64
}

func startHeapPeak() *heapPeak {
	h := &heapPeak{stop: make(chan struct{})}
	h.done.Add(1)
	go func() {
		defer h.done.Done()
		var ms runtime.MemStats
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for {
			runtime.ReadMemStats(&ms)
			h.peak = max(h.peak, ms.HeapInuse)
			select {
			case <-h.stop:
				return
			case <-tick.C:
			}
		}
	}()
	return h
}

func (h *heapPeak) Stop() uint64 {
	close(h.stop)
	h.done.Wait()
	return h.peak
}

func heapInuse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// TestAddMemoryIsFlat adds a 256 MiB record and reads it back, sampling
// the heap: the peak must stay far below the record's size. (Go's GC lets
// the heap grow to about twice the live data, and each 1 MiB chunk is a
// fresh allocation, so a few tens of MiB is expected; a leak of chunks
// would show as hundreds.)
func TestAddMemoryIsFlat(t *testing.T) {
	const size = 256 * mib // about 2.5 s, 5 s with -race
	const limit = 64 * mib
	s := openStore(t)
	ctx := context.Background()

	base := heapInuse()
	h := startHeapPeak()
	start := time.Now()
	added, err := s.Add(ctx, newFastReader(40, size))
	peak := h.Stop()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("Add %d MiB: %v, heap in use %d MiB before, peak %d MiB (+%d MiB)",
		size/mib, time.Since(start).Round(time.Millisecond), base/mib, peak/mib, (peak-base)/mib)
	if peak-base > limit {
		t.Fatalf("Add of %d MiB raised the heap by %d MiB (limit %d MiB)", size/mib, (peak-base)/mib, limit/mib)
	}

	want := sha256.New()
	if _, err := io.Copy(want, newFastReader(40, size)); err != nil {
		t.Fatal(err)
	}
	base = heapInuse()
	h = startHeapPeak()
	dr, err := s.Decrypt(ctx, added.CID, added.Key)
	if err != nil {
		t.Fatal(err)
	}
	got := sha256.New()
	n, err := io.Copy(got, dr)
	dr.Close()
	peak = h.Stop()
	if err != nil || n != size || string(got.Sum(nil)) != string(want.Sum(nil)) {
		t.Fatalf("read back %d bytes, err %v, same content %v", n, err, string(got.Sum(nil)) == string(want.Sum(nil)))
	}
	t.Logf("Decrypt %d MiB: heap peak +%d MiB", size/mib, (peak-base)/mib)
	if peak-base > limit {
		t.Fatalf("Decrypt of %d MiB raised the heap by %d MiB (limit %d MiB)", size/mib, (peak-base)/mib, limit/mib)
	}
}
