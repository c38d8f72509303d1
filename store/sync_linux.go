//go:build linux

package store

import (
	"os"

	"golang.org/x/sys/unix"
)

const syncfsSupported = true

// syncfs flushes the filesystem containing f. Since Linux 5.8 it also
// reports writeback errors that happened since f was opened.
func syncfs(f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		for {
			serr = unix.Syncfs(int(fd))
			if serr != unix.EINTR {
				return
			}
		}
	}); err != nil {
		return err
	}
	if serr != nil {
		return os.NewSyscallError("syncfs", serr)
	}
	return nil
}

func fsyncTree(string) error { return nil } // unused: syncfs covers it

// startWriteback asks the kernel to start writing the file at path to
// disk now, without waiting (sync_file_range(2), SYNC_FILE_RANGE_WRITE).
// It is a hint that overlaps the disk writes of a large add with its
// encryption and hashing, so that the flush at the end waits only for
// the last blocks; durability still comes from that flush alone. Errors
// are ignored: the flush reports writeback failures.
func startWriteback(path string) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return
	}
	_ = unix.SyncFileRange(fd, 0, 0, unix.SYNC_FILE_RANGE_WRITE)
	_ = unix.Close(fd)
}
