package ops

import (
	"context"
	"fmt"
	"time"

	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/protocol"
)

// Session is one open unlock session (keyshare.Sessions).
type Session struct {
	// Account is the unlocked account.
	Account protocol.AccountID `json:"account"`
	// IdleSeconds is how long the session stays open without use.
	IdleSeconds int64 `json:"idle_s"`
	// Opened and Expires are RFC 3339 times; Expires moves on with use.
	Opened  time.Time `json:"opened"`
	Expires time.Time `json:"expires"`
}

// SessionList is the open sessions.
type SessionList struct {
	Sessions []Session `json:"sessions"`
}

// UnlockRequest asks to keep a local account unlocked for a session.
type UnlockRequest struct {
	// Account is a local account's ID.
	Account protocol.AccountID `json:"account"`
	// Passphrase is the account's passphrase ("" for keys stored without
	// one).
	Passphrase string `json:"passphrase"`
	// IdleSeconds is the idle time (0: 15 minutes; at most 24 hours).
	IdleSeconds int64 `json:"idle_s,omitempty"`
}

// LockRequest asks to end a session.
type LockRequest struct {
	// Account is the account to lock; "" locks every session.
	Account protocol.AccountID `json:"account,omitempty"`
}

// Locked says how many sessions a lock ended.
type Locked struct {
	// Locked counts the sessions that were open and are now ended.
	Locked int `json:"locked"`
}

func sessionOf(s keyshare.Session) Session {
	return Session{Account: s.Account, IdleSeconds: int64(s.Idle / time.Second), Opened: s.Opened.UTC(), Expires: s.Expires.UTC()}
}

// Sessions lists the open sessions.
func Sessions(ss *keyshare.Sessions) SessionList {
	out := SessionList{Sessions: []Session{}}
	for _, se := range ss.List() {
		out.Sessions = append(out.Sessions, sessionOf(se))
	}
	return out
}

// Unlock opens a session (see keyshare.Sessions.Unlock). A wrong
// passphrase is keyshare.ErrWrongPassphrase; a request that ends while it
// waits out earlier wrong ones is the context's error.
func Unlock(ctx context.Context, ss *keyshare.Sessions, req UnlockRequest) (Session, error) {
	if _, err := protocol.ParseAccountID(string(req.Account)); err != nil {
		return Session{}, fmt.Errorf("account: %w: %w", ErrInvalid, err)
	}
	if req.IdleSeconds < 0 || req.IdleSeconds > int64(keyshare.MaxIdle/time.Second) {
		return Session{}, fmt.Errorf("%w: idle_s must be 0 (15 minutes) to %d", ErrInvalid, int64(keyshare.MaxIdle/time.Second))
	}
	pass := []byte(req.Passphrase)
	defer clear(pass)
	se, err := ss.Unlock(ctx, req.Account, pass, time.Duration(req.IdleSeconds)*time.Second)
	if err != nil {
		return Session{}, err
	}
	return sessionOf(se), nil
}

// Lock ends req.Account's session, or every session.
func Lock(ss *keyshare.Sessions, req LockRequest) Locked {
	if req.Account == "" {
		return Locked{Locked: ss.LockAll()}
	}
	if ss.Lock(req.Account) {
		return Locked{Locked: 1}
	}
	return Locked{}
}
