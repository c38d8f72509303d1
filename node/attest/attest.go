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
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	libp2pproto "github.com/libp2p/go-libp2p/core/protocol"

	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/node/internal/stream"
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

	srv    *stream.Server
	unhook func()

	mu     sync.Mutex
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
	log = log.With("service", "attest")
	s := &Service{host: h, repo: repo, log: log, proved: map[string]bool{},
		srv: stream.NewServer(log, stream.Limits{Service: ServiceName, PeerRate: PeerRate, PeerBurst: PeerBurst,
			MaxServing: MaxServing, Timeout: StreamTimeout, Refused: "request refused; stream reset"})}
	s.srv.Serve(h, protocol.AttestationsID, stream.Request(protocol.MaxRoleProofRequest, s.answerProof))
	s.srv.Serve(h, protocol.DirectoryID, stream.Request(protocol.MaxRoleProofRequest, s.answerDirectory))
	s.unhook = repo.OnRequestChange(s.requestChanged)
	return s
}

// Close stops serving and waits for the streams being served.
func (s *Service) Close() error {
	s.unhook()
	s.srv.Close()
	return nil
}

// ---- serving ----

// answerProof answers a role proof request.
func (s *Service) answerProof(ctx context.Context, _ peer.ID, body []byte) ([]byte, error) {
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
	return protocol.EncodeAttestMessage(&protocol.RoleProofResponse{Blocks: nonNil(raws)})
}

// answerDirectory answers a directory query.
func (s *Service) answerDirectory(ctx context.Context, _ peer.ID, body []byte) ([]byte, error) {
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
	return protocol.EncodeAttestMessage(&protocol.DirectoryResponse{Entries: ans.Entries, Blocks: nonNil(ans.Blocks)})
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
	d := stream.Dialer{Host: s.host, Protocol: proto, Service: ServiceName, Timeout: StreamTimeout, Limited: true}
	out, err := d.Ask(ctx, p, protocol.MaxRoleProofResponse, body)
	if err != nil {
		return fmt.Errorf("%s with %s: %w", proto, p, err)
	}
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
	_ = s.srv.Go(func() {
		ctx, cancel := context.WithTimeout(s.srv.Context(), StreamTimeout)
		defer cancel()
		if err := s.proveAttesters(ctx, p, info.From); err != nil && !errors.Is(err, context.Canceled) {
			s.log.Info("role proof of a requester", "from", info.From, "peer", p, "err", err)
		}
	})
}
