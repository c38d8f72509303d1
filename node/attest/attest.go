// Package attest serves and asks for role proofs and clinic directory
// queries over two libp2p protocols (PROTOCOL.md §10.4):
//
//   - /blockmrs/attestations/1 (protocol.AttestationsID): a peer names an
//     account (and the chains it holds); the node answers the blocks that
//     prove the account's role (keyshare.Repo.RoleProofBlocks): its first
//     chain block when it may be given out, and the chains of the clinics
//     and authorities on the attestation paths up from it;
//   - /blockmrs/directory/1 (protocol.DirectoryID): a peer sends a query
//     text; the node answers the live clinicians its local clinics
//     attest whose name or department contains it, with the blocks that
//     prove them (keyshare.Repo.AnswerDirectory).
//
// Both are public by design: any peer may ask, and the answers hold only
// public chains. The asking node believes nothing the answer says without
// the blocks: it applies them (signatures, links, no rollback) and judges
// every role with its own trust list.
//
// One request and one response per stream, each a frame (uvarint length,
// canonical DAG-CBOR), the request at most protocol.MaxRoleProofRequest
// bytes, the response at most protocol.MaxRoleProofResponse. Each peer may
// open PeerRate streams a second (PeerBurst at once); at most MaxServing
// are served at a time; excess streams are reset, and a peer's
// misbehaviour is logged once a minute.
//
// The service also verifies, by itself, the role of every clinician or
// clinic whose access request arrives: it asks the node that delivered
// the request for the proof, so that `requests` shows the role verified
// or declared without the user doing anything.
package attest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	libp2pproto "github.com/libp2p/go-libp2p/core/protocol"

	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/node/internal/peerlimit"
	"github.com/blockmrs/blockmrs/protocol"
)

// ServiceName is the resource manager's name for the service.
const ServiceName = "blockmrs.attest"

// Limits and timing.
const (
	// StreamTimeout bounds one request and its response, on both sides.
	StreamTimeout = 20 * time.Second
	// PeerRate and PeerBurst bound the streams one peer may open (per
	// second, and at once).
	PeerRate  = 2
	PeerBurst = 10
	// MaxServing bounds the streams served at once, from all peers.
	MaxServing = 16
	// maxAutoProofs bounds the request IDs remembered as verified.
	maxAutoProofs = 4096
)

// Service is a running attestation and directory service. Create it with
// New and stop it with Close.
type Service struct {
	host host.Host
	repo *keyshare.Repo
	log  *slog.Logger

	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	serving chan struct{}
	limits  *peerlimit.Rate
	logged  *peerlimit.Throttle
	unhook  func()

	mu     sync.Mutex
	closed bool
	proved map[string]bool // request IDs whose requester's role was asked for
}

// Options tune New.
type Options struct {
	// Logger; nil means slog.Default().
	Logger *slog.Logger
}

// New registers both protocols on h for repo.
func New(h host.Host, repo *keyshare.Repo, opts Options) *Service {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Service{host: h, repo: repo, log: log.With("service", "attest"), ctx: ctx, cancel: cancel,
		serving: make(chan struct{}, MaxServing), limits: peerlimit.NewRate(PeerRate, PeerBurst),
		logged: peerlimit.NewThrottle(peerlimit.LogEvery), proved: map[string]bool{}}
	h.SetStreamHandler(protocol.AttestationsID, s.handleProof)
	h.SetStreamHandler(protocol.DirectoryID, s.handleDirectory)
	s.unhook = repo.OnRequestChange(s.requestChanged)
	return s
}

// Close stops serving and waits for the streams being served.
func (s *Service) Close() error {
	s.host.RemoveStreamHandler(protocol.AttestationsID)
	s.host.RemoveStreamHandler(protocol.DirectoryID)
	s.unhook()
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
	return nil
}

// spawn runs fn in a goroutine Close waits for, unless closed.
func (s *Service) spawn(fn func()) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.wg.Go(fn)
	return true
}

func (s *Service) reject(p peer.ID, msg string, err error) {
	if s.logged.Allow(p) {
		s.log.Info(msg, "peer", p, "err", err)
	}
}

// ---- serving ----

// serve reads one request of at most max bytes from st, lets answer make
// the response and writes it; any failure resets the stream.
func (s *Service) serve(st network.Stream, max int, answer func(ctx context.Context, p peer.ID, body []byte) (message, error)) {
	p := st.Conn().RemotePeer()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		_ = st.Reset()
		return
	}
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()
	select {
	case s.serving <- struct{}{}:
		defer func() { <-s.serving }()
	default:
		s.reject(p, "too many streams at once; stream reset", nil)
		_ = st.Reset()
		return
	}
	if !s.limits.Allow(p) {
		s.reject(p, "rate limit; stream reset", nil)
		_ = st.Reset()
		return
	}
	if err := st.Scope().SetService(ServiceName); err != nil {
		_ = st.Reset()
		return
	}
	_ = st.SetDeadline(time.Now().Add(StreamTimeout))
	body, err := protocol.ReadFrame(bufio.NewReader(st), max)
	if err != nil {
		s.reject(p, "bad request", err)
		_ = st.Reset()
		return
	}
	ctx, cancel := context.WithTimeout(s.ctx, StreamTimeout)
	defer cancel()
	resp, err := answer(ctx, p, body)
	if err != nil {
		s.reject(p, "request refused", err)
		_ = st.Reset()
		return
	}
	out, err := protocol.EncodeAttestMessage(resp)
	if err == nil {
		err = protocol.WriteFrame(st, out)
	}
	if err != nil {
		s.log.Debug("write response", "peer", p, "err", err)
		_ = st.Reset()
		return
	}
	_ = st.Close()
}

func (s *Service) handleProof(st network.Stream) {
	s.serve(st, protocol.MaxRoleProofRequest, func(ctx context.Context, _ peer.ID, body []byte) (message, error) {
		var q protocol.RoleProofRequest
		if err := protocol.DecodeAttestMessage(body, protocol.MaxRoleProofRequest, &q); err != nil {
			return nil, err
		}
		held := map[protocol.AccountID]uint64{}
		for _, h := range q.Held {
			held[protocol.AccountIDFromKey(h.Account)] = h.Seq
		}
		raws, err := s.repo.RoleProofBlocks(ctx, protocol.AccountIDFromKey(q.Account), held)
		if err != nil {
			s.log.Warn("role proof failed", "err", err)
			raws = nil // an absence, like anything not given
		}
		return &protocol.RoleProofResponse{Blocks: nonNil(raws)}, nil
	})
}

func (s *Service) handleDirectory(st network.Stream) {
	s.serve(st, protocol.MaxRoleProofRequest, func(ctx context.Context, _ peer.ID, body []byte) (message, error) {
		var q protocol.DirectoryRequest
		if err := protocol.DecodeAttestMessage(body, protocol.MaxRoleProofRequest, &q); err != nil {
			return nil, err
		}
		var clinic protocol.AccountID
		if q.Clinic != nil {
			clinic = protocol.AccountIDFromKey(q.Clinic)
		}
		ans, err := s.repo.AnswerDirectory(ctx, clinic, q.Query, int(q.Limit))
		if err != nil {
			return nil, fmt.Errorf("directory: %w", err)
		}
		return &protocol.DirectoryResponse{Entries: ans.Entries, Blocks: nonNil(ans.Blocks)}, nil
	})
}

// message is a request or response of the two protocols.
type message interface{ Validate() error }

func nonNil(b [][]byte) [][]byte {
	if b == nil {
		return [][]byte{}
	}
	return b
}

// ---- asking ----

// ask sends one request to p on proto and decodes the response into resp.
func (s *Service) ask(ctx context.Context, p peer.ID, proto libp2pproto.ID, req, resp message) error {
	body, err := protocol.EncodeAttestMessage(req)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, StreamTimeout)
	defer cancel()
	st, err := s.host.NewStream(network.WithAllowLimitedConn(ctx, ServiceName), p, proto)
	if err != nil {
		return fmt.Errorf("open %s stream to %s: %w", proto, p, err)
	}
	if err := st.Scope().SetService(ServiceName); err != nil {
		_ = st.Reset()
		return fmt.Errorf("%s: %w", proto, err)
	}
	deadline, _ := ctx.Deadline()
	_ = st.SetDeadline(deadline)
	if err := protocol.WriteFrame(st, body); err != nil {
		_ = st.Reset()
		return fmt.Errorf("%s to %s: %w", proto, p, err)
	}
	if err := st.CloseWrite(); err != nil {
		_ = st.Reset()
		return fmt.Errorf("%s to %s: %w", proto, p, err)
	}
	out, err := protocol.ReadFrame(bufio.NewReader(st), protocol.MaxRoleProofResponse)
	if err != nil {
		_ = st.Reset()
		return fmt.Errorf("%s from %s: response: %w", proto, p, err)
	}
	_ = st.Close()
	if err := protocol.DecodeAttestMessage(out, protocol.MaxRoleProofResponse, resp); err != nil {
		return fmt.Errorf("%s from %s: %w", proto, p, err)
	}
	return nil
}

// Prove asks the node at addr (connecting first when it has addresses)
// for the role proof of account id and applies it. The verdict is then
// keyshare.Repo.VerifiedRole's.
func (s *Service) Prove(ctx context.Context, addr peer.AddrInfo, id protocol.AccountID) (keyshare.ProofApplied, error) {
	if len(addr.Addrs) > 0 {
		if err := s.host.Connect(ctx, addr); err != nil {
			return keyshare.ProofApplied{}, fmt.Errorf("connect %s: %w", addr.ID, err)
		}
	}
	held, err := s.repo.HeldForProof(ctx, id)
	if err != nil {
		return keyshare.ProofApplied{}, err
	}
	key, err := id.Key()
	if err != nil {
		return keyshare.ProofApplied{}, err
	}
	q := &protocol.RoleProofRequest{Account: key}
	for a, seq := range held {
		if k, err := a.Key(); err == nil {
			q.Held = append(q.Held, protocol.HeldChain{Account: k, Seq: seq})
		}
	}
	var resp protocol.RoleProofResponse
	if err := s.ask(ctx, addr.ID, protocol.AttestationsID, q, &resp); err != nil {
		return keyshare.ProofApplied{}, err
	}
	changed, problems, err := s.repo.ApplyRoleProof(ctx, id, resp.Blocks)
	if err != nil {
		return keyshare.ProofApplied{}, err
	}
	return keyshare.ProofApplied{Changed: changed, Problems: problems}, nil
}

// proveAttesters asks peer p for account id's role proof and applies only
// its clinic and authority chains: a requester does not become a known
// account by asking (its request's profile stands for its first block).
func (s *Service) proveAttesters(ctx context.Context, p peer.ID, id protocol.AccountID) error {
	key, err := id.Key()
	if err != nil {
		return err
	}
	var resp protocol.RoleProofResponse
	if err := s.ask(ctx, p, protocol.AttestationsID, &protocol.RoleProofRequest{Account: key}, &resp); err != nil {
		return err
	}
	_, _, err = s.repo.ApplyAttesterChains(ctx, resp.Blocks)
	return err
}

// Directory asks the node at addr for the clinicians its clinics (only
// clinic's, when set) attest whose name or department contains query,
// applies the blocks of the answer and judges each entry
// (keyshare.Repo.ApplyDirectory).
func (s *Service) Directory(ctx context.Context, addr peer.AddrInfo, clinic protocol.AccountID, query string, limit int) ([]keyshare.DirectoryResult, []string, error) {
	if len(addr.Addrs) > 0 {
		if err := s.host.Connect(ctx, addr); err != nil {
			return nil, nil, fmt.Errorf("connect %s: %w", addr.ID, err)
		}
	}
	q := &protocol.DirectoryRequest{Query: query, Limit: uint64(max(limit, 0))}
	if clinic != "" {
		key, err := clinic.Key()
		if err != nil {
			return nil, nil, err
		}
		q.Clinic = key
	}
	var resp protocol.DirectoryResponse
	if err := s.ask(ctx, addr.ID, protocol.DirectoryID, q, &resp); err != nil {
		return nil, nil, err
	}
	return s.repo.ApplyDirectory(ctx, &keyshare.DirectoryAnswer{Entries: resp.Entries, Blocks: resp.Blocks})
}

// requestChanged asks, once per request, the node that delivered an
// access request from a clinician or a clinic for the requester's role
// proof.
func (s *Service) requestChanged(info keyshare.RequestInfo) {
	if info.Box != keyshare.Inbox || info.Peer == "" || (info.FromRole != protocol.RoleClinician && info.FromRole != protocol.RoleClinic) {
		return
	}
	p, err := peer.Decode(info.Peer)
	if err != nil {
		return
	}
	s.mu.Lock()
	if s.proved[info.ID] {
		s.mu.Unlock()
		return
	}
	if len(s.proved) >= maxAutoProofs {
		clear(s.proved)
	}
	s.proved[info.ID] = true
	s.mu.Unlock()
	s.spawn(func() {
		ctx, cancel := context.WithTimeout(s.ctx, StreamTimeout)
		defer cancel()
		if err := s.proveAttesters(ctx, p, info.From); err != nil && !errors.Is(err, context.Canceled) {
			s.log.Info("role proof of a requester", "from", info.From, "peer", p, "err", err)
		}
	})
}
