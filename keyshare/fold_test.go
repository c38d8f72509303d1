package keyshare

import (
	"testing"
	"time"
)

// standings folds a chain's scope events in chain order, whatever order
// they are given in: the latest grant per grantee and scope, ended by an
// unscope after it, revived by a grant after that; an end before any
// grant ends nothing.
func TestStandingsFold(t *testing.T) {
	ev := func(seq uint64, to string, end bool, expires int64) scopeEvent {
		return scopeEvent{To: testAccount(to[0]), Scope: "patient/*", End: end, Expires: expires, Via: ref(pat, seq)}
	}
	later := tNow.Add(time.Hour).UnixMilli()
	evs := []scopeEvent{
		ev(7, "c", false, 0),     // c: granted again after its end
		ev(2, "a", false, 0),     // a: granted…
		ev(1, "b", true, 0),      // b: an end before any grant
		ev(3, "a", true, 0),      // …ended
		ev(4, "a", true, 0),      // …ended again
		ev(5, "c", false, later), // c: granted, expiring later
		ev(6, "c", true, 0),      // c: ended
		ev(8, "d", false, tNow.UnixMilli()),
	}
	got := standings(pat, evs, tNow)
	if len(got) != 3 {
		t.Fatalf("standings: %+v, want a, c and d (b's end grants nothing)", got)
	}
	// newest first: d (8), c (7), a (2)
	d, c, a := got[0], got[1], got[2]
	if d.To != testAccount('d') || d.Live || !d.Expires.Equal(tNow) || d.Ended != nil {
		t.Errorf("d, expiring exactly now: %+v", d)
	}
	if c.To != testAccount('c') || !c.Live || c.Via != ref(pat, 7) || c.Ended != nil || !c.Expires.IsZero() {
		t.Errorf("c, granted again after its end: %+v", c)
	}
	if a.To != testAccount('a') || a.Live || a.Via != ref(pat, 2) || a.Ended == nil || *a.Ended != ref(pat, 4) {
		t.Errorf("a, ended twice: %+v", a)
	}
}
