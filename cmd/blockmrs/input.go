package main

// This file holds how commands read their input (FILE or stdin) so that
// the first SIGINT or SIGTERM, the daemon stopping, or the client going
// away stops them even while they wait for input that never comes: a
// FIFO nobody opens for writing, a pipe or terminal nobody writes to.
// Such waits happen inside the kernel (open(2), read(2)), where a context
// does not reach, so:
//
//   - opening a FIFO runs aside and is abandoned when the context ends
//     (openFile);
//   - reading anything but a regular file runs aside, one read at a time,
//     and a read still waiting when the context ends is abandoned
//     (cancelReader); a file opened here is then closed, which ends the
//     abandoned read at once.
//
// The command then fails with the context's error, returns, and the repo
// (and its lock) is closed as after any failure.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sync"
	"syscall"
)

// openInput opens FILE (relative to the command's folder), or stdin for
// "-". Once ctx ends, reading it fails with ctx's error, even when a read
// was waiting.
func (f *cmdFlags) openInput(ctx context.Context, name string) (io.ReadCloser, error) {
	if name == "-" {
		in := f.invocation().stdin
		if file, ok := in.(*os.File); ok && isRegular(file) {
			return io.NopCloser(in), nil
		}
		// Not closed when ctx ends: the process's stdin is not this
		// command's to close (inside the daemon, the API server ends
		// the client's stdin when the command is cancelled).
		return newCancelReader(ctx, in, nil), nil
	}
	path := f.path(name)
	file, err := openFile(ctx, path)
	if err != nil {
		return nil, pathErrorAs(err, path, name)
	}
	st, err := file.Stat()
	switch {
	case err != nil:
		file.Close()
		return nil, pathErrorAs(err, path, name)
	case st.IsDir():
		file.Close()
		return nil, fmt.Errorf("%s is a folder", name)
	case st.Mode().IsRegular():
		return file, nil
	}
	return newCancelReader(ctx, file, file), nil
}

func isRegular(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode().IsRegular()
}

// openFile opens path for reading. Opening a FIFO waits, in the kernel,
// until a writer opens it too; that open runs aside, and when ctx ends
// first openFile returns ctx's error. The waiting open is then woken by
// opening the FIFO's write end once without blocking (which succeeds only
// while a reader waits, and gives that reader an immediate end of file),
// and the file it opened is closed.
func openFile(ctx context.Context, path string) (*os.File, error) {
	if st, err := os.Stat(path); err != nil || st.Mode()&fs.ModeNamedPipe == 0 {
		return os.Open(path)
	}
	type opened struct {
		f   *os.File
		err error
	}
	ch := make(chan opened, 1)
	go func() {
		f, err := os.Open(path)
		ch <- opened{f, err}
	}()
	select {
	case o := <-ch:
		return o.f, o.err
	case <-ctx.Done():
	}
	if w, err := os.OpenFile(path, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
		w.Close()
	}
	go func() {
		if o := <-ch; o.f != nil {
			o.f.Close()
		}
	}()
	return nil, ctx.Err()
}

// cancelReaderBuffer bounds one read of a cancelReader.
const cancelReaderBuffer = 256 << 10

// cancelReader reads r so that Read returns ctx's error as soon as ctx
// ends, even while r's Read is blocked. Each read of r runs on a goroutine
// of its own into the reader's own buffer, copied out when it returns, so
// a read that is abandoned writes into nothing the caller still holds.
// Once ctx has ended every Read fails; closer (when not nil) is closed
// then, which ends a read blocked on a FIFO, pipe or terminal opened by
// this process. It is not safe for concurrent reads (no io.Reader is).
type cancelReader struct {
	ctx    context.Context
	r      io.Reader
	buf    []byte
	res    chan readResult
	err    error // sticky: ctx ended
	closer io.Closer
	once   sync.Once
	stop   func() bool // stops the close on ctx's end
}

type readResult struct {
	n   int
	err error
}

func newCancelReader(ctx context.Context, r io.Reader, closer io.Closer) *cancelReader {
	c := &cancelReader{ctx: ctx, r: r, res: make(chan readResult, 1), closer: closer}
	c.stop = context.AfterFunc(ctx, func() { _ = c.closeOnce() })
	return c
}

func (c *cancelReader) Read(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	if err := c.ctx.Err(); err != nil {
		c.err = err
		return 0, err
	}
	if len(p) == 0 {
		return 0, nil
	}
	if c.buf == nil {
		c.buf = make([]byte, cancelReaderBuffer)
	}
	b := c.buf[:min(len(p), len(c.buf))]
	go func() {
		n, err := c.r.Read(b)
		c.res <- readResult{n, err}
	}()
	select {
	case res := <-c.res:
		copy(p, b[:res.n])
		if res.err != nil && !errors.Is(res.err, io.EOF) && c.ctx.Err() != nil {
			res.err = c.ctx.Err() // closed because ctx ended
		}
		return res.n, res.err
	case <-c.ctx.Done():
		// The read goes on aside, into c.buf, which is never used again.
		c.err = c.ctx.Err()
		return 0, c.err
	}
}

// Close closes the closer given to newCancelReader, if any.
func (c *cancelReader) Close() error {
	c.stop()
	return c.closeOnce()
}

func (c *cancelReader) closeOnce() (err error) {
	c.once.Do(func() {
		if c.closer != nil {
			err = c.closer.Close()
		}
	})
	return err
}
