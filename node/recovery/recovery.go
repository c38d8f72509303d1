// Package recovery carries recovery requests (keyshare/recovery.go) from a
// recovering node to the nodes of the account's recovery contacts, and
// their responses back, over the libp2p protocol /blockmrs/recovery/1.0.0
// (PROTOCOL.md §10, "Recovery requests").
//
// A stream carries one exchange: the recovering node writes one frame (a
// request, or a poll for the responses to one), the contact's node one
// reply (ok, with the responses it holds for a poll; or error), both
// close. A frame is uvarint(length) || canonical DAG-CBOR map
// (protocol.RecoveryFrame), at most protocol.MaxRecoveryFrameSize bytes.
// Whether a request is kept, and which responses count, keyshare decides
// (the access policy); this package only moves bytes, with deadlines,
// size caps and per-peer rate limits.
//
// The Service, on a recovering node, delivers each started recovery's
// request to the nodes its contacts' chains declare and to the contact
// nodes named at start (recovery start --via), and polls them for
// responses, adding each with Repo.AddRecoveryResponse; on a contact's
// node it keeps the requests that arrive in the inbox and answers polls.
package recovery

import (
	"context"
	"encoding/hex"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/node/addrbook"
	"github.com/blockmrs/blockmrs/node/internal/deliver"
	"github.com/blockmrs/blockmrs/node/internal/peerlimit"
	"github.com/blockmrs/blockmrs/node/internal/stream"
	"github.com/blockmrs/blockmrs/protocol"
)

// ProtocolID is the libp2p protocol of recovery requests.
const ProtocolID = "/blockmrs/recovery/1.0.0"

// Timing and limits.
const (
	// StreamTimeout bounds one exchange on a stream, both ways.
	StreamTimeout = 20 * time.Second
	// DialTimeout bounds connecting to a contact's node.
	DialTimeout = 10 * time.Second
	// DefaultInterval is how often a started recovery's request is
	// delivered again where it was not taken, and its contacts' nodes
	// polled for responses. Recoveries are rare and short: a contact's
	// approval shows on the recovering node within this.
	DefaultInterval = 10 * time.Second
	// Per-peer limit on incoming streams: a steady rate and a burst.
	PeerRate  = 1 // streams per second
	PeerBurst = 10
	// MaxServing bounds the streams served at once, from all peers.
	MaxServing = 16
	// addrTTL is how long addresses named at start stay in the peerstore.
	addrTTL = 24 * time.Hour
)

// Options tune New.
type Options struct {
	// Interval between delivery and poll rounds; 0 means DefaultInterval.
	Interval time.Duration
	// Logger; nil means slog.Default().
	Logger *slog.Logger
	// Book, when set, is the node's address book: a contact's node whose
	// addresses the peerstore lacks (a new device that imported a
	// recovery export) is dialled at those the book keeps.
	Book *addrbook.Book
}

// Service serves the recovery protocol on a host and delivers the repo's
// started recoveries. Create it with New and stop it with Close.
type Service struct {
	host host.Host
	repo *keyshare.Repo
	log  *slog.Logger
	book *addrbook.Book

	srv  *stream.Server
	out  stream.Dialer
	loop *deliver.Loop

	mu        sync.Mutex
	delivered map[string]bool // request ID (hex) + peer: taken there
}

// New registers the protocol handler on h and starts delivering repo's
// started recoveries.
func New(h host.Host, repo *keyshare.Repo, opts Options) *Service {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	interval := opts.Interval
	if interval <= 0 {
		interval = DefaultInterval
	}
	s := &Service{host: h, repo: repo, log: log, book: opts.Book, delivered: map[string]bool{},
		srv: stream.NewServer(log, stream.Limits{PeerRate: PeerRate, PeerBurst: PeerBurst, MaxServing: MaxServing,
			Timeout: StreamTimeout, Refused: "recovery: refused a message"}),
		out: stream.Dialer{Host: h, Protocol: ProtocolID, Timeout: StreamTimeout, DialTimeout: DialTimeout}}
	s.srv.Serve(h, ProtocolID, stream.Typed(protocol.MaxRecoveryFrameSize, protocol.DecodeRecoveryFrame, s.dispatch, protocol.EncodeRecoveryFrame))
	s.loop = deliver.New(h, interval, s.round, deliver.Options{Logger: log, Watch: repo.WatchRecovery})
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

// ---------------------------------------------------------------------------
// Serving (a contact's node).

func (s *Service) dispatch(ctx context.Context, p peer.ID, f *protocol.RecoveryFrame) *protocol.RecoveryFrame {
	fail := func(err error) *protocol.RecoveryFrame {
		s.srv.Reject(p, err)
		return &protocol.RecoveryFrame{Kind: protocol.RecFrameError, Error: err.Error()}
	}
	switch f.Kind {
	case protocol.RecFrameRequest:
		it, err := s.repo.ReceiveRecoveryRequest(ctx, f.Request, p.String())
		if err != nil {
			return fail(err)
		}
		s.log.Info("recovery: request received", "id", it.ID, "account", it.Account, "safety_code", it.SafetyCode, "peer", p)
		return &protocol.RecoveryFrame{Kind: protocol.RecFrameOK}
	case protocol.RecFramePoll:
		resps, err := s.repo.RecoveryResponsesFor(ctx, f.ID)
		if err != nil {
			return fail(err)
		}
		return &protocol.RecoveryFrame{Kind: protocol.RecFrameOK, Responses: resps}
	default:
		return fail(fmt.Errorf("unexpected %s frame", f.Kind))
	}
}

// ---------------------------------------------------------------------------
// Delivering and polling (the recovering node).

// round delivers every started recovery's request where it was not taken
// yet, and polls for responses, once.
func (s *Service) round(ctx context.Context) {
	started, err := s.repo.StartedRecoveries(ctx)
	if err != nil {
		s.log.Warn("recovery: list started recoveries", "err", err)
		return
	}
	for _, r := range started {
		for _, p := range s.targets(ctx, r) {
			if ctx.Err() != nil {
				return
			}
			s.deliverAndPoll(ctx, r, p)
		}
	}
}

// targets returns the peers to ask for r: the nodes named at start, then
// the nodes each contact's chain declares (when this repo holds it).
func (s *Service) targets(ctx context.Context, r keyshare.StartedRecovery) []peer.ID {
	var out []peer.ID
	add := func(p peer.ID) {
		if p != s.host.ID() && !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	for _, a := range r.Via {
		info, err := peer.AddrInfoFromString(a)
		if err != nil {
			continue // checked at start
		}
		s.host.Peerstore().AddAddrs(info.ID, info.Addrs, addrTTL)
		add(info.ID)
	}
	for _, c := range r.Contacts {
		devs, err := s.repo.DevicesOf(ctx, c)
		if err != nil {
			continue
		}
		for _, d := range devs {
			if p, err := peer.Decode(d); err == nil {
				if s.book != nil {
					s.book.Dialable(ctx, p)
				}
				add(p)
			}
		}
	}
	return out
}

// deliverAndPoll delivers r's request to p unless p took it already, then
// asks p for the responses to it and adds those that count.
func (s *Service) deliverAndPoll(ctx context.Context, r keyshare.StartedRecovery, p peer.ID) {
	key := hex.EncodeToString(r.ID) + "@" + p.String()
	s.mu.Lock()
	taken := s.delivered[key]
	s.mu.Unlock()
	if !taken {
		reply, err := s.exchange(ctx, p, &protocol.RecoveryFrame{Kind: protocol.RecFrameRequest, Request: r.Request})
		if err != nil {
			return
		}
		if reply.Kind != protocol.RecFrameOK {
			s.log.Info("recovery: request refused", "account", r.Account, "peer", p, "err", reply.Error)
			s.loop.Failed(p.String())
			return
		}
		s.log.Info("recovery: request delivered", "account", r.Account, "peer", p)
		s.mu.Lock()
		if len(s.delivered) >= peerlimit.MaxTracked {
			clear(s.delivered)
		}
		s.delivered[key] = true
		s.mu.Unlock()
	}
	reply, err := s.exchange(ctx, p, &protocol.RecoveryFrame{Kind: protocol.RecFramePoll, ID: r.ID})
	if err != nil || reply.Kind != protocol.RecFrameOK {
		return
	}
	for _, raw := range reply.Responses {
		resp, err := protocol.DecodeRecoveryResponse(raw)
		if err != nil {
			s.srv.Reject(p, err)
			continue
		}
		if slices.Contains(r.Approved, protocol.AccountIDFromKey(resp.Approval.Contact)) {
			continue // added before
		}
		st, err := s.repo.AddRecoveryResponse(ctx, r.Account, raw)
		if err != nil {
			s.srv.Reject(p, err)
			continue
		}
		r.Approved = st.Approved
		s.log.Info("recovery: response added", "account", r.Account, "contact", protocol.AccountIDFromKey(resp.Approval.Contact),
			"approvals", len(st.Approved), "threshold", st.Threshold, "peer", p)
	}
}

// exchange sends f to p and returns p's reply. A failure to reach p backs
// off further tries at p.
func (s *Service) exchange(ctx context.Context, p peer.ID, f *protocol.RecoveryFrame) (*protocol.RecoveryFrame, error) {
	body, err := protocol.EncodeRecoveryFrame(f)
	if err != nil {
		return nil, err
	}
	return deliver.Ask(ctx, s.loop, s.out, p, protocol.MaxRecoveryFrameSize, body, protocol.DecodeRecoveryFrame, func(r *protocol.RecoveryFrame) error {
		if r.Kind != protocol.RecFrameOK && r.Kind != protocol.RecFrameError {
			return fmt.Errorf("unexpected %s reply", r.Kind)
		}
		return nil
	})
}
