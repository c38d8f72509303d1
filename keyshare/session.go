package keyshare

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/blockmrs/blockmrs/protocol"
)

// Unlock sessions. A daemon holds an account's keys unlocked in memory
// for a session, so that commands and the web app acting as that account
// pay no scrypt unlock per request (about 1 s and 256 MiB each). A session
// ends after its idle time without use (automatic logoff), on Lock, and
// when the daemon stops (Close); ending it wipes the signing key from
// memory, and the session's cache of opened envelopes (opened.go). Keys
// are never written anywhere unencrypted. Wrong passphrases are counted
// per account and each one after the first makes the next attempt wait
// longer (1 s, 2 s, 4 s … up to MaxUnlockDelay), so guessing
// through the API is slow even before scrypt's own cost.

// DefaultIdle is a session's idle time unless one is given: HIPAA's
// automatic logoff.
const DefaultIdle = 15 * time.Minute

// MaxIdle bounds a session's idle time.
const MaxIdle = 24 * time.Hour

// MaxUnlockDelay bounds the wait wrong passphrases impose.
const MaxUnlockDelay = time.Minute

// ErrNoSession is returned by Sessions.Keys for an account with no open
// session.
var ErrNoSession = errors.New("no unlocked session for this account (run 'blockmrs unlock')")

// Session describes an open session.
type Session struct {
	Account protocol.AccountID `json:"account"`
	// Idle is how long the session stays open without use; Expires is
	// when it ends if unused from now.
	Idle    time.Duration `json:"idle_ns"`
	Opened  time.Time     `json:"opened"`
	Expires time.Time     `json:"expires"`
}

// Sessions holds the open sessions of one repo. It is safe for concurrent
// use.
type Sessions struct {
	repo  *Repo
	clock func() time.Time

	mu       sync.Mutex
	open     map[protocol.AccountID]*session
	failures map[protocol.AccountID]*failures
	closed   bool
}

type session struct {
	keys   *Keys
	idle   time.Duration
	opened time.Time
	last   time.Time
	timer  *time.Timer
}

type failures struct {
	n         int
	notBefore time.Time
}

// NewSessions returns an empty session store for repo.
func NewSessions(repo *Repo) *Sessions {
	return &Sessions{repo: repo, clock: time.Now, open: map[protocol.AccountID]*session{}, failures: map[protocol.AccountID]*failures{}}
}

// Unlock checks passphrase against account id's key file and opens a
// session that ends after idle without use (0: DefaultIdle). An open
// session of the account is replaced. A wrong passphrase is counted, and
// the account's next attempt first waits (honouring ctx) for a delay that
// doubles with every wrong one.
func (s *Sessions) Unlock(ctx context.Context, id protocol.AccountID, passphrase []byte, idle time.Duration) (Session, error) {
	if idle == 0 {
		idle = DefaultIdle
	}
	if idle < 0 || idle > MaxIdle {
		return Session{}, fmt.Errorf("idle time must be between 1 s and %s", MaxIdle)
	}
	if err := s.waitTurn(ctx, id); err != nil {
		return Session{}, err
	}
	k, err := s.repo.Unlock(ctx, id, passphrase)
	if err != nil {
		if errors.Is(err, ErrWrongPassphrase) {
			s.failed(id)
		}
		return Session{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		k.Wipe()
		return Session{}, errors.New("sessions are closed (the daemon is stopping)")
	}
	delete(s.failures, id)
	if old := s.open[id]; old != nil {
		s.endLocked(id, old)
	}
	k.opened = newOpenedCache()
	now := s.clock()
	se := &session{keys: k, idle: idle, opened: now, last: now}
	se.timer = time.AfterFunc(idle, func() { s.expire(id, se) })
	s.open[id] = se
	return se.info(id), nil
}

// waitTurn waits out the delay earlier wrong passphrases for id imposed.
func (s *Sessions) waitTurn(ctx context.Context, id protocol.AccountID) error {
	s.mu.Lock()
	f := s.failures[id]
	var wait time.Duration
	if f != nil {
		wait = f.notBefore.Sub(s.clock())
	}
	s.mu.Unlock()
	if wait <= 0 {
		return nil
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// failed counts a wrong passphrase for id.
func (s *Sessions) failed(id protocol.AccountID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.failures[id]
	if f == nil {
		f = &failures{}
		s.failures[id] = f
	}
	f.n++
	f.notBefore = s.clock().Add(UnlockDelay(f.n))
}

// UnlockDelay is the wait imposed before the next attempt after n wrong
// passphrases in a row: none after the first, then 1 s, doubling, at most
// MaxUnlockDelay.
func UnlockDelay(n int) time.Duration {
	if n <= 1 {
		return 0
	}
	d := time.Second << min(n-2, 16)
	return min(d, MaxUnlockDelay)
}

// Failures returns how many wrong passphrases in a row were given for id.
func (s *Sessions) Failures(id protocol.AccountID) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f := s.failures[id]; f != nil {
		return f.n
	}
	return 0
}

// Keys returns a copy of the unlocked keys of id's session and counts the
// use (the idle time starts again), or ErrNoSession. The copy is the
// caller's: a Lock while it is in use does not pull it from under a
// command that is signing; the caller drops (or wipes) it when done.
func (s *Sessions) Keys(id protocol.AccountID) (*Keys, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	se := s.open[id]
	if se == nil {
		return nil, fmt.Errorf("%s: %w", id, ErrNoSession)
	}
	se.last = s.clock()
	se.timer.Reset(se.idle)
	return se.keys.clone(), nil
}

// Background returns a copy of the keys of id's session for work the
// node does on its own (acknowledging records that arrived), without
// counting as use: the idle time runs on. ErrNoSession when none is open.
func (s *Sessions) Background(id protocol.AccountID) (*Keys, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	se := s.open[id]
	if se == nil {
		return nil, fmt.Errorf("%s: %w", id, ErrNoSession)
	}
	return se.keys.clone(), nil
}

// Lock ends id's session and reports whether one was open.
func (s *Sessions) Lock(id protocol.AccountID) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	se := s.open[id]
	if se != nil {
		s.endLocked(id, se)
	}
	return se != nil
}

// LockAll ends every session and returns how many were open.
func (s *Sessions) LockAll() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := len(s.open)
	for id, se := range s.open {
		s.endLocked(id, se)
	}
	return n
}

// Close ends every session; later unlocks fail.
func (s *Sessions) Close() {
	s.LockAll()
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
}

// List returns the open sessions, by account.
func (s *Sessions) List() []Session {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []Session{}
	for id, se := range s.open {
		out = append(out, se.info(id))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Account < out[j].Account })
	return out
}

// expire ends se when its timer fires, unless it was used or replaced
// since.
func (s *Sessions) expire(id protocol.AccountID, se *session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.open[id] != se {
		return
	}
	if left := se.idle - s.clock().Sub(se.last); left > 0 {
		se.timer.Reset(left) // used since the timer was set
		return
	}
	s.endLocked(id, se)
}

// endLocked removes and wipes a session; s.mu is held.
func (s *Sessions) endLocked(id protocol.AccountID, se *session) {
	se.timer.Stop()
	delete(s.open, id)
	se.keys.opened.drop()
	se.keys.Wipe()
}

func (se *session) info(id protocol.AccountID) Session {
	return Session{Account: id, Idle: se.idle, Opened: se.opened, Expires: se.last.Add(se.idle)}
}
