package keyshare

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"sync"

	"filippo.io/age"

	"github.com/blockmrs/blockmrs/protocol"
)

// openedCache keeps, for one unlocked session, what opening a record's
// claim decrypted: the record key unwrapped from the account's wrapped key
// and the envelope unsealed with it and parsed. Listing records opens
// every one, and each opening is three X25519 operations (about 0.1 to
// 0.3 ms); with the cache a session pays them once per record, not once
// per list.
//
// An entry is keyed by the exact ciphertexts it was decrypted from (the
// wrapped key and the sealed envelope) and holds only what they decrypt
// to: it is a memo of a pure function of the session's age identity and
// those bytes. Nothing about access is cached: whether the account may
// read the record, under which claim, and whether the envelope agrees
// with the signed entry are decided again on every opening (openClaim),
// so a revocation, an expiry or a new claim takes effect at once, and a
// changed key or envelope is simply another entry.
//
// The cache belongs to the session: it is dropped, and closed to new
// entries, when the session ends (lock, idle time, daemon stop), with the
// session's keys. SECURITY.md says what it means to hold these plaintexts
// in the daemon's memory.
type openedCache struct {
	mu     sync.Mutex
	m      map[[sha256.Size]byte]*opened
	closed bool
}

// opened is one cache entry: a record key and its envelope. Entries are
// never changed once stored.
type opened struct {
	key *age.X25519Identity
	env protocol.Envelope
	// author and subject are env's Author and Subject as account IDs.
	author, subject protocol.AccountID
}

// envelope returns a copy of the envelope, the caller's to change.
func (o *opened) envelope() *protocol.Envelope {
	env := o.env
	env.Author = bytes.Clone(env.Author)
	env.Subject = bytes.Clone(env.Subject)
	if env.Supersedes != nil {
		l := *env.Supersedes
		env.Supersedes = &l
	}
	return &env
}

// maxOpened bounds the entries of one session's cache (an entry is well
// under a kilobyte); a full cache drops half of them, at random.
const maxOpened = 1 << 17

func newOpenedCache() *openedCache {
	return &openedCache{m: map[[sha256.Size]byte]*opened{}}
}

func openedKey(wrapped, meta []byte) [sha256.Size]byte {
	h := sha256.New()
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(wrapped)))
	h.Write(n[:])
	h.Write(wrapped)
	h.Write(meta)
	var out [sha256.Size]byte
	h.Sum(out[:0])
	return out
}

func (c *openedCache) get(k [sha256.Size]byte) (*opened, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	o, ok := c.m[k]
	return o, ok
}

func (c *openedCache) put(k [sha256.Size]byte, o *opened) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	if len(c.m) >= maxOpened {
		drop := len(c.m) / 2
		for k := range c.m {
			if drop == 0 {
				break
			}
			delete(c.m, k)
			drop--
		}
	}
	c.m[k] = o
}

// drop empties the cache and refuses later entries (a command still
// holding a copy of the session's keys adds nothing after the session
// ended). Like the account's age identity, the record keys and the
// envelopes' strings cannot be overwritten in Go: dropping them is what
// can be done.
func (c *openedCache) drop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.m = nil
	c.closed = true
}

// len returns the number of entries.
func (c *openedCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}

// openEnvelope unwraps a record key wrapped for k and unseals and parses
// the record's envelope (meta) with it, through k's session cache when k
// has one. The entry returned is shared: the caller only reads it.
func (k *Keys) openEnvelope(wrapped, meta []byte) (*opened, error) {
	var ck [sha256.Size]byte
	if k.opened != nil {
		ck = openedKey(wrapped, meta)
		if o, ok := k.opened.get(ck); ok {
			return o, nil
		}
	}
	key, err := unwrapKey(wrapped, k.decryptor())
	if err != nil {
		return nil, err
	}
	plain, err := unseal(meta, key, protocol.MaxSealedEnvelope)
	if err != nil {
		return nil, fmt.Errorf("open envelope: %w", err)
	}
	env, err := protocol.ParseEnvelope(plain)
	if err != nil {
		return nil, err
	}
	o := &opened{key: key, env: *env, author: protocol.AccountIDFromKey(env.Author), subject: protocol.AccountIDFromKey(env.Subject)}
	if k.opened != nil {
		k.opened.put(ck, o)
	}
	return o, nil
}

// WithOpenedCache returns k when it has a cache of opened envelopes (its
// session's), else a copy of k with a cache of its own, for one operation
// that opens every record more than once (an export lists the records,
// then reads each): the copy's cache lives as long as the copy, and
// nothing about access is cached (see openedCache).
func (k *Keys) WithOpenedCache() *Keys {
	if k.opened != nil {
		return k
	}
	c := *k
	c.opened = newOpenedCache()
	return &c
}
