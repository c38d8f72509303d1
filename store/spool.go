package store

import (
	"fmt"
	"os"
	"sync"
)

// A Spool keeps numbered byte strings in a temporary file of the store
// instead of memory, for work that produces many of them out of order and
// reads them back in order (a batch add's chain entries). Put and Get are
// safe for concurrent use. Close removes the file; the next Open removes
// one a crash left. The file is not encrypted: callers put in it only what
// may sit in the repo folder as it is (ciphertext, public keys).
type Spool struct {
	mu     sync.Mutex
	f      *os.File
	size   int64
	at     map[int]spoolSpan
	closed bool
}

type spoolSpan struct{ off, n int64 }

// NewSpool creates an empty spool in the store's temporary folder.
func (s *Store) NewSpool() (*Spool, error) {
	leave, err := s.enter()
	if err != nil {
		return nil, err
	}
	defer leave()
	f, err := os.CreateTemp(s.tmpDir, "spool-*")
	if err != nil {
		return nil, fmt.Errorf("store: spool: %w", err)
	}
	return &Spool{f: f, at: map[int]spoolSpan{}}, nil
}

// Put stores data as number i, replacing what i held.
func (sp *Spool) Put(i int, data []byte) error {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	if sp.closed {
		return fmt.Errorf("store: spool: %w", os.ErrClosed)
	}
	if _, err := sp.f.WriteAt(data, sp.size); err != nil {
		return fmt.Errorf("store: spool: %w", err)
	}
	sp.at[i] = spoolSpan{off: sp.size, n: int64(len(data))}
	sp.size += int64(len(data))
	return nil
}

// Get returns a copy of number i's data; ok is false when nothing was put
// as i.
func (sp *Spool) Get(i int) (data []byte, ok bool, err error) {
	sp.mu.Lock()
	span, ok := sp.at[i]
	closed := sp.closed
	sp.mu.Unlock()
	if closed {
		return nil, false, fmt.Errorf("store: spool: %w", os.ErrClosed)
	}
	if !ok {
		return nil, false, nil
	}
	data = make([]byte, span.n)
	if _, err := sp.f.ReadAt(data, span.off); err != nil {
		return nil, false, fmt.Errorf("store: spool: %w", err)
	}
	return data, true, nil
}

// Close removes the spool's file. Close is idempotent.
func (sp *Spool) Close() error {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	if sp.closed {
		return nil
	}
	sp.closed = true
	sp.at = nil
	err := sp.f.Close()
	if rerr := os.Remove(sp.f.Name()); err == nil {
		err = rerr
	}
	if err != nil {
		return fmt.Errorf("store: spool: %w", err)
	}
	return nil
}
