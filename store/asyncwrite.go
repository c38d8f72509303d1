package store

import (
	"context"
	"sync"

	blocks "github.com/ipfs/go-block-format"
	cid "github.com/ipfs/go-cid"
)

// asyncWriter writes blocks to flatfs on background goroutines, so that an
// import hashes the next chunk while the previous one is written. At most
// depth blocks wait in its queue. Nothing is durable until the caller
// flushes after wait.
type asyncWriter struct {
	s    *Store
	log  *writeLog // records the blocks written
	ch   chan blocks.Block
	wg   sync.WaitGroup
	mu   sync.Mutex
	err  error
	once sync.Once
	// recycle, if set, is given the bytes of each raw block (a leaf) once
	// written: nothing else refers to them then.
	recycle func([]byte)
}

// writebackMin is the smallest block whose writeback an asyncWriter
// starts as soon as it is written (startWriteback): the leaves of a large
// record; small blocks are left to the final flush.
const writebackMin = 256 << 10

func newAsyncWriter(s *Store, log *writeLog, workers, depth int) *asyncWriter {
	w := &asyncWriter{s: s, log: log, ch: make(chan blocks.Block, depth)}
	for range workers {
		w.wg.Add(1)
		go w.run()
	}
	return w
}

func (w *asyncWriter) run() {
	defer w.wg.Done()
	ctx := context.Background() // flatfs ignores it; cancellation stops the producer
	for blk := range w.ch {
		if w.failed() != nil {
			w.done(blk)
			continue // drain
		}
		k := blockKey(blk.Cid())
		has, err := w.s.flat.Has(ctx, k)
		if err == nil && !has {
			err = w.s.putNew(ctx, k, blk.RawData(), w.log)
			if err == nil && len(blk.RawData()) >= writebackMin {
				_, file := w.s.blockPath(k)
				startWriteback(file)
			}
		}
		if err != nil {
			w.fail(wrapOp("put", blk.Cid(), err))
		}
		w.done(blk)
	}
}

// done hands a leaf's bytes to recycle. Only raw blocks qualify: in an
// import with raw leaves those are exactly the leaves, whose buffers the
// DAG builder does not keep; dag-pb nodes keep their encoding.
func (w *asyncWriter) done(blk blocks.Block) {
	if w.recycle != nil && blk.Cid().Prefix().Codec == cid.Raw {
		w.recycle(blk.RawData())
	}
}

func (w *asyncWriter) fail(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err == nil {
		w.err = err
	}
}

func (w *asyncWriter) failed() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// put queues blk, or returns the first write error so far.
func (w *asyncWriter) put(ctx context.Context, blk blocks.Block) error {
	if err := w.failed(); err != nil {
		return err
	}
	select {
	case w.ch <- blk:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// wait stops taking blocks, waits for every queued write and returns the
// first error. It may be called more than once.
func (w *asyncWriter) wait() error {
	w.once.Do(func() { close(w.ch) })
	w.wg.Wait()
	return w.failed()
}
