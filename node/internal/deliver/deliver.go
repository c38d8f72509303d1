// Package deliver runs a service's delivery rounds: what a node has to
// send (requests, answers, audit reports, emergency deposits and notices)
// is tried at once when something is queued (Kick), when a peer connects,
// and every interval; a peer or a message that failed waits, with a
// backoff doubling from MinBackoff to MaxBackoff, until it connects again.
package deliver

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/blockmrs/blockmrs/node/internal/peerlimit"
	"github.com/blockmrs/blockmrs/node/internal/stream"
)

// Backoff bounds, the same for every service.
const (
	MinBackoff = 5 * time.Second
	MaxBackoff = 10 * time.Minute
)

// ErrBackingOff is returned by Try for a key still waiting after a
// failure.
var ErrBackingOff = errors.New("backing off")

// Options tune Start.
type Options struct {
	// Connected, when set, is called with a peer that just connected,
	// before the round that follows (a service forgets what it holds
	// about the peer).
	Connected func(peer.ID)
	// Watch, when set, is called at Start with Kick, to be called when
	// there is something new to deliver; the function it returns is
	// called by Close.
	Watch func(kick func()) (unwatch func())
	// Logger gets the failed tries at debug level; nil: slog.Default().
	Logger *slog.Logger
}

// Loop runs round once begun (New, then Begin), on Kick, when a peer connects and every
// interval after the last round; rounds never overlap. It is safe for
// concurrent use. Stop it with Close.
type Loop struct {
	host     host.Host
	round    func(ctx context.Context)
	interval time.Duration
	opts     Options
	kick     chan struct{}
	notify   *network.NotifyBundle
	unwatch  func()

	ctx       context.Context
	cancel    context.CancelFunc
	done      chan struct{}
	closeOnce sync.Once
	beginOnce sync.Once

	mu      sync.Mutex
	backoff map[string]*retry
}

type retry struct {
	next time.Time
	wait time.Duration
}

// New prepares the rounds of a service on h; Begin starts them. The two
// steps let the service keep the Loop (which its rounds use) before the
// first round can run.
func New(h host.Host, interval time.Duration, round func(ctx context.Context), opts Options) *Loop {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	l := &Loop{host: h, round: round, interval: interval, opts: opts, kick: make(chan struct{}, 1),
		done: make(chan struct{}), backoff: map[string]*retry{}}
	l.ctx, l.cancel = context.WithCancel(context.Background())
	l.notify = &network.NotifyBundle{ConnectedF: func(_ network.Network, c network.Conn) {
		p := c.RemotePeer()
		l.Succeeded(p.String())
		if opts.Connected != nil {
			opts.Connected(p)
		}
		l.Kick()
	}}
	h.Network().Notify(l.notify)
	if opts.Watch != nil {
		l.unwatch = opts.Watch(l.Kick)
	}
	return l
}

// Begin starts the rounds: the first at once, then one every interval
// and one on every kick. It does nothing after Close.
func (l *Loop) Begin() {
	l.beginOnce.Do(func() { go l.run() })
}

func (l *Loop) run() {
	defer close(l.done)
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-l.ctx.Done():
			return
		case <-l.kick:
		case <-t.C:
		}
		l.round(l.ctx)
		t.Reset(l.interval)
	}
}

// Kick asks for a round now; kicks during a round make one more.
func (l *Loop) Kick() {
	select {
	case l.kick <- struct{}{}:
	default:
	}
}

// Close stops watching connections and news and the rounds, cancelling
// the one running, and waits for it. Closing twice is harmless.
func (l *Loop) Close() {
	l.closeOnce.Do(func() {
		l.host.Network().StopNotify(l.notify)
		if l.unwatch != nil {
			l.unwatch()
		}
		l.cancel()
		// A loop never begun has no round to wait for.
		l.beginOnce.Do(func() { close(l.done) })
		<-l.done
	})
}

// Due reports whether key (a peer ID, or a message's own key) is not
// backing off.
func (l *Loop) Due(key string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	r := l.backoff[key]
	return r == nil || !time.Now().Before(r.next)
}

// Failed backs key off: MinBackoff, then twice the last wait, up to
// MaxBackoff. At most peerlimit.MaxTracked keys are remembered; past
// that all are forgotten.
func (l *Loop) Failed(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	r := l.backoff[key]
	if r == nil {
		if len(l.backoff) >= peerlimit.MaxTracked {
			clear(l.backoff)
		}
		r = &retry{wait: MinBackoff / 2}
		l.backoff[key] = r
	}
	r.wait = min(2*r.wait, MaxBackoff)
	r.next = time.Now().Add(r.wait)
}

// Succeeded forgets key's backoff.
func (l *Loop) Succeeded(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.backoff, key)
}

// Try runs send for peer p unless p is backing off (ErrBackingOff): a
// failure backs p off, a success clears it.
func (l *Loop) Try(p peer.ID, send func() error) error {
	key := p.String()
	if !l.Due(key) {
		return ErrBackingOff
	}
	if err := send(); err != nil {
		if !errors.Is(err, stream.ErrNoAddrs) {
			l.opts.Logger.Debug("delivery failed", "peer", p, "err", err)
		}
		l.Failed(key)
		return err
	}
	l.Succeeded(key)
	return nil
}

// Ask sends one encoded request to p through d within l's backoff for p
// (Try) and decodes p's one reply (at most maxReply bytes) with decode;
// check, when not nil, refuses a reply that decodes but does not answer
// (a kind a reply cannot be). Any failure backs p off.
func Ask[R any](ctx context.Context, l *Loop, d stream.Dialer, p peer.ID, maxReply int, request []byte,
	decode func([]byte) (*R, error), check func(*R) error) (*R, error) {
	var reply *R
	err := l.Try(p, func() error {
		raw, err := d.Ask(ctx, p, maxReply, request)
		if err != nil {
			return err
		}
		if reply, err = decode(raw); err != nil {
			return err
		}
		if check != nil {
			return check(reply)
		}
		return nil
	})
	return reply, err
}
