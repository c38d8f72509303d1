// Package chainsync keeps accounts' signed chains in step between nodes
// over the libp2p protocol /blockmrs/chain/1.0.0 (protocol.ChainSyncID).
//
// Each stream carries one request and one response, each a size-capped
// frame holding canonical DAG-CBOR (PROTOCOL.md §10.3). A node asks a peer
// for an account's head, fetches the blocks it lacks from that head back
// to the part of the chain it holds, and applies them through
// keyshare.Repo.ApplyChains, which verifies every block exactly as a CAR
// import does (signatures, links, forks kept as evidence, no rollback).
// When a chain here changes, the node announces the new head to every
// connected peer entitled to that chain (keyshare.Repo.MayServe on the
// head); a peer that connects is told the heads it is entitled to and is
// asked for the heads of the accounts it is declared to act for. Once a
// chain brings a local account the right to read a record the node does
// not hold, the record is fetched from the author's and subject's nodes;
// a record a contact wrote about a local account is fetched from the
// author's nodes, for her to check and acknowledge (keyshare's
// RuleWantPending). Adding a contact by address (Profile) marks it as
// one; accounts the node learns by itself are not marked.
//
// Every request a peer sends is judged like a bitswap want: a peer that
// may not have a chain gets the same answer as for a chain the node does
// not hold. Peers are rate limited; a malformed or oversized message
// resets the stream and is logged once per peer per minute.
package chainsync

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	libp2pproto "github.com/libp2p/go-libp2p/core/protocol"
	ma "github.com/multiformats/go-multiaddr"
	msmux "github.com/multiformats/go-multistream"
	"golang.org/x/sync/semaphore"

	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/node/internal/peerlimit"
	"github.com/blockmrs/blockmrs/protocol"
)

// Timeouts and limits of the service.
const (
	// StreamTimeout bounds one request and its response, on both sides.
	StreamTimeout = 15 * time.Second
	// RequestRate and RequestBurst bound how many requests one peer may
	// send (per second, and at once); excess streams are reset.
	RequestRate  = 100
	RequestBurst = 300
	// MaxPullBlocks bounds the new blocks one pull may bring (all
	// chains together).
	MaxPullBlocks = 1 << 20
	// MaxPullBytes bounds the bytes one pull may hold in memory before
	// they are verified and written.
	MaxPullBytes = 256 << 20
	// PullMemory bounds the bytes all pulls running at once may hold:
	// announcements of many heads (each its own pull) cost no more than
	// this together. A pull that would go over it fails with
	// ErrPullBusy, and one started by an announcement tries again later.
	PullMemory = 512 << 20
	// FetchRetry is how often records that could not be fetched are
	// tried again.
	FetchRetry = 30 * time.Second
	// AnnounceRetry is how often announcements that failed (the peer
	// was busy or the stream broke) are sent again.
	AnnounceRetry = 5 * time.Second
	// pullAttempts bounds the tries of an announced chain's pull; they
	// are spaced 1 s, 2 s, 4 s, … apart.
	pullAttempts = 5
)

// Fetcher gets a record's whole DAG from the given peers (and any other
// connected peer), pins it and indexes it; *exchange.Exchange is one.
type Fetcher interface {
	Fetch(ctx context.Context, root cid.Cid, from ...peer.ID) error
}

// Service is a running chain sync. Create it with New and stop it with
// Close.
type Service struct {
	host  host.Host
	repo  *keyshare.Repo
	fetch Fetcher
	log   *slog.Logger

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	unhook func()
	kick   chan struct{} // chains changed: announce

	mu       sync.Mutex
	changed  map[protocol.AccountID]bool // not yet announced
	limits   *peerlimit.Rate             // requests per peer
	logged   *peerlimit.Throttle         // log lines per misbehaving peer
	pulling  map[cid.Cid]bool
	fetching map[cid.Cid]bool
	pullMem  *semaphore.Weighted // bytes held by pulls in flight, at most PullMemory
	// changedRecs are records chain changes touched since fetchLoop last
	// looked; fullScan asks it to look at every record instead; pending
	// are wanted records not fetched yet (retried when providers come).
	changedRecs map[cid.Cid]bool
	fullScan    bool
	pending     map[cid.Cid]keyshare.Wanted
	// unannounced holds, per peer, accounts whose announcement to it
	// failed, to be sent again.
	unannounced map[peer.ID]map[protocol.AccountID]bool

	wantKick chan struct{} // records may be wanted: fetch
	notifee  *network.NotifyBundle
	closed   bool // guarded by mu: no new goroutines
}

// New starts chain sync on h for repo. fetch (may be nil) gets records a
// local account becomes entitled to read. log may be nil.
func New(h host.Host, repo *keyshare.Repo, fetch Fetcher, log *slog.Logger) *Service {
	if log == nil {
		log = slog.Default()
	}
	repo.SetNodeID(h.ID().String())
	ctx, cancel := context.WithCancel(context.Background())
	s := &Service{
		host: h, repo: repo, fetch: fetch, log: log,
		ctx: ctx, cancel: cancel,
		kick:     make(chan struct{}, 1),
		wantKick: make(chan struct{}, 1),
		changed:  map[protocol.AccountID]bool{},
		limits:   peerlimit.NewRate(RequestRate, RequestBurst),
		logged:   peerlimit.NewThrottle(peerlimit.LogEvery),
		pulling:  map[cid.Cid]bool{},
		fetching: map[cid.Cid]bool{},
		pullMem:  semaphore.NewWeighted(PullMemory),

		changedRecs: map[cid.Cid]bool{},
		fullScan:    true, // resume records left unfetched by a previous run
		pending:     map[cid.Cid]keyshare.Wanted{},

		unannounced: map[peer.ID]map[protocol.AccountID]bool{},
	}
	s.unhook = repo.OnChainChange(func(ch keyshare.ChainChange) {
		s.mu.Lock()
		for _, id := range ch.Accounts {
			s.changed[id] = true
		}
		for _, c := range ch.Records {
			s.changedRecs[c] = true
		}
		s.fullScan = s.fullScan || ch.All
		s.mu.Unlock()
		poke(s.kick)
		poke(s.wantKick)
	})
	h.SetStreamHandler(protocol.ChainSyncID, s.handle)
	s.notifee = &network.NotifyBundle{ConnectedF: s.connected}
	h.Network().Notify(s.notifee)
	s.spawn(s.announceLoop)
	s.spawn(s.fetchLoop)
	poke(s.wantKick)
	return s
}

// Close stops the service; pulls and fetches in flight are cancelled.
func (s *Service) Close() error {
	s.host.RemoveStreamHandler(protocol.ChainSyncID)
	s.host.Network().StopNotify(s.notifee)
	s.unhook()
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
	return nil
}

// spawn runs fn in a goroutine Close waits for, unless Close began.
func (s *Service) spawn(fn func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.wg.Go(fn)
}

func poke(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// logPeer logs a peer's misbehaviour at most once per peerlimit.LogEvery.
func (s *Service) logPeer(p peer.ID, msg string, err error) {
	if s.logged.Allow(p) {
		s.log.Warn("chainsync: "+msg, "peer", p, "err", err)
	}
}

// ---- serving ----

// handle serves one request stream.
func (s *Service) handle(st network.Stream) {
	p := st.Conn().RemotePeer()
	if !s.limits.Allow(p) {
		s.logPeer(p, "request rate exceeded; streams reset", nil)
		st.Reset()
		return
	}
	_ = st.SetDeadline(time.Now().Add(StreamTimeout))
	body, err := protocol.ReadFrame(bufio.NewReader(st), protocol.MaxSyncRequest)
	if err != nil {
		s.logPeer(p, "bad request", err)
		st.Reset()
		return
	}
	q, err := protocol.DecodeSyncRequest(body)
	if err != nil {
		s.logPeer(p, "bad request", err)
		st.Reset()
		return
	}
	ctx, cancel := context.WithTimeout(s.ctx, StreamTimeout)
	defer cancel()
	resp, err := s.answer(ctx, p, q)
	if err != nil {
		s.log.Warn("chainsync: serving a request failed", "peer", p, "kind", q.Kind, "err", err)
		st.Reset()
		return
	}
	out, err := protocol.EncodeSyncResponse(resp)
	if err == nil {
		err = protocol.WriteFrame(st, out)
	}
	if err != nil {
		s.log.Debug("chainsync: write response", "peer", p, "err", err)
		st.Reset()
		return
	}
	st.Close()
}

var none = &protocol.SyncResponse{Status: protocol.SyncNone}

// answer decides a request. Everything the peer may not have is "none".
func (s *Service) answer(ctx context.Context, p peer.ID, q *protocol.SyncRequest) (*protocol.SyncResponse, error) {
	switch q.Kind {
	case protocol.SyncHead:
		id, _ := q.AccountID()
		info, err := s.repo.Account(ctx, id)
		if errors.Is(err, keyshare.ErrUnknownAccount) || (err == nil && !info.Head.Defined()) {
			return none, nil
		}
		if err != nil {
			return nil, err
		}
		if ok, err := s.mayHave(ctx, p, info.Head); err != nil || !ok {
			return none, err
		}
		l := protocol.NewLink(info.Head)
		return &protocol.SyncResponse{Status: protocol.SyncOK, Head: &l, Seq: info.Seq}, nil

	case protocol.SyncBlocks:
		if ok, err := s.mayHave(ctx, p, q.Head.Cid); err != nil || !ok {
			return none, err
		}
		after := keyshare.NoneHeld
		if q.After != nil {
			after = *q.After
		}
		raws, err := s.repo.ChainBack(ctx, q.Head.Cid, after, protocol.MaxSyncBlocks, protocol.MaxSyncBytes)
		if err != nil {
			// A block MayServe allowed but the store lacks is an
			// absence; anything else is this node's failure.
			s.log.Debug("chainsync: blocks not served", "peer", p, "head", q.Head.Cid, "err", err)
			return none, nil
		}
		return &protocol.SyncResponse{Status: protocol.SyncOK, Blocks: raws}, nil

	case protocol.SyncProfile:
		id, _ := q.AccountID()
		info, err := s.repo.Account(ctx, id)
		if errors.Is(err, keyshare.ErrUnknownAccount) {
			return none, nil
		}
		if err != nil {
			return nil, err
		}
		if d, err := s.repo.MayServeProfile(ctx, p.String(), info.ID); err != nil || !d.Allow {
			return none, err
		}
		genesis, ok, err := s.repo.ChainBlockAt(ctx, id, 0)
		if err != nil || !ok {
			return none, err
		}
		raws, err := s.repo.ChainBack(ctx, genesis, keyshare.NoneHeld, 1, protocol.MaxSyncBytes)
		if err != nil {
			return none, nil
		}
		return &protocol.SyncResponse{Status: protocol.SyncOK, Blocks: raws}, nil

	case protocol.SyncAnnounce:
		id, _ := q.AccountID()
		if _, err := s.repo.Account(ctx, id); err != nil {
			// Chains of accounts this repo does not know are not taken
			// from announcements: contacts come first.
			return none, nil
		}
		s.pullInBackground(p, id, q.Head.Cid)
		return &protocol.SyncResponse{Status: protocol.SyncOK}, nil
	}
	return nil, fmt.Errorf("unhandled request kind %q", q.Kind)
}

// mayHave tells whether peer p may be sent chain block c (and so the
// chain behind it).
func (s *Service) mayHave(ctx context.Context, p peer.ID, c cid.Cid) (bool, error) {
	d, err := s.repo.MayServe(ctx, p.String(), c)
	return d.Allow, err
}

// ---- asking ----

// request sends q to p and returns the response. Every request is a
// read, so one that fails on the stream itself (a stream the transport
// cancelled, as when two nodes dial each other at once and one of the
// two connections is closed) is sent once more on a new stream; an
// answer that does not decode, one over the size limit and a peer that
// let the stream time out are not asked again.
func (s *Service) request(ctx context.Context, p peer.ID, q *protocol.SyncRequest) (*protocol.SyncResponse, error) {
	body, err := protocol.EncodeSyncRequest(q)
	if err != nil {
		return nil, err
	}
	out, err := s.roundTrip(ctx, p, body)
	if err != nil && ctx.Err() == nil && worthAsking(err) {
		s.log.Debug("chainsync: a request's stream failed: asking again", "peer", p, "err", err)
		out, err = s.roundTrip(ctx, p, body)
	}
	if err != nil {
		return nil, err
	}
	resp, err := protocol.DecodeSyncResponse(out)
	if err != nil {
		return nil, fmt.Errorf("chainsync: %s: %w", p, err)
	}
	return resp, nil
}

// worthAsking tells whether a request that failed with err may succeed
// on a new stream: not when the peer's answer was over the limit, nor
// when the peer let the stream's deadline pass (asking again would only
// double the wait).
func worthAsking(err error) bool {
	var ne net.Error
	return !errors.Is(err, protocol.ErrFrameTooLarge) && !errors.Is(err, context.DeadlineExceeded) &&
		!(errors.As(err, &ne) && ne.Timeout())
}

// roundTrip writes one request frame to p on a new stream and reads the
// one response frame.
func (s *Service) roundTrip(ctx context.Context, p peer.ID, body []byte) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, StreamTimeout)
	defer cancel()
	st, err := s.host.NewStream(network.WithAllowLimitedConn(ctx, "chainsync"), p, protocol.ChainSyncID)
	if err != nil {
		return nil, fmt.Errorf("chainsync: open stream to %s: %w", p, err)
	}
	deadline, _ := ctx.Deadline()
	_ = st.SetDeadline(deadline)
	if err := protocol.WriteFrame(st, body); err != nil {
		st.Reset()
		return nil, fmt.Errorf("chainsync: %s: %w", p, err)
	}
	if err := st.CloseWrite(); err != nil {
		st.Reset()
		return nil, fmt.Errorf("chainsync: %s: %w", p, err)
	}
	out, err := protocol.ReadFrame(bufio.NewReader(st), protocol.MaxSyncResponse)
	if err != nil {
		st.Reset()
		return nil, fmt.Errorf("chainsync: %s: response: %w", p, err)
	}
	st.Close()
	return out, nil
}

// ErrNotServed is returned when a peer answers "none": it does not hold
// what was asked for, or will not give it to this node.
var ErrNotServed = errors.New("peer does not serve it")

// ErrPullBusy is returned when the pulls running already hold
// PullMemory: the chain is to be pulled again once they end.
var ErrPullBusy = fmt.Errorf("the chains being pulled already hold the %d MiB this node allows; try again when those pulls end", PullMemory>>20)

// Head asks peer p for the head of account id's chain.
func (s *Service) Head(ctx context.Context, p peer.ID, id protocol.AccountID) (cid.Cid, uint64, error) {
	key, err := id.Key()
	if err != nil {
		return cid.Undef, 0, err
	}
	resp, err := s.request(ctx, p, &protocol.SyncRequest{Kind: protocol.SyncHead, Account: key})
	if err != nil {
		return cid.Undef, 0, err
	}
	if resp.Status != protocol.SyncOK || resp.Head == nil {
		return cid.Undef, 0, fmt.Errorf("head of %s from %s: %w", id.Short(), p, ErrNotServed)
	}
	return resp.Head.Cid, resp.Seq, nil
}

// Sync asks peer p for account id's head and pulls what this repo lacks
// of it.
func (s *Service) Sync(ctx context.Context, p peer.ID, id protocol.AccountID) (*keyshare.ImportResult, error) {
	head, _, err := s.Head(ctx, p, id)
	if err != nil {
		return nil, err
	}
	return s.pull(ctx, p, head, id)
}

// Profile asks the node at addr for the first chain block of account id
// (which must be hosted there) and imports it as a contact: what `blockmrs
// contact add ADDRESS ACCOUNT` does. The account is marked as one the
// user added (keyshare.Repo.MarkContact), even when the repo knew it.
//
// The rest of the chain comes too when that node gives it to this one
// (it decides, by MayServe: say this node's account is the contact's
// guardian, appointed before the contact was added); otherwise the
// first block is all.
func (s *Service) Profile(ctx context.Context, addr peer.AddrInfo, id protocol.AccountID) (*keyshare.ImportResult, error) {
	res, err := s.profile(ctx, addr, id)
	if err != nil {
		return nil, err
	}
	if err := s.repo.MarkContact(ctx, id); err != nil {
		return nil, err
	}
	if more, err := s.Sync(ctx, addr.ID, id); err == nil {
		res.NewBlocks += more.NewBlocks
		// A fork the rest of the chain settled by a recovery (a thief's
		// branch held here, the recovered chain arriving) is reported.
		res.Superseded = append(res.Superseded, more.Superseded...)
		if len(more.Accounts) > 0 {
			res.Accounts = more.Accounts // the chain as it is now
			// Its first block was here already, the rest was not.
			res.Unchanged = slices.DeleteFunc(res.Unchanged, func(u protocol.AccountID) bool { return u == id })
		}
	} else if !errors.Is(err, ErrNotServed) && ctx.Err() == nil {
		s.log.Debug("chainsync: the rest of a new contact's chain", "peer", addr.ID, "account", id, "err", err)
	}
	return res, nil
}

// profile is Profile without marking the account a contact: how the node
// learns, by itself, the accounts its own records name.
func (s *Service) profile(ctx context.Context, addr peer.AddrInfo, id protocol.AccountID) (*keyshare.ImportResult, error) {
	if err := s.host.Connect(ctx, addr); err != nil {
		return nil, fmt.Errorf("chainsync: connect %s: %w", addr.ID, err)
	}
	key, err := id.Key()
	if err != nil {
		return nil, err
	}
	resp, err := s.request(ctx, addr.ID, &protocol.SyncRequest{Kind: protocol.SyncProfile, Account: key})
	if err != nil {
		return nil, err
	}
	if resp.Status != protocol.SyncOK || len(resp.Blocks) != 1 {
		return nil, fmt.Errorf("profile of %s from %s: %w", id.Short(), addr.ID, ErrNotServed)
	}
	raw := resp.Blocks[0]
	b, err := protocol.DecodeBlock(raw)
	if err != nil {
		return nil, fmt.Errorf("profile of %s from %s: %w", id.Short(), addr.ID, err)
	}
	if b.AuthorID() != id || b.Seq != 0 {
		return nil, fmt.Errorf("profile of %s from %s: peer sent another block", id.Short(), addr.ID)
	}
	c := protocol.BlockCID(raw)
	return s.repo.ApplyChains(ctx, []cid.Cid{c}, map[cid.Cid][]byte{c: raw})
}

// Pull fetches from peer p the chain ending at head, down to the part
// this repo holds (and the chains its ack entries name), verifies it and
// applies it.
func (s *Service) Pull(ctx context.Context, p peer.ID, head cid.Cid) (*keyshare.ImportResult, error) {
	return s.pull(ctx, p, head, "")
}

// pull is Pull for a head known to be account id's ("" if not known):
// then the peer is asked only for blocks past the ones held.
func (s *Service) pull(ctx context.Context, p peer.ID, head cid.Cid, id protocol.AccountID) (*keyshare.ImportResult, error) {
	type want struct {
		c     cid.Cid
		after *uint64
	}
	var after *uint64
	if id != "" {
		if info, err := s.repo.Account(ctx, id); err == nil && info.Head.Defined() {
			after = &info.Seq
		}
	}
	offered := map[cid.Cid][]byte{}
	total := 0
	var held int64 // of s.pullMem, for offered
	defer func() { s.pullMem.Release(held) }()
	queue := []want{{head, after}}
	for len(queue) > 0 {
		c, after := queue[0].c, queue[0].after
		queue = queue[1:]
		if _, ok := offered[c]; ok {
			continue
		}
		if held, err := s.committed(ctx, c); err != nil {
			return nil, err
		} else if held {
			continue
		}
		q := &protocol.SyncRequest{Kind: protocol.SyncBlocks, Head: &protocol.Link{Cid: c}, After: after}
		resp, err := s.request(ctx, p, q)
		if err != nil {
			return nil, err
		}
		if resp.Status != protocol.SyncOK || len(resp.Blocks) == 0 {
			return nil, fmt.Errorf("chain block %s from %s: %w", c, p, ErrNotServed)
		}
		n := int64(0)
		for _, raw := range resp.Blocks {
			n += int64(len(raw))
		}
		if !s.pullMem.TryAcquire(n) {
			return nil, fmt.Errorf("chain from %s: %w", p, ErrPullBusy)
		}
		held += n
		next := c
		var last *protocol.Block
		for _, raw := range resp.Blocks {
			got := protocol.BlockCID(raw)
			if !got.Equals(next) {
				return nil, fmt.Errorf("chain block %s from %s: peer sent %s instead", next, p, got)
			}
			b, err := protocol.DecodeBlock(raw)
			if err != nil {
				return nil, fmt.Errorf("chain block %s from %s: %w", got, p, err)
			}
			if id != "" && got.Equals(head) && b.AuthorID() != id {
				// The peer gave another account's head as id's: a pull of
				// id's chain brings id's chain only.
				return nil, fmt.Errorf("head of %s from %s: the peer gave a block of %s instead", id.Short(), p, b.AuthorID().Short())
			}
			offered[got] = raw
			total += len(raw)
			if len(offered) > MaxPullBlocks || total > MaxPullBytes {
				return nil, fmt.Errorf("chain from %s: more than %d blocks or %d bytes in one pull", p, MaxPullBlocks, MaxPullBytes)
			}
			for _, e := range b.Entries {
				if ack, ok := e.Body.(*protocol.Ack); ok {
					queue = append(queue, want{ack.Block.Cid, nil})
				}
			}
			last = b
			if b.Prev == nil {
				break
			}
			next = b.Prev.Cid
		}
		if last.Prev != nil {
			// Continue below the last block sent, unless the repo holds
			// the chain there already.
			held, ok, err := s.repo.ChainBlockAt(ctx, last.AuthorID(), last.Seq-1)
			if err != nil {
				return nil, err
			}
			if !ok || !held.Equals(last.Prev.Cid) {
				queue = append(queue, want{last.Prev.Cid, after})
			}
		}
	}
	return s.repo.ApplyChains(ctx, []cid.Cid{head}, offered)
}

// learnAccountsIn asks p for the profiles of the accounts that id's
// records name and this repo does not know (the grantees of a patient
// whose replica this node is, say), so that it can tell their nodes. p
// answers only if this node is one of p's accounts' devices or replicas.
func (s *Service) learnAccountsIn(ctx context.Context, p peer.ID, id protocol.AccountID) {
	unknown, err := s.repo.UnknownAccountsIn(ctx, id)
	if err != nil {
		s.log.Warn("chainsync: list unknown accounts", "err", err)
		return
	}
	learned := false
	for _, a := range unknown {
		if _, err := s.profile(ctx, peer.AddrInfo{ID: p}, a); err != nil {
			s.log.Debug("chainsync: profile of a named account", "peer", p, "account", a, "err", err)
			continue
		}
		learned = true
		// The rest of its chain, if p gives it to this node (a guardian's
		// acts for id are there).
		if _, err := s.Sync(ctx, p, a); err != nil {
			s.log.Debug("chainsync: sync of a named account", "peer", p, "account", a, "err", err)
		}
	}
	if learned {
		// Their nodes may now be entitled to id's chain: announce it
		// again to the peers connected already.
		s.mu.Lock()
		s.changed[id] = true
		s.mu.Unlock()
		poke(s.kick)
	}
}

// committed tells whether c is a block of a chain this repo holds.
func (s *Service) committed(ctx context.Context, c cid.Cid) (bool, error) {
	o, err := s.repo.Owner(ctx, c)
	if err != nil {
		return false, err
	}
	return o.Chain != "", nil
}

// pullInBackground pulls head from p unless a pull of it runs already or
// the repo holds it.
func (s *Service) pullInBackground(p peer.ID, id protocol.AccountID, head cid.Cid) {
	s.mu.Lock()
	if s.pulling[head] || len(s.pulling) > 1024 {
		s.mu.Unlock()
		return
	}
	s.pulling[head] = true
	s.mu.Unlock()
	s.spawn(func() {
		defer func() {
			s.mu.Lock()
			delete(s.pulling, head)
			s.mu.Unlock()
		}()
		wait := time.Second
		for attempt := 1; ; attempt++ {
			if held, err := s.committed(s.ctx, head); err != nil || held {
				return
			}
			res, err := s.pull(s.ctx, p, head, id)
			if err == nil {
				s.log.Info("chainsync: chain updated", "account", id, "peer", p, "new_blocks", res.NewBlocks)
				s.learnAccountsIn(s.ctx, p, id)
				return
			}
			var fork *keyshare.ForkError
			if s.ctx.Err() != nil || errors.As(err, &fork) || attempt == pullAttempts {
				if s.ctx.Err() == nil {
					s.logPeer(p, "pulling an announced chain failed", err)
				}
				return
			}
			select {
			case <-s.ctx.Done():
				return
			case <-time.After(wait):
			}
			wait *= 2
		}
	})
}

// ---- announcing ----

// connected runs when a connection to a peer opens: the peer is told the
// heads it is entitled to, and asked for the heads of the accounts it
// acts for.
func (s *Service) connected(_ network.Network, c network.Conn) {
	p := c.RemotePeer()
	poke(s.wantKick) // a provider of a wanted record may have come
	s.spawn(func() {
		ctx, cancel := context.WithTimeout(s.ctx, time.Minute)
		defer cancel()
		ids, err := s.repo.ChainsServedTo(ctx, p.String())
		if err != nil {
			s.log.Warn("chainsync: list chains entitled to a peer", "peer", p, "err", err)
			return
		}
		s.announceTo(ctx, p, ids)
		acting, err := s.repo.AccountsOfPeer(ctx, p.String())
		if err != nil {
			return
		}
		for _, id := range acting {
			if _, err := s.Sync(ctx, p, id); err != nil {
				if ctx.Err() == nil {
					s.log.Debug("chainsync: sync on connect", "peer", p, "account", id, "err", err)
				}
				continue
			}
			s.learnAccountsIn(ctx, p, id)
		}
	})
}

// AccountJoined runs when this node became a device of account id
// through peer p (device pairing): as on a new connection from a node
// acting for it, the chain is synced from p, the accounts its records
// name are learnt, and the records to fetch are looked at again.
func (s *Service) AccountJoined(p peer.ID, id protocol.AccountID) {
	s.Kick()
	s.spawn(func() {
		ctx, cancel := context.WithTimeout(s.ctx, time.Minute)
		defer cancel()
		if _, err := s.Sync(ctx, p, id); err != nil {
			if ctx.Err() == nil {
				s.log.Debug("chainsync: sync after joining", "peer", p, "account", id, "err", err)
			}
			return
		}
		s.learnAccountsIn(ctx, p, id)
		s.Kick()
	})
}

// announceLoop announces changed chains to connected peers, and sends
// failed announcements again.
func (s *Service) announceLoop() {
	retry := time.NewTicker(AnnounceRetry)
	defer retry.Stop()
	for {
		todo := map[peer.ID][]protocol.AccountID{}
		select {
		case <-s.ctx.Done():
			return
		case <-s.kick:
			s.mu.Lock()
			ids := make([]protocol.AccountID, 0, len(s.changed))
			for id := range s.changed {
				ids = append(ids, id)
			}
			clear(s.changed)
			s.mu.Unlock()
			ids = s.withGuardianLinks(ids)
			for _, p := range s.host.Network().Peers() {
				todo[p] = ids
			}
		case <-retry.C:
			s.mu.Lock()
			for p, ids := range s.unannounced {
				if s.host.Network().Connectedness(p) != network.Connected {
					continue // sent on reconnect
				}
				for id := range ids {
					todo[p] = append(todo[p], id)
				}
			}
			clear(s.unannounced)
			s.mu.Unlock()
		}
		var wg sync.WaitGroup
		for p, ids := range todo {
			wg.Go(func() {
				ctx, cancel := context.WithTimeout(s.ctx, StreamTimeout)
				defer cancel()
				s.announceTo(ctx, p, ids)
			})
		}
		wg.Wait()
	}
}

// withGuardianLinks adds to ids the guardians and wards of each (once):
// a guardian's act changes its own chain, and opens its ward's chain to
// the account it acted for, which must be told the ward's head too.
func (s *Service) withGuardianLinks(ids []protocol.AccountID) []protocol.AccountID {
	out := slices.Clone(ids)
	for _, id := range ids {
		linked, err := s.repo.GuardianLinks(s.ctx, id)
		if err != nil {
			continue
		}
		for _, l := range linked {
			if !slices.Contains(out, l) {
				out = append(out, l)
			}
		}
	}
	return out
}

// announceTo tells p the heads of the accounts in ids that p may have.
func (s *Service) announceTo(ctx context.Context, p peer.ID, ids []protocol.AccountID) {
	for _, id := range ids {
		info, err := s.repo.Account(ctx, id)
		if err != nil || !info.Head.Defined() {
			continue
		}
		if ok, err := s.mayHave(ctx, p, info.Head); err != nil || !ok {
			continue
		}
		key, err := id.Key()
		if err != nil {
			continue
		}
		l := protocol.NewLink(info.Head)
		if _, err := s.request(ctx, p, &protocol.SyncRequest{Kind: protocol.SyncAnnounce, Account: key, Head: &l}); err != nil {
			s.log.Debug("chainsync: announce", "peer", p, "account", id, "err", err)
			var unsupported msmux.ErrNotSupported[libp2pproto.ID]
			if errors.As(err, &unsupported) || s.ctx.Err() != nil {
				continue // a stock IPFS replica: it takes blocks only
			}
			s.mu.Lock()
			if s.unannounced[p] == nil {
				s.unannounced[p] = map[protocol.AccountID]bool{}
			}
			s.unannounced[p][id] = true
			s.mu.Unlock()
		}
	}
}

// ---- records ----

// fetchLoop drops the records revoked from local accounts and fetches the
// records the node should hold and does not. After a chain change it looks
// only at the records the change touched, so its cost follows the change;
// at start and every FullScanEvery it looks at every record (grants
// expire without a chain change); every FetchRetry, and when a peer
// connects, it tries the pending fetches again.
func (s *Service) fetchLoop() {
	retry := time.NewTicker(FetchRetry)
	defer retry.Stop()
	lastFull := time.Time{}
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-s.wantKick:
		case <-retry.C:
		}
		s.mu.Lock()
		full := s.fullScan || time.Since(lastFull) >= FullScanEvery
		s.fullScan = false
		changed := make([]cid.Cid, 0, len(s.changedRecs))
		for c := range s.changedRecs {
			changed = append(changed, c)
		}
		clear(s.changedRecs)
		s.mu.Unlock()
		if full {
			lastFull = time.Now()
			changed = nil
		} else if len(changed) == 0 {
			s.fetchPending()
			continue
		}
		self := s.host.ID().String()
		dropped, err := s.repo.DropRevoked(s.ctx, self, changed...)
		if err != nil && s.ctx.Err() == nil {
			s.log.Warn("chainsync: dropping revoked records", "err", err)
		}
		for _, c := range dropped {
			s.log.Info("chainsync: access revoked; local copy removed", "record", c)
		}
		if s.fetch == nil {
			continue
		}
		wanted, err := s.repo.WantedRecords(s.ctx, self, changed...)
		if err != nil {
			if s.ctx.Err() == nil {
				s.log.Warn("chainsync: list wanted records", "err", err)
			}
			continue
		}
		s.mu.Lock()
		if full {
			clear(s.pending)
		}
		for _, c := range changed {
			delete(s.pending, c) // wanted again below if still wanted
		}
		for _, w := range wanted {
			s.pending[w.Record] = w
		}
		s.mu.Unlock()
		s.fetchPending()
	}
}

// FullScanEvery is how often fetchLoop looks at every record, not only
// those chain changes touched.
const FullScanEvery = 10 * time.Minute

// fetchPending starts a fetch for every pending wanted record.
func (s *Service) fetchPending() {
	if s.fetch == nil {
		return
	}
	s.mu.Lock()
	todo := make([]keyshare.Wanted, 0, len(s.pending))
	for _, w := range s.pending {
		todo = append(todo, w)
	}
	s.mu.Unlock()
	for _, w := range todo {
		s.fetchInBackground(w)
	}
}

// fetchInBackground fetches one wanted record unless that runs already.
func (s *Service) fetchInBackground(w keyshare.Wanted) {
	s.mu.Lock()
	if s.fetching[w.Record] {
		s.mu.Unlock()
		return
	}
	s.fetching[w.Record] = true
	s.mu.Unlock()
	s.spawn(func() {
		defer func() {
			s.mu.Lock()
			delete(s.fetching, w.Record)
			s.mu.Unlock()
		}()
		var from []peer.ID
		for _, id := range w.Providers {
			p, err := peer.Decode(id)
			if err != nil || p == s.host.ID() {
				continue
			}
			if s.host.Network().Connectedness(p) == network.Connected {
				from = append(from, p)
			}
		}
		if len(from) == 0 {
			return // retried when a provider connects and chains move
		}
		ctx, cancel := context.WithTimeout(s.ctx, 30*time.Minute)
		defer cancel()
		if err := s.fetch.Fetch(ctx, w.Record, from...); err != nil {
			if s.ctx.Err() == nil {
				s.log.Warn("chainsync: fetching a wanted record failed; will retry", "record", w.Record, "pending", w.Pending, "err", err)
			}
			return
		}
		s.mu.Lock()
		delete(s.pending, w.Record)
		s.mu.Unlock()
		s.log.Info("chainsync: record received", "record", w.Record, "for", w.For, "pending", w.Pending)
	})
}

// Kick makes the service look again at every record for what to fetch (a
// provider may have come online).
func (s *Service) Kick() {
	s.mu.Lock()
	s.fullScan = true
	s.mu.Unlock()
	poke(s.wantKick)
}

// AddrInfo parses a multiaddr ending in /p2p/PEER_ID.
func AddrInfo(s string) (peer.AddrInfo, error) {
	a, err := ma.NewMultiaddr(s)
	if err != nil {
		return peer.AddrInfo{}, fmt.Errorf("address %q: %w", s, err)
	}
	info, err := peer.AddrInfoFromP2pAddr(a)
	if err != nil {
		return peer.AddrInfo{}, fmt.Errorf("address %q: must end in /p2p/PEER_ID: %w", s, err)
	}
	return *info, nil
}
