package audit

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/node/internal/deliver"
	"github.com/blockmrs/blockmrs/node/internal/fsutil"
	"github.com/blockmrs/blockmrs/node/internal/stream"
	"github.com/blockmrs/blockmrs/protocol"
)

// Reporting events to the patient's nodes.
//
// An entry of this node's own log about an account that is not local
// (a replica serving its patient's record, a guardian's node reading the
// child's) is reported to the nodes that account's chain declares as
// acting for it, over ProtocolID: the reporter opens a stream, writes up
// to protocol.MaxAuditBatch frames (uvarint length, then an encoded
// protocol.AuditEntry exactly as in its log), closes its side, and reads
// one frame, a protocol.AuditAck. The receiver keeps an entry only when it
// is signed by the stream's peer (its node key is the peer's key), is the
// reporter's own (holds no report itself), is about one of the
// receiver's local accounts and is newer than the reporter's entries it
// holds; it keeps it inside an entry of its own log (Report), marked as
// reported by that peer. Reports wait in audit/forward.json until the
// patient's node acknowledges them, and are retried when it connects and
// every RetryInterval.

// ProtocolID is the libp2p protocol of audit reports.
const ProtocolID = "/blockmrs/audit/1.0.0"

// ServiceName names the service to the resource manager.
const ServiceName = "blockmrs.audit"

// Limits and timing of reports.
const (
	StreamTimeout = 20 * time.Second
	DialTimeout   = 10 * time.Second
	// RetryInterval is how often reports still unacknowledged are tried.
	RetryInterval = 30 * time.Second
	// MaxUndeclared bounds the entries kept, per QuotaWindow, from a
	// reporter that the subject's chain does not declare as one of its
	// nodes (a grantee's node, a guardian's): any peer can report, but
	// not fill the log. The counts survive restarts (quota.go).
	MaxUndeclared = 1000
	// Per-peer limit on incoming streams.
	PeerRate  = 2
	PeerBurst = 20
	// MaxServing bounds the report streams served at once.
	MaxServing = 16
	// ForwardFile holds, in the audit folder, what is still to report.
	ForwardFile = "forward.json"
)

// ServiceOptions tune New.
type ServiceOptions struct {
	Logger *slog.Logger
	// RetryInterval replaces RetryInterval (tests).
	RetryInterval time.Duration
	// MaxUndeclared replaces MaxUndeclared (tests).
	MaxUndeclared int
	// Clock replaces time.Now for the quota's window (tests).
	Clock func() time.Time
}

// Service reports this node's events to the patients' nodes and keeps
// the events other nodes report about its accounts. Create it with New
// and stop it with Close.
type Service struct {
	host host.Host
	repo *keyshare.Repo
	l    *Log
	log  *slog.Logger

	srv  *stream.Server
	out  stream.Dialer
	loop *deliver.Loop

	mu    sync.Mutex
	state forwardState
	quota *quota // entries kept per undeclared reporter
}

// forwardState is what audit/forward.json holds.
type forwardState struct {
	// Scanned is the number of log entries looked at for reports.
	Scanned uint64 `json:"scanned"`
	// Pending maps a peer to the first entry (by position) that may still
	// be reported to it.
	Pending map[string]uint64 `json:"pending"`
}

// New serves ProtocolID on h, keeping reports in l, and starts reporting
// l's entries about accounts that are not repo's own.
func New(h host.Host, repo *keyshare.Repo, l *Log, opts ServiceOptions) *Service {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.RetryInterval <= 0 {
		opts.RetryInterval = RetryInterval
	}
	if opts.MaxUndeclared <= 0 {
		opts.MaxUndeclared = MaxUndeclared
	}
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	log := opts.Logger.With("service", "audit")
	s := &Service{host: h, repo: repo, l: l, log: log, quota: loadQuota(l, opts.MaxUndeclared, opts.Clock, log),
		srv: stream.NewServer(log, stream.Limits{Service: ServiceName, PeerRate: PeerRate, PeerBurst: PeerBurst,
			MaxServing: MaxServing, Timeout: StreamTimeout, Memory: protocol.MaxAuditEntrySize,
			MemoryPriority: network.ReservationPriorityLow,
			Refused:        "audit: refused a reported entry (further refusals for this peer are not logged for a minute)"}),
		out: stream.Dialer{Host: h, Protocol: ProtocolID, Timeout: StreamTimeout, DialTimeout: DialTimeout}}
	s.state = s.loadState()
	s.srv.Serve(h, ProtocolID, s.handle)
	s.loop = deliver.New(h, opts.RetryInterval, s.round, deliver.Options{Logger: log, Watch: func(kick func()) func() {
		return l.Watch(func(e Entry) {
			if e.ReportedBy == "" && e.Subject != "" {
				kick()
			}
		})
	}})
	s.loop.Begin()
	return s
}

// Close stops serving and reporting, and saves the quota.
func (s *Service) Close() error {
	s.loop.Close()
	s.srv.Close()
	s.saveQuota(true)
	return nil
}

// saveQuota saves the undeclared reporters' counts (see quota.save).
func (s *Service) saveQuota(force bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.quota.save(s.l.Len(), force, s.log)
}

// Kick asks for a reporting round now.
func (s *Service) Kick() { s.loop.Kick() }

// Pending returns the peers that reports wait for.
func (s *Service) Pending() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for p := range s.state.Pending {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

func (s *Service) statePath() string { return filepath.Join(s.l.dir, Folder, ForwardFile) }

func (s *Service) loadState() forwardState {
	st := forwardState{Pending: map[string]uint64{}}
	data, err := os.ReadFile(s.statePath())
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			s.log.Warn("audit: cannot read what is left to report; reporting everything again", "err", err)
		}
		return st
	}
	if err := json.Unmarshal(data, &st); err != nil || st.Pending == nil {
		s.log.Warn("audit: cannot read what is left to report; reporting everything again", "err", err)
		return forwardState{Pending: map[string]uint64{}}
	}
	return st
}

func (s *Service) saveState() {
	s.mu.Lock()
	data, err := json.Marshal(s.state)
	s.mu.Unlock()
	if err == nil {
		err = fsutil.WriteFileAtomic(s.statePath(), data, 0o600)
	}
	if err != nil {
		s.log.Warn("audit: cannot save what is left to report", "err", err)
	}
}

// round finds new entries to report and reports what waits to every
// destination it can reach.
func (s *Service) round(ctx context.Context) {
	changed := s.scan(ctx)
	s.mu.Lock()
	peers := make([]string, 0, len(s.state.Pending))
	for p := range s.state.Pending {
		peers = append(peers, p)
	}
	s.mu.Unlock()
	for _, p := range peers {
		if ctx.Err() != nil {
			return
		}
		if s.report(ctx, p) {
			changed = true
		}
	}
	if changed {
		s.saveState()
	}
	s.saveQuota(true)
}

// scan looks at the entries appended since the last scan and marks
// their destinations pending.
func (s *Service) scan(ctx context.Context) bool {
	s.mu.Lock()
	from := s.state.Scanned
	s.mu.Unlock()
	changed := false
	for {
		raws, err := s.l.readFrom(int(from), 1024)
		if err != nil || len(raws) == 0 {
			return changed
		}
		for i, raw := range raws {
			pos := from + uint64(i)
			e, err := protocol.DecodeAuditEntry(raw)
			if err != nil || !reportable(e) {
				continue
			}
			for _, p := range s.destinations(ctx, protocol.AccountID(e.Subject)) {
				s.mu.Lock()
				if _, ok := s.state.Pending[p]; !ok {
					s.state.Pending[p] = pos
				}
				s.mu.Unlock()
			}
		}
		from += uint64(len(raws))
		s.mu.Lock()
		s.state.Scanned = from
		s.mu.Unlock()
		changed = true
	}
}

// reportable says whether an entry goes to its subject's nodes: the
// node's own entries about an account, but requests (which reach the
// account's nodes themselves).
func reportable(e *protocol.AuditEntry) bool {
	return len(e.Report) == 0 && e.Subject != "" && e.Kind != string(keyshare.AuditRequest)
}

// destinations returns the nodes account id's chain declares as acting
// for it, when it is not a local account (whose events stay here).
func (s *Service) destinations(ctx context.Context, id protocol.AccountID) []string {
	info, err := s.repo.Account(ctx, id)
	if err != nil || info.Local {
		return nil
	}
	devs, err := s.repo.DevicesOf(ctx, id)
	if err != nil {
		return nil
	}
	self := s.host.ID().String()
	return slices.DeleteFunc(devs, func(p string) bool { return p == self })
}

// report sends what waits for p, a batch at a time, and reports whether
// the pending state changed.
func (s *Service) report(ctx context.Context, to string) bool {
	p, err := peer.Decode(to)
	if err != nil {
		s.mu.Lock()
		delete(s.state.Pending, to)
		s.mu.Unlock()
		return true
	}
	changed := false
	for ctx.Err() == nil {
		s.mu.Lock()
		from, ok := s.state.Pending[to]
		s.mu.Unlock()
		if !ok {
			return changed
		}
		batch, next, err := s.batchFor(ctx, to, from)
		if err != nil {
			return changed
		}
		if len(batch) > 0 {
			if err := s.send(ctx, p, batch); err != nil {
				s.log.Debug("audit: report not delivered; will retry", "peer", p, "err", err)
				return changed
			}
			s.log.Info("audit: reported events", "peer", p, "entries", len(batch))
		}
		end := uint64(s.l.Len())
		s.mu.Lock()
		if next >= end {
			delete(s.state.Pending, to)
		} else {
			s.state.Pending[to] = next
		}
		s.mu.Unlock()
		changed = true
	}
	return changed
}

// batchFor collects up to MaxAuditBatch entries from position from on
// that go to peer to, and the position after the last one looked at.
func (s *Service) batchFor(ctx context.Context, to string, from uint64) ([][]byte, uint64, error) {
	var out [][]byte
	pos := from
	for len(out) < protocol.MaxAuditBatch {
		raws, err := s.l.readFrom(int(pos), protocol.MaxAuditBatch)
		if err != nil {
			return nil, 0, err
		}
		if len(raws) == 0 {
			break
		}
		for _, raw := range raws {
			pos++
			e, err := protocol.DecodeAuditEntry(raw)
			if err == nil && reportable(e) && slices.Contains(s.destinations(ctx, protocol.AccountID(e.Subject)), to) {
				out = append(out, raw)
				if len(out) == protocol.MaxAuditBatch {
					break
				}
			}
		}
	}
	return out, pos, nil
}

// send writes a batch to p and reads its acknowledgement.
func (s *Service) send(ctx context.Context, p peer.ID, batch [][]byte) error {
	body, err := s.out.Ask(ctx, p, 64, batch...)
	if err != nil {
		return err
	}
	_, err = protocol.DecodeAuditAck(body)
	return err
}

// handle serves one report stream: up to protocol.MaxAuditBatch entries,
// then the acknowledgement.
func (s *Service) handle(ctx context.Context, st network.Stream, p peer.ID) error {
	br := bufio.NewReader(st)
	var stored uint64
	for n := 0; ; n++ {
		body, err := protocol.ReadFrame(br, protocol.MaxAuditEntrySize)
		if errors.Is(err, io.EOF) {
			break
		}
		if err == nil && n >= protocol.MaxAuditBatch {
			err = fmt.Errorf("more than %d entries in one stream", protocol.MaxAuditBatch)
		}
		if err != nil {
			return err
		}
		ok, err := s.Receive(ctx, p.String(), body)
		if err != nil {
			s.srv.Reject(p, err)
			continue
		}
		if ok {
			stored++
		}
	}
	s.saveQuota(false)
	last, _ := s.l.Reported(p.String())
	ack, err := protocol.EncodeAuditAck(protocol.AuditAck{Stored: stored, Last: last})
	if err != nil {
		return err
	}
	return stream.WriteFrames(st, ack)
}

// Receive keeps one entry reported by peer from (a peer ID), if it is
// to be kept: it reports whether it was stored, and why not as an error
// when the entry is refused (an entry held already is neither).
func (s *Service) Receive(ctx context.Context, from string, raw []byte) (bool, error) {
	e, err := protocol.DecodeAuditEntry(raw)
	if err != nil {
		return false, err
	}
	// One report at a time: the quota's count and the entry it counts
	// go together.
	s.mu.Lock()
	defer s.mu.Unlock()
	last, held := s.l.Reported(from)
	newer := !held || e.Seq > last
	d, err := s.repo.MayKeepReport(ctx, from, e, newer, s.quota.left(from))
	if err != nil {
		return false, err
	}
	switch {
	case d.Rule == keyshare.RuleReportReplayed:
		return false, nil // held already: the reporter sent it again
	case !d.Allow:
		return false, fmt.Errorf("entry %d: %s (%s)", e.Seq, d.Reason, d.Rule)
	}
	subject := protocol.AccountID(e.Subject)
	ev := Event{Time: time.UnixMilli(e.Time), Kind: keyshare.AuditKind(e.Kind), Account: protocol.AccountID(e.Account),
		Peer: e.Peer, Subject: subject, Records: linksToCIDs(e.Records), Rule: keyshare.Rule(e.Rule), Reason: e.Reason}
	if _, err := s.l.append(ev, raw); err != nil {
		return false, err
	}
	if d.Rule == keyshare.RuleReportUndeclared {
		s.quota.add(from, s.l.Len())
	}
	return true, nil
}

func linksToCIDs(ls []protocol.Link) []cid.Cid {
	out := make([]cid.Cid, len(ls))
	for i, l := range ls {
		out[i] = l.Cid
	}
	return out
}
