package store

import (
	"errors"
	"io"
	"sync"
)

// chunkPipe is an in-memory pipe with a bounded buffer, so that its writer
// (the age encryptor) runs ahead of its reader (the UnixFS importer) by up
// to the buffer's size. io.Pipe has no buffer: the two would take turns on
// one core instead of sharing two.
type chunkPipe struct {
	ch       chan []byte
	done     chan struct{} // closed when the reader stops
	rerr     error         // why the reader stopped; set before done closes
	werr     error         // why the writer stopped (io.EOF when cleanly); set before ch closes
	cur      []byte        // unread part of buf
	buf      []byte        // the chunk being read, whole
	wOnce    sync.Once
	rOnce    sync.Once
	bufSize  int
	freeBufs chan []byte
}

// errReaderGone is what a write gets after the reader stopped for no
// reason of its own.
var errReaderGone = errors.New("store: pipe reader stopped")

// newChunkPipe returns a pipe buffering up to chunks writes of at most
// chunkSize bytes each.
func newChunkPipe(chunks, chunkSize int) *chunkPipe {
	return &chunkPipe{
		ch:       make(chan []byte, chunks),
		done:     make(chan struct{}),
		bufSize:  chunkSize,
		freeBufs: make(chan []byte, chunks+2),
	}
}

// Write copies b into the buffer, blocking while it is full.
func (p *chunkPipe) Write(b []byte) (int, error) {
	written := 0
	for len(b) > 0 {
		var buf []byte
		select {
		case buf = <-p.freeBufs:
		default:
			buf = make([]byte, 0, p.bufSize)
		}
		n := min(len(b), p.bufSize)
		buf = append(buf[:0], b[:n]...)
		select {
		case p.ch <- buf:
		case <-p.done:
			if p.rerr != nil {
				return written, p.rerr
			}
			return written, errReaderGone
		}
		written += n
		b = b[n:]
	}
	return written, nil
}

// CloseWithError ends the stream: the reader gets err after the buffered
// bytes, or io.EOF when err is nil.
func (p *chunkPipe) CloseWithError(err error) {
	p.wOnce.Do(func() {
		if err == nil {
			err = io.EOF
		}
		p.werr = err
		close(p.ch)
	})
}

// Read reads buffered bytes, blocking while the buffer is empty.
func (p *chunkPipe) Read(b []byte) (int, error) {
	if len(p.cur) == 0 {
		buf, ok := <-p.ch
		if !ok {
			return 0, p.werr
		}
		p.cur, p.buf = buf, buf
	}
	n := copy(b, p.cur)
	p.cur = p.cur[n:]
	if len(p.cur) == 0 {
		select {
		case p.freeBufs <- p.buf[:0]:
		default:
		}
		p.cur, p.buf = nil, nil
	}
	return n, nil
}

// CloseRead stops the reader: pending and later writes fail with err (or
// a generic error when err is nil).
func (p *chunkPipe) CloseRead(err error) {
	p.rOnce.Do(func() {
		p.rerr = err
		close(p.done)
	})
}
