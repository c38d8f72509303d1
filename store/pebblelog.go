package store

import (
	"fmt"
	"log/slog"
	"os"
	"strings"
)

// pebbleLogger routes pebble's log lines to slog and its fatal errors to
// the store's fatal handler. Pebble calls Fatalf when a WAL or MANIFEST
// write fails (a full disk): its state is then unknown, so the handler
// must end the process, but with one line naming the repo instead of
// pebble's raw "FATAL" and stack.
type pebbleLogger struct {
	dir   string
	fatal func(error)
}

func (l pebbleLogger) Infof(format string, args ...any) {
	slog.Debug("pebble: "+fmt.Sprintf(format, args...), "dir", l.dir)
}

func (l pebbleLogger) Errorf(format string, args ...any) {
	slog.Warn("pebble: "+fmt.Sprintf(format, args...), "dir", l.dir)
}

func (l pebbleLogger) Fatalf(format string, args ...any) {
	l.fatal(fmt.Errorf("store: datastore in %s failed and cannot go on: %s", l.dir, fmt.Sprintf(format, args...)))
}

// oneLine folds an error text onto one line.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// writeZeros appends n zero bytes to f.
func writeZeros(f *os.File, n int64) error {
	buf := make([]byte, 1<<20)
	for n > 0 {
		k := min(n, int64(len(buf)))
		if _, err := f.Write(buf[:k]); err != nil {
			return err
		}
		n -= k
	}
	return nil
}
