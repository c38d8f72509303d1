package ops

import (
	"runtime/debug"
	"testing"
)

// TestImportMemoryLimit: an import sets a soft memory limit above the
// live heap, a second import running at once keeps it, and the process's
// own limit is back when the last one ends.
func TestImportMemoryLimit(t *testing.T) {
	const own = 1 << 40
	prev := debug.SetMemoryLimit(own)
	t.Cleanup(func() { debug.SetMemoryLimit(prev) })

	end1 := limitMemory()
	set := debug.SetMemoryLimit(-1)
	if set >= own || set < liveHeap()+importHeadroom/2 {
		t.Fatalf("limit during an import %d: want under the process's %d and above the live heap %d", set, int64(own), liveHeap())
	}
	end2 := limitMemory()
	raiseMemoryLimit()
	if got := debug.SetMemoryLimit(-1); got < set || got >= own {
		t.Fatalf("limit with two imports %d, was %d", got, set)
	}
	end1()
	if got := debug.SetMemoryLimit(-1); got == own {
		t.Fatal("the first import's end restored the limit while another runs")
	}
	end2()
	if got := debug.SetMemoryLimit(-1); got != own {
		t.Fatalf("limit after the imports %d, want the process's %d back", got, int64(own))
	}

	// A process limit under the live heap plus headroom is not raised.
	low := liveHeap() + importHeadroom/4
	debug.SetMemoryLimit(low)
	end := limitMemory()
	if got := debug.SetMemoryLimit(-1); got != low {
		t.Fatalf("limit %d during an import, over the process's own %d", got, low)
	}
	end()
}
