package pair

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/node/config"
	"github.com/blockmrs/blockmrs/node/p2p"
	"github.com/blockmrs/blockmrs/protocol"
)

type node struct {
	repo *keyshare.Repo
	keys *keyshare.Keys // nil for a fresh repo
	host host.Host
	svc  *Service
}

// clock is a settable clock for offers.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newNode(t *testing.T, account string, c *clock) *node {
	t.Helper()
	ctx := t.Context()
	repo, err := keyshare.Open(ctx, t.TempDir(), keyshare.Options{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { repo.Close() })
	key, err := p2p.LoadOrCreateKey(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.Listen = []string{"/ip4/127.0.0.1/tcp/0"}
	cfg.MDNS = false
	h, err := p2p.NewHost(ctx, cfg, key)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	n := &node{repo: repo, host: h}
	if account != "" {
		if n.keys, err = repo.CreateAccount(ctx, account, protocol.RolePatient, nil, keyshare.DeviceInfo{PeerID: h.ID().String(), Name: "laptop"}); err != nil {
			t.Fatal(err)
		}
	}
	n.svc = New(h, repo, Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: c.now})
	t.Cleanup(func() { n.svc.Close() })
	return n
}

func (n *node) addr() peer.AddrInfo { return peer.AddrInfo{ID: n.host.ID(), Addrs: n.host.Addrs()} }

func TestPairJoin(t *testing.T) {
	ctx := t.Context()
	c := &clock{t: time.Now()}
	laptop, phone := newNode(t, "Pat", c), newNode(t, "", c)
	offer, err := laptop.svc.Offer(laptop.keys)
	if err != nil {
		t.Fatal(err)
	}
	if st := laptop.svc.Status(); !st.Pending || st.Offer == nil || st.Offer.Secret != offer.Secret {
		t.Fatalf("status: %+v", st)
	}
	waited := make(chan error, 1)
	var joined Joined
	go func() {
		var err error
		joined, err = laptop.svc.Wait(ctx)
		waited <- err
	}()
	info, err := phone.svc.Join(ctx, laptop.addr(), strings.ToLower(offer.Secret), "phone", []byte("phone pass"))
	if err != nil {
		t.Fatal(err)
	}
	if info.ID != laptop.keys.ID || !info.Local || !info.Encrypted {
		t.Fatalf("joined: %+v", info)
	}
	if err := <-waited; err != nil || joined.PeerID != phone.host.ID().String() || joined.Name != "phone" {
		t.Fatalf("wait: %+v %v", joined, err)
	}
	k, err := phone.repo.Unlock(ctx, info.ID, []byte("phone pass"))
	if err != nil || k.Age.String() != laptop.keys.Age.String() {
		t.Fatalf("unlock on the phone: %v", err)
	}
	// Both chains declare the phone.
	for _, r := range []*keyshare.Repo{laptop.repo, phone.repo} {
		a, err := r.Account(ctx, info.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !hasDevice(a, phone.host.ID().String()) {
			t.Fatalf("devices: %+v", a.Devices)
		}
	}
	// The code is one-time.
	other := newNode(t, "", c)
	if _, err := other.svc.Join(ctx, laptop.addr(), offer.Secret, "", nil); !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "used already") {
		t.Fatalf("reused code: %v", err)
	}
	assertNothingStored(t, other, info.ID)
	if st := laptop.svc.Status(); st.Pending || st.Joined == nil {
		t.Fatalf("status after joining: %+v", st)
	}
}

// While a device that gave the right code is being sent the account, the
// status says so (joining), neither pending nor ended: a page watching
// the offer must not take that moment for "no device joined".
func TestPairStatusWhileJoining(t *testing.T) {
	ctx := t.Context()
	c := &clock{t: time.Now()}
	laptop, phone := newNode(t, "Pat", c), newNode(t, "", c)
	during := make(chan Status, 1)
	offer, err := laptop.svc.OfferThen(laptop.keys, func(context.Context, Joined) { during <- laptop.svc.Status() })
	if err != nil {
		t.Fatal(err)
	}
	if st := laptop.svc.Status(); st.Joining {
		t.Fatalf("joining before any device came: %+v", st)
	}
	if _, err := phone.svc.Join(ctx, laptop.addr(), offer.Secret, "phone", nil); err != nil {
		t.Fatal(err)
	}
	if st := <-during; st.Pending || !st.Joining || st.Joined != nil || st.Ended != "" {
		t.Fatalf("status while the device joins: %+v", st)
	}
	// The phone's Join returns once it confirmed; the laptop ends the
	// offer after that: Wait is for that end.
	if _, err := laptop.svc.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if st := laptop.svc.Status(); st.Joining || st.Joined == nil {
		t.Fatalf("status after joining: %+v", st)
	}
}

func TestPairRefusals(t *testing.T) {
	ctx := t.Context()
	c := &clock{t: time.Now()}
	laptop := newNode(t, "Pat", c)
	stranger := newNode(t, "", c)

	// No offer.
	if _, err := stranger.svc.Join(ctx, laptop.addr(), "7KQ2-M9XF-3TRA", "", nil); !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "offers no pairing") {
		t.Fatalf("no offer: %v", err)
	}
	// A malformed code is refused before any dial.
	if _, err := stranger.svc.Join(ctx, laptop.addr(), "7KQ2-M9XF", "", nil); err == nil || !strings.Contains(err.Error(), "12") {
		t.Fatalf("short code: %v", err)
	}

	// Wrong codes: MaxFailures spend the offer, and then the right code
	// does not work either.
	offer, err := laptop.svc.Offer(laptop.keys)
	if err != nil {
		t.Fatal(err)
	}
	wrong := wrongSecret(offer.Secret)
	for i := range MaxFailures {
		_, err := stranger.svc.Join(ctx, laptop.addr(), wrong, "", nil)
		want := "wrong pairing code"
		if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), want) {
			t.Fatalf("wrong code %d: %v", i+1, err)
		}
	}
	if _, err := laptop.svc.Wait(ctx); err == nil || !strings.Contains(err.Error(), "wrong pairing codes") {
		t.Fatalf("wait after wrong codes: %v", err)
	}
	if _, err := stranger.svc.Join(ctx, laptop.addr(), offer.Secret, "", nil); !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "wrong codes were tried") {
		t.Fatalf("right code after the offer was spent: %v", err)
	}
	assertNothingStored(t, stranger, laptop.keys.ID)

	// Expired.
	offer, err = laptop.svc.Offer(laptop.keys)
	if err != nil {
		t.Fatal(err)
	}
	c.add(OfferLifetime + time.Second)
	if _, err := stranger.svc.Join(ctx, laptop.addr(), offer.Secret, "", nil); !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("expired code: %v", err)
	}
	assertNothingStored(t, stranger, laptop.keys.ID)

	// Cancelled, and replaced.
	c.add(-OfferLifetime - time.Second)
	first, _ := laptop.svc.Offer(laptop.keys)
	second, _ := laptop.svc.Offer(laptop.keys)
	if _, err := stranger.svc.Join(ctx, laptop.addr(), first.Secret, "", nil); !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "wrong pairing code") {
		t.Fatalf("replaced code: %v", err)
	}
	if !laptop.svc.Cancel() {
		t.Fatal("nothing to cancel")
	}
	if _, err := stranger.svc.Join(ctx, laptop.addr(), second.Secret, "", nil); !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "offers no pairing") {
		t.Fatalf("cancelled code: %v", err)
	}
	assertNothingStored(t, stranger, laptop.keys.ID)
	if a, _ := laptop.repo.Account(ctx, laptop.keys.ID); hasDevice(a, stranger.host.ID().String()) {
		t.Fatal("a refused peer was declared a device")
	}
}

// A node that is not the one the code names (an impostor at the address)
// cannot confirm the code: the joining node stores nothing.
func TestPairImpostorCannotConfirm(t *testing.T) {
	ctx := t.Context()
	c := &clock{t: time.Now()}
	real, impostor, phone := newNode(t, "Pat", c), newNode(t, "Mal", c), newNode(t, "", c)
	offer, err := real.svc.Offer(real.keys)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := impostor.svc.Offer(impostor.keys); err != nil {
		t.Fatal(err)
	}
	// The phone dials the impostor's address with the real code: the
	// impostor's offer has another secret, so it refuses; it never
	// learns the code (only a MAC over its own peer ID).
	if _, err := phone.svc.Join(ctx, impostor.addr(), offer.Secret, "", nil); !errors.Is(err, ErrRefused) {
		t.Fatalf("impostor: %v", err)
	}
	assertNothingStored(t, phone, impostor.keys.ID)
	assertNothingStored(t, phone, real.keys.ID)
}

func wrongSecret(s string) string {
	b := []byte(s)
	if b[0] == '0' {
		b[0] = '1'
	} else {
		b[0] = '0'
	}
	return string(b)
}

func hasDevice(a keyshare.AccountInfo, peerID string) bool {
	for _, d := range a.Devices {
		if d.PeerID == peerID && !d.Replica {
			return true
		}
	}
	return false
}

func assertNothingStored(t *testing.T, n *node, id protocol.AccountID) {
	t.Helper()
	accts, err := n.repo.Accounts(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(accts) != 0 {
		t.Fatalf("the refused node stored %d accounts (%s)", len(accts), id)
	}
}
