package keyshare

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ipfs/go-datastore"

	"github.com/blockmrs/blockmrs/protocol"
	"github.com/blockmrs/blockmrs/store"
)

// ErrRepoLocked is returned by Open when another process holds the repo.
var ErrRepoLocked = errors.New("repo is in use by another process (is a daemon running?)")

// ErrNoRepo is returned by Open with create=false when dir holds no repo.
var ErrNoRepo = errors.New("no BlockMRS repo here (run 'blockmrs init')")

// repoVersionFile names the file that marks a folder as a BlockMRS repo.
const repoVersionFile = "version"

// repoVersion is the layout version this package writes.
const repoVersion = "1\n"

// Repo is one repository folder: its store, account keys, chains and
// access index. It holds an exclusive lock on the folder while open. A Repo
// is safe for concurrent use.
type Repo struct {
	dir   string
	st    *store.Store
	ds    datastore.Batching
	lock  *os.File
	mu    sync.Mutex // serialises chain appends and imports
	clock func() time.Time

	nodeID    atomic.Pointer[string] // the node's peer ID, once SetNodeID is called
	cache     decisionCache
	recovered store.GCStats // what Open swept after interrupted adds

	addrMu    sync.Mutex                   // serialises address book writes (addrbook.go)
	emergency emergencyState               // emergency packs, requests and notices (emergency.go)
	trustSrc  atomic.Pointer[trustSources] // shipped and configured trusted authorities (trust.go)

	hooksMu  sync.Mutex // guards hooks and nextHook
	hooks    map[int]func(ChainChange)
	nextHook int

	auditSink atomic.Pointer[AuditSink] // see SetAuditSink

	forkReplays atomic.Int64 // chains replayed to settle a fork (forkrecovery.go)
}

// Options tune Open.
type Options struct {
	// Create makes the repo when dir does not hold one yet.
	Create bool
	// Clock replaces time.Now (tests).
	Clock func() time.Time
	// Store passes options to store.Open (free-space reserve, tests'
	// free-space function).
	Store []store.Option
	// ShippedTrust replaces ShippedTrust, the authorities trusted unless
	// the user removes them (nil: ShippedTrust).
	ShippedTrust []protocol.AccountID
}

// Exists reports whether dir holds a repo.
func Exists(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, repoVersionFile))
	return err == nil
}

// Open opens the repo in dir, creating it when opts.Create is set.
func Open(ctx context.Context, dir string, opts Options) (*Repo, error) {
	if !Exists(dir) {
		if !opts.Create {
			return nil, fmt.Errorf("%s: %w", dir, ErrNoRepo)
		}
		if err := os.MkdirAll(filepath.Join(dir, "keys"), 0o700); err != nil {
			return nil, fmt.Errorf("create repo: %w", err)
		}
	}
	lock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	st, err := store.Open(ctx, dir, opts.Store...)
	if err != nil {
		lock.Close()
		return nil, err
	}
	if !Exists(dir) {
		if err := writeFileOnce(filepath.Join(dir, repoVersionFile), []byte(repoVersion), 0o600); err != nil {
			st.Close()
			lock.Close()
			return nil, fmt.Errorf("create repo: %w", err)
		}
	}
	clock := opts.Clock
	if clock == nil {
		clock = time.Now
	}
	r := &Repo{dir: dir, st: st, ds: st.Datastore(), lock: lock, clock: clock}
	shipped := opts.ShippedTrust
	if shipped == nil {
		shipped = ShippedTrust
	}
	r.trustSrc.Store(&trustSources{shipped: slices.Clone(shipped)})
	if err := r.completeChainBlockIndex(ctx); err != nil {
		r.Close()
		return nil, err
	}
	if err := r.completeSharedIndex(ctx); err != nil {
		r.Close()
		return nil, err
	}
	if _, err := r.rebuildPeerIndex(ctx, true); err != nil {
		r.Close()
		return nil, err
	}
	if err := r.finishReindex(ctx); err != nil {
		r.Close()
		return nil, err
	}
	r.sweepInterrupted(ctx)
	r.moveLegacyAddrs(ctx)
	if err := r.interruptJobs(ctx); err != nil {
		slog.Warn("keyshare: marking unfinished re-key jobs interrupted failed", "dir", r.dir, "err", err)
	}
	return r, nil
}

// sweepInterrupted runs GC when the store says writes were interrupted
// (an add killed half way leaves blocks nothing refers to). It costs one
// datastore prefix scan when nothing was interrupted. A failure is only
// logged: the repo must still open so that verify can say what is wrong.
func (r *Repo) sweepInterrupted(ctx context.Context) {
	n, err := r.st.Interrupted(ctx)
	if err != nil {
		return
	}
	unpinned, err := r.unpinUnclaimed(ctx)
	if err != nil {
		slog.Warn("keyshare: checking for records added without a chain entry failed", "dir", r.dir, "err", err)
	}
	if n == 0 && unpinned == 0 {
		return
	}
	st, err := r.GC(ctx)
	if err != nil {
		slog.Warn("keyshare: removing the leftovers of interrupted adds failed", "dir", r.dir, "err", err)
		return
	}
	r.mu.Lock()
	r.recovered = st
	r.mu.Unlock()
	slog.Info("keyshare: removed the leftovers of interrupted adds", "dir", r.dir,
		"adds", st.Interrupted, "blocks", st.Removed, "bytes", st.RemovedBytes)
}

// TakeRecovered returns what Open removed after interrupted adds (zero
// when nothing was interrupted), once: later calls return zero.
func (r *Repo) TakeRecovered() store.GCStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.recovered
	r.recovered = store.GCStats{}
	return st
}

func lockDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, "repo.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock repo: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%s: %w", dir, ErrRepoLocked)
		}
		return nil, fmt.Errorf("lock repo: %w", err)
	}
	return f, nil
}

// Dir returns the repo folder.
func (r *Repo) Dir() string { return r.dir }

// Store returns the repo's block store.
func (r *Repo) Store() *store.Store { return r.st }

// Close closes the store and releases the lock.
func (r *Repo) Close() error {
	err := r.closeAuditSink()
	if serr := r.st.Close(); err == nil {
		err = serr
	}
	if lerr := r.lock.Close(); err == nil {
		err = lerr
	}
	return err
}

func (r *Repo) now() time.Time { return r.clock() }
