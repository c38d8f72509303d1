// Package pair adds a device to an account over the libp2p protocol
// /blockmrs/pair/1.0.0 (PROTOCOL.md, "Device pairing").
//
// The offering node (a device of the account, unlocked) makes an offer:
// a one-time secret of protocol.PairSecretBits bits, valid for
// OfferLifetime, shown with the node's address as a pairing code
// ("ADDRESS SECRET") and a QR code of it. The joining node (a fresh repo)
// dials the address, whose /p2p/ part the Noise handshake authenticates,
// and sends a proof of the secret bound to both peer IDs. The offering
// node decides by the access policy (keyshare.PairJoin: live, unused,
// fewer than MaxFailures wrong codes, matching proof), declares the
// joining node a device on the account's chain, and sends a confirmation
// of the secret, the account's keys and its chain. The joining node
// checks the confirmation, stores the chain and the keys (encrypted under
// its own passphrase) and answers done.
//
// A node holds at most one offer: a new one replaces it. MaxFailures
// wrong proofs spend it; so does one use. The stream carries one pairing:
// join, then keys and chain frames, then done (frames are
// uvarint(length) || canonical DAG-CBOR, protocol.PairFrame, at most
// protocol.MaxPairFrameSize bytes), each step under StreamTimeout.
package pair

import (
	"bufio"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/node/internal/stream"
	"github.com/blockmrs/blockmrs/protocol"
)

// ID is the libp2p protocol of device pairing.
const ID = "/blockmrs/pair/1.0.0"

// ServiceName names the service in the resource manager.
const ServiceName = "blockmrs.pair"

// Limits and timing.
const (
	// OfferLifetime is how long an offer stands.
	OfferLifetime = 10 * time.Minute
	// MaxFailures is how many wrong proofs spend an offer.
	MaxFailures = 3
	// StreamTimeout bounds each step of a pairing on its stream.
	StreamTimeout = 30 * time.Second
	// StoreTimeout bounds the wait for the joining node to store the
	// account (it encrypts the keys with scrypt, about a second of a core
	// and 256 MiB; longer on a busy phone).
	StoreTimeout = 3 * time.Minute
	// DialTimeout bounds connecting to the offering node.
	DialTimeout = 15 * time.Second
	// chainFrameBytes is the most chain-block bytes one frame carries.
	chainFrameBytes = protocol.MaxPairFrameSize - 64<<10
	// streamMemory is reserved for each pairing stream.
	streamMemory = protocol.MaxPairFrameSize
	// Per-peer limit on incoming streams.
	peerRate  = 1
	peerBurst = 10
)

// Errors.
var (
	// ErrRefused wraps the offering node's refusal (its reason follows).
	ErrRefused = errors.New("the other device refused")
	// ErrNoOffer is returned by Wait when no offer is pending.
	ErrNoOffer = errors.New("no pairing offer is pending on this node")
	// ErrReplaced ends the wait for an offer a newer one replaced.
	ErrReplaced = errors.New("a newer pairing offer replaced this one")
	// ErrCancelled ends the wait for an offer that was cancelled.
	ErrCancelled = errors.New("the pairing offer was cancelled")
	// ErrExpired ends the wait for an offer whose time ran out.
	ErrExpired = errors.New("the pairing code expired unused")
)

// Options tune New.
type Options struct {
	// Logger; nil means slog.Default().
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Joined, when set, is called on the joining node once an account is
	// stored, with the offering peer (the daemon syncs the chain from it
	// and looks for the account's records).
	Joined func(p peer.ID, id protocol.AccountID)
	// Sessions, when set, get the identities of rotation files copied
	// from another device.
	Sessions *keyshare.Sessions
}

// Offer is a pending pairing offer, as shown to people.
type Offer struct {
	// Account is the account whose keys the offer gives.
	Account protocol.AccountID `json:"account"`
	// Secret is the one-time secret, grouped for reading out
	// (7KQ2-M9XF-3TRA).
	Secret string `json:"secret"`
	// Expires is when the offer ends.
	Expires time.Time `json:"expires"`
}

// Joined is a device that joined through an offer.
type Joined struct {
	// Account is the account it joined.
	Account protocol.AccountID `json:"account"`
	// PeerID is the new device's node.
	PeerID string `json:"peer_id"`
	// Name is the name it gave.
	Name string `json:"name,omitempty"`
	// Block is the chain block that declares it.
	Block string `json:"block"`
}

// Status is the state of the node's offer.
type Status struct {
	// Pending is true while an offer waits for a device.
	Pending bool `json:"pending"`
	// Joining is true once a device gave the right code, while it is
	// sent the account: Joined or Ended follows.
	Joining bool `json:"joining,omitempty"`
	// Offer is the pending (or last) offer; its secret is shown only
	// while pending.
	Offer *Offer `json:"offer,omitempty"`
	// Joined is the device that used the last offer, if one did.
	Joined *Joined `json:"joined,omitempty"`
	// Ended says why the last offer ended without a device (expired,
	// cancelled, too many wrong codes).
	Ended string `json:"ended,omitempty"`
}

type offer struct {
	secret   string // normalized
	keys     *keyshare.Keys
	expires  time.Time
	failures int
	used     bool
	done     chan struct{} // closed when the offer ends
	timer    *time.Timer   // ends it at expires
	joined   *Joined
	err      error                         // why it ended without a device
	then     func(context.Context, Joined) // OfferThen's, called once a device joined
}

// Service serves the pairing protocol on a host and holds the node's
// offer. Create it with New and stop it with Close.
type Service struct {
	host   host.Host
	repo   *keyshare.Repo
	log    *slog.Logger
	now    func() time.Time
	joined func(peer.ID, protocol.AccountID)
	srv    *stream.Server

	sessions *keyshare.Sessions
	rotate   chan protocol.AccountID // accounts whose chain changed
	unwatch  func()
	ctx      context.Context
	cancel   context.CancelFunc

	mu     sync.Mutex
	offer  *offer
	closed bool
	wg     sync.WaitGroup
}

// New registers the protocol handler on h.
func New(h host.Host, repo *keyshare.Repo, opts Options) *Service {
	s := &Service{host: h, repo: repo, log: opts.Logger, now: opts.Now, joined: opts.Joined,
		sessions: opts.Sessions, rotate: make(chan protocol.AccountID, 64)}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	if s.log == nil {
		s.log = slog.Default()
	}
	s.log = s.log.With("service", ServiceName)
	if s.now == nil {
		s.now = time.Now
	}
	s.srv = stream.NewServer(s.log, stream.Limits{Service: ServiceName, PeerRate: peerRate, PeerBurst: peerBurst,
		Timeout: StreamTimeout, HandlerTimeout: 4*StreamTimeout + StoreTimeout,
		Memory: streamMemory, MemoryPriority: network.ReservationPriorityMedium,
		Limited: func(st network.Stream) {
			_ = writeFrame(st, &protocol.PairFrame{Kind: protocol.PairFrameError, Error: "too many pairing attempts from this node: wait a minute"})
		},
		Refused: "pairing refused or failed", LogEvery: -1})
	s.srv.Serve(h, ID, s.serve)
	s.unwatch = repo.OnChainChange(func(ch keyshare.ChainChange) {
		for _, id := range ch.Accounts {
			select {
			case s.rotate <- id:
			default: // a full queue catches up on the next change
			}
		}
	})
	s.wg.Go(s.rotationLoop)
	return s
}

// Close ends the offer (wiping its keys), stops serving, cancels the
// pairings in flight and waits for them.
func (s *Service) Close() error {
	s.unwatch()
	s.cancel()
	s.mu.Lock()
	s.closed = true
	s.endLocked(s.offer, ErrCancelled)
	s.mu.Unlock()
	s.srv.Close()
	s.wg.Wait()
	return nil
}

// endLocked ends offer o with err (nil: it was used), wiping its keys;
// an offer already ended stays as it ended.
func (s *Service) endLocked(o *offer, err error) {
	if o == nil || o.keys == nil {
		return
	}
	o.keys.Wipe()
	o.keys = nil
	o.err = err
	if o.timer != nil {
		o.timer.Stop()
	}
	close(o.done)
}

// Offer makes a new offer for k's account (replacing any pending one),
// holding a copy of k until it ends.
func (s *Service) Offer(k *keyshare.Keys) (Offer, error) { return s.OfferThen(k, nil) }

// OfferThen is Offer, with then (when not nil) called once a device
// joined through the offer, after it confirmed it stored the account
// (guardian handover forgets the keys then).
func (s *Service) OfferThen(k *keyshare.Keys, then func(context.Context, Joined)) (Offer, error) {
	var random [8]byte
	if _, err := rand.Read(random[:]); err != nil {
		return Offer{}, fmt.Errorf("pairing secret: %w", err)
	}
	secret, err := protocol.PairSecretFromBytes(random[:])
	if err != nil {
		return Offer{}, err
	}
	held := k.Clone()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		held.Wipe()
		return Offer{}, errors.New("the node is stopping")
	}
	s.endLocked(s.offer, ErrReplaced)
	o := &offer{secret: secret, keys: held, expires: s.now().Add(OfferLifetime), done: make(chan struct{}), then: then}
	s.offer = o
	o.timer = time.AfterFunc(OfferLifetime, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if !o.used {
			s.endLocked(o, ErrExpired)
		}
	})
	return Offer{Account: k.ID, Secret: protocol.FormatPairSecret(secret), Expires: o.expires}, nil
}

// Cancel ends the pending offer; it reports whether one was pending.
func (s *Service) Cancel() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.offer == nil || s.offer.keys == nil || s.offer.used {
		return false
	}
	s.endLocked(s.offer, ErrCancelled)
	return true
}

// Status reports the node's offer.
func (s *Service) Status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.offer
	if o == nil {
		return Status{}
	}
	st := Status{Pending: o.keys != nil && !o.used, Joining: o.used && o.joined == nil && o.err == nil, Joined: o.joined}
	if o.err != nil {
		st.Ended = o.err.Error()
	}
	if st.Pending {
		st.Offer = &Offer{Account: o.keys.ID, Secret: protocol.FormatPairSecret(o.secret), Expires: o.expires}
	}
	return st
}

// Wait waits until the pending offer ends: with the device that joined,
// or with why it ended (ErrExpired, ErrCancelled, ErrReplaced, too many
// wrong codes), or ctx's error.
func (s *Service) Wait(ctx context.Context) (Joined, error) {
	s.mu.Lock()
	o := s.offer
	s.mu.Unlock()
	if o == nil {
		return Joined{}, ErrNoOffer
	}
	select {
	case <-o.done:
	case <-ctx.Done():
		return Joined{}, ctx.Err()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if o.joined != nil {
		return *o.joined, nil
	}
	return Joined{}, o.err
}

// ---------------------------------------------------------------------------
// The offering side.

// serve runs one pairing, or a rotations request, on an admitted stream.
func (s *Service) serve(ctx context.Context, st network.Stream, p peer.ID) error {
	r := bufio.NewReader(st)
	f, err := readFrame(r, 4<<10)
	if err != nil {
		return err
	}
	if f.Kind == protocol.PairFrameRotations {
		return s.serveRotations(ctx, st, p, f)
	}
	if f.Kind != protocol.PairFrameJoin {
		return fmt.Errorf("expected a join frame, got %s", f.Kind)
	}
	o, keys, d := s.decide(p, f.Proof)
	if !d.Allow {
		_ = writeFrame(st, &protocol.PairFrame{Kind: protocol.PairFrameError, Error: d.Reason})
		_ = st.CloseWrite()
		return fmt.Errorf("%s: %s", d.Rule, d.Reason)
	}
	defer keys.Wipe()
	joined, err := s.give(ctx, st, r, p, f, keys, o.secret)
	if err == nil && o.then != nil {
		o.then(ctx, joined) // before the offer ends: Wait returns after it
	}
	s.mu.Lock()
	if err == nil {
		o.joined = &joined
	}
	s.endLocked(o, err)
	s.mu.Unlock()
	if err == nil {
		s.log.Info("device joined", "account", joined.Account, "peer", p)
	}
	return err
}

// decide applies keyshare.PairJoin to the node's offer and the proof;
// when allowed it marks the offer used and returns it with a copy of its
// keys. A wrong proof counts against the offer; MaxFailures spend it.
func (s *Service) decide(p peer.ID, proof []byte) (*offer, *keyshare.Keys, keyshare.Decision) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.offer
	facts := keyshare.PairFacts{MaxFailures: MaxFailures}
	if o != nil && !errors.Is(o.err, ErrCancelled) && !errors.Is(o.err, ErrReplaced) {
		facts.Offered, facts.Expires, facts.Used, facts.Failures = true, o.expires, o.used, o.failures
		facts.ProofOK = o.keys != nil && hmac.Equal(proof, protocol.PairProof(o.secret, []byte(s.host.ID()), []byte(p)))
	}
	d := keyshare.PairJoin(facts, s.now())
	if d.Rule == keyshare.RulePairWrongCode {
		if o.failures++; o.failures >= MaxFailures {
			s.endLocked(o, fmt.Errorf("%d wrong pairing codes were tried: the offer is spent", o.failures))
		}
	}
	if !d.Allow {
		return nil, nil, d
	}
	o.used = true
	return o, o.keys.Clone(), d
}

// give declares p a device of the account and sends it the keys and the
// chain, then waits for its done.
func (s *Service) give(ctx context.Context, st network.Stream, r *bufio.Reader, p peer.ID, join *protocol.PairFrame, k *keyshare.Keys, secret string) (Joined, error) {
	block, err := s.repo.SetDevice(ctx, k, p.String(), join.Name, false)
	if err != nil {
		_ = writeFrame(st, &protocol.PairFrame{Kind: protocol.PairFrameError, Error: "the offering node could not declare the device"})
		return Joined{}, fmt.Errorf("declare device: %w", err)
	}
	info, err := s.repo.Account(ctx, k.ID)
	if err != nil {
		return Joined{}, err
	}
	head := info.Head
	blocks, err := s.repo.ChainBack(ctx, head, keyshare.NoneHeld, 1<<30, protocol.MaxPairChain)
	if err != nil {
		return Joined{}, fmt.Errorf("chain of %s: %w", k.ID, err)
	}
	if len(blocks) > 0 {
		if b, err := protocol.DecodeBlock(blocks[len(blocks)-1]); err != nil || b.Seq != 0 {
			return Joined{}, fmt.Errorf("the chain of %s is over %d bytes: too large to pair", k.ID, protocol.MaxPairChain)
		}
	}
	raw, err := keyshare.MarshalKeys(k)
	if err != nil {
		return Joined{}, err
	}
	defer clear(raw)
	link := protocol.NewLink(head)
	_ = st.SetDeadline(time.Now().Add(StreamTimeout))
	if err := writeFrame(st, &protocol.PairFrame{Kind: protocol.PairFrameKeys, Confirm: protocol.PairConfirm(secret, []byte(s.host.ID()), []byte(p)), Keys: raw, Head: &link}); err != nil {
		return Joined{}, err
	}
	for start := 0; start < len(blocks); {
		end, size := start, 0
		for end < len(blocks) && (end == start || size+len(blocks[end]) <= chainFrameBytes) {
			size += len(blocks[end])
			end++
		}
		_ = st.SetDeadline(time.Now().Add(StreamTimeout))
		if err := writeFrame(st, &protocol.PairFrame{Kind: protocol.PairFrameChain, Blocks: blocks[start:end], Last: end == len(blocks)}); err != nil {
			return Joined{}, err
		}
		start = end
	}
	_ = st.SetDeadline(time.Now().Add(StoreTimeout))
	done, err := readFrame(r, 4<<10)
	if err != nil {
		return Joined{}, fmt.Errorf("the new device did not confirm: %w", err)
	}
	if done.Kind != protocol.PairFrameDone || done.Error != "" {
		return Joined{}, fmt.Errorf("the new device could not store the account: %s", oneLine(done.Error))
	}
	return Joined{Account: k.ID, PeerID: p.String(), Name: join.Name, Block: block.String()}, nil
}

// ---------------------------------------------------------------------------
// The joining side.

// Join pairs this node with the offering node at addr using secret (as
// shown: case, spaces and dashes do not matter): it proves the secret,
// checks the offering node's confirmation, and stores the account it
// sends, its keys encrypted under passphrase (none when empty). name
// labels this node on the account's chain.
func (s *Service) Join(ctx context.Context, addr peer.AddrInfo, secret, name string, passphrase []byte) (keyshare.AccountInfo, error) {
	secret, err := protocol.ParsePairSecret(secret)
	if err != nil {
		return keyshare.AccountInfo{}, err
	}
	if addr.ID == s.host.ID() {
		return keyshare.AccountInfo{}, errors.New("the pairing code is this node's own: run 'device join' on the new device")
	}
	dctx, cancel := context.WithTimeout(ctx, DialTimeout)
	err = s.host.Connect(dctx, addr)
	cancel()
	if err != nil {
		return keyshare.AccountInfo{}, fmt.Errorf("connect to %s: %w", addr.ID, err)
	}
	d := stream.Dialer{Host: s.host, Protocol: ID, Service: ServiceName, Timeout: StreamTimeout,
		Memory: streamMemory, MemoryPriority: network.ReservationPriorityHigh}
	st, err := d.Open(ctx, addr.ID)
	if err != nil {
		return keyshare.AccountInfo{}, fmt.Errorf("pairing with %s: %w", addr.ID, err)
	}
	ok := false
	defer func() {
		if !ok {
			_ = st.Reset()
		}
	}()
	stop := context.AfterFunc(ctx, func() { _ = st.Reset() })
	defer stop()

	self, offerer := []byte(s.host.ID()), []byte(addr.ID)
	if err := writeFrame(st, &protocol.PairFrame{Kind: protocol.PairFrameJoin, Proof: protocol.PairProof(secret, offerer, self), Name: name}); err != nil {
		return keyshare.AccountInfo{}, err
	}
	r := bufio.NewReader(st)
	f, err := readFrame(r, protocol.MaxPairFrameSize)
	if err != nil {
		return keyshare.AccountInfo{}, fmt.Errorf("pairing: %w", err)
	}
	if f.Kind == protocol.PairFrameError {
		return keyshare.AccountInfo{}, fmt.Errorf("%w: %s", ErrRefused, oneLine(f.Error))
	}
	if f.Kind != protocol.PairFrameKeys {
		return keyshare.AccountInfo{}, fmt.Errorf("pairing: expected keys, got %s", f.Kind)
	}
	defer clear(f.Keys)
	if !hmac.Equal(f.Confirm, protocol.PairConfirm(secret, offerer, self)) {
		return keyshare.AccountInfo{}, errors.New("pairing: the node at that address does not know the code (wrong confirmation): nothing was stored")
	}
	var blocks [][]byte
	total := 0
	for {
		_ = st.SetDeadline(time.Now().Add(StreamTimeout))
		c, err := readFrame(r, protocol.MaxPairFrameSize)
		if err != nil {
			return keyshare.AccountInfo{}, fmt.Errorf("pairing: chain: %w", err)
		}
		if c.Kind != protocol.PairFrameChain {
			return keyshare.AccountInfo{}, fmt.Errorf("pairing: expected the chain, got %s", c.Kind)
		}
		for _, b := range c.Blocks {
			if total += len(b); total > protocol.MaxPairChain {
				return keyshare.AccountInfo{}, fmt.Errorf("pairing: the chain sent is over %d bytes", protocol.MaxPairChain)
			}
			blocks = append(blocks, b)
		}
		if c.Last {
			break
		}
	}
	k, err := keyshare.ParseKeys(f.Keys)
	if err != nil {
		return keyshare.AccountInfo{}, fmt.Errorf("pairing: %w", err)
	}
	defer k.Wipe()
	info, jerr := s.repo.JoinAccount(ctx, k, f.Head.Cid, blocks, passphrase)
	done := &protocol.PairFrame{Kind: protocol.PairFrameDone}
	if jerr != nil {
		done.Error = jerr.Error()
	}
	_ = st.SetDeadline(time.Now().Add(StreamTimeout))
	werr := writeFrame(st, done)
	if jerr != nil {
		return keyshare.AccountInfo{}, jerr
	}
	if werr == nil {
		_ = st.CloseWrite()
		ok = true
		_ = st.Close()
	}
	s.log.Info("joined an account", "account", info.ID, "from", addr.ID)
	if s.joined != nil {
		s.joined(addr.ID, info.ID)
	}
	return info, nil
}

// ---------------------------------------------------------------------------
// Rotation files: a device that rotated the account's key (device rm)
// holds a rotation file the account's other devices need to open the
// records written after; they copy it from it when their chain names a
// recipient they hold no identity for.

// serveRotations answers a rotations request by the access policy
// (keyshare.ServeRotations).
func (s *Service) serveRotations(ctx context.Context, st network.Stream, p peer.ID, f *protocol.PairFrame) error {
	id := protocol.AccountID(f.Account)
	info, err := s.repo.Account(ctx, id)
	local, device := err == nil && info.Local, false
	for _, d := range info.Devices {
		if d.PeerID == p.String() && !d.Replica {
			device = true
		}
	}
	d := keyshare.ServeRotations(local, device)
	if !d.Allow {
		_ = writeFrame(st, &protocol.PairFrame{Kind: protocol.PairFrameError, Error: d.Reason})
		return fmt.Errorf("%s: %s", d.Rule, d.Reason)
	}
	files, err := s.repo.RotationFiles(ctx, id)
	if err != nil {
		_ = writeFrame(st, &protocol.PairFrame{Kind: protocol.PairFrameError, Error: "the rotation files could not be read"})
		return err
	}
	reply := &protocol.PairFrame{Kind: protocol.PairFrameRotations, Account: string(id)}
	for _, rf := range files[:min(len(files), protocol.MaxPairFiles)] {
		reply.Names = append(reply.Names, rf.Name)
		reply.Files = append(reply.Files, rf.Data)
	}
	return writeFrame(st, reply)
}

// rotationLoop copies, for each local account whose chain changed and now
// names a recipient this node holds no identity for, the rotation files
// of the account's connected devices.
func (s *Service) rotationLoop() {
	for {
		select {
		case <-s.ctx.Done():
			return
		case id := <-s.rotate:
			need, err := s.repo.NeedsRotation(s.ctx, id)
			if err != nil || !need {
				continue
			}
			if n := s.FetchRotations(s.ctx, id); n > 0 {
				s.log.Info("copied the account's new key from another device", "account", id, "files", n)
			}
		}
	}
}

// FetchRotations asks the connected devices of local account id for its
// rotation files and stores those this repo lacks; it returns how many
// it stored. An open session of the account gets their identities.
func (s *Service) FetchRotations(ctx context.Context, id protocol.AccountID) int {
	info, err := s.repo.Account(ctx, id)
	if err != nil || !info.Local {
		return 0
	}
	stored := 0
	for _, d := range info.Devices {
		p, err := peer.Decode(d.PeerID)
		if d.Replica || err != nil || p == s.host.ID() || s.host.Network().Connectedness(p) != network.Connected {
			continue
		}
		files, err := s.askRotations(ctx, p, id)
		if err != nil {
			s.log.Debug("ask for rotation files", "peer", p, "account", id, "err", err)
			continue
		}
		n, err := s.repo.StoreRotations(ctx, id, files)
		stored += n
		if err != nil {
			s.log.Info("rotation files refused", "peer", p, "account", id, "err", err)
		}
	}
	if stored > 0 && s.sessions != nil {
		if _, err := s.sessions.Refresh(ctx, id); err != nil {
			s.log.Warn("apply copied rotation files to the session", "account", id, "err", err)
		}
	}
	return stored
}

func (s *Service) askRotations(ctx context.Context, p peer.ID, id protocol.AccountID) ([]keyshare.RotationFile, error) {
	req, err := protocol.EncodePairFrame(&protocol.PairFrame{Kind: protocol.PairFrameRotations, Account: string(id)})
	if err != nil {
		return nil, err
	}
	d := stream.Dialer{Host: s.host, Protocol: ID, Service: ServiceName, Timeout: StreamTimeout,
		Memory: streamMemory, MemoryPriority: network.ReservationPriorityLow}
	body, err := d.Ask(ctx, p, protocol.MaxPairFrameSize, req)
	if err != nil {
		return nil, err
	}
	f, err := protocol.DecodePairFrame(body)
	if err != nil {
		return nil, err
	}
	if f.Kind == protocol.PairFrameError {
		return nil, fmt.Errorf("%w: %s", ErrRefused, oneLine(f.Error))
	}
	if f.Kind != protocol.PairFrameRotations || f.Account != string(id) {
		return nil, fmt.Errorf("expected the rotation files of %s, got %s", id, f.Kind)
	}
	out := make([]keyshare.RotationFile, len(f.Names))
	for i := range f.Names {
		out[i] = keyshare.RotationFile{Name: f.Names[i], Data: f.Files[i]}
	}
	return out, nil
}

// ---------------------------------------------------------------------------
// Frames.

func writeFrame(st network.Stream, f *protocol.PairFrame) error {
	enc, err := protocol.EncodePairFrame(f)
	if err != nil {
		return err
	}
	return stream.WriteFrames(st, enc)
}

func readFrame(r *bufio.Reader, max int) (*protocol.PairFrame, error) {
	body, err := protocol.ReadFrame(r, max)
	if err != nil {
		return nil, err
	}
	return protocol.DecodePairFrame(body)
}

// oneLine keeps the first line of a peer's text, at most 200 bytes.
func oneLine(s string) string {
	for i, r := range s {
		if r == '\n' || r == '\r' || i >= 200 {
			return s[:i]
		}
	}
	return s
}
