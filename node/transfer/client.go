package transfer

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/blockmrs/blockmrs/store"
)

// Client-side errors.
var (
	// ErrNotServed: the server answered with nothing (it refused, or it
	// does not hold the root: the two look the same).
	ErrNotServed = errors.New("transfer: not served")
	// ErrUnexpected: the server sent a block that is not the root or not
	// linked from a block it sent before, or sent one twice.
	ErrUnexpected = errors.New("transfer: unexpected block")
	// ErrBadBlock: a block's bytes do not hash to its CID.
	ErrBadBlock = errors.New("transfer: block does not match its CID")
)

// batchBytes is how much the client collects before handing a batch to
// put. It holds at most the batch being written, the one being filled
// and a frame; the rest of the stream's memory budget (16 MiB by default)
// is left to the muxer's receive window.
const batchBytes = 4 << 20

// clientMemory is what a client reserves in the stream's resource scope.
const clientMemory = 2*batchBytes + MaxFrameSize

// Result says what a fetch received.
type Result struct {
	// Blocks and Bytes count the blocks accepted (and handed to put).
	Blocks int
	Bytes  int64
	// Complete is true when every block reachable from the root arrived:
	// the server sent the whole DAG.
	Complete bool
}

// Fetch asks p for the DAG rooted at root over one stream and hands every
// block it accepts to put, in batches, in the order received (a block
// before the blocks it links to). It accepts the root first and then only
// blocks linked from blocks already accepted, each once and only after
// checking that its bytes hash to its CID. On any error it resets the
// stream and returns what it accepted so far together with the error;
// every block already handed to put was checked, so the caller may keep
// it. A server that sends nothing gives ErrNotServed.
func Fetch(ctx context.Context, h host.Host, p peer.ID, root cid.Cid, put func(context.Context, []blocks.Block) error) (Result, error) {
	var res Result
	req, err := AppendRequest(nil, root)
	if err != nil {
		return res, err
	}
	st, err := h.NewStream(ctx, p, ID)
	if err != nil {
		return res, fmt.Errorf("transfer: open stream to %s: %w", p, err)
	}
	ok := false
	defer func() {
		if !ok {
			st.Reset()
		}
	}()
	if err := st.Scope().ReserveMemory(clientMemory, network.ReservationPriorityHigh); err != nil {
		return res, fmt.Errorf("transfer: reserve memory: %w", err)
	}
	defer st.Scope().ReleaseMemory(clientMemory)
	// Streams do not watch ctx themselves.
	stopWatch := context.AfterFunc(ctx, func() { st.Reset() })
	defer stopWatch()

	_ = st.SetWriteDeadline(time.Now().Add(IdleTimeout))
	if _, err := st.Write(req); err != nil {
		return res, fmt.Errorf("transfer: send request: %w", err)
	}
	if err := st.CloseWrite(); err != nil {
		return res, fmt.Errorf("transfer: send request: %w", err)
	}

	// Batches are written while the next one is read.
	batches := make(chan []blocks.Block)
	putErr := make(chan error, 1)
	go func() {
		var err error
		for b := range batches {
			if err == nil {
				err = put(ctx, b)
			}
		}
		putErr <- err
	}()
	var batch []blocks.Block
	var size int
	flush := func() {
		if len(batch) > 0 {
			batches <- batch
			batch, size = nil, 0
		}
	}

	r := bufio.NewReaderSize(st, 64<<10)
	rerr := receive(r, st, root, func(blk blocks.Block) {
		batch = append(batch, blk)
		size += len(blk.RawData())
		res.Blocks++
		res.Bytes += int64(len(blk.RawData()))
		if size >= batchBytes {
			flush()
		}
	}, &res.Complete)
	flush()
	close(batches)
	werr := <-putErr
	if rerr == nil && werr == nil {
		ok = true
		_ = st.Close()
	}
	if rerr != nil {
		if ctx.Err() != nil {
			rerr = errors.Join(rerr, ctx.Err())
		}
		return res, rerr
	}
	if werr != nil {
		return res, fmt.Errorf("transfer: store blocks: %w", werr)
	}
	if res.Blocks == 0 {
		return res, ErrNotServed
	}
	return res, nil
}

// deadliner is the part of a stream receive needs.
type deadliner interface{ SetReadDeadline(time.Time) error }

// receive reads a response for root from r, passing each accepted block to
// accept, until the end message. complete is set when nothing linked is
// left outstanding.
func receive(r *bufio.Reader, st deadliner, root cid.Cid, accept func(blocks.Block), complete *bool) error {
	// want holds what the client may still accept: the root, then the
	// links of accepted blocks. got holds what it accepted.
	want := map[string]bool{root.KeyString(): true}
	got := map[string]bool{}
	for {
		if st != nil {
			_ = st.SetReadDeadline(time.Now().Add(IdleTimeout))
		}
		c, data, end, err := ReadFrame(r)
		if err != nil {
			return fmt.Errorf("transfer: read frame: %w", err)
		}
		if end {
			*complete = len(want) == 0
			return nil
		}
		blk, links, err := check(c, data, want)
		if err != nil {
			return err
		}
		k := c.KeyString()
		delete(want, k)
		got[k] = true
		for _, l := range links {
			if !got[l.KeyString()] {
				want[l.KeyString()] = true
			}
		}
		accept(blk)
	}
}

// check accepts the frame (c, data) if c is wanted (at first only the
// root is) and data hashes to c, and returns the block and its links.
func check(c cid.Cid, data []byte, want map[string]bool) (blocks.Block, []cid.Cid, error) {
	if !want[c.KeyString()] {
		return nil, nil, fmt.Errorf("%w: %s", ErrUnexpected, c)
	}
	sum, err := c.Prefix().Sum(data)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %s: %v", ErrBadBlock, c, err)
	}
	if !bytes.Equal(sum.Hash(), c.Hash()) {
		return nil, nil, fmt.Errorf("%w: %s", ErrBadBlock, c)
	}
	blk, err := blocks.NewBlockWithCid(data, c)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %s: %v", ErrBadBlock, c, err)
	}
	links, err := store.Links(blk)
	if err != nil {
		return nil, nil, fmt.Errorf("transfer: %w", err)
	}
	return blk, links, nil
}
