package deliver

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/blockmrs/blockmrs/node/internal/stream"
)

// Ask returns the decoded reply; a reply that does not decode, or that
// check refuses, fails like an unreachable peer: the peer backs off and
// is not asked again until it is due.
func TestAskDecodesChecksAndBacksOff(t *testing.T) {
	const proto = "/blockmrs/test-ask/1"
	server := newHost(t)
	var calls atomic.Int32
	srv := stream.NewServer(quiet().Logger, stream.Limits{Timeout: 10 * time.Second})
	srv.Serve(server, proto, stream.Request(64, func(_ context.Context, _ peer.ID, body []byte) ([]byte, error) {
		calls.Add(1)
		return append([]byte("re:"), body...), nil
	}))
	t.Cleanup(srv.Close)
	client := newHost(t)
	client.Peerstore().AddAddrs(server.ID(), server.Addrs(), time.Hour)
	d := stream.Dialer{Host: client, Protocol: proto, Timeout: 10 * time.Second, DialTimeout: 10 * time.Second}
	l, _ := rounds(t, client, quiet())
	p := server.ID()

	decode := func(b []byte) (*string, error) {
		s := string(b)
		if !strings.HasPrefix(s, "re:") {
			return nil, errors.New("not a reply")
		}
		return &s, nil
	}
	onlyOK := func(s *string) error {
		if *s != "re:ok" {
			return errors.New("unexpected reply " + *s)
		}
		return nil
	}
	got, err := Ask(t.Context(), l, d, p, 64, []byte("ok"), decode, onlyOK)
	if err != nil || *got != "re:ok" {
		t.Fatalf("Ask: %v, %v", got, err)
	}
	if _, err := Ask(t.Context(), l, d, p, 64, []byte("odd"), decode, onlyOK); err == nil || !strings.Contains(err.Error(), "unexpected reply re:odd") {
		t.Fatalf("a reply check refuses: %v", err)
	}
	if _, err := Ask(t.Context(), l, d, p, 64, []byte("ok"), decode, onlyOK); !errors.Is(err, ErrBackingOff) || calls.Load() != 2 {
		t.Fatalf("after a refused reply: %v, %d calls (want backing off, 2 calls)", err, calls.Load())
	}
	l.Succeeded(p.String())
	undecodable := func([]byte) (*string, error) { return nil, errors.New("bad frame") }
	if _, err := Ask(t.Context(), l, d, p, 64, []byte("ok"), undecodable, nil); err == nil || l.Due(p.String()) {
		t.Fatalf("an undecodable reply: %v, due %v (want an error and a backoff)", err, l.Due(p.String()))
	}
}
