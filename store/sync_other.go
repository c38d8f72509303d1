//go:build !linux

package store

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
)

const syncfsSupported = false

func syncfs(*os.File) error { return errors.New("syncfs is not supported on this platform") }

// fsyncTree fsyncs every file and directory under root.
func fsyncTree(root string) error {
	return filepath.WalkDir(root, func(path string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return fsyncPath(path)
	})
}

// startWriteback does nothing here (see the Linux version).
func startWriteback(string) {}
