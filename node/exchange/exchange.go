// Package exchange moves blocks between nodes with bitswap, the IPFS
// block exchange protocol, over the node's libp2p host. It keeps
// bitswap's standard protocol IDs, so stock IPFS nodes can take part, and
// it decides every incoming want from the repo's access index
// (keyshare.Repo.MayServe): a peer that may not have a block is answered
// exactly as for a block the node does not hold. Nothing is announced to
// any content routing system: no DHT learns which CIDs a node holds.
//
// Between BlockMRS nodes a whole record also travels in one stream
// (node/transfer, protocol /blockmrs/dag/1.0.0), decided by the same
// rule; Fetch tries it first and fetches whatever it did not deliver over
// bitswap, which stock nodes keep using.
package exchange

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipfs/boxo/bitswap"
	bsnet "github.com/ipfs/boxo/bitswap/network/bsnet"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/node/internal/peerlimit"
	"github.com/blockmrs/blockmrs/node/transfer"
	"github.com/blockmrs/blockmrs/store"
)

// DecisionTimeout bounds how long one access decision may take; a
// decision that does not finish in time refuses the block.
const DecisionTimeout = 5 * time.Second

// Exchange is a running bitswap client and server over one host and one
// repo. Create it with New and stop it with Close. It is safe for
// concurrent use.
type Exchange struct {
	host host.Host
	repo *keyshare.Repo
	bs   *bitswap.Bitswap
	log  *slog.Logger

	ctx    context.Context // lives until Close
	cancel context.CancelFunc

	closeOnce sync.Once
	closeErr  error

	served, refused atomic.Int64 // wants allowed and refused

	refusalLog  *peerlimit.Throttle // a peer's refusals are logged once a minute
	decisionLog *peerlimit.Throttle // so are failed decisions for its wants

	dag      *transfer.Server
	noStream atomic.Bool // DisableStream was called
	// Fetches over DAG streams: completed by the stream alone, completed
	// with bitswap's help, and blocks received over streams.
	streamFull, streamPartial, streamBlocks atomic.Int64

	awaited        awaited      // CIDs fetches are asking bitswap for (wants.go)
	staleCancelled atomic.Int64 // stale wants cancelled before a fetch
}

// New starts bitswap on h, serving from and storing into repo's
// blockstore. Every want a peer sends is allowed only if
// repo.MayServe(peer, cid) says so, evaluated when the want arrives. The
// exchange looks for blocks only at peers it is connected to: it has no
// content routing and announces nothing. log may be nil.
func New(h host.Host, repo *keyshare.Repo, log *slog.Logger) *Exchange {
	if log == nil {
		log = slog.Default()
	}
	// The policy counts the accounts that declare this node their
	// replica among those it vouches for.
	repo.SetNodeID(h.ID().String())
	ctx, cancel := context.WithCancel(context.Background())
	e := &Exchange{host: h, repo: repo, log: log, ctx: ctx, cancel: cancel, refusalLog: peerlimit.NewThrottle(peerlimit.LogEvery), decisionLog: peerlimit.NewThrottle(peerlimit.LogEvery)}
	net := bsnet.NewFromIpfsHost(h)
	e.bs = bitswap.New(ctx, net, nil, repo.Store().Blockstore(),
		bitswap.WithPeerBlockRequestFilter(e.allow),
		// Answer every refused or missing want with DONT_HAVE, so that
		// a refusal looks like an absence.
		bitswap.SetSendDontHaves(true),
	)
	e.dag = transfer.NewServer(ctx, repo, log)
	h.SetStreamHandler(transfer.ID, e.dag.Handle)
	return e
}

// DisableStream makes Fetch use bitswap only (benchmarks compare the two).
// The node keeps serving DAG streams to others.
func (e *Exchange) DisableStream() { e.noStream.Store(true) }

// allow is bitswap's per-want filter.
func (e *Exchange) allow(p peer.ID, c cid.Cid) bool {
	ctx, cancel := context.WithTimeout(e.ctx, DecisionTimeout)
	defer cancel()
	d, err := e.repo.MayServe(ctx, p.String(), c)
	if err != nil {
		e.refused.Add(1)
		if e.decisionLog.Allow(p) { // a flood of failing decisions costs one line a minute
			e.log.Warn("exchange: access decision failed; block refused (further failures for this peer are not logged for a minute)", "peer", p, "cid", c, "err", err)
		}
		return false
	}
	ok, reason := d.Allow, string(d.Rule)+": "+d.Reason
	e.log.Debug("exchange: want", "peer", p, "cid", c, "served", ok, "why", reason)
	if ok {
		e.served.Add(1)
		e.repo.AuditServed(p.String(), c) // queued; the audit log records each record once per peer
	} else {
		e.refused.Add(1)
		e.logRefusal(p, reason)
	}
	return ok
}

// logRefusal logs that a peer asked for a block it may not have, at most
// once per peer per peerlimit.LogEvery, so a flood of wants costs one line.
func (e *Exchange) logRefusal(p peer.ID, reason string) {
	if !e.refusalLog.Allow(p) {
		return
	}
	e.log.Info("exchange: refused a want (answered as a block not held); further refusals for this peer are not logged for a minute", "peer", p, "why", reason)
}

// Stats counts the wants peers sent this exchange since it started.
type Stats struct {
	// Allowed counts wants the access index allowed (the block may still
	// have been missing).
	Allowed int64 `json:"allowed"`
	// Refused counts wants the access index refused; they were answered
	// as for a block the node does not hold.
	Refused int64 `json:"refused"`

	// StreamFetches counts fetches the DAG stream completed alone;
	// StreamPartial those where bitswap fetched what a stream did not
	// deliver after the stream sent some blocks; StreamBlocks the blocks
	// received over DAG streams.
	StreamFetches int64 `json:"stream_fetches"`
	StreamPartial int64 `json:"stream_partial"`
	StreamBlocks  int64 `json:"stream_blocks"`
	// Serve counts the DAG streams this node answered.
	Serve transfer.ServerStats `json:"serve"`
}

// Stats returns the counts of wants allowed and refused so far, and of
// DAG streams.
func (e *Exchange) Stats() Stats {
	return Stats{Allowed: e.served.Load(), Refused: e.refused.Load(),
		StreamFetches: e.streamFull.Load(), StreamPartial: e.streamPartial.Load(),
		StreamBlocks: e.streamBlocks.Load(), Serve: e.dag.Stats()}
}

// Close stops bitswap. Fetches in flight fail.
func (e *Exchange) Close() error {
	e.closeOnce.Do(func() {
		e.host.RemoveStreamHandler(transfer.ID)
		e.closeErr = e.bs.Close()
		e.cancel()
	})
	return e.closeErr
}

// connect makes sure the host is connected to each of from, using the
// addresses in its peerstore. It fails only when none can be reached.
func (e *Exchange) connect(ctx context.Context, from []peer.ID) error {
	if len(from) == 0 {
		return nil
	}
	var errs []error
	for _, p := range from {
		if err := e.host.Connect(ctx, e.host.Peerstore().PeerInfo(p)); err != nil {
			errs = append(errs, fmt.Errorf("connect %s: %w", p, err))
		}
	}
	if len(errs) == len(from) {
		return errors.Join(errs...)
	}
	return nil
}

// FetchBlock gets one block, from the local store if it is there, else
// from connected peers (after connecting to from), and stores it.
func (e *Exchange) FetchBlock(ctx context.Context, c cid.Cid, from ...peer.ID) (blocks.Block, error) {
	if blk, err := e.repo.Store().Blockstore().Get(ctx, c); err == nil {
		return blk, nil
	}
	if err := e.connect(ctx, from); err != nil {
		return nil, fmt.Errorf("exchange: %w", err)
	}
	done, err := e.await(ctx, []cid.Cid{c})
	if err != nil {
		return nil, err
	}
	defer done()
	blk, err := e.bs.GetBlock(ctx, c)
	if err != nil {
		return nil, fmt.Errorf("exchange: get %s: %w", c, err)
	}
	if err := e.keep(ctx, []blocks.Block{blk}); err != nil {
		return nil, err
	}
	return blk, nil
}

// keep stores blocks received from bitswap (whose bytes bitswap checked
// against the CIDs it asked for) and tells bitswap they are here. The
// boxo bitswap client does not store what it receives; a blockservice
// normally does this.
func (e *Exchange) keep(ctx context.Context, blks []blocks.Block) error {
	if len(blks) == 0 {
		return nil
	}
	if err := e.repo.Store().Blockstore().PutMany(ctx, blks); err != nil {
		return fmt.Errorf("exchange: store blocks: %w", err)
	}
	if err := e.bs.NotifyNewBlocks(ctx, blks...); err != nil {
		e.log.Debug("exchange: notify new blocks", "err", err)
	}
	return nil
}

// fetchBatch bounds how many blocks one round of a fetch asks for.
const fetchBatch = 256

// Fetch gets the whole DAG rooted at root into the local store, from the
// given peers (connected to first) and any other connected peer; then pins
// root and indexes its blocks as a record's, so the node can serve them on
// to whoever may read the record, and tells the repo's listeners it
// arrived (keyshare.Repo.RecordArrived). Unless the root is held already, it
// first asks the given peers that speak the DAG stream protocol, in order,
// for the whole DAG in one stream, until one sends something; whatever is
// still missing then (the peer does not speak it, refused, or the stream
// broke: blocks already received are kept) comes over bitswap, in one
// session, from every connected peer. Blocks already held are not asked
// for. Fetch fails when ctx ends before every block arrived; what did
// arrive stays in the store, unpinned.
func (e *Exchange) Fetch(ctx context.Context, root cid.Cid, from ...peer.ID) error {
	if err := e.connect(ctx, from); err != nil {
		return fmt.Errorf("exchange: fetch %s: %w", root, err)
	}
	if !e.fetchStream(ctx, root, from) {
		if err := e.fetchBitswap(ctx, root); err != nil {
			return err
		}
	}
	if err := e.repo.Store().Pin(ctx, root); err != nil {
		return fmt.Errorf("exchange: fetch %s: %w", root, err)
	}
	if err := e.repo.IndexRecordBlocks(ctx, root); err != nil {
		return fmt.Errorf("exchange: fetch %s: %w", root, err)
	}
	e.repo.RecordArrived(root)
	return nil
}

// fetchStream tries the DAG stream with each of from in turn and reports
// whether one delivered the whole DAG.
func (e *Exchange) fetchStream(ctx context.Context, root cid.Cid, from []peer.ID) bool {
	if e.noStream.Load() || len(from) == 0 {
		return false
	}
	if has, err := e.repo.Store().Blockstore().Has(ctx, root); err != nil || has {
		return false
	}
	for _, p := range from {
		// Skip a peer known not to speak the protocol (identify has
		// run); otherwise the stream negotiation tells.
		if protos, err := e.host.Peerstore().GetProtocols(p); err == nil && len(protos) > 0 {
			if ok, _ := e.host.Peerstore().SupportsProtocols(p, transfer.ID); len(ok) == 0 {
				continue
			}
		}
		res, err := transfer.Fetch(ctx, e.host, p, root, e.keep)
		e.streamBlocks.Add(int64(res.Blocks))
		if err == nil && res.Complete {
			e.streamFull.Add(1)
			return true
		}
		e.log.Debug("exchange: DAG stream did not deliver the whole DAG; using bitswap", "peer", p, "root", root,
			"blocks", res.Blocks, "err", err)
		if res.Blocks > 0 {
			e.streamPartial.Add(1)
			return false
		}
		if ctx.Err() != nil {
			return false
		}
	}
	return false
}

// fetchBitswap gets every block of the DAG rooted at root that the store
// does not hold in one bitswap session.
func (e *Exchange) fetchBitswap(ctx context.Context, root cid.Cid) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sess := e.bs.NewSession(ctx)
	bs := e.repo.Store().Blockstore()
	seen := map[cid.Cid]bool{root: true}
	level := []cid.Cid{root}
	for len(level) > 0 {
		var next []cid.Cid
		var want []cid.Cid
		var held []blocks.Block
		for _, c := range level {
			if c.Prefix().Codec == cid.Raw {
				// No links: whether it is here is all that matters.
				has, err := bs.Has(ctx, c)
				if err != nil {
					return fmt.Errorf("exchange: fetch %s: %w", root, err)
				}
				if !has {
					want = append(want, c)
				}
				continue
			}
			blk, err := bs.Get(ctx, c)
			if err == nil {
				held = append(held, blk)
				continue
			}
			if !errors.Is(err, store.ErrMissing) {
				return fmt.Errorf("exchange: fetch %s: %w", root, err)
			}
			want = append(want, c)
		}
		got, err := e.getMany(ctx, sess, want)
		if err != nil {
			return fmt.Errorf("exchange: fetch %s: %w", root, err)
		}
		if err := e.keep(ctx, got); err != nil {
			return err
		}
		for _, blk := range append(held, got...) {
			links, err := store.Links(blk)
			if err != nil {
				return fmt.Errorf("exchange: fetch %s: %w", root, err)
			}
			for _, l := range links {
				if !seen[l] {
					seen[l] = true
					next = append(next, l)
				}
			}
		}
		level = next
	}
	return nil
}

// getter is what getMany needs of a bitswap session.
type getter interface {
	GetBlocks(context.Context, []cid.Cid) (<-chan blocks.Block, error)
}

// getMany asks the session for cs, fetchBatch at a time, and returns the
// blocks once all arrived.
func (e *Exchange) getMany(ctx context.Context, sess getter, cs []cid.Cid) ([]blocks.Block, error) {
	var out []blocks.Block
	for start := 0; start < len(cs); start += fetchBatch {
		got, err := e.getBatch(ctx, sess, cs[start:min(start+fetchBatch, len(cs))])
		if err != nil {
			return nil, err
		}
		out = append(out, got...)
	}
	return out, nil
}

// getBatch asks the session for one batch, after cancelling stale wants
// for it (wants.go), and returns the blocks once all arrived.
func (e *Exchange) getBatch(ctx context.Context, sess getter, batch []cid.Cid) ([]blocks.Block, error) {
	done, err := e.await(ctx, batch)
	if err != nil {
		return nil, err
	}
	defer done()
	ch, err := sess.GetBlocks(ctx, batch)
	if err != nil {
		return nil, err
	}
	out := make([]blocks.Block, 0, len(batch))
	for blk := range ch {
		out = append(out, blk)
	}
	if n := len(out); n < len(batch) {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("%d of %d blocks not received: %w", len(batch)-n, len(batch), err)
		}
		return nil, fmt.Errorf("%d of %d blocks not received", len(batch)-n, len(batch))
	}
	return out, nil
}
