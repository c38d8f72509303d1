package chainsync

import (
	"errors"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/blockmrs/blockmrs/protocol"
)

// Pulls share one memory budget: while other pulls hold nearly all of
// it, a pull that alone would pass is refused with ErrPullBusy, stores
// nothing and gives back what it took; once they end, it passes. (Many
// announced heads, each its own pull, cost PullMemory together, not
// MaxPullBytes each.)
func TestPullsShareOneMemoryBudget(t *testing.T) {
	patient := newNode(t, "patient", protocol.RolePatient)
	clinic := newNode(t, "clinic", protocol.RoleClinician)
	// Other pulls hold all but 512 bytes, less than the patient's chain
	// will be.
	const left = 512
	others := int64(PullMemory - left)
	if !clinic.sync.pullMem.TryAcquire(others) {
		t.Fatal("the budget is in use before any pull")
	}
	meet(t, patient, clinic)
	rec := addRecord(t, patient, []byte("x"))
	for i := range 8 {
		if _, err := patient.repo.Hide(t.Context(), patient.keys, []cid.Cid{rec}, i%2 == 0); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := patient.repo.Grant(t.Context(), patient.keys, []cid.Cid{rec}, clinic.keys.ID, time.Time{}); err != nil {
		t.Fatal(err)
	}
	head, _ := headOf(t, patient.repo, patient.keys.ID)

	_, err := clinic.sync.Pull(t.Context(), patient.host.ID(), head)
	if !errors.Is(err, ErrPullBusy) {
		t.Fatalf("a pull over what is left of the budget: %v, want ErrPullBusy", err)
	}
	if held, err := clinic.sync.committed(t.Context(), head); err != nil || held {
		t.Fatalf("after a refused pull the clinic holds the head: %v %v", held, err)
	}
	// The refused pull (and the ones the announcements started) gave
	// back what they took.
	eventually(t, "the refused pulls release their part of the budget", func() bool {
		if !clinic.sync.pullMem.TryAcquire(left) {
			return false
		}
		clinic.sync.pullMem.Release(left)
		return true
	})

	clinic.sync.pullMem.Release(others)
	if _, err := clinic.sync.Pull(t.Context(), patient.host.ID(), head); err != nil {
		t.Fatalf("the same pull once the others ended: %v", err)
	}
	if held, err := clinic.sync.committed(t.Context(), head); err != nil || !held {
		t.Fatalf("after the pull the clinic does not hold the head: %v %v", held, err)
	}
}
