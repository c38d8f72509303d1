package keyshare

import (
	"sync"

	"github.com/ipfs/go-cid"

	"github.com/blockmrs/blockmrs/protocol"
)

// decisionCache keeps what access decisions read over and over — the
// accounts this node vouches for, each peer's declared accounts, record
// facts, block owners and the records two accounts share — decoded in memory, so that deciding a want
// costs map lookups rather than datastore reads and JSON decoding. Every
// write to the access state calls invalidate, which drops it all: a
// decision never rests on facts older than the last commit. Entries are
// immutable once cached (evaluate and the policy only read them).
type decisionCache struct {
	mu  sync.Mutex
	gen uint64
	// writers counts commits in progress: while one runs, nothing is
	// served from the cache or stored in it, so no decision mixes what
	// the datastore shows after the commit with facts cached before it.
	writers int
	// fillers counts walks over every record that should not fill the
	// cache (FHIRIndexFor): while one runs nothing new is stored, but
	// what is cached stays and is served.
	fillers int
	vouch   vouchSet
	roles   map[string]peerRoles
	facts   map[cid.Cid]*recordFacts
	owners  map[string]BlockOwner // by multihash
	shared  map[string][]cid.Cid  // by shared-record index prefix
	scopes  map[protocol.AccountID][]scopeEvent
	// guardians holds each ward's guardian events (guardian.go).
	guardians map[protocol.AccountID][]guardianEvent
}

// maxCached bounds each map; a full map is emptied (the cache is only a
// shortcut).
const maxCached = 16384

// generation returns the current generation: a value read from the
// datastore after it may be stored under it.
func (c *decisionCache) generation() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

// invalidate drops everything cached.
func (c *decisionCache) invalidate() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	c.vouch, c.roles, c.facts, c.owners, c.shared, c.scopes = nil, nil, nil, nil, nil, nil
	c.guardians = nil
}

// writing drops everything cached and keeps the cache out of use until
// the returned function is called, after the commit it brackets.
func (c *decisionCache) writing() (done func()) {
	c.mu.Lock()
	c.writers++
	c.mu.Unlock()
	c.invalidate()
	return func() {
		c.mu.Lock()
		c.writers--
		c.mu.Unlock()
		c.invalidate()
	}
}

// notFilling keeps anything new out of the cache until the returned
// function is called, without dropping what it holds: for a read-only
// walk whose facts would only push out what serving uses.
func (c *decisionCache) notFilling() (done func()) {
	c.mu.Lock()
	c.fillers++
	c.mu.Unlock()
	return func() {
		c.mu.Lock()
		c.fillers--
		c.mu.Unlock()
	}
}

func cacheGet[K comparable, V any](c *decisionCache, m *map[K]V, k K) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.writers > 0 {
		var zero V
		return zero, false
	}
	v, ok := (*m)[k]
	return v, ok
}

// cachePut stores v under k if nothing was written since gen.
func cachePut[K comparable, V any](c *decisionCache, m *map[K]V, gen uint64, k K, v V) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen || c.writers > 0 || c.fillers > 0 {
		return
	}
	if *m == nil || len(*m) >= maxCached {
		*m = map[K]V{}
	}
	(*m)[k] = v
}
