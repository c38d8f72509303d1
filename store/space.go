package store

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"syscall"
)

// Free space. A repo whose disk fills up must still open, list, verify and
// collect garbage, and pebble aborts the process when it cannot write its
// WAL or MANIFEST. So the store never fills the disk itself: every block
// write takes its size from a guard that refuses (with a *SpaceError)
// once writing it would leave less than the reserve free. The reserve
// (64 MiB by default) is room for pebble's own writes. Against other
// programs filling the disk, a reserve file of a quarter of the reserve
// is kept in the repo and deleted at Open when the disk is nearly full,
// so that the commands that free space can run; pebble is opened
// read-only when even that does not leave enough room.

const (
	// DefaultReserve is the free space the store leaves for its metadata.
	DefaultReserve = 64 << 20
	// reserveFileName is the file released when the disk is full.
	reserveFileName = "reserve"
	// recheckEvery bounds how much is written between two statfs calls,
	// so other writers on the same disk are noticed.
	recheckEvery = 16 << 20
)

// ErrNoSpace is matched (errors.Is) by errors reporting that the disk
// holding the store has too little free space for an operation.
var ErrNoSpace = errors.New("not enough disk space")

// SpaceError reports an operation refused (or failed with ENOSPC) for want
// of disk space. It names the folder and the space needed.
type SpaceError struct {
	// Dir is the store's folder.
	Dir string
	// Need is the space the operation needs; AtLeast says it is a lower
	// bound (the size of a stream is not known until it ends).
	Need    int64
	AtLeast bool
	// Free is the free space seen; Reserve the part of it kept for the
	// store's metadata. Free is -1 when the disk itself said ENOSPC.
	Free    int64
	Reserve int64
}

// Error implements error, in one line.
func (e *SpaceError) Error() string {
	need := formatBytes(e.Need)
	if e.AtLeast {
		need = "at least " + need
	}
	if e.Free < 0 {
		return fmt.Sprintf("store: not enough disk space in %s: the disk is full (needs %s)", e.Dir, need)
	}
	usable := max(e.Free-e.Reserve, 0)
	more := formatBytes(e.Need + e.Reserve - e.Free)
	if e.AtLeast {
		more = "at least " + more
	}
	return fmt.Sprintf("store: not enough disk space in %s: needs %s, %s usable (%s free, %s kept for the repo's metadata); free %s more",
		e.Dir, need, formatBytes(usable), formatBytes(e.Free), formatBytes(e.Reserve), more)
}

// Is makes a *SpaceError match ErrNoSpace.
func (e *SpaceError) Is(target error) bool { return target == ErrNoSpace }

// formatBytes renders n in binary units with one decimal.
func formatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d bytes", n)
	}
	v, suffix := float64(n), []string{"KiB", "MiB", "GiB", "TiB", "PiB"}
	i := -1
	for v >= unit && i < len(suffix)-1 {
		v /= unit
		i++
	}
	return fmt.Sprintf("%.1f %s", v, suffix[i])
}

// Option configures [Open].
type Option func(*config)

type config struct {
	reserve   int64
	freeSpace func(dir string) (int64, error)
	fatal     func(error)
}

func newConfig(opts []Option) config {
	c := config{reserve: DefaultReserve, freeSpace: diskFree, fatal: defaultFatal}
	for _, o := range opts {
		o(&c)
	}
	return c
}

// WithReserve sets the free space, in bytes, that writes leave on the disk
// for the store's metadata (default [DefaultReserve]).
func WithReserve(n int64) Option { return func(c *config) { c.reserve = max(n, 0) } }

// WithFreeSpace replaces the function that reports the free bytes on the
// disk holding dir (statfs(2) on Unix). Tests use it to simulate a full
// disk; a nil function turns the checks off.
func WithFreeSpace(fn func(dir string) (int64, error)) Option {
	return func(c *config) { c.freeSpace = fn }
}

// WithFatal sets what happens when pebble hits an error it cannot recover
// from (a failed WAL or MANIFEST write): fn is called with it and must not
// return (the datastore is unusable). The default prints one line on
// stderr and exits with status 1.
func WithFatal(fn func(error)) Option { return func(c *config) { c.fatal = fn } }

func defaultFatal(err error) {
	fmt.Fprintf(os.Stderr, "blockmrs: %s\n", oneLine(err.Error()))
	os.Exit(1)
}

// spaceGuard hands out disk space to writers.
type spaceGuard struct {
	dir     string
	free    func(string) (int64, error)
	reserve int64

	mu     sync.Mutex
	budget int64 // may be written before the next statfs
}

// check reports whether n more bytes fit, without taking them.
func (g *spaceGuard) check(n int64) error {
	if g.free == nil {
		return nil
	}
	free, err := g.free(g.dir)
	if err != nil {
		slog.Debug("store: free space unknown", "dir", g.dir, "err", err)
		return nil
	}
	if n > free-g.reserve {
		return &SpaceError{Dir: g.dir, Need: n, Free: free, Reserve: g.reserve}
	}
	return nil
}

// fresh makes the next take look at the disk again (an operation starts).
func (g *spaceGuard) fresh() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.budget = 0
}

// take takes n bytes of the space left above the reserve.
func (g *spaceGuard) take(n int64) error {
	if g.free == nil {
		return nil
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if n <= g.budget {
		g.budget -= n
		return nil
	}
	free, err := g.free(g.dir)
	if err != nil {
		slog.Debug("store: free space unknown", "dir", g.dir, "err", err)
		return nil
	}
	if n > free-g.reserve {
		g.budget = 0
		return &SpaceError{Dir: g.dir, Need: n, Free: free, Reserve: g.reserve}
	}
	g.budget = min(free-g.reserve-n, recheckEvery)
	return nil
}

// spaceErr turns a write's ENOSPC into a *SpaceError; other errors pass.
func (s *Store) spaceErr(err error, n int64) error {
	if err != nil && errors.Is(err, syscall.ENOSPC) {
		return &SpaceError{Dir: s.dir, Need: n, AtLeast: true, Free: -1, Reserve: s.space.reserve}
	}
	return err
}

// reserveFileSize is the size of the file released on a full disk.
func (c config) reserveFileSize() int64 { return c.reserve / 4 }

// releaseReserve deletes the reserve file when the disk holding dir is
// nearly full, and reports the free space after that (-1: unknown).
func releaseReserve(dir string, c config) int64 {
	if c.freeSpace == nil {
		return -1
	}
	free, err := c.freeSpace(dir)
	if err != nil {
		return -1
	}
	if free >= c.reserve/2 {
		return free
	}
	path := filepath.Join(dir, reserveFileName)
	if err := os.Remove(path); err == nil {
		slog.Warn("store: disk nearly full, released the reserve file", "dir", dir, "free", free)
		if f, err := c.freeSpace(dir); err == nil {
			free = f
		}
	}
	return free
}

// keepReserve creates the reserve file when it is missing and the disk
// has room for it above the reserve. Failures are only logged.
func (s *Store) keepReserve(c config) {
	size := c.reserveFileSize()
	if c.freeSpace == nil || size == 0 {
		return
	}
	path := filepath.Join(s.dir, reserveFileName)
	if _, err := os.Stat(path); err == nil {
		return
	}
	free, err := c.freeSpace(s.dir)
	if err != nil || free < c.reserve+size {
		return
	}
	if err := allocateFile(path, size); err != nil {
		_ = os.Remove(path)
		slog.Debug("store: reserve file", "dir", s.dir, "err", err)
	}
}
