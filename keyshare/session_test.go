package keyshare

import (
	"context"
	"crypto/ed25519"
	"errors"
	"testing"
	"time"

	"github.com/blockmrs/blockmrs/protocol"
)

func TestSessionsKeysLockAndIdle(t *testing.T) {
	ctx := context.Background()
	p := newParty(t, "Pat", protocol.RolePatient) // no passphrase: no scrypt
	s := NewSessions(p.repo)
	defer s.Close()
	if _, err := s.Keys(p.keys.ID); !errors.Is(err, ErrNoSession) {
		t.Fatalf("keys before unlock: %v", err)
	}
	if _, err := s.Unlock(ctx, p.keys.ID, nil, MaxIdle+time.Second); err == nil {
		t.Fatal("an idle time over the maximum was accepted")
	}
	info, err := s.Unlock(ctx, p.keys.ID, nil, 0)
	if err != nil || info.Idle != DefaultIdle || len(s.List()) != 1 {
		t.Fatalf("unlock: %+v %v %v", info, err, s.List())
	}
	k, err := s.Keys(p.keys.ID)
	if err != nil || k.ID != p.keys.ID {
		t.Fatalf("keys: %v %v", k, err)
	}
	// The keys handed out are the caller's: locking wipes the session's
	// copy, not one a command is signing with.
	if !s.Lock(p.keys.ID) || s.Lock(p.keys.ID) {
		t.Fatal("lock did not report the open session once")
	}
	if _, err := s.Keys(p.keys.ID); !errors.Is(err, ErrNoSession) {
		t.Fatalf("keys after lock: %v", err)
	}
	sig := ed25519.Sign(k.Sign, []byte("m"))
	if !ed25519.Verify(k.Public(), []byte("m"), sig) || k.ID != protocol.AccountIDFromKey(k.Public()) {
		t.Fatal("the keys handed out were wiped with the session")
	}

	// A session unused for its idle time locks itself; use restarts it.
	if _, err := s.Unlock(ctx, p.keys.ID, nil, 300*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		time.Sleep(100 * time.Millisecond)
		if _, err := s.Keys(p.keys.ID); err != nil {
			t.Fatalf("a session in use locked itself: %v", err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(s.List()) != 0 { // List does not count as use

		if time.Now().After(deadline) {
			t.Fatal("an idle session did not lock itself")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := s.Keys(p.keys.ID); !errors.Is(err, ErrNoSession) {
		t.Fatalf("keys after the idle time: %v", err)
	}
	// Close ends everything and refuses new sessions.
	if _, err := s.Unlock(ctx, p.keys.ID, nil, 0); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if len(s.List()) != 0 {
		t.Fatal("close left sessions open")
	}
	if _, err := s.Unlock(ctx, p.keys.ID, nil, 0); err == nil {
		t.Fatal("unlock after close succeeded")
	}
}

func TestSessionsWrongPassphrasesAreCountedAndSlowed(t *testing.T) {
	ctx := context.Background()
	r, err := Open(ctx, t.TempDir(), Options{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	k, err := r.CreateAccount(ctx, "Pat", protocol.RolePatient, []byte("right"))
	if err != nil {
		t.Fatal(err)
	}
	s := NewSessions(r)
	defer s.Close()
	for i := 1; i <= 2; i++ {
		if _, err := s.Unlock(ctx, k.ID, []byte("wrong"), 0); !errors.Is(err, ErrWrongPassphrase) {
			t.Fatalf("wrong passphrase %d: %v", i, err)
		}
		if s.Failures(k.ID) != i {
			t.Fatalf("failures = %d, want %d", s.Failures(k.ID), i)
		}
	}
	// After two, the next attempt must wait a second: one that cannot
	// wait that long gives up without trying the passphrase.
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if _, err := s.Unlock(short, k.ID, []byte("right"), 0); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("attempt inside the delay: %v", err)
	}
	if s.Failures(k.ID) != 2 || len(s.List()) != 0 {
		t.Fatal("an attempt inside the delay was tried")
	}
	if got := []time.Duration{UnlockDelay(1), UnlockDelay(2), UnlockDelay(3), UnlockDelay(30)}; got[0] != 0 || got[1] != time.Second || got[2] != 2*time.Second || got[3] != MaxUnlockDelay {
		t.Fatalf("delays %v", got)
	}
	// The right passphrase, once the delay is over, opens a session and
	// clears the count.
	if _, err := s.Unlock(ctx, k.ID, []byte("right"), 0); err != nil {
		t.Fatal(err)
	}
	if s.Failures(k.ID) != 0 {
		t.Fatal("a successful unlock left the failure count")
	}
	if got, err := s.Keys(k.ID); err != nil || got.ID != k.ID {
		t.Fatalf("keys: %v", err)
	}
}
