package stream

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/blockmrs/blockmrs/node/internal/streamtest"
	"github.com/blockmrs/blockmrs/protocol"
)

const testProto = "/blockmrs/test/1.0.0"

// logBuf collects log lines from several goroutines.
type logBuf struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuf) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuf) count(s string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.Count(b.buf.String(), s)
}

func newHost(t *testing.T) host.Host { return streamtest.Host(t) }

func link(t *testing.T, from, to host.Host) {
	t.Helper()
	if err := from.Connect(t.Context(), peer.AddrInfo{ID: to.ID(), Addrs: to.Addrs()}); err != nil {
		t.Fatal(err)
	}
}

// serveOn registers a server with lim and h on a new host; it returns the
// host, the server and its log.
func serveOn(t *testing.T, lim Limits, h Handler) (host.Host, *Server, *logBuf) {
	t.Helper()
	lb := &logBuf{}
	srv := NewServer(slog.New(slog.NewTextHandler(lb, nil)), lim)
	hs := newHost(t)
	srv.Serve(hs, testProto, h)
	t.Cleanup(srv.Close)
	return hs, srv, lb
}

// echo answers a request with "re:" and the request.
func echo(calls *atomic.Int32) Handler {
	return Request(16, func(_ context.Context, _ peer.ID, body []byte) ([]byte, error) {
		calls.Add(1)
		return append([]byte("re:"), body...), nil
	})
}

// raw writes data on a stream from c to s and reads the reply.
func raw(t *testing.T, c, s host.Host, data []byte) ([]byte, error) {
	t.Helper()
	return streamtest.Send(t, c, s.ID(), testProto, data)
}

// begin opens a stream from c to s and writes data, leaving it open.
func begin(t *testing.T, c, s host.Host, data []byte) network.Stream {
	t.Helper()
	st, err := c.NewStream(t.Context(), s.ID(), testProto)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Write(data); err != nil {
		t.Fatal(err)
	}
	return st
}

func dialer(c host.Host) Dialer {
	return Dialer{Host: c, Protocol: testProto, Timeout: 10 * time.Second, DialTimeout: 10 * time.Second}
}

func TestAskAndReplyOnTheWire(t *testing.T) {
	var calls atomic.Int32
	hs, _, _ := serveOn(t, Limits{Timeout: 10 * time.Second}, echo(&calls))
	hc := newHost(t)
	hc.Peerstore().AddAddrs(hs.ID(), hs.Addrs(), time.Hour)

	// The dialer connects by itself from the peerstore's addresses.
	got, err := dialer(hc).Ask(t.Context(), hs.ID(), 16, []byte("hi"))
	if err != nil || string(got) != "re:hi" {
		t.Fatalf("Ask: %q %v", got, err)
	}
	// The bytes: uvarint length, then the body, nothing more.
	reply, err := raw(t, hc, hs, []byte{2, 'h', 'o'})
	if err != nil || !bytes.Equal(reply, []byte{5, 'r', 'e', ':', 'h', 'o'}) {
		t.Fatalf("reply bytes %x %v", reply, err)
	}
	if calls.Load() != 2 {
		t.Fatalf("%d calls", calls.Load())
	}
}

func TestHostileFramesReset(t *testing.T) {
	var calls atomic.Int32
	hs, _, lb := serveOn(t, Limits{Timeout: 10 * time.Second, Refused: "test: refused", LogEvery: -1}, echo(&calls))
	hc := newHost(t)
	link(t, hc, hs)
	for name, data := range map[string][]byte{
		"oversized":   append(binary.AppendUvarint(nil, 17), make([]byte, 17)...),
		"huge length": binary.AppendUvarint(nil, 1<<40),
		"empty":       {0},
		"non-minimal": {0x81, 0x00, 'x'},
		"truncated":   {5, 'a'},
		"nothing":     nil,
	} {
		if reply, err := raw(t, hc, hs, data); err == nil || len(reply) > 0 {
			t.Errorf("%s frame: reply %q, err %v; want a reset", name, reply, err)
		}
	}
	if calls.Load() != 0 {
		t.Fatalf("the handler ran %d times on bad frames", calls.Load())
	}
	if n := lb.count("test: refused"); n != 6 {
		t.Fatalf("%d refusals logged, want 6", n)
	}
	// The server goes on serving.
	if got, err := dialer(hc).Ask(t.Context(), hs.ID(), 16, []byte("ok")); err != nil || string(got) != "re:ok" {
		t.Fatalf("after the bad frames: %q %v", got, err)
	}
}

func TestRefusalsLoggedOncePerInterval(t *testing.T) {
	var calls atomic.Int32
	hs, _, lb := serveOn(t, Limits{Timeout: 10 * time.Second, Refused: "test: refused"}, echo(&calls))
	hc := newHost(t)
	link(t, hc, hs)
	for range 5 {
		_, _ = raw(t, hc, hs, []byte{0})
	}
	if n := lb.count("test: refused"); n != 1 {
		t.Fatalf("%d refusals logged for one peer within a minute, want 1", n)
	}
}

func TestSlowPeerHitsTheDeadline(t *testing.T) {
	var calls atomic.Int32
	hs, srv, lb := serveOn(t, Limits{Timeout: 200 * time.Millisecond, Refused: "test: refused"}, echo(&calls))
	hc := newHost(t)
	link(t, hc, hs)
	// Half a frame, then nothing: the server's deadline resets the stream.
	st := begin(t, hc, hs, []byte{5, 'a'})
	defer st.Close()
	_ = st.SetReadDeadline(time.Now().Add(30 * time.Second))
	if n, err := st.Read(make([]byte, 8)); err == nil || errors.Is(err, io.EOF) {
		t.Fatalf("read %d bytes, err %v; want a reset", n, err)
	}
	if calls.Load() != 0 || lb.count("deadline") != 1 {
		t.Fatalf("calls %d; log %q", calls.Load(), lb.buf.String())
	}
	srv.Close() // returns: nothing is left in flight
}

func TestTooManyStreamsFromOnePeer(t *testing.T) {
	var calls atomic.Int32
	hs, _, lb := serveOn(t, Limits{Timeout: 10 * time.Second, PeerRate: 0.001, PeerBurst: 3}, echo(&calls))
	flood, other := newHost(t), newHost(t)
	link(t, flood, hs)
	link(t, other, hs)
	for i := range 3 {
		if _, err := dialer(flood).Ask(t.Context(), hs.ID(), 16, []byte("x")); err != nil {
			t.Fatalf("stream %d of the burst: %v", i, err)
		}
	}
	if _, err := dialer(flood).Ask(t.Context(), hs.ID(), 16, []byte("x")); err == nil {
		t.Fatal("a stream past the burst was answered")
	}
	if lb.count(ErrRateLimit.Error()) != 1 {
		t.Fatalf("log %q", lb.buf.String())
	}
	if _, err := dialer(other).Ask(t.Context(), hs.ID(), 16, []byte("y")); err != nil {
		t.Fatalf("another peer paid for the flood: %v", err)
	}
}

func TestLimitedAnswersInsteadOfReset(t *testing.T) {
	var calls atomic.Int32
	lim := Limits{Timeout: 10 * time.Second, PeerRate: 0.001, PeerBurst: 1,
		Limited: func(st network.Stream) { _ = WriteFrames(st, []byte("wait")) }}
	hs, _, _ := serveOn(t, lim, echo(&calls))
	hc := newHost(t)
	link(t, hc, hs)
	for i, want := range []string{"re:x", "wait"} {
		if got, err := dialer(hc).Ask(t.Context(), hs.ID(), 16, []byte("x")); err != nil || string(got) != want {
			t.Fatalf("stream %d: %q %v, want %q", i, got, err, want)
		}
	}
}

func TestMaxServingBoundsStreamsAtOnce(t *testing.T) {
	entered, release := make(chan struct{}, 4), make(chan struct{})
	block := Request(16, func(ctx context.Context, _ peer.ID, body []byte) ([]byte, error) {
		entered <- struct{}{}
		select {
		case <-release:
		case <-ctx.Done():
		}
		return body, nil
	})
	hs, _, lb := serveOn(t, Limits{Timeout: 10 * time.Second, MaxServing: 1}, block)
	hc := newHost(t)
	link(t, hc, hs)
	first := make(chan error, 1)
	go func() {
		_, err := dialer(hc).Ask(context.Background(), hs.ID(), 16, []byte("1"))
		first <- err
	}()
	<-entered
	if _, err := dialer(hc).Ask(t.Context(), hs.ID(), 16, []byte("2")); err == nil {
		t.Fatal("a second stream was served while the bound was reached")
	}
	if lb.count(ErrBusy.Error()) != 1 {
		t.Fatalf("log %q", lb.buf.String())
	}
	close(release)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	// The first stream's slot frees once its handler has returned, just
	// after its reply: a stream is served again within a few tries.
	for try := 0; ; try++ {
		got, err := dialer(hc).Ask(t.Context(), hs.ID(), 16, []byte("3"))
		if err == nil && string(got) == "3" {
			break
		}
		if try == 50 {
			t.Fatalf("no stream served after the first ended: %q %v", got, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestPeerThatResets(t *testing.T) {
	entered, got := make(chan struct{}), make(chan error, 1)
	h := func(_ context.Context, st network.Stream, _ peer.ID) error {
		close(entered)
		_, err := ReadFrame(bufio.NewReader(st), 1<<20)
		got <- err
		return err
	}
	hs, _, _ := serveOn(t, Limits{Timeout: 10 * time.Second}, h)
	hc := newHost(t)
	link(t, hc, hs)
	st := begin(t, hc, hs, []byte{0x80, 0x08, 'a'}) // 1024 bytes announced, one sent
	<-entered                                       // the stream reached the handler (protocol negotiated)
	_ = st.Reset()
	if err := <-got; err == nil {
		t.Fatal("the handler read a frame from a stream reset half-way")
	}
}

func TestCloseCancelsAndWaits(t *testing.T) {
	entered := make(chan struct{})
	var ended atomic.Bool
	h := func(ctx context.Context, _ network.Stream, _ peer.ID) error {
		close(entered)
		<-ctx.Done()
		ended.Store(true)
		return ctx.Err()
	}
	hs, srv, _ := serveOn(t, Limits{Timeout: time.Minute}, h)
	hc := newHost(t)
	link(t, hc, hs)
	st := begin(t, hc, hs, []byte{1, 'x'})
	defer st.Close()
	<-entered
	srv.Close()
	if !ended.Load() {
		t.Fatal("Close returned before the handler")
	}
	if err := srv.Go(func() {}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Go after Close: %v", err)
	}
	// The protocol is no longer served: opening (negotiated lazily, on
	// the first read) fails.
	if st, err := hc.NewStream(t.Context(), hs.ID(), testProto); err == nil {
		_, _ = st.Write([]byte{1, 'y'})
		_ = st.CloseWrite()
		if reply, err := io.ReadAll(st); err == nil || len(reply) > 0 {
			t.Fatalf("served after Close: %q %v", reply, err)
		}
		_ = st.Reset()
	}
}

func TestDialerErrors(t *testing.T) {
	hs, _, _ := serveOn(t, Limits{Timeout: 10 * time.Second}, Request(64, func(context.Context, peer.ID, []byte) ([]byte, error) {
		return bytes.Repeat([]byte("z"), 32), nil
	}))
	hc := newHost(t)
	stranger := newHost(t)
	if _, err := dialer(hc).Ask(t.Context(), stranger.ID(), 16); !errors.Is(err, ErrNoAddrs) {
		t.Fatalf("unknown peer: %v", err)
	}
	link(t, hc, hs)
	if _, err := dialer(hc).Ask(t.Context(), hs.ID(), 16, []byte("q")); !errors.Is(err, protocol.ErrFrameTooLarge) {
		t.Fatalf("reply over the limit: %v", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := dialer(hc).Ask(ctx, hs.ID(), 64, []byte("q")); err == nil {
		t.Fatal("Ask with a cancelled context succeeded")
	}
}
