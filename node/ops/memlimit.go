package ops

import (
	"runtime/debug"
	"runtime/metrics"
	"sync"
)

// A big import sets a soft memory limit (runtime/debug.SetMemoryLimit)
// while it runs: the live heap it measures, plus importHeadroom. Go's
// collector otherwise lets the heap reach twice the live data, and a
// commit's short-lived garbage (blocks signed, facts ingested) pushes it
// there; under the limit the collector runs earlier instead. The limit
// follows the live heap as the import goes (memLimit.raise), so it never
// sits at the live data (which would make the collector run without end:
// Go caps that at half the CPU anyway). The process's limit is restored
// when the last import running ends. BENCHMARKS ("A soft memory limit")
// has what it costs and buys.

// importHeadroom is what the limit allows above the live heap.
const importHeadroom = 48 << 20

// raiseEvery is how many resources an import reads between two raises of
// the limit.
const raiseEvery = 2048

// memLimit is the limit the imports running share.
var memLimit struct {
	mu      sync.Mutex
	running int
	prev    int64 // the process's limit before the first import
	set     int64 // the limit now set
}

// liveHeap returns the live heap as the last collection measured it.
func liveHeap() int64 {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return int64(s[0].Value.Uint64())
}

// limitMemory sets the import limit (or raises the one an import running
// set) and returns the function that ends it.
func limitMemory() (end func()) {
	memLimit.mu.Lock()
	defer memLimit.mu.Unlock()
	if memLimit.running == 0 {
		memLimit.prev = debug.SetMemoryLimit(-1)
		memLimit.set = 0
	}
	memLimit.running++
	raiseMemoryLimitLocked()
	return func() {
		memLimit.mu.Lock()
		defer memLimit.mu.Unlock()
		memLimit.running--
		if memLimit.running == 0 {
			debug.SetMemoryLimit(memLimit.prev)
		}
	}
}

// raiseMemoryLimit moves the limit up to the live heap plus
// importHeadroom, if that is higher than the limit set (it never lowers
// it, and never sets one above the process's own).
func raiseMemoryLimit() {
	memLimit.mu.Lock()
	defer memLimit.mu.Unlock()
	if memLimit.running > 0 {
		raiseMemoryLimitLocked()
	}
}

func raiseMemoryLimitLocked() {
	want := min(liveHeap()+importHeadroom, memLimit.prev)
	if want > memLimit.set {
		memLimit.set = want
		debug.SetMemoryLimit(want)
	}
}
