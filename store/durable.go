package store

import (
	"fmt"
	"os"

	ds "github.com/ipfs/go-datastore"
)

// syncMode selects how an import makes its blocks durable. Only syncOnce
// is durable and fast; the others exist so benchmarks can compare.
type syncMode int

const (
	syncOnce      syncMode = iota // write all blocks, then one flush
	syncEachBlock                 // fsync every block as it is written
	syncNever                     // no flush at all (not durable)
)

// fsyncEachMax is the most blocks flushed by fsyncing each file (plus its
// shard directory and the blocks directory); beyond it, where available,
// one syncfs(2) of the blocks filesystem is cheaper than N fsyncs, each of
// which forces its own journal commit.
const fsyncEachMax = 8

// flush makes the flatfs files for keys, and the directory entries naming
// them, durable.
func (s *Store) flush(keys []ds.Key) error {
	if len(keys) == 0 {
		return nil
	}
	if len(keys) > fsyncEachMax && syncfsSupported {
		return s.syncEverything()
	}
	dirs := make(map[string]struct{})
	for _, k := range keys {
		dir, file := s.blockPath(k)
		if err := fsyncPath(file); err != nil {
			return fmt.Errorf("store: flush: %w", err)
		}
		dirs[dir] = struct{}{}
	}
	for dir := range dirs {
		if err := fsyncPath(dir); err != nil {
			return fmt.Errorf("store: flush: %w", err)
		}
	}
	// A shard directory may have been created by this write.
	if err := fsyncPath(s.blocksDir); err != nil {
		return fmt.Errorf("store: flush: %w", err)
	}
	return nil
}

// flushLog flushes everything recorded in l.
func (s *Store) flushLog(l *writeLog) error {
	l.mu.Lock()
	n, keys := l.n, l.keys
	l.mu.Unlock()
	if syncfsSupported && n > fsyncEachMax {
		return s.syncEverything()
	}
	return s.flush(keys)
}

// syncEverything flushes the whole filesystem holding the blocks
// directory (syncfs(2)); without syncfs it fsyncs every file, shard
// directory and the store's directories, which is slow but correct.
func (s *Store) syncEverything() error {
	if syncfsSupported {
		if err := syncfs(s.blocksFD); err != nil {
			return fmt.Errorf("store: syncfs %s: %w", s.blocksDir, err)
		}
		return nil
	}
	if err := fsyncTree(s.blocksDir); err != nil {
		return fmt.Errorf("store: sync %s: %w", s.blocksDir, err)
	}
	if err := fsyncPath(s.dir); err != nil {
		return fmt.Errorf("store: sync %s: %w", s.dir, err)
	}
	return nil
}

func fsyncPath(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}
