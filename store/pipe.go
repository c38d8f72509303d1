package store

import (
	"context"
	"errors"
	"io"
	"sync"
)

// leafPipe carries the age encryptor's output to the UnixFS importer in
// whole leaves: the encryptor's goroutine reads age's output straight into
// a chunk-sized buffer (fill), and the importer takes that buffer as the
// leaf (it is a chunker.Splitter), so no bytes are copied between the two
// and no buffer is allocated per leaf once blocks written by the
// asyncWriter come back through recycle. The
// leaves are cut exactly as chunker.NewSizeSplitter cuts a reader: full
// chunks, then the remainder, so the CIDs are the same.
//
// Up to depth full leaves wait between the two, so the encryptor runs
// ahead of the importer (io.Pipe has no buffer: the two would take turns
// on one core instead of sharing two).
type leafPipe struct {
	size  int
	ch    chan []byte   // full leaves, then the remainder
	free  chan []byte   // buffers to reuse (len 0, cap size)
	done  chan struct{} // closed when the reader stops
	rerr  error         // why the reader stopped; set before done closes
	werr  error         // why the writer stopped (io.EOF when cleanly); set before ch closes
	cur   []byte        // the leaf being filled by the writer
	wOnce sync.Once
	rOnce sync.Once

	// Reader side (the importer's goroutine).
	ctx context.Context
	n   int64 // bytes handed out as leaves
	err error // first error NextBytes returned, other than io.EOF
}

// errReaderGone is what a write gets after the reader stopped for no
// reason of its own.
var errReaderGone = errors.New("store: pipe reader stopped")

// newLeafPipe returns a pipe cutting leaves of size bytes and buffering
// up to depth of them.
func newLeafPipe(ctx context.Context, size, depth int) *leafPipe {
	return &leafPipe{
		size: size,
		ch:   make(chan []byte, depth),
		// Leaves in flight: the pipe's, the importer's, the asyncWriter's
		// queue and workers; a few more are allocated if it runs dry.
		free: make(chan []byte, depth+16),
		done: make(chan struct{}),
		ctx:  ctx,
	}
}

// fill reads r to its end into leaves, as chunker.NewSizeSplitter would:
// full leaves, then the remainder. It returns r's error, or one from the
// reader stopping, and nil at r's end; the caller passes it to
// CloseWithError.
func (p *leafPipe) fill(r io.Reader) error {
	for {
		if p.cur == nil {
			select {
			case p.cur = <-p.free:
			default:
				p.cur = make([]byte, 0, p.size)
			}
		}
		n, err := io.ReadFull(r, p.cur[len(p.cur):p.size])
		p.cur = p.cur[:len(p.cur)+n]
		switch err {
		case nil:
			if err := p.send(); err != nil {
				return err
			}
		case io.EOF, io.ErrUnexpectedEOF:
			return nil // CloseWithError sends the remainder
		default:
			return err
		}
	}
}

// send hands the current leaf to the reader.
func (p *leafPipe) send() error {
	select {
	case p.ch <- p.cur:
		p.cur = nil
		return nil
	case <-p.done:
		if p.rerr != nil {
			return p.rerr
		}
		return errReaderGone
	}
}

// CloseWithError ends the stream: when err is nil the partial last leaf
// is sent and the reader then gets io.EOF; otherwise the partial leaf is
// dropped and the reader gets err after the full leaves. Only the
// goroutine that calls fill calls it.
func (p *leafPipe) CloseWithError(err error) {
	p.wOnce.Do(func() {
		if err == nil {
			if len(p.cur) > 0 {
				err = p.send()
			}
			if err == nil {
				err = io.EOF
			}
		}
		p.werr = err
		close(p.ch)
	})
}

// NextBytes returns the next leaf, or io.EOF after the last one (the
// chunker.Splitter contract). The leaf's buffer belongs to the caller
// until it is given to recycle.
func (p *leafPipe) NextBytes() ([]byte, error) {
	if p.err != nil {
		return nil, p.err
	}
	if err := p.ctx.Err(); err != nil {
		p.err = err
		return nil, err
	}
	leaf, ok := <-p.ch
	if !ok {
		if p.werr != io.EOF {
			p.err = p.werr
		}
		return nil, p.werr
	}
	p.n += int64(len(leaf))
	return leaf, nil
}

// Reader is part of chunker.Splitter; the leaves are not a reader.
func (p *leafPipe) Reader() io.Reader { return nil }

// recycle takes back a leaf's buffer once nothing refers to it any more.
// Buffers of another size are left to the garbage collector.
func (p *leafPipe) recycle(b []byte) {
	if cap(b) != p.size {
		return
	}
	select {
	case p.free <- b[:0]:
	default:
	}
}

// CloseRead stops the reader: pending and later writes fail with err (or
// a generic error when err is nil).
func (p *leafPipe) CloseRead(err error) {
	p.rOnce.Do(func() {
		p.rerr = err
		close(p.done)
	})
}
