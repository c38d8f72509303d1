// Package streamtest has the helpers of the tests of the libp2p stream
// services: a loopback host, and a raw stream that writes what a hostile
// peer would.
package streamtest

import (
	"io"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	libp2pproto "github.com/libp2p/go-libp2p/core/protocol"
)

// Host starts a libp2p host listening on 127.0.0.1, closed when the test
// ends.
func Host(t testing.TB) host.Host {
	t.Helper()
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableMetrics())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// Send opens a stream of proto from h to p (failing the test when it
// cannot), writes data, closes its side and returns all it reads and the
// read error (a reset is an error).
func Send(t testing.TB, h host.Host, p peer.ID, proto libp2pproto.ID, data []byte) ([]byte, error) {
	t.Helper()
	st, err := h.NewStream(t.Context(), p, proto)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	_ = st.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := st.Write(data); err != nil {
		return nil, err
	}
	_ = st.CloseWrite()
	return io.ReadAll(st)
}
