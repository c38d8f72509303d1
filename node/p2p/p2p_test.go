package p2p

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/p2p/protocol/ping"
	ma "github.com/multiformats/go-multiaddr"
	msmux "github.com/multiformats/go-multistream"

	"github.com/blockmrs/blockmrs/node/config"
	"github.com/blockmrs/blockmrs/node/internal/fsutil"
)

func loopbackConfig() *config.Config {
	c := config.Default()
	c.Listen = []string{"/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"}
	return c
}

func newTestHost(t *testing.T) host.Host {
	t.Helper()
	key, err := LoadOrCreateKey(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	h, err := NewHost(t.Context(), loopbackConfig(), key)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// addrsOf returns h's listen addresses that use transport (a multiaddr
// protocol code: P_TCP or P_QUIC_V1).
func addrsOf(t *testing.T, h host.Host, transport int) peer.AddrInfo {
	t.Helper()
	ai := peer.AddrInfo{ID: h.ID()}
	for _, a := range h.Addrs() {
		if _, err := a.ValueForProtocol(transport); err == nil {
			ai.Addrs = append(ai.Addrs, a)
		}
	}
	if len(ai.Addrs) == 0 {
		t.Fatalf("host has no %s address: %v", ma.ProtocolWithCode(transport).Name, h.Addrs())
	}
	return ai
}

func TestConnectAndPing(t *testing.T) {
	for _, tr := range []int{ma.P_TCP, ma.P_QUIC_V1} {
		t.Run(ma.ProtocolWithCode(tr).Name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			a, b := newTestHost(t), newTestHost(t)
			if err := a.Connect(ctx, addrsOf(t, b, tr)); err != nil {
				t.Fatal(err)
			}
			conns := a.Network().ConnsToPeer(b.ID())
			if len(conns) == 0 {
				t.Fatal("no connection")
			}
			if _, err := conns[0].RemoteMultiaddr().ValueForProtocol(tr); err != nil {
				t.Fatalf("connected over %s, want %s", conns[0].RemoteMultiaddr(), ma.ProtocolWithCode(tr).Name)
			}
			for _, pair := range [][2]host.Host{{a, b}, {b, a}} {
				res := <-ping.Ping(ctx, pair[0], pair[1].ID())
				if res.Error != nil {
					t.Fatalf("ping %s -> %s: %v", pair[0].ID(), pair[1].ID(), res.Error)
				}
				if res.RTT <= 0 {
					t.Fatalf("ping RTT %v", res.RTT)
				}
			}
		})
	}
}

func TestUnknownProtocolRefused(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	a, b := newTestHost(t), newTestHost(t)
	const known, unknown = protocol.ID("/blockmrs/test-echo/1.0.0"), protocol.ID("/blockmrs/nope/1.0.0")
	b.SetStreamHandler(known, func(s network.Stream) {
		defer s.Close()
		io.Copy(s, s)
	})
	if err := a.Connect(ctx, addrsOf(t, b, ma.P_TCP)); err != nil {
		t.Fatal(err)
	}
	s, err := a.NewStream(ctx, b.ID(), unknown)
	if err == nil {
		// Negotiation may be lazy; the refusal then shows on first use.
		_, err = s.Write([]byte("hi"))
		if err == nil {
			_, err = s.Read(make([]byte, 1))
		}
		s.Reset()
	}
	if !errors.Is(err, msmux.ErrNotSupported[protocol.ID]{}) {
		t.Fatalf("stream for an unknown protocol: %v, want multistream's not supported", err)
	}
	// The refusal did not hurt the connection: a known protocol works.
	s, err = a.NewStream(ctx, b.ID(), known)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Reset()
	s.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := s.Write([]byte("hi")); err != nil {
		t.Fatal(err)
	}
	s.CloseWrite()
	got, err := io.ReadAll(s)
	if err != nil || string(got) != "hi" {
		t.Fatalf("echo %q, %v", got, err)
	}
}

func TestNodeKey(t *testing.T) {
	dir := t.TempDir()
	k1, err := LoadOrCreateKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	if k1.Type() != crypto.Ed25519 {
		t.Fatalf("key type %v", k1.Type())
	}
	path := filepath.Join(dir, KeyFile)
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file %v %v", st, err)
	}
	k2, err := LoadOrCreateKey(dir)
	if err != nil || !k1.Equals(k2) {
		t.Fatalf("reload: same=%v err=%v", k1.Equals(k2), err)
	}
	data, _ := os.ReadFile(path)
	if k, err := crypto.UnmarshalPrivateKey(data); err != nil || !k.Equals(k1) {
		t.Fatalf("file is not a libp2p-marshalled key: %v", err)
	}

	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreateKey(dir); !errors.Is(err, fsutil.ErrSecretMode) {
		t.Fatalf("world-readable key: %v", err)
	}
	os.Chmod(path, 0o600)

	// Another key type is refused.
	rsa, _, err := crypto.GenerateSecp256k1Key(nil)
	if err == nil {
		data, _ := crypto.MarshalPrivateKey(rsa)
		os.WriteFile(path, data, 0o600)
		if _, err := LoadOrCreateKey(dir); err == nil || !strings.Contains(err.Error(), "want Ed25519") {
			t.Fatalf("secp256k1 key: %v", err)
		}
	}
	os.WriteFile(path, []byte("garbage"), 0o600)
	if _, err := LoadOrCreateKey(dir); err == nil {
		t.Fatal("garbage key accepted")
	}
}

// The limits are the documented constants whatever the machine's memory.
func TestLimitsExplicit(t *testing.T) {
	l := Limits().ToPartialLimitConfig()
	if l.System.Memory != LimitMemory || l.System.Conns != LimitConns || l.System.FD != LimitFD ||
		l.System.StreamsInbound != LimitStreamsInbound {
		t.Fatalf("system limits %+v", l.System)
	}
	if l.Transient.Conns != LimitTransientConns || l.Transient.Memory != LimitTransientMemory {
		t.Fatalf("transient limits %+v", l.Transient)
	}
	if l.PeerDefault.Conns != LimitPeerConns || l.PeerDefault.Memory != LimitPeerMemory || l.PeerDefault.Streams != LimitPeerStreams {
		t.Fatalf("peer limits %+v", l.PeerDefault)
	}
	if _, ok := l.Service[ping.ServiceName]; !ok {
		t.Fatalf("no service limit for ping: %v", l.Service)
	}
	if Limits().ToPartialLimitConfig().System != l.System {
		t.Fatal("limits are not deterministic")
	}
}

func TestNewHostErrors(t *testing.T) {
	if _, err := NewHost(t.Context(), loopbackConfig(), nil); err == nil {
		t.Fatal("host without key")
	}
	key, _ := LoadOrCreateKey(t.TempDir())
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := NewHost(ctx, loopbackConfig(), key); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled context: %v", err)
	}
	c := loopbackConfig()
	c.Listen = []string{"/ip4/192.0.2.1/tcp/1"} // not an address of this machine
	if _, err := NewHost(t.Context(), c, key); err == nil {
		t.Fatal("host on a foreign address")
	}
}

func TestBootstrapAndRelayCandidates(t *testing.T) {
	a, b, c := newTestHost(t), newTestHost(t), newTestHost(t)
	offline := addrsOf(t, c, ma.P_TCP) // a closed TCP port refuses at once
	c.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	log := slog.New(slog.DiscardHandler)
	n := Bootstrap(ctx, a, []peer.AddrInfo{addrsOf(t, b, ma.P_TCP), offline, {ID: a.ID()}}, log)
	if n != 1 || a.Network().Connectedness(b.ID()) != network.Connected {
		t.Fatalf("bootstrap connected %d", n)
	}
	var got []peer.ID
	for ai := range relayCandidates(ctx, a, []peer.AddrInfo{offline}, 4) {
		got = append(got, ai.ID)
	}
	if len(got) != 2 || got[0] != c.ID() || got[1] != b.ID() {
		t.Fatalf("relay candidates %v, want [%s %s]", got, c.ID(), b.ID())
	}
	if n := len(relayCandidates(ctx, a, []peer.AddrInfo{offline}, 1)); n != 1 {
		t.Fatalf("%d candidates, want at most 1", n)
	}
}
