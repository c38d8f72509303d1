// Package fsutil holds the few file operations the node's repo files need:
// atomic replacement (temp file, fsync, rename, fsync of the folder) and
// secrets that are created once with mode 0600 and refused when other
// users could read them.
package fsutil

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// WriteFileAtomic replaces path with data: it writes a temporary file in
// the same folder with mode perm, syncs it, renames it over path and syncs
// the folder, so a crash leaves either the old file or the new one, never a
// torn one.
func WriteFileAtomic(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, ".tmp-"+filepath.Base(path)+"-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op after a successful rename
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("write %s: sync folder: %w", path, err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// ErrSecretMode is wrapped by ReadSecret when a secret file can be read or
// written by users other than its owner.
var ErrSecretMode = errors.New("secret file is accessible to other users")

// ReadSecret reads a secret file, refusing one whose mode gives any access
// to group or others (chmod 600 fixes it). It returns an error wrapping
// fs.ErrNotExist when the file does not exist.
func ReadSecret(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("read %s: not a regular file", path)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%s has mode %#o (run 'chmod 600 %s'): %w", path, st.Mode().Perm(), path, ErrSecretMode)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxSecret+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if len(data) > maxSecret {
		return nil, fmt.Errorf("read %s: larger than %d bytes", path, maxSecret)
	}
	return data, nil
}

// maxSecret bounds what ReadSecret reads: keys and tokens are a few dozen
// bytes.
const maxSecret = 64 << 10

// LoadOrCreateSecret returns the secret stored at path. When the file does
// not exist it calls create, stores the result atomically with mode 0600
// and returns it; created tells which happened. The caller must hold the
// repo lock, so no other process races to create the same file.
func LoadOrCreateSecret(path string, create func() ([]byte, error)) (data []byte, created bool, err error) {
	data, err = ReadSecret(path)
	if err == nil {
		return data, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, false, err
	}
	data, err = create()
	if err != nil {
		return nil, false, fmt.Errorf("create %s: %w", path, err)
	}
	if err := WriteFileAtomic(path, data, 0o600); err != nil {
		return nil, false, err
	}
	return data, true, nil
}
