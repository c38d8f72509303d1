// Package requests carries access requests and their answers between
// nodes over the libp2p protocol /blockmrs/request/1.0.0 (see PROTOCOL.md,
// "Access requests").
//
// A stream carries one exchange: the opener writes one frame (a request
// with the requester's profile block, an answer, or a poll for answers),
// the other side writes one reply frame, both close. A frame is
// uvarint(length) || canonical DAG-CBOR map (protocol.RequestFrame), at
// most protocol.MaxRequestFrameSize bytes. What a message may do is
// decided by keyshare (signatures, the inbox and outbox); this package
// only moves bytes, with deadlines, size caps and per-peer rate limits.
//
// The Service delivers what the repo has pending: each request to the
// nodes the asked account's chain declares, each answer to the nodes the
// requester's chain declares (when this repo holds that chain), when such
// a node connects and periodically, with backoff. A requester's node also
// polls the asked account's nodes for answers to requests they took, so an
// answer comes back even when the patient's repo knows only the
// requester's profile. The node of an account asked also relays each
// unanswered request to the nodes of the account's guardians who may
// approve, once to each, and passes answers on: a guardian's answer to
// the ward's nodes, the ward's to the guardians relayed to (see
// keyshare.Repo.Pending). Which nodes act for an account comes only from
// its chain's device entries, never from what a peer says.
package requests

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/node/internal/deliver"
	"github.com/blockmrs/blockmrs/node/internal/peerlimit"
	"github.com/blockmrs/blockmrs/node/internal/stream"
	"github.com/blockmrs/blockmrs/protocol"
)

// ProtocolID is the libp2p protocol of access requests.
const ProtocolID = "/blockmrs/request/1.0.0"

// Timing.
const (
	// StreamTimeout bounds one exchange on a stream, both ways.
	StreamTimeout = 20 * time.Second
	// DialTimeout bounds connecting to a peer to deliver.
	DialTimeout = 10 * time.Second
	// DefaultInterval is how often pending messages are retried.
	DefaultInterval = 30 * time.Second
	// DefaultPollInterval is how often a node of an account asked is
	// polled for answers, unless it (re)connects.
	DefaultPollInterval = 2 * time.Minute
	// Backoff after a failed delivery to a peer, doubling up to
	// MaxBackoff; a new connection from the peer clears it.
	MinBackoff = deliver.MinBackoff
	MaxBackoff = deliver.MaxBackoff
	// Per-peer limit on incoming streams: a steady rate and a burst.
	PeerRate  = 2 // streams per second
	PeerBurst = 20
	// MaxServing bounds the streams served at once, from all peers;
	// more are reset.
	MaxServing = 64
)

// Options tune New.
type Options struct {
	// Interval between delivery rounds; 0 means DefaultInterval.
	Interval time.Duration
	// PollInterval between polls of one peer for answers; 0 means
	// DefaultPollInterval.
	PollInterval time.Duration
	// Logger; nil means slog.Default().
	Logger *slog.Logger
}

// Service serves the request protocol on a host and delivers the repo's
// pending messages. Create it with New and stop it with Close.
type Service struct {
	host    host.Host
	repo    *keyshare.Repo
	log     *slog.Logger
	pollGap time.Duration

	srv  *stream.Server
	out  stream.Dialer
	loop *deliver.Loop

	mu     sync.Mutex
	polled map[peer.ID]time.Time // last poll of a peer
}

// New registers the protocol handler on h and starts delivering repo's
// pending messages.
func New(h host.Host, repo *keyshare.Repo, opts Options) *Service {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	interval := opts.Interval
	if interval <= 0 {
		interval = DefaultInterval
	}
	pollGap := opts.PollInterval
	if pollGap <= 0 {
		pollGap = DefaultPollInterval
	}
	s := &Service{host: h, repo: repo, log: log, pollGap: pollGap, polled: map[peer.ID]time.Time{},
		srv: stream.NewServer(log, stream.Limits{PeerRate: PeerRate, PeerBurst: PeerBurst, MaxServing: MaxServing,
			Timeout: StreamTimeout, Refused: "requests: rejected a message"}),
		out: stream.Dialer{Host: h, Protocol: ProtocolID, Timeout: StreamTimeout, DialTimeout: DialTimeout}}
	s.srv.Serve(h, ProtocolID, stream.Typed(protocol.MaxRequestFrameSize, protocol.DecodeRequestFrame, s.dispatch, protocol.EncodeRequestFrame))
	s.loop = deliver.New(h, interval, s.round, deliver.Options{Logger: log, Watch: repo.WatchRequests, Connected: func(p peer.ID) {
		s.mu.Lock()
		delete(s.polled, p)
		s.mu.Unlock()
	}})
	s.loop.Begin()
	return s
}

// Close stops serving and delivering; it waits for the delivery loop and
// the streams being served, so the repo may be closed after it.
func (s *Service) Close() error {
	s.loop.Close()
	s.srv.Close()
	return nil
}

// Kick asks for a delivery round now (a new request or answer is queued).
func (s *Service) Kick() { s.loop.Kick() }

// ---------------------------------------------------------------------------
// Serving.

func (s *Service) dispatch(ctx context.Context, p peer.ID, f *protocol.RequestFrame) *protocol.RequestFrame {
	fail := func(err error) *protocol.RequestFrame {
		s.srv.Reject(p, err)
		text := err.Error()
		// A request for a ward a local guardian does not answer for: the
		// peer is not told why (her answer to the appointment is hers).
		var na *keyshare.NotAddressedError
		if errors.As(err, &na) {
			text = na.Public()
		}
		return &protocol.RequestFrame{Kind: protocol.ReqFrameError, Error: text}
	}
	switch f.Kind {
	case protocol.ReqFrameRequest:
		info, err := s.repo.ReceiveRequest(ctx, f.Message, f.Profile, p.String())
		if err != nil {
			return fail(err)
		}
		s.log.Info("requests: request received", "id", info.ID, "from", info.From, "to", info.To, "peer", p)
		var recs []cid.Cid
		for _, r := range info.Records {
			if c, err := cid.Decode(r); err == nil && len(recs) < protocol.MaxAuditRecords {
				recs = append(recs, c)
			}
		}
		_ = s.repo.Audit(ctx, keyshare.AuditEvent{Kind: keyshare.AuditRequest, Account: info.From, Peer: p.String(),
			Subject: info.To, Records: recs, Reason: "request " + info.ID + " received: " + info.Reason})
	case protocol.ReqFrameAnswer:
		info, err := s.repo.ReceiveAnswer(ctx, f.Message)
		if err != nil {
			return fail(err)
		}
		s.log.Info("requests: answer received", "id", info.ID, "state", info.State, "peer", p)
	case protocol.ReqFramePoll:
		ids := make([]cid.Cid, len(f.Poll))
		for i, l := range f.Poll {
			ids[i] = l.Cid
		}
		answers, err := s.repo.AnswersFor(ctx, ids)
		if err != nil {
			return fail(err)
		}
		return &protocol.RequestFrame{Kind: protocol.ReqFrameOK, Answers: answers}
	default:
		return fail(fmt.Errorf("unexpected %s frame", f.Kind))
	}
	return &protocol.RequestFrame{Kind: protocol.ReqFrameOK}
}

// ---------------------------------------------------------------------------
// Delivering.

// round delivers what is pending and polls for answers, once.
func (s *Service) round(ctx context.Context) {
	pending, err := s.repo.Pending(ctx)
	if err != nil {
		s.log.Warn("requests: list pending", "err", err)
		return
	}
	for _, o := range pending {
		if ctx.Err() != nil {
			return
		}
		s.deliver(ctx, o)
	}
	awaiting, err := s.repo.AwaitingAnswers(ctx)
	if err != nil {
		s.log.Warn("requests: list awaiting", "err", err)
		return
	}
	// One poll per peer, for the requests of every account it acts for.
	byPeer := map[peer.ID][]cid.Cid{}
	for target, ids := range awaiting {
		for _, p := range s.targets(ctx, target) {
			byPeer[p] = append(byPeer[p], ids...)
		}
	}
	for p, ids := range byPeer {
		if ctx.Err() != nil {
			return
		}
		s.poll(ctx, p, ids)
	}
}

// targets returns the peers acting for account id, by its chain, and
// those of its guardians who may answer for it.
func (s *Service) targets(ctx context.Context, id protocol.AccountID) []peer.ID {
	devs, err := s.repo.DevicesOf(ctx, id)
	if err != nil {
		return nil
	}
	// Guardians who may answer for id take its requests too.
	if gs, err := s.repo.GuardianDevicesOf(ctx, id); err == nil {
		devs = append(devs, gs...)
	}
	return s.peersOf(devs)
}

// ownNodes returns the peers id's own chain declares as acting for it.
func (s *Service) ownNodes(ctx context.Context, id protocol.AccountID) []peer.ID {
	devs, err := s.repo.DevicesOf(ctx, id)
	if err != nil {
		return nil
	}
	return s.peersOf(devs)
}

// peersOf decodes peer IDs, leaving out this node's own.
func (s *Service) peersOf(devs []string) []peer.ID {
	var out []peer.ID
	for _, d := range devs {
		p, err := peer.Decode(d)
		if err != nil || p == s.host.ID() {
			continue
		}
		out = append(out, p)
	}
	return out
}

// deliver sends o to the first node of its target that takes it.
func (s *Service) deliver(ctx context.Context, o keyshare.Outgoing) {
	msgKey := "msg:" + o.Kind + ":" + o.ID + ":" + string(o.Target)
	if !s.loop.Due(msgKey) {
		return
	}
	f := &protocol.RequestFrame{Kind: o.Kind, Message: o.Message, Profile: o.Profile}
	peers := s.targets(ctx, o.Target)
	if o.Relay {
		peers = s.ownNodes(ctx, o.Target)
	}
	for _, p := range peers {
		reply, err := s.exchange(ctx, p, f)
		if err != nil {
			continue
		}
		if reply.Kind != protocol.ReqFrameOK {
			s.log.Info("requests: delivery refused", "kind", o.Kind, "id", o.ID, "peer", p, "err", reply.Error)
			s.loop.Failed(msgKey)
			continue
		}
		if err := s.repo.MarkDelivered(ctx, o); err != nil {
			s.log.Warn("requests: mark delivered", "id", o.ID, "err", err)
			return
		}
		s.log.Info("requests: delivered", "kind", o.Kind, "id", o.ID, "to", o.Target, "relay", o.Relay, "peer", p)
		return
	}
}

// poll asks p for answers to ids, at most once per poll interval unless
// p (re)connected since.
func (s *Service) poll(ctx context.Context, p peer.ID, ids []cid.Cid) {
	s.mu.Lock()
	last, seen := s.polled[p]
	if seen && time.Since(last) < s.pollGap {
		s.mu.Unlock()
		return
	}
	if len(s.polled) >= peerlimit.MaxTracked {
		s.polled = map[peer.ID]time.Time{}
	}
	s.polled[p] = time.Now()
	s.mu.Unlock()
	for start := 0; start < len(ids); start += protocol.MaxPollIDs {
		batch := ids[start:min(start+protocol.MaxPollIDs, len(ids))]
		reply, err := s.exchange(ctx, p, &protocol.RequestFrame{Kind: protocol.ReqFramePoll, Poll: protocol.Links(batch)})
		if err != nil {
			return
		}
		for _, a := range reply.Answers {
			info, err := s.repo.ReceiveAnswer(ctx, a)
			if err != nil {
				// Often this repo lacks a chain yet (the guardian's who
				// answered): poll p again next round, not a poll
				// interval later.
				s.srv.Reject(p, err)
				s.mu.Lock()
				delete(s.polled, p)
				s.mu.Unlock()
				continue
			}
			s.log.Info("requests: answer received", "id", info.ID, "state", info.State, "peer", p)
		}
	}
}

// exchange sends f to p and returns p's reply. A failure to reach p backs
// off further tries at p.
func (s *Service) exchange(ctx context.Context, p peer.ID, f *protocol.RequestFrame) (*protocol.RequestFrame, error) {
	body, err := protocol.EncodeRequestFrame(f)
	if err != nil {
		return nil, err
	}
	return deliver.Ask(ctx, s.loop, s.out, p, protocol.MaxRequestFrameSize, body, protocol.DecodeRequestFrame, func(r *protocol.RequestFrame) error {
		if r.Kind != protocol.ReqFrameOK && r.Kind != protocol.ReqFrameError {
			return fmt.Errorf("unexpected %s reply", r.Kind)
		}
		return nil
	})
}

// Hint tells the service where a peer may be reached (mDNS, a
// configured address): the addresses go into the host's peerstore so
// delivery can dial the peer, and a round starts. It does not make the
// peer act for any account: only chains' device entries say that.
func (s *Service) Hint(p peer.ID, addrs []ma.Multiaddr) {
	s.host.Peerstore().AddAddrs(p, addrs, 24*time.Hour)
	s.Kick()
}
