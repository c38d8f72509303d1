package web

import (
	"testing"
	"time"
)

// A code opens one session, once, within CodeTTL; a session ends after
// SessionIdle without use, and each use starts the idle time again.
func TestLogins(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	l := NewLogins(4102)
	l.Now = func() time.Time { return now }
	if l.CookieName() != "blockmrs_session_4102" {
		t.Fatalf("cookie name %q", l.CookieName())
	}

	c, exp := l.NewCode()
	if !exp.Equal(now.Add(CodeTTL)) || len(c) < 40 {
		t.Fatalf("code %q expires %v", c, exp)
	}
	id, st := l.Redeem(c)
	if st != CodeOK || len(id) < 40 {
		t.Fatalf("redeem: %q %v", id, st)
	}
	if _, st := l.Redeem(c); st != CodeUsed {
		t.Fatalf("second use: %v", st)
	}
	if _, st := l.Redeem("nope"); st != CodeUnknown {
		t.Fatalf("unknown: %v", st)
	}
	if _, st := l.Redeem(""); st != CodeUnknown {
		t.Fatalf("empty: %v", st)
	}

	late, _ := l.NewCode()
	now = now.Add(CodeTTL + time.Second)
	if _, st := l.Redeem(late); st != CodeExpired {
		t.Fatalf("late: %v", st)
	}

	if !l.Check(id) || l.Check("") || l.Check(id+"x") {
		t.Fatal("check")
	}
	now = now.Add(SessionIdle - time.Second)
	if !l.Check(id) { // used: the idle time starts again
		t.Fatal("session ended before its idle time")
	}
	now = now.Add(SessionIdle - time.Second)
	if !l.Check(id) {
		t.Fatal("use did not extend the session")
	}
	now = now.Add(SessionIdle + time.Second)
	if l.Check(id) || l.Sessions() != 0 {
		t.Fatal("idle session still open")
	}
}

// Codes and sessions are bounded; the oldest go first.
func TestLoginsBounded(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	l := NewLogins(1)
	l.Now = func() time.Time { return now }
	first, _ := l.NewCode()
	var ids []string
	for range MaxCodes {
		now = now.Add(time.Millisecond)
		c, _ := l.NewCode()
		id, st := l.Redeem(c)
		if st != CodeOK {
			t.Fatal(st)
		}
		ids = append(ids, id)
	}
	if _, st := l.Redeem(first); st != CodeUnknown {
		t.Fatalf("oldest code kept: %v", st)
	}
	now = now.Add(time.Millisecond)
	c, _ := l.NewCode()
	if _, st := l.Redeem(c); st != CodeOK {
		t.Fatal(st)
	}
	if l.Check(ids[0]) || !l.Check(ids[1]) || l.Sessions() != MaxSessions {
		t.Fatalf("sessions: %d", l.Sessions())
	}
}
