// Package emergency carries emergency access between nodes over the
// libp2p protocol /blockmrs/emergency/1.0.0 (PROTOCOL.md §10.6,
// SECURITY.md "Emergency access").
//
// A stream carries one exchange: the opener writes one frame, the other
// side one reply, both close. A frame is uvarint(length) || DAG-CBOR map
// (protocol.EmergencyFrame) of at most protocol.MaxEmergencyFrame bytes.
// Three exchanges:
//   - deposit: a patient's node delivers a pack (or end) block of her
//     chain to each custodian's nodes, which keep it (keyshare
//     HoldEmergency);
//   - open: a clinician's node sends its signed request and its role
//     proof to custodians' nodes; each decides (keyshare AnswerEmergency,
//     policy emergencyShare) and answers with the pack block and its
//     shares re-encrypted to the clinician, or a refusal;
//   - notice: a custodian's node tells the peers the pack names (the
//     patient's nodes, guardians' nodes) of every decision, signed.
//
// Deposits and notices are retried when a peer connects and every
// Interval, with backoff, until taken: a patient whose node is off learns
// of a use when it next connects. What is still to deposit is listed from
// the repo, and the addresses last known for each custodian's node are
// in the node's address book (node/addrbook), so a restarted patient's
// node dials the custodians by itself. Each round, as custodian, the node also drops
// the packs the keep rule no longer keeps (Repo.PruneEmergency: ended or
// superseded, also by the patient's chain held here, or expired). What a message may do is decided by
// keyshare; this package moves bytes with deadlines, size caps and
// per-peer rate limits.
package emergency

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/node/addrbook"
	"github.com/blockmrs/blockmrs/node/internal/deliver"
	"github.com/blockmrs/blockmrs/node/internal/stream"
	"github.com/blockmrs/blockmrs/protocol"
)

// ProtocolID is the libp2p protocol of emergency access.
const ProtocolID = "/blockmrs/emergency/1.0.0"

// ServiceName is the service's name in the resource manager.
const ServiceName = "blockmrs.emergency"

// Timing and limits.
const (
	StreamTimeout   = 30 * time.Second
	DialTimeout     = 10 * time.Second
	DefaultInterval = 30 * time.Second
	MinBackoff      = deliver.MinBackoff
	MaxBackoff      = deliver.MaxBackoff
	PeerRate        = 2 // streams per second from one peer
	PeerBurst       = 10
	MaxServing      = 16 // streams served at once
)

// Keys gives an unlocked account's keys for background work (the unlock
// sessions' Background), or an error when it is locked.
type Keys func(protocol.AccountID) (*keyshare.Keys, error)

// Options tune New.
type Options struct {
	Interval time.Duration // between delivery rounds; 0: DefaultInterval
	Logger   *slog.Logger
	// Book, when set, is the node's address book: a custodian's node is
	// dialled at its kept addresses when the peerstore has none.
	Book *addrbook.Book
}

// Service serves the protocol and delivers deposits and notices.
type Service struct {
	host host.Host
	repo *keyshare.Repo
	keys Keys
	log  *slog.Logger
	book *addrbook.Book

	srv  *stream.Server
	out  stream.Dialer
	loop *deliver.Loop
}

// New registers the handler on h and starts delivering.
func New(h host.Host, repo *keyshare.Repo, keys Keys, opts Options) *Service {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	log = log.With("service", ServiceName)
	interval := opts.Interval
	if interval <= 0 {
		interval = DefaultInterval
	}
	s := &Service{host: h, repo: repo, keys: keys, log: log, book: opts.Book,
		srv: stream.NewServer(log, stream.Limits{Service: ServiceName, PeerRate: PeerRate, PeerBurst: PeerBurst,
			MaxServing: MaxServing, Timeout: StreamTimeout, Refused: "rejected a message"}),
		out: stream.Dialer{Host: h, Protocol: ProtocolID, Service: ServiceName, Timeout: StreamTimeout, DialTimeout: DialTimeout}}
	s.srv.Serve(h, ProtocolID, stream.Typed(protocol.MaxEmergencyFrame, protocol.DecodeEmergencyFrame, s.dispatch, protocol.EncodeEmergencyFrame))
	s.loop = deliver.New(h, interval, s.round, deliver.Options{Logger: log, Watch: repo.WatchEmergency})
	s.loop.Begin()
	return s
}

// Close stops serving and delivering and waits for both.
func (s *Service) Close() error {
	s.loop.Close()
	s.srv.Close()
	return nil
}

// Kick asks for a delivery round now.
func (s *Service) Kick() { s.loop.Kick() }

// ---------------------------------------------------------------------------
// Serving.

func (s *Service) dispatch(ctx context.Context, p peer.ID, f *protocol.EmergencyFrame) *protocol.EmergencyFrame {
	fail := func(err error) *protocol.EmergencyFrame {
		s.srv.Reject(p, err)
		return &protocol.EmergencyFrame{Kind: protocol.EmFrameError, Error: err.Error()}
	}
	switch f.Kind {
	case protocol.EmFrameDeposit:
		kept, dropped, err := s.repo.HoldEmergencyDropping(ctx, f.Block)
		if err != nil {
			return fail(err)
		}
		for _, k := range kept {
			s.log.Info("holding an emergency pack as custodian", "patient", k.Patient, "pack", k.ID, "peer", p)
		}
		s.logDropped(dropped, p.String())
	case protocol.EmFrameOpen:
		q, err := protocol.DecodeEmergencyRequest(f.Request)
		if err != nil {
			return fail(err)
		}
		role, err := s.repo.EmergencyRoleOf(ctx, q.ClinicianID(), f.Proof, time.Now())
		if err != nil {
			return fail(err)
		}
		ans, err := s.repo.AnswerEmergency(ctx, f.Request, p.String(), role, s.keys)
		if err != nil {
			return fail(err)
		}
		s.log.Warn("emergency request decided", "patient", q.PatientID(), "clinician", q.ClinicianID(), "given", ans.Decision.Allow, "rule", ans.Decision.Rule, "peer", p)
		out := &protocol.EmergencyFrame{Kind: protocol.EmFrameAnswer, Rule: string(ans.Decision.Rule), Block: ans.Block}
		if !ans.Decision.Allow {
			out.Error = ans.Decision.Reason
		}
		for _, g := range ans.Shares {
			pub, _ := g.Custodian.Key()
			out.Shares = append(out.Shares, protocol.EmergencyGiven{Custodian: pub, Index: g.Index, Share: g.Share})
		}
		return out
	case protocol.EmFrameNotice:
		use, err := s.repo.ReceiveEmergencyNotice(ctx, f.Notice, p.String())
		if err != nil {
			return fail(err)
		}
		s.log.Warn("emergency access reported", "patient", use.Patient, "clinician", use.Clinician, "custodian", use.Custodian, "given", use.Given, "peer", p)
	default:
		return fail(fmt.Errorf("unexpected %s frame", f.Kind))
	}
	return &protocol.EmergencyFrame{Kind: protocol.EmFrameOK}
}

// ---------------------------------------------------------------------------
// Delivering.

func (s *Service) round(ctx context.Context) {
	// As custodian: drop the packs the patients' chains held here end or
	// supersede, and the expired ones.
	dropped, err := s.repo.PruneEmergency(ctx)
	if err != nil {
		s.log.Warn("prune held emergency packs", "err", err)
	}
	s.logDropped(dropped, "")
	// As patient: deliver what the repo lists (so also after a restart).
	deps, err := s.repo.EmergencyDeposits(ctx)
	if err != nil {
		s.log.Warn("list emergency deposits", "err", err)
	}
	for _, d := range deps {
		if local, _ := s.repo.Account(ctx, d.Custodian); local.Local {
			// A custodian account of this node: kept here at once.
			_, dropped, err := s.repo.HoldEmergencyDropping(ctx, d.Raw)
			if err != nil {
				s.log.Warn("hold a local custodian's pack", "err", err)
				continue
			}
			s.logDropped(dropped, "")
			if err := s.repo.MarkDeposited(ctx, d.Block, d.Custodian); err != nil {
				s.log.Warn("mark deposited", "err", err)
			}
			continue
		}
		for _, n := range d.Nodes {
			p, err := peer.Decode(n)
			if err != nil || p == s.host.ID() {
				continue
			}
			if s.book != nil {
				s.book.Dialable(ctx, p)
			}
			reply, err := s.exchange(ctx, p, &protocol.EmergencyFrame{Kind: protocol.EmFrameDeposit, Block: d.Raw})
			if err != nil {
				continue
			}
			if reply.Kind != protocol.EmFrameOK {
				s.log.Info("deposit refused", "custodian", d.Custodian, "peer", p, "err", reply.Error)
				continue
			}
			if err := s.repo.MarkDeposited(ctx, d.Block, d.Custodian); err != nil {
				s.log.Warn("mark deposited", "err", err)
			}
			s.log.Info("emergency pack delivered to a custodian", "custodian", d.Custodian, "block", d.Block, "peer", p)
			break
		}
	}
	notices, err := s.repo.PendingEmergencyNotices(ctx)
	if err != nil {
		s.log.Warn("list emergency notices", "err", err)
	}
	for _, n := range notices {
		for _, to := range n.Peers {
			p, err := peer.Decode(to)
			if err != nil || p == s.host.ID() {
				if err == nil {
					// This node is told already: it holds the use.
					_ = s.repo.NoticeDelivered(ctx, n.ID, to)
				}
				continue
			}
			reply, err := s.exchange(ctx, p, &protocol.EmergencyFrame{Kind: protocol.EmFrameNotice, Notice: n.Notice})
			if err != nil {
				continue
			}
			if reply.Kind != protocol.EmFrameOK {
				s.log.Info("notice refused", "peer", p, "err", reply.Error)
			}
			// Taken or refused for good: either way not sent again.
			if err := s.repo.NoticeDelivered(ctx, n.ID, to); err != nil {
				s.log.Warn("mark notice delivered", "err", err)
			}
		}
	}
}

// logDropped logs the packs this node stopped holding as custodian.
func (s *Service) logDropped(dropped []keyshare.DroppedPack, from string) {
	for _, d := range dropped {
		s.log.Info("emergency pack not held", "patient", d.Patient, "pack", d.ID, "rule", d.Decision.Rule, "why", d.Decision.Reason, "peer", from)
	}
}

// exchange sends f to p (backing off from a peer that failed) and reads
// its reply.
func (s *Service) exchange(ctx context.Context, p peer.ID, f *protocol.EmergencyFrame) (*protocol.EmergencyFrame, error) {
	body, err := protocol.EncodeEmergencyFrame(f)
	if err != nil {
		return nil, err
	}
	return deliver.Ask(ctx, s.loop, s.out, p, protocol.MaxEmergencyFrame, body, protocol.DecodeEmergencyFrame, nil)
}

// roundTrip sends f to p and reads its reply.
func (s *Service) roundTrip(ctx context.Context, p peer.ID, f *protocol.EmergencyFrame) (*protocol.EmergencyFrame, error) {
	body, err := protocol.EncodeEmergencyFrame(f)
	if err != nil {
		return nil, err
	}
	raw, err := s.out.Ask(ctx, p, protocol.MaxEmergencyFrame, body)
	if err != nil {
		return nil, err
	}
	return protocol.DecodeEmergencyFrame(raw)
}

// ---------------------------------------------------------------------------
// Opening, on the clinician's node.

// Asked is one custodian node's answer to an open.
type Asked struct {
	Peer   string        `json:"peer"`
	Rule   keyshare.Rule `json:"rule,omitempty"`
	Shares int           `json:"shares"`
	Error  string        `json:"error,omitempty"`
}

// Opened is the result of Open.
type Opened struct {
	keyshare.OpenedEmergency
	Asked []Asked
}

// ErrNotOpened is returned when too few custodians gave their share.
var ErrNotOpened = errors.New("emergency summary not opened")

// Open asks custodians' nodes for the shares of patient's live pack as
// k, with reason: first the peers in via and those connected, then the
// nodes the pack names for its other custodians, until the threshold is
// reached. It records the opening in the audit log.
func (s *Service) Open(ctx context.Context, k *keyshare.Keys, patient protocol.AccountID, reason string, via []peer.AddrInfo) (Opened, error) {
	raw, err := s.repo.NewEmergencyRequest(k, patient, nil, reason)
	if err != nil {
		return Opened{}, err
	}
	proof, err := s.repo.RoleProofBlocks(ctx, k.ID, nil)
	if err != nil {
		return Opened{}, fmt.Errorf("role proof: %w", err)
	}
	f := &protocol.EmergencyFrame{Kind: protocol.EmFrameOpen, Request: raw, Proof: proof}
	var queue []peer.ID
	for _, ai := range via {
		if len(ai.Addrs) > 0 {
			s.host.Peerstore().AddAddrs(ai.ID, ai.Addrs, time.Hour)
		}
		queue = append(queue, ai.ID)
	}
	for _, p := range s.host.Network().Peers() {
		if !slices.Contains(queue, p) {
			queue = append(queue, p)
		}
	}
	asked := map[peer.ID]bool{}
	var out Opened
	var block []byte
	var shares []keyshare.GivenShare
	var threshold uint64
	// Custodians on this node (a clinic node hosting its clinicians)
	// decide first, by the same rules.
	if held, err := s.repo.HeldEmergency(ctx); err == nil && slices.ContainsFunc(held, func(p keyshare.EmergencyPackInfo) bool { return p.Patient == patient }) {
		role, err := s.repo.EmergencyRoleOf(ctx, k.ID, nil, time.Now())
		if err != nil {
			return out, err
		}
		ans, err := s.repo.AnswerEmergency(ctx, raw, s.host.ID().String(), role, s.keys)
		if err != nil {
			return out, err
		}
		a := Asked{Peer: s.host.ID().String(), Rule: ans.Decision.Rule, Shares: len(ans.Shares)}
		if !ans.Decision.Allow {
			a.Error = ans.Decision.Reason
		}
		out.Asked = append(out.Asked, a)
		if len(ans.Shares) > 0 {
			if pack, err := packOf(ans.Block, patient); err == nil {
				block, threshold = ans.Block, pack.Threshold
				shares = append(shares, ans.Shares...)
				for _, sh := range pack.Shares {
					for _, n := range sh.Nodes {
						if np, err := peer.IDFromBytes(n); err == nil {
							queue = append(queue, np)
						}
					}
				}
			}
		}
		asked[s.host.ID()] = true
	}
	if block != nil && uint64(len(shares)) >= threshold {
		if opened, err := s.repo.OpenEmergency(k, patient, block, shares); err == nil {
			out.OpenedEmergency = opened
			queue = nil
		}
	}
	for len(queue) > 0 {
		if err := ctx.Err(); err != nil {
			return out, err
		}
		p := queue[0]
		queue = queue[1:]
		if asked[p] || p == s.host.ID() {
			continue
		}
		asked[p] = true
		reply, err := s.roundTrip(ctx, p, f)
		a := Asked{Peer: p.String()}
		switch {
		case err != nil:
			a.Error = err.Error()
		case reply.Kind == protocol.EmFrameError:
			a.Error = reply.Error
		case reply.Kind == protocol.EmFrameAnswer:
			a.Rule, a.Error, a.Shares = keyshare.Rule(reply.Rule), reply.Error, len(reply.Shares)
		default:
			a.Error = "unexpected " + reply.Kind + " reply"
		}
		if isNoProtocol(err) {
			continue // not a node of ours: skip quietly
		}
		out.Asked = append(out.Asked, a)
		if err != nil || reply.Kind != protocol.EmFrameAnswer || len(reply.Shares) == 0 {
			continue
		}
		pack, err := packOf(reply.Block, patient)
		if err != nil {
			out.Asked[len(out.Asked)-1].Error = err.Error()
			continue
		}
		if block == nil {
			block, threshold = reply.Block, pack.Threshold
			for _, sh := range pack.Shares {
				for _, n := range sh.Nodes {
					if np, err := peer.IDFromBytes(n); err == nil && !asked[np] {
						queue = append(queue, np)
					}
				}
			}
		} else if !slices.Equal(block, reply.Block) {
			continue // another pack: keep to the first
		}
		for _, g := range reply.Shares {
			shares = append(shares, keyshare.GivenShare{Custodian: protocol.AccountIDFromKey(g.Custodian), Index: g.Index, Share: g.Share})
		}
		if uint64(len(shares)) >= threshold {
			if opened, err := s.repo.OpenEmergency(k, patient, block, shares); err == nil {
				out.OpenedEmergency = opened
				break
			}
		}
	}
	if out.Summary == nil {
		return out, fmt.Errorf("%w: %s", ErrNotOpened, summarize(out.Asked, threshold, len(shares)))
	}
	if err := s.repo.Audit(ctx, keyshare.AuditEvent{Kind: keyshare.AuditEmergency, Account: k.ID, Subject: patient,
		Rule: keyshare.RuleEmergencyShare, Reason: "emergency summary opened: " + reason}); err != nil {
		s.log.Warn("audit", "err", err)
	}
	s.log.Warn("emergency summary opened", "patient", patient, "clinician", k.ID, "pack", out.Pack.ID)
	return out, nil
}

func isNoProtocol(err error) bool {
	return err != nil && strings.Contains(err.Error(), "protocols not supported")
}

func packOf(block []byte, patient protocol.AccountID) (*protocol.EmergencyPack, error) {
	b, err := protocol.DecodeBlock(block)
	if err != nil {
		return nil, err
	}
	if b.AuthorID() != patient {
		return nil, fmt.Errorf("pack block signed by %s, not the patient", b.AuthorID())
	}
	for _, e := range b.Entries {
		if p, ok := e.Body.(*protocol.EmergencyPack); ok {
			return p, nil
		}
	}
	return nil, errors.New("answer's block holds no pack")
}

func summarize(asked []Asked, threshold uint64, got int) string {
	if len(asked) == 0 {
		return "no custodian's node was reachable: name one with --via ADDRESS (/ip4/.../p2p/PEERID), or add a custodian as a contact with its node's address"
	}
	msg := fmt.Sprintf("%d share(s)", got)
	if threshold > 0 {
		msg += fmt.Sprintf(" of the %d needed", threshold)
	}
	for _, a := range asked {
		why := a.Error
		if a.Rule != "" {
			why = string(a.Rule) + ": " + why
		}
		msg += "; " + a.Peer + ": " + why
	}
	return msg
}

// SessionKeys returns the keys of an account unlocked in sessions, or of
// a local account stored without a passphrase: what a custodian's node
// answers with while nobody is at the keyboard.
func SessionKeys(ctx context.Context, repo *keyshare.Repo, sessions *keyshare.Sessions) Keys {
	return func(id protocol.AccountID) (*keyshare.Keys, error) {
		k, err := sessions.Background(id)
		if err == nil {
			return k, nil
		}
		info, aerr := repo.Account(ctx, id)
		if aerr == nil && info.Local && !info.Encrypted {
			return repo.Unlock(ctx, id, nil)
		}
		return nil, err
	}
}
