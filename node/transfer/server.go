package transfer

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/node/internal/peerlimit"
	"github.com/blockmrs/blockmrs/store"
)

// Timeouts of a DAG stream. Neither depends on the record's size: a
// stream stays open as long as it makes progress.
const (
	// RequestTimeout bounds how long a server waits for the request.
	RequestTimeout = 10 * time.Second
	// IdleTimeout bounds each read and write of a frame on either side.
	IdleTimeout = 30 * time.Second
	// DecisionTimeout bounds one access decision.
	DecisionTimeout = 5 * time.Second
)

// MaxStreams bounds the DAG streams one server sends at the same time;
// a request over it is answered as for a root the server does not hold
// (the client then uses bitswap).
const MaxStreams = 8

// readAhead is how many blocks the server reads ahead of the network.
const readAhead = 2

// serverMemory is what a server reserves in the stream's resource scope:
// the blocks it reads ahead plus the one being written.
const serverMemory = (readAhead + 2) * MaxFrameSize

// ServerStats counts what a server did.
type ServerStats struct {
	// Served counts requests answered with at least the root.
	Served int64 `json:"served"`
	// Refused counts requests answered with nothing (refused, not held,
	// or over MaxStreams).
	Refused int64 `json:"refused"`
	// Bad counts streams reset for a malformed request.
	Bad int64 `json:"bad"`
	// Blocks counts blocks sent.
	Blocks int64 `json:"blocks"`
}

// Server answers DAG requests from one repo. Register Handle on a host
// with SetStreamHandler(ID, s.Handle).
type Server struct {
	repo         *keyshare.Repo
	log          *slog.Logger
	ctx          context.Context // ends when the owner stops serving
	sem          chan struct{}
	bads         *peerlimit.Throttle // a peer's malformed requests are logged once a minute
	decisionErrs *peerlimit.Throttle // so are failed access decisions for its requests

	served, refused, bad, blocks atomic.Int64
}

// NewServer returns a server of repo's record DAGs. Streams in flight are
// reset when ctx ends. log may be nil.
func NewServer(ctx context.Context, repo *keyshare.Repo, log *slog.Logger) *Server {
	if log == nil {
		log = slog.Default()
	}
	return &Server{repo: repo, log: log, ctx: ctx, sem: make(chan struct{}, MaxStreams),
		bads: peerlimit.NewThrottle(peerlimit.LogEvery), decisionErrs: peerlimit.NewThrottle(peerlimit.LogEvery)}
}

// Stats returns the server's counters.
func (s *Server) Stats() ServerStats {
	return ServerStats{Served: s.served.Load(), Refused: s.refused.Load(), Bad: s.bad.Load(), Blocks: s.blocks.Load()}
}

// Handle serves one DAG stream.
func (s *Server) Handle(st network.Stream) {
	p := st.Conn().RemotePeer()
	_ = st.SetReadDeadline(time.Now().Add(RequestTimeout))
	r := bufio.NewReaderSize(st, 2*MaxCIDSize)
	root, err := ReadRequest(r)
	if err == nil {
		// The client closes its side after the request.
		if _, rerr := r.ReadByte(); rerr != io.EOF {
			err = fmt.Errorf("%w: bytes after the request", ErrMalformed)
		}
	}
	if err != nil {
		s.bad.Add(1)
		if s.bads.Allow(p) {
			s.log.Info("dag: bad request; stream reset (further bad requests from this peer are not logged for a minute)", "peer", p, "err", err)
		}
		st.Reset()
		return
	}
	_ = st.CloseRead()

	ctx, cancel := context.WithCancel(s.ctx)
	defer cancel()
	select {
	case s.sem <- struct{}{}:
		defer func() { <-s.sem }()
	default:
		s.log.Debug("dag: too many streams; answering as not held", "peer", p, "root", root)
		s.refused.Add(1)
		s.finish(st, bufio.NewWriter(st))
		return
	}
	// Memory for sending is reserved only for a stream that may be
	// served; without it the answer is the same as when busy.
	if err := st.Scope().ReserveMemory(serverMemory, network.ReservationPriorityMedium); err != nil {
		s.log.Debug("dag: no memory for a stream; answering as not held", "peer", p, "err", err)
		s.refused.Add(1)
		s.finish(st, bufio.NewWriter(st))
		return
	}
	defer st.Scope().ReleaseMemory(serverMemory)
	if err := s.send(ctx, st, p, root); err != nil {
		s.log.Debug("dag: stream reset", "peer", p, "root", root, "err", err)
		st.Reset()
	}
}

// finish writes the end of the response and closes the stream.
func (s *Server) finish(st network.Stream, w *bufio.Writer) error {
	_ = st.SetWriteDeadline(time.Now().Add(IdleTimeout))
	if _, err := w.Write(End); err != nil {
		return err
	}
	if err := w.Flush(); err != nil {
		return err
	}
	return st.Close()
}

// send answers a request for root: every block reachable from root that
// the server holds and may send p, depth-first, then the end.
func (s *Server) send(ctx context.Context, st network.Stream, p peer.ID, root cid.Cid) error {
	w := bufio.NewWriterSize(st, 64<<10)
	g := &gate{s: s, peer: p, root: root, decided: map[string]bool{}}
	ok, err := g.rootAllowed(ctx)
	if err != nil || !ok {
		if err != nil && s.decisionErrs.Allow(p) {
			s.log.Warn("dag: access decision failed; request refused (further failures for this peer are not logged for a minute)", "peer", p, "root", root, "err", err)
		}
		s.refused.Add(1)
		return s.finish(st, w)
	}

	ch := make(chan blocks.Block, readAhead)
	walkErr := make(chan error, 1)
	wctx, stop := context.WithCancel(ctx)
	defer stop()
	go func() {
		defer close(ch)
		walkErr <- s.walk(wctx, g, func(b blocks.Block) error {
			select {
			case ch <- b:
				return nil
			case <-wctx.Done():
				return wctx.Err()
			}
		})
	}()
	var hdr []byte
	n := 0
	for b := range ch {
		hdr, err = appendFrameHeader(hdr[:0], b.Cid(), len(b.RawData()))
		if err != nil {
			// A stored block over the limit: the client gets the rest
			// over bitswap (which has the same limit).
			break
		}
		_ = st.SetWriteDeadline(time.Now().Add(IdleTimeout))
		if _, err := w.Write(hdr); err != nil {
			return err
		}
		if _, err := w.Write(b.RawData()); err != nil {
			return err
		}
		n++
	}
	stop()
	for range ch {
	}
	if err := <-walkErr; err != nil && !errors.Is(err, context.Canceled) {
		if err := ctx.Err(); err != nil {
			return err
		}
		// A missing or unreadable block ends the response early; the
		// client fetches the rest elsewhere.
		s.log.Debug("dag: walk stopped", "root", root, "err", err)
	}
	if n > 0 {
		s.served.Add(1)
		s.blocks.Add(int64(n))
		s.repo.AuditServed(p.String(), root) // the audit log records the record once
	} else {
		s.refused.Add(1)
	}
	return s.finish(st, w)
}

// walk calls fn for every block reachable from root that the server holds
// and may send, each once, depth-first: a block before its children,
// children in link order. A block it may not send is left out with
// everything below it; a missing one ends the walk.
func (s *Server) walk(ctx context.Context, g *gate, fn func(blocks.Block) error) error {
	st := s.repo.Store()
	seen := map[string]bool{}
	stack := []cid.Cid{g.root}
	for len(stack) > 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		c := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if seen[c.KeyString()] {
			continue
		}
		seen[c.KeyString()] = true
		if ok, err := g.allowed(ctx, c); err != nil || !ok {
			if err != nil {
				return err
			}
			continue
		}
		// The receiver hashes every block it accepts; hashing here too
		// would only double the work.
		blk, err := st.GetUnchecked(ctx, c)
		if err != nil {
			return err
		}
		links, err := store.Links(blk)
		if err != nil {
			return err
		}
		if err := fn(blk); err != nil {
			return err
		}
		for i := len(links) - 1; i >= 0; i-- {
			if !seen[links[i].KeyString()] {
				stack = append(stack, links[i])
			}
		}
	}
	return nil
}

// gate makes the serving decisions of one stream. The root is decided by
// keyshare.Repo.MayServe, as bitswap decides a want. A block under it is
// sent only if the access index lists it as a block of that record's DAG
// and MayServe would send it too; MayServe's answer for a record block
// depends only on the peer and on the set of records the block belongs
// to, so the gate asks once per distinct set (normally once: every block
// of a record belongs to that record alone).
type gate struct {
	s       *Server
	peer    peer.ID
	root    cid.Cid
	decided map[string]bool // sorted record roots joined → decision
}

func (g *gate) rootAllowed(ctx context.Context) (bool, error) {
	// The root must be a record's root, never a chain block: a chain
	// block links every record of its chain.
	o, err := g.owner(ctx, g.root)
	if err != nil || o.Chain != "" || !slices.Contains(o.Records, g.root) {
		return false, err
	}
	return g.decide(ctx, g.root, o)
}

func (g *gate) allowed(ctx context.Context, c cid.Cid) (bool, error) {
	if c == g.root {
		return true, nil // decided by rootAllowed
	}
	o, err := g.owner(ctx, c)
	if err != nil || o.Chain != "" || !slices.Contains(o.Records, g.root) {
		return false, err
	}
	return g.decide(ctx, c, o)
}

func (g *gate) owner(ctx context.Context, c cid.Cid) (keyshare.BlockOwner, error) {
	ctx, cancel := context.WithTimeout(ctx, DecisionTimeout)
	defer cancel()
	return g.s.repo.Owner(ctx, c)
}

func (g *gate) decide(ctx context.Context, c cid.Cid, o keyshare.BlockOwner) (bool, error) {
	keys := make([]string, len(o.Records))
	for i, r := range o.Records {
		keys[i] = r.KeyString()
	}
	slices.Sort(keys)
	k := strings.Join(keys, "\x00")
	if ok, done := g.decided[k]; done {
		return ok, nil
	}
	ctx, cancel := context.WithTimeout(ctx, DecisionTimeout)
	defer cancel()
	d, err := g.s.repo.MayServe(ctx, g.peer.String(), c)
	if err != nil {
		return false, err
	}
	ok := d.Allow
	g.s.log.Debug("dag: decision", "peer", g.peer, "root", g.root, "cid", c, "served", ok, "rule", d.Rule, "why", d.Reason)
	g.decided[k] = ok
	return ok, nil
}
