// Package stream is what every BlockMRS libp2p protocol service does with
// a stream, whatever it carries: on the serving side, admit a stream
// (bounded at once, rate-limited per peer, counted in the resource
// manager, under a deadline), run the protocol's handler and close or
// reset; on the asking side, connect, open, write frames, read one reply
// frame, close. Frames are protocol.ReadFrame/WriteFrame (uvarint length,
// body); what the bodies mean stays in each service.
package stream

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	libp2pproto "github.com/libp2p/go-libp2p/core/protocol"

	"github.com/blockmrs/blockmrs/node/internal/peerlimit"
	"github.com/blockmrs/blockmrs/protocol"
)

// Errors a handler or an asker sees.
var (
	// ErrEmptyFrame is a frame of no bytes where a message was due.
	ErrEmptyFrame = errors.New("empty frame")
	// ErrNoAddrs is returned by Dial for a peer neither connected nor
	// with a known address.
	ErrNoAddrs = errors.New("no known address")
	// ErrBusy is logged for a stream refused because MaxServing streams
	// are being served.
	ErrBusy = errors.New("too many streams at once")
	// ErrRateLimit is logged for a stream refused by the per-peer rate.
	ErrRateLimit = errors.New("rate limit")
	// ErrClosed is returned by Go once the server is closed.
	ErrClosed = errors.New("the service is stopping")
)

// Limits are what a Server admits and how it treats a stream.
type Limits struct {
	// Service names the service in the resource manager; empty: none.
	Service string
	// PeerRate streams a second from one peer, PeerBurst at once; a
	// PeerRate of 0 means no per-peer limit.
	PeerRate  float64
	PeerBurst int
	// MaxServing bounds the streams served at once, from all peers;
	// 0 means no bound.
	MaxServing int
	// Timeout is the stream's deadline, both ways, and the handler
	// context's, from when the stream is admitted; the handler may move
	// the stream's deadline (one per step of a longer exchange).
	Timeout time.Duration
	// HandlerTimeout, when set, replaces Timeout for the handler's
	// context (a handler whose steps each have Timeout).
	HandlerTimeout time.Duration
	// Memory is reserved in the stream's scope for the handler (the
	// largest frame it reads), at MemoryPriority; 0 reserves nothing.
	Memory         int
	MemoryPriority uint8
	// Limited, when set, answers a stream over the per-peer rate instead
	// of resetting it (a frame that says why), then the stream is closed.
	Limited func(network.Stream)
	// Refused is the log message for a refused stream or message
	// ("refused a message" when empty).
	Refused string
	// LogEvery is how often one peer's refusals are logged; 0 means
	// peerlimit.LogEvery, a negative value every time.
	LogEvery time.Duration
}

// Handler serves one admitted stream from peer p. An error resets the
// stream and is logged as a refusal; nil closes it.
type Handler func(ctx context.Context, st network.Stream, p peer.ID) error

// Server admits a service's inbound streams. Close waits for the streams
// being served. It is safe for concurrent use.
type Server struct {
	lim     Limits
	log     *slog.Logger
	rate    *peerlimit.Rate
	logged  *peerlimit.Throttle
	serving chan struct{}

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	closed   bool
	handlers []served // what Close unregisters
}

type served struct {
	host  host.Host
	proto libp2pproto.ID
}

// NewServer makes a server with lim, logging to log (nil: slog.Default()).
func NewServer(log *slog.Logger, lim Limits) *Server {
	if log == nil {
		log = slog.Default()
	}
	if lim.Refused == "" {
		lim.Refused = "refused a message"
	}
	if lim.LogEvery == 0 {
		lim.LogEvery = peerlimit.LogEvery
	}
	s := &Server{lim: lim, log: log, logged: peerlimit.NewThrottle(max(lim.LogEvery, 0))}
	if lim.PeerRate > 0 {
		s.rate = peerlimit.NewRate(lim.PeerRate, lim.PeerBurst)
	}
	if lim.MaxServing > 0 {
		s.serving = make(chan struct{}, lim.MaxServing)
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s
}

// Context is cancelled by Close.
func (s *Server) Context() context.Context { return s.ctx }

// Serve registers on h the handler of proto: each stream is admitted by
// the limits, then served by hd. Close unregisters it.
func (s *Server) Serve(h host.Host, proto libp2pproto.ID, hd Handler) {
	s.mu.Lock()
	s.handlers = append(s.handlers, served{h, proto})
	s.mu.Unlock()
	h.SetStreamHandler(proto, func(st network.Stream) { s.serve(st, hd) })
}

func (s *Server) serve(st network.Stream, h Handler) {
	if !s.enter() {
		_ = st.Reset()
		return
	}
	defer s.wg.Done()
	p := st.Conn().RemotePeer()
	if s.serving != nil {
		select {
		case s.serving <- struct{}{}:
			defer func() { <-s.serving }()
		default:
			s.Reject(p, ErrBusy)
			_ = st.Reset()
			return
		}
	}
	if s.rate != nil && !s.rate.Allow(p) {
		if s.lim.Limited != nil {
			_ = st.SetDeadline(time.Now().Add(s.lim.Timeout))
			s.lim.Limited(st)
			_ = st.Close()
			return
		}
		s.Reject(p, ErrRateLimit)
		_ = st.Reset()
		return
	}
	if s.lim.Service != "" {
		if err := st.Scope().SetService(s.lim.Service); err != nil {
			_ = st.Reset()
			return
		}
	}
	if s.lim.Memory > 0 {
		if err := st.Scope().ReserveMemory(s.lim.Memory, s.lim.MemoryPriority); err != nil {
			_ = st.Reset()
			return
		}
		defer st.Scope().ReleaseMemory(s.lim.Memory)
	}
	_ = st.SetDeadline(time.Now().Add(s.lim.Timeout))
	ctx, cancel := context.WithTimeout(s.ctx, cmp(s.lim.HandlerTimeout, s.lim.Timeout))
	defer cancel()
	if err := h(ctx, st, p); err != nil {
		s.Reject(p, err)
		_ = st.Reset()
		return
	}
	_ = st.Close()
}

// cmp returns a unless it is zero, then b.
func cmp(a, b time.Duration) time.Duration {
	if a != 0 {
		return a
	}
	return b
}

// enter counts a stream or a task Close waits for, unless closed.
func (s *Server) enter() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.wg.Add(1)
	return true
}

// Go runs fn in a goroutine Close waits for; after Close it does not
// run fn and returns ErrClosed.
func (s *Server) Go(fn func()) error {
	if !s.enter() {
		return ErrClosed
	}
	go func() {
		defer s.wg.Done()
		fn()
	}()
	return nil
}

// Reject logs a refusal from p: the first, then at most one per
// Limits.LogEvery, so a flood from one peer costs a line a minute.
func (s *Server) Reject(p peer.ID, err error) {
	if s.lim.LogEvery < 0 || s.logged.Allow(p) {
		s.log.Info(s.lim.Refused, "peer", p, "err", err)
	}
}

// Close unregisters the handlers, admits no more streams, cancels the
// handlers' contexts and waits for them to return. Closing twice is
// harmless.
func (s *Server) Close() {
	s.mu.Lock()
	s.closed = true
	handlers := s.handlers
	s.handlers = nil
	s.mu.Unlock()
	for _, h := range handlers {
		h.host.RemoveStreamHandler(h.proto)
	}
	s.cancel()
	s.wg.Wait()
}

// Request serves a protocol of one request frame and one reply frame: it
// reads a non-empty frame of at most maxBody bytes, lets answer make the
// reply, and writes it. An error from answer resets the stream.
func Request(maxBody int, answer func(ctx context.Context, p peer.ID, body []byte) ([]byte, error)) Handler {
	return func(ctx context.Context, st network.Stream, p peer.ID) error {
		body, err := ReadFrame(bufio.NewReader(st), maxBody)
		if err != nil {
			return err
		}
		reply, err := answer(ctx, p, body)
		if err != nil {
			return err
		}
		return WriteFrames(st, reply)
	}
}

// Typed serves a protocol of one request frame and one reply frame whose
// bodies are messages of types Q and R: decode reads the request (an
// error resets the stream), answer makes the reply (a refusal is a reply
// too, in the protocol's error form), encode writes it.
func Typed[Q, R any](maxBody int, decode func([]byte) (Q, error), answer func(context.Context, peer.ID, Q) R, encode func(R) ([]byte, error)) Handler {
	return Request(maxBody, func(ctx context.Context, p peer.ID, body []byte) ([]byte, error) {
		q, err := decode(body)
		if err != nil {
			return nil, err
		}
		return encode(answer(ctx, p, q))
	})
}

// ReadFrame reads one frame of at most maxBody bytes; an empty frame is
// ErrEmptyFrame, a stream that ends before it io.EOF.
func ReadFrame(r *bufio.Reader, maxBody int) ([]byte, error) {
	body, err := protocol.ReadFrame(r, maxBody)
	if err != nil {
		return nil, err
	}
	if len(body) == 0 {
		return nil, ErrEmptyFrame
	}
	return body, nil
}

// WriteFrames writes each body as a frame, in one flush.
func WriteFrames(st network.Stream, bodies ...[]byte) error {
	w := bufio.NewWriter(st)
	for _, b := range bodies {
		if err := protocol.WriteFrame(w, b); err != nil {
			return err
		}
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("write frame: %w", err)
	}
	return nil
}

// Dialer opens a service's outbound streams.
type Dialer struct {
	// Host opens the streams.
	Host host.Host
	// Protocol is the stream's protocol.
	Protocol libp2pproto.ID
	// Service names the stream's service in the resource manager.
	Service string
	// Timeout bounds opening the stream, and is its deadline.
	Timeout time.Duration
	// DialTimeout, when set, makes Open connect first to a peer not
	// connected, at its peerstore addresses (none: ErrNoAddrs).
	DialTimeout time.Duration
	// Limited allows the stream over a limited (relayed) connection.
	Limited bool
	// Memory is reserved in the stream's scope, at MemoryPriority, until
	// the stream is closed or reset; 0 reserves nothing.
	Memory         int
	MemoryPriority uint8
}

// Open connects to p if asked to (Dialer.DialTimeout), opens a stream,
// names its service and sets its deadline. The caller closes or resets
// it.
func (d Dialer) Open(ctx context.Context, p peer.ID) (network.Stream, error) {
	if d.DialTimeout > 0 && d.Host.Network().Connectedness(p) != network.Connected {
		addrs := d.Host.Peerstore().Addrs(p)
		if len(addrs) == 0 {
			return nil, ErrNoAddrs
		}
		dctx, cancel := context.WithTimeout(ctx, d.DialTimeout)
		err := d.Host.Connect(dctx, peer.AddrInfo{ID: p, Addrs: addrs})
		cancel()
		if err != nil {
			return nil, fmt.Errorf("connect: %w", err)
		}
	}
	sctx, cancel := context.WithTimeout(ctx, d.Timeout)
	defer cancel()
	if d.Limited {
		sctx = network.WithAllowLimitedConn(sctx, d.Service)
	}
	st, err := d.Host.NewStream(sctx, p, d.Protocol)
	if err != nil {
		return nil, fmt.Errorf("open %s stream: %w", d.Protocol, err)
	}
	if d.Service != "" {
		if err := st.Scope().SetService(d.Service); err != nil {
			_ = st.Reset()
			return nil, fmt.Errorf("%s: %w", d.Protocol, err)
		}
	}
	if d.Memory > 0 {
		if err := st.Scope().ReserveMemory(d.Memory, d.MemoryPriority); err != nil {
			_ = st.Reset()
			return nil, fmt.Errorf("%s: reserve memory: %w", d.Protocol, err)
		}
	}
	_ = st.SetDeadline(time.Now().Add(d.Timeout))
	return st, nil
}

// Ask opens a stream to p, writes the request frames, closes its side
// and reads one reply frame of at most maxReply bytes (empty is
// ErrEmptyFrame); any failure, or ctx ending, resets the stream.
func (d Dialer) Ask(ctx context.Context, p peer.ID, maxReply int, request ...[]byte) ([]byte, error) {
	st, err := d.Open(ctx, p)
	if err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() { _ = st.Reset() })
	defer stop()
	if err := WriteFrames(st, request...); err != nil {
		_ = st.Reset()
		return nil, err
	}
	if err := st.CloseWrite(); err != nil {
		_ = st.Reset()
		return nil, fmt.Errorf("close the request: %w", err)
	}
	reply, err := ReadFrame(bufio.NewReader(st), maxReply)
	if err != nil {
		_ = st.Reset()
		return nil, fmt.Errorf("read reply: %w", err)
	}
	_ = st.Close()
	return reply, nil
}
