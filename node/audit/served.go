package audit

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"

	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/node/p2p"
)

// Defaults of Options.
const (
	DefaultQueueSize   = 4096
	DefaultDedupWindow = 10 * time.Minute
)

// served is one block sent to a peer, waiting to be resolved.
type served struct {
	peer  string
	block cid.Cid
	at    time.Time
}

// servedQueue resolves served blocks into serve events, off the
// exchange's hot path: Served puts a block in a bounded channel (waiting
// when it is full, so nothing served goes unrecorded), one worker takes
// them in batches, resolves each through the repo and appends an event
// per record and peer not recorded within the window.
type servedQueue struct {
	l      *Log
	repo   *keyshare.Repo
	window time.Duration
	ch     chan served
	stop   chan struct{}
	done   chan struct{}
	once   sync.Once

	seen map[servedKey]time.Time // last recorded, per peer and record

	queued, handled, recorded, waited atomic.Int64
}

type servedKey struct {
	peer   string
	record cid.Cid
}

// Attach opens the audit log of the repo in folder dir, signing with
// the node key in that folder (node.key, created when missing), and makes
// it the repo's audit sink: it closes with the repo.
func Attach(repo *keyshare.Repo, dir string, opts Options) (*Log, error) {
	k, err := p2p.LoadOrCreateKey(dir)
	if err != nil {
		return nil, err
	}
	priv, err := NodeKey(k)
	if err != nil {
		return nil, err
	}
	l, err := Open(dir, priv, opts)
	if err != nil {
		return nil, err
	}
	l.startServed(repo, opts)
	repo.SetAuditSink(l)
	return l, nil
}

// NodeKey returns the Ed25519 private key of a libp2p node key.
func NodeKey(k crypto.PrivKey) (ed25519.PrivateKey, error) {
	if k.Type() != crypto.Ed25519 {
		return nil, fmt.Errorf("audit: node key of type %s, want Ed25519", k.Type())
	}
	raw, err := k.Raw()
	if err != nil {
		return nil, fmt.Errorf("audit: node key: %w", err)
	}
	if len(raw) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("audit: node key of %d bytes", len(raw))
	}
	return ed25519.PrivateKey(raw), nil
}

// startServed starts the served-block worker over repo.
func (l *Log) startServed(repo *keyshare.Repo, opts Options) {
	if opts.QueueSize <= 0 {
		opts.QueueSize = DefaultQueueSize
	}
	if opts.DedupWindow <= 0 {
		opts.DedupWindow = DefaultDedupWindow
	}
	q := &servedQueue{l: l, repo: repo, window: opts.DedupWindow, ch: make(chan served, opts.QueueSize),
		stop: make(chan struct{}), done: make(chan struct{}), seen: map[servedKey]time.Time{}}
	l.served = q
	go q.run()
}

// Served implements keyshare.AuditSink: block was sent to peerID. It
// queues the block and returns; when the queue is full it waits for room
// (so serving slows rather than going unrecorded).
func (l *Log) Served(peerID string, block cid.Cid) {
	q := l.served
	if q == nil {
		return
	}
	s := served{peer: peerID, block: block, at: l.clock()}
	select {
	case q.ch <- s:
	default:
		q.waited.Add(1)
		select {
		case q.ch <- s:
		case <-q.stop:
			return
		}
	}
	q.queued.Add(1)
}

// ServedStats counts what the served-block worker did.
type ServedStats struct {
	Queued   int64 `json:"queued"`   // blocks queued
	Recorded int64 `json:"recorded"` // serve events appended
	Waited   int64 `json:"waited"`   // blocks that waited for room in the queue
}

// ServedStats returns the worker's counts.
func (l *Log) ServedStats() ServedStats {
	if l.served == nil {
		return ServedStats{}
	}
	q := l.served
	return ServedStats{Queued: q.queued.Load(), Recorded: q.recorded.Load(), Waited: q.waited.Load()}
}

// Flush waits until every block queued before the call is resolved and
// recorded (tests and benchmarks).
func (l *Log) Flush(ctx context.Context) error {
	q := l.served
	if q == nil {
		return nil
	}
	want := q.queued.Load()
	for q.handled.Load() < want {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Millisecond):
		}
	}
	return nil
}

func (q *servedQueue) run() {
	defer close(q.done)
	batch := make([]served, 0, 256)
	for {
		select {
		case s := <-q.ch:
			batch = append(batch[:0], s)
		case <-q.stop:
			// Record what is queued still, then stop.
			for {
				select {
				case s := <-q.ch:
					q.handle([]served{s})
				default:
					return
				}
			}
		}
	drain:
		for len(batch) < cap(batch) {
			select {
			case s := <-q.ch:
				batch = append(batch, s)
			default:
				break drain
			}
		}
		q.handle(batch)
	}
}

// handle resolves and records a batch of served blocks.
func (q *servedQueue) handle(batch []served) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, s := range batch {
		q.record(ctx, s)
		q.handled.Add(1)
	}
}

func (q *servedQueue) record(ctx context.Context, s served) {
	recs, err := q.repo.ServedRecords(ctx, s.peer, s.block)
	if err != nil {
		q.l.log.Warn("audit: cannot tell which record a served block belongs to", "peer", s.peer, "block", s.block, "err", err)
		return
	}
	for _, r := range recs {
		k := servedKey{peer: s.peer, record: r.Record}
		if last, ok := q.seen[k]; ok && s.at.Sub(last) < q.window {
			continue
		}
		q.seen[k] = s.at
		_, err := q.l.append(Event{Time: s.at, Kind: keyshare.AuditServe, Account: r.Account, Peer: s.peer,
			Subject: r.Subject, Records: []cid.Cid{r.Record}, Rule: r.Rule, Reason: r.Reason}, nil)
		if err != nil {
			q.l.log.Error("audit: cannot record a served record", "peer", s.peer, "record", r.Record, "err", err)
			continue
		}
		q.recorded.Add(1)
	}
	if len(q.seen) > 4*DefaultQueueSize {
		for k, t := range q.seen {
			if s.at.Sub(t) >= q.window {
				delete(q.seen, k)
			}
		}
	}
}

func (q *servedQueue) close() {
	q.once.Do(func() {
		close(q.stop)
		<-q.done
	})
}

// Of returns the audit log attached to repo (Attach), nil if none.
func Of(repo *keyshare.Repo) *Log {
	l, _ := repo.AuditSinkOf().(*Log)
	return l
}
