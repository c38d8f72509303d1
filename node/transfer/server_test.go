package transfer

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
)

// logRecorder is a slog.Handler that keeps each record's message and
// "peer" attribute.
type logRecorder struct {
	mu    sync.Mutex
	lines []loggedLine
}

type loggedLine struct{ msg, peer string }

func (l *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRecorder) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *logRecorder) WithGroup(string) slog.Handler            { return l }
func (l *logRecorder) Handle(_ context.Context, r slog.Record) error {
	line := loggedLine{msg: r.Message}
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "peer" {
			line.peer = a.Value.String()
		}
		return true
	})
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, line)
	return nil
}

// byPeer counts the lines logged per peer (any message, any level).
func (l *logRecorder) byPeer() map[string]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := map[string]int{}
	for _, line := range l.lines {
		n[line.peer]++
	}
	return n
}

// TestMalformedRequestsLoggedOncePerPeer: a flood of malformed requests
// from one peer costs one log line, and another peer gets its own line.
func TestMalformedRequestsLoggedOncePerPeer(t *testing.T) {
	ctx := t.Context()
	mn, err := mocknet.FullMeshConnected(3)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mn.Close() })
	hosts := mn.Hosts()
	server, a, b := hosts[0], hosts[1], hosts[2]
	rec := &logRecorder{}
	// Malformed requests never reach the repo: none is needed.
	srv := NewServer(ctx, nil, slog.New(rec))
	server.SetStreamHandler(ID, srv.Handle)

	const flood = 500
	malformed := [][]byte{
		{0x80, 0x00},                 // non-minimal length
		{0},                          // empty
		{5, 'h', 'e', 'l', 'l', 'o'}, // not a CID
		{0xff, 0xff, 0xff, 0x0f},     // over the size limit
	}
	send := func(from host.Host, n int) {
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				st, err := from.NewStream(ctx, server.ID(), ID)
				if err != nil {
					t.Error(err)
					return
				}
				defer st.Close()
				st.Write(malformed[i%len(malformed)])
				st.CloseWrite()
				io.Copy(io.Discard, st) // reset: an error, no bytes
			})
		}
		wg.Wait()
	}
	waitBad := func(want int64) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for srv.Stats().Bad != want {
			if time.Now().After(deadline) {
				t.Fatalf("%d malformed requests counted, want %d", srv.Stats().Bad, want)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}

	send(a, flood)
	waitBad(flood)
	if got := rec.byPeer(); len(got) != 1 || got[a.ID().String()] != 1 {
		t.Fatalf("a flood of %d malformed requests from one peer logged %v, want one line for %s", flood, got, a.ID())
	}
	send(b, flood)
	send(a, flood)
	waitBad(3 * flood)
	want := map[string]int{a.ID().String(): 1, b.ID().String(): 1}
	if got := rec.byPeer(); len(got) != 2 || got[a.ID().String()] != 1 || got[b.ID().String()] != 1 {
		t.Fatalf("floods from two peers logged %v, want %v", got, want)
	}
	if s := srv.Stats(); s.Served != 0 || s.Refused != 0 {
		t.Fatalf("stats: %+v", s)
	}
}
