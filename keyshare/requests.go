package keyshare

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/ipfs/go-datastore"

	"github.com/blockmrs/blockmrs/protocol"
)

// Access requests. A requester's repo keeps the requests it made in its
// outbox until they are answered; the asked account's repo keeps those it
// received in its inbox. Both are persisted under /keyshare/requests/, one
// JSON value per request, keyed by the request's ID (its CID). Nodes move
// the messages (node/requests); this file decides what to accept.

// Request states.
const (
	// Outbox.
	StatePendingDelivery = "pending delivery" // no node of the asked account took it yet
	StateDelivered       = "delivered"        // a node of the asked account took it; no answer yet
	// Inbox.
	StateNew = "new" // not answered yet
	// Both.
	StateApproved = "approved"
	StateDenied   = "denied"
)

// Limits on the inbox, against floods: unanswered requests held from one
// requesting account, and in all.
const (
	MaxInboxPerRequester = 16
	MaxInbox             = 1024
	// A request created more than this in the future (clock skew) or
	// longer than MaxRequestAge ago is refused.
	maxRequestSkew = time.Hour
	MaxRequestAge  = 365 * 24 * time.Hour
)

// Boxes.
const (
	Inbox  = "inbox"
	Outbox = "outbox"
)

func keyRequest(box, id string) datastore.Key {
	return datastore.NewKey("/keyshare/requests/" + box + "/" + id)
}

// requestsMu serialises the read-modify-write of request entries.
var requestsMu sync.Mutex

// watchers holds, per repo, the function to call when a message is queued
// for delivery (see WatchRequests).
var watchers sync.Map // *Repo → func()

// WatchRequests makes r call fn (which must not block) whenever a request
// or an answer is queued for delivery, so that a running node delivers it
// at once. It returns a function that stops the calls. One watcher per
// repo: a later one replaces an earlier one.
func (r *Repo) WatchRequests(fn func()) (stop func()) {
	w := &fn
	watchers.Store(r, w)
	return func() { watchers.CompareAndDelete(r, w) }
}

// requestHooks are a repo's OnRequestChange listeners.
type requestHooks struct {
	mu   sync.Mutex
	next int
	fns  map[int]func(RequestInfo)
}

var requestListeners sync.Map // *Repo → *requestHooks

// OnRequestChange registers fn to be called after every change of a
// request in the inbox or the outbox (one made here, one received from
// another node, a delivery or an answer), with the request as it now is.
// fn runs while the repo is still busy with the change: it must return
// quickly and must not call back into the repo. The returned function
// unregisters fn.
func (r *Repo) OnRequestChange(fn func(RequestInfo)) (remove func()) {
	v, _ := requestListeners.LoadOrStore(r, &requestHooks{fns: map[int]func(RequestInfo){}})
	h := v.(*requestHooks)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.next++
	id := h.next
	h.fns[id] = fn
	return func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		delete(h.fns, id)
	}
}

func (r *Repo) requestChanged(info RequestInfo) {
	v, ok := requestListeners.Load(r)
	if !ok {
		return
	}
	h := v.(*requestHooks)
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, fn := range h.fns {
		fn(info)
	}
}

func (r *Repo) requestsQueued() {
	if w, ok := watchers.Load(r); ok {
		(*w.(*func()))()
	}
}

// RequestInfo describes a request in the inbox or the outbox.
type RequestInfo struct {
	ID       string             `json:"id"`
	Box      string             `json:"box"` // Inbox or Outbox
	From     protocol.AccountID `json:"from"`
	FromName string             `json:"from_name,omitempty"` // from the requester's profile
	FromRole protocol.Role      `json:"from_role,omitempty"`
	To       protocol.AccountID `json:"to"`
	// Records asked for; empty means every record To may grant.
	Records  []string  `json:"records"`
	Reason   string    `json:"reason,omitempty"`
	Duration int64     `json:"duration_seconds,omitempty"` // access asked for; 0: no end asked
	Created  time.Time `json:"created"`
	State    string    `json:"state"`
	Updated  time.Time `json:"updated"`
	// Peer is the node that delivered an inbox request (informative: the
	// request's signature, not the peer, says who asks).
	Peer string `json:"peer,omitempty"`
	// Set once answered.
	AnswerReason string    `json:"answer_reason,omitempty"`
	Grant        string    `json:"grant,omitempty"`            // chain block holding the grant
	Expires      time.Time `json:"expires,omitzero"`           // inbox: end of the grant given
	AnswerSent   bool      `json:"answer_delivered,omitempty"` // inbox: the answer reached the requester's node
	// AnsweredBy is the account that signed the answer: To itself, or a
	// guardian of To (ByGuardian) who may approve its requests.
	AnsweredBy protocol.AccountID `json:"answered_by,omitempty"`
	ByGuardian bool               `json:"answered_by_guardian,omitempty"`
	// Inbox, on the asked account's node: the guardians whose nodes took
	// the request relayed from here (see Pending).
	RelayedTo []protocol.AccountID `json:"relayed_to,omitempty"`
	// Inbox, on a guardian's node: the request came relayed from a node
	// of the account asked, which is told the answer given here.
	Relayed bool `json:"relayed,omitempty"`
	// NoLongerYours, on a guardian's node: an inbox request still new
	// that no account of this repo may answer any more (the guardian lost
	// the approve right on the account asked, or was removed). Worked out
	// as the inbox is listed, not stored; approving or denying it is
	// refused.
	NoLongerYours bool `json:"no_longer_yours,omitempty"`
}

// requestEntry is what the datastore holds per request.
type requestEntry struct {
	Info    RequestInfo `json:"info"`
	Raw     []byte      `json:"raw"`               // the signed request
	Profile []byte      `json:"profile,omitempty"` // the requester's first chain block
	Answer  []byte      `json:"answer,omitempty"`  // the signed answer
	// Told lists the accounts, besides the requester, whose nodes took
	// the answer (the asked account, the guardians relayed to).
	Told []protocol.AccountID `json:"told,omitempty"`
}

func (r *Repo) getRequest(ctx context.Context, box, id string) (*requestEntry, bool, error) {
	var e requestEntry
	found, err := getJSON(ctx, r.ds, keyRequest(box, id), &e)
	if err != nil || !found {
		return nil, found, err
	}
	return &e, true, nil
}

func (r *Repo) putRequest(ctx context.Context, e *requestEntry) error {
	if err := putJSON(ctx, r.ds, keyRequest(e.Info.Box, e.Info.ID), e); err != nil {
		return fmt.Errorf("store request: %w", err)
	}
	if err := r.ds.Sync(ctx, datastore.NewKey("/keyshare/requests")); err != nil {
		return err
	}
	r.requestChanged(e.Info)
	return nil
}

func (r *Repo) listRequests(ctx context.Context, box string) ([]*requestEntry, error) {
	keys, err := listKeys(ctx, r.ds, "/keyshare/requests/"+box+"/")
	if err != nil {
		return nil, err
	}
	out := make([]*requestEntry, 0, len(keys))
	for _, k := range keys {
		var e requestEntry
		if _, err := getJSON(ctx, r.ds, k, &e); err != nil {
			return nil, err
		}
		out = append(out, &e)
	}
	return out, nil
}

func requestInfo(q *protocol.Request, id cid.Cid, box string) RequestInfo {
	recs := make([]string, len(q.Records))
	for i, l := range q.Records {
		recs[i] = l.String()
	}
	return RequestInfo{ID: id.String(), Box: box, From: q.FromID(), To: q.ToID(), Records: recs, Reason: q.Reason,
		Duration: int64(q.Duration), Created: time.UnixMilli(q.Created).UTC()}
}

// DevicesOf returns the peer IDs of the nodes account id's chain declares
// as acting for it (replicas excluded): where messages for it go. Peers
// learn nothing else of an account: a peer's own claim is never asked.
func (r *Repo) DevicesOf(ctx context.Context, id protocol.AccountID) ([]string, error) {
	st, err := r.state(ctx, id)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, d := range st.Devices {
		if !d.Replica {
			out = append(out, d.PeerID)
		}
	}
	return out, nil
}

// NewRequest asks account to (known to the repo, so its nodes can be
// found) for records (none: every record to may grant) for duration (0:
// no end asked for), as k. The signed request goes into the outbox,
// pending delivery, with k's first chain block (its profile), which
// travels with it so that to can grant to k.
func (r *Repo) NewRequest(ctx context.Context, k *Keys, to protocol.AccountID, records []cid.Cid, reason string, duration time.Duration) (RequestInfo, error) {
	if to == k.ID {
		return RequestInfo{}, errors.New("cannot ask yourself")
	}
	if _, err := r.Account(ctx, to); err != nil {
		return RequestInfo{}, fmt.Errorf("request to: %w", err)
	}
	if duration < 0 {
		return RequestInfo{}, errors.New("negative duration")
	}
	genesis, ok, err := r.blockAt(ctx, k.ID, 0)
	if err != nil {
		return RequestInfo{}, err
	}
	if !ok {
		return RequestInfo{}, fmt.Errorf("%s: %w", k.ID, ErrUnknownAccount)
	}
	blk, err := r.st.Blockstore().Get(ctx, genesis)
	if err != nil {
		return RequestInfo{}, fmt.Errorf("first chain block of %s: %w", k.ID, err)
	}
	nonce := make([]byte, protocol.RequestNonceSize)
	if _, err := rand.Read(nonce); err != nil {
		return RequestInfo{}, err
	}
	q := &protocol.Request{To: keyOf(to), Records: protocol.Links(records), Reason: reason,
		Duration: uint64((duration + time.Second - 1) / time.Second), Created: r.now().UnixMilli(), Nonce: nonce}
	raw, id, err := q.SignAs(k.Public(), k.Sign)
	if err != nil {
		return RequestInfo{}, err
	}
	e := &requestEntry{Info: requestInfo(q, id, Outbox), Raw: raw, Profile: blk.RawData()}
	if self, err := r.state(ctx, k.ID); err == nil {
		e.Info.FromName, e.Info.FromRole = self.Name, self.Role
	}
	e.Info.State, e.Info.Updated = StatePendingDelivery, r.now().UTC()
	requestsMu.Lock()
	defer requestsMu.Unlock()
	if err := r.putRequest(ctx, e); err != nil {
		return RequestInfo{}, err
	}
	r.requestsQueued()
	return e.Info, nil
}

// ReceiveRequest takes a request a node delivered (fromPeer names that
// node, for the record only), with the requester's first chain block
// (profile; needed unless the requester is known already). The request
// must be signed by its requester, addressed to a local account, recent,
// and within the inbox limits (a request for an account not of this
// node, nor a ward a local guardian answers for, is a NotAddressedError,
// whose Public text is all a delivering node is to be told). A request
// already held is returned as it
// is (redelivery is no error), except that a guardian's node that took it
// from another node first marks it relayed once a node of the account
// asked delivers it (see relayedFrom), so that its answer reaches there.
func (r *Repo) ReceiveRequest(ctx context.Context, raw, profile []byte, fromPeer string) (RequestInfo, error) {
	q, err := protocol.DecodeRequest(raw)
	if err != nil {
		return RequestInfo{}, err
	}
	id := protocol.BlockCID(raw)
	to, from := q.ToID(), q.FromID()
	if err := r.checkMessageSigner(ctx, q.From, q.SignerKey()); err != nil {
		return RequestInfo{}, fmt.Errorf("request %s: %w", id, err)
	}
	local, err := r.isLocal(ctx, to)
	if err != nil {
		return RequestInfo{}, err
	}
	if _, guardian, err := r.LocalGuardian(ctx, to, protocol.RightApprove); err != nil {
		return RequestInfo{}, err
	} else if !local && !guardian {
		why, err := r.whyNoLocalGuardian(ctx, to)
		if err != nil {
			return RequestInfo{}, err
		}
		return RequestInfo{}, &NotAddressedError{Request: id, To: to, Why: why}
	}
	now := r.now()
	created := time.UnixMilli(q.Created)
	if created.After(now.Add(maxRequestSkew)) {
		return RequestInfo{}, fmt.Errorf("request %s: created in the future", id)
	}
	if now.Sub(created) > MaxRequestAge {
		return RequestInfo{}, fmt.Errorf("request %s: older than %v", id, MaxRequestAge)
	}
	info := requestInfo(q, id, Inbox)
	if len(profile) > 0 {
		name, role, err := checkProfileBlock(profile, from)
		if err != nil {
			return RequestInfo{}, fmt.Errorf("request %s: %w", id, err)
		}
		info.FromName, info.FromRole = name, role
	}
	if st, err := r.state(ctx, from); err == nil {
		info.FromName, info.FromRole = st.Name, st.Role
	} else if !errors.Is(err, ErrUnknownAccount) {
		return RequestInfo{}, err
	} else if len(profile) == 0 {
		return RequestInfo{}, fmt.Errorf("request %s: requester %s is unknown and sent no profile", id, from)
	}

	requestsMu.Lock()
	defer requestsMu.Unlock()
	if e, found, err := r.getRequest(ctx, Inbox, id.String()); err != nil {
		return RequestInfo{}, err
	} else if found {
		// Taken before from another node (the requester's, straight to a
		// guardian's node): now a node of the account asked holds it too,
		// and is to be told the answer given here.
		if local || e.Info.Relayed {
			return e.Info, nil
		}
		if relayed, err := r.relayedFrom(ctx, to, fromPeer); err != nil || !relayed {
			return e.Info, err
		}
		e.Info.Relayed, e.Info.Updated = true, now.UTC()
		if err := r.putRequest(ctx, e); err != nil {
			return RequestInfo{}, err
		}
		if e.Answer != nil {
			r.requestsQueued()
		}
		return e.Info, nil
	}
	all, err := r.listRequests(ctx, Inbox)
	if err != nil {
		return RequestInfo{}, err
	}
	open, openFrom := 0, 0
	for _, e := range all {
		if e.Info.State == StateNew {
			open++
			if e.Info.From == from {
				openFrom++
			}
		}
	}
	if openFrom >= MaxInboxPerRequester {
		return RequestInfo{}, fmt.Errorf("request %s: %s already has %d unanswered requests here", id, from, openFrom)
	}
	if open >= MaxInbox {
		return RequestInfo{}, fmt.Errorf("request %s: inbox full (%d unanswered requests)", id, open)
	}
	info.State, info.Updated, info.Peer = StateNew, now.UTC(), fromPeer
	if !local {
		if info.Relayed, err = r.relayedFrom(ctx, to, fromPeer); err != nil {
			return RequestInfo{}, err
		}
	}
	e := &requestEntry{Info: info, Raw: raw, Profile: profile}
	if err := r.putRequest(ctx, e); err != nil {
		return RequestInfo{}, err
	}
	if local {
		r.requestsQueued() // to relay to the account's guardians
	}
	return info, nil
}

// relayedFrom tells whether fromPeer, which delivered a request to a
// guardian's node, is a node the chain of to, the account asked, declares:
// the request came relayed from a node of to's, which is to be told the
// answer.
func (r *Repo) relayedFrom(ctx context.Context, to protocol.AccountID, fromPeer string) (bool, error) {
	devs, err := r.DevicesOf(ctx, to)
	if err != nil && !errors.Is(err, ErrUnknownAccount) {
		return false, err
	}
	return slices.Contains(devs, fromPeer), nil
}

// checkProfileBlock checks that raw is the first block of from's chain
// and returns the profile's name and role.
func checkProfileBlock(raw []byte, from protocol.AccountID) (string, protocol.Role, error) {
	if len(raw) > protocol.MaxProfileBlock {
		return "", "", errors.New("profile block too large")
	}
	b, err := protocol.DecodeBlock(raw)
	if err != nil {
		return "", "", fmt.Errorf("profile: %w", err)
	}
	if b.Seq != 0 || b.AuthorID() != from {
		return "", "", errors.New("profile: not the first chain block of the requester")
	}
	p := b.Entries[0].Body.(*protocol.Profile) // DecodeBlock checked block 0 starts with one
	return p.Name, p.Role, nil
}

// importProfile imports a requester's first chain block as a contact,
// through ImportCAR (a CARv1 holding that one block), so it is verified
// like any chain.
func (r *Repo) importProfile(ctx context.Context, raw []byte) error {
	c := protocol.BlockCID(raw)
	cb := c.Bytes()
	// DAG-CBOR {"roots": [CID], "version": 1}.
	hdr := []byte{0xa2, 0x65}
	hdr = append(hdr, "roots"...)
	hdr = append(hdr, 0x81, 0xd8, 0x2a)
	n := len(cb) + 1
	if n < 24 {
		hdr = append(hdr, 0x40|byte(n))
	} else {
		hdr = append(hdr, 0x58, byte(n))
	}
	hdr = append(append(hdr, 0x00), cb...)
	hdr = append(hdr, 0x67)
	hdr = append(hdr, "version"...)
	hdr = append(hdr, 0x01)
	var car bytes.Buffer
	car.Write(binary.AppendUvarint(nil, uint64(len(hdr))))
	car.Write(hdr)
	car.Write(binary.AppendUvarint(nil, uint64(len(cb)+len(raw))))
	car.Write(cb)
	car.Write(raw)
	if _, err := r.ImportCAR(ctx, &car); err != nil {
		return fmt.Errorf("import requester's profile: %w", err)
	}
	return nil
}

// openInbox loads an unanswered inbox request for k to answer.
func (r *Repo) openInbox(ctx context.Context, k *Keys, id string) (*requestEntry, *protocol.Request, error) {
	e, found, err := r.getRequest(ctx, Inbox, id)
	if err != nil {
		return nil, nil, err
	}
	if !found {
		return nil, nil, fmt.Errorf("no request %s in the inbox", id)
	}
	if e.Info.To != k.ID {
		if err := r.MayActFor(ctx, k.ID, e.Info.To, protocol.RightApprove); err != nil {
			return nil, nil, fmt.Errorf("request %s asks %s, not %s: %w", id, e.Info.To, k.ID, err)
		}
	}
	if e.Info.State != StateNew {
		return nil, nil, fmt.Errorf("request %s is %s already", id, e.Info.State)
	}
	q, err := protocol.DecodeRequest(e.Raw)
	if err != nil {
		return nil, nil, err
	}
	return e, q, nil
}

// GrantableRecords returns the records k may grant (changeRecord in
// policy.go): those k is the subject of under a claim that counts here,
// not hidden.
func (r *Repo) GrantableRecords(ctx context.Context, k *Keys) ([]cid.Cid, error) {
	return r.grantableFor(ctx, k.ID)
}

// Approve grants an inbox request as k (the account it asks): a grant of
// the records asked for (all of k's grantable records when it named none)
// to the requester, until expires (zero: the duration asked for from now,
// or no end when none was asked), and a signed answer, kept for delivery.
// The requester becomes a contact (from the profile that came with the
// request) if it was not one, and is marked as one (MarkContact).
func (r *Repo) Approve(ctx context.Context, k *Keys, id string, expires time.Time) (RequestInfo, error) {
	return r.ApproveScope(ctx, k, id, nil, expires)
}

// ApproveScope is Approve granting only records (none: what the request
// asks for), which must be among those the request asks for, or, for a
// request of every record, among those k may grant.
func (r *Repo) ApproveScope(ctx context.Context, k *Keys, id string, scope []cid.Cid, expires time.Time) (RequestInfo, error) {
	requestsMu.Lock()
	defer requestsMu.Unlock()
	e, q, err := r.openInbox(ctx, k, id)
	if err != nil {
		return RequestInfo{}, err
	}
	from := q.FromID()
	if _, err := r.state(ctx, from); errors.Is(err, ErrUnknownAccount) {
		if len(e.Profile) == 0 {
			return RequestInfo{}, fmt.Errorf("requester %s is unknown and sent no profile", from)
		}
		if err := r.importProfile(ctx, e.Profile); err != nil {
			return RequestInfo{}, err
		}
	} else if err != nil {
		return RequestInfo{}, err
	}
	records := q.CIDs()
	ward := e.Info.To // k itself, or k's ward (openInbox checked)
	if len(records) == 0 {
		if records, err = r.grantableFor(ctx, ward); err != nil {
			return RequestInfo{}, err
		}
		if len(records) == 0 {
			return RequestInfo{}, errors.New("no records to grant: this account is the subject of none")
		}
	}
	if len(scope) > 0 {
		asked := make(map[string]bool, len(records))
		for _, c := range records {
			asked[c.KeyString()] = true
		}
		for _, c := range scope {
			if !asked[c.KeyString()] {
				return RequestInfo{}, fmt.Errorf("record %s: not among the records the request asks for (or this account may grant)", c)
			}
		}
		records = scope
	}
	if expires.IsZero() && q.Duration > 0 {
		expires = r.now().Add(time.Duration(q.Duration) * time.Second)
	}
	var block cid.Cid
	if ward == k.ID {
		block, err = r.Grant(ctx, k, records, from, expires)
	} else {
		block, err = r.GrantForWard(ctx, k, ward, records, from, expires)
	}
	if err != nil {
		return RequestInfo{}, err
	}
	// Approving makes the requester a contact, even one known before.
	if err := r.MarkContact(ctx, from); err != nil {
		return RequestInfo{}, err
	}
	link := protocol.NewLink(block)
	a := &protocol.Answer{Request: protocol.NewLink(protocol.BlockCID(e.Raw)), To: q.From, Decision: protocol.DecisionApprove,
		Grant: &link, Created: r.now().UnixMilli()}
	return r.answered(ctx, k, e, a, expires)
}

// Deny refuses an inbox request as k, with a reason the requester will
// see, in a signed answer kept for delivery.
func (r *Repo) Deny(ctx context.Context, k *Keys, id, reason string) (RequestInfo, error) {
	requestsMu.Lock()
	defer requestsMu.Unlock()
	e, q, err := r.openInbox(ctx, k, id)
	if err != nil {
		return RequestInfo{}, err
	}
	a := &protocol.Answer{Request: protocol.NewLink(protocol.BlockCID(e.Raw)), To: q.From, Decision: protocol.DecisionDeny,
		Reason: reason, Created: r.now().UnixMilli()}
	return r.answered(ctx, k, e, a, time.Time{})
}

// answered signs a and records it in e. The caller holds requestsMu.
func (r *Repo) answered(ctx context.Context, k *Keys, e *requestEntry, a *protocol.Answer, expires time.Time) (RequestInfo, error) {
	raw, _, err := a.SignAs(k.Public(), k.Sign)
	if err != nil {
		return RequestInfo{}, err
	}
	e.Answer = raw
	e.Info.State, e.Info.Updated, e.Info.AnswerReason = StateDenied, r.now().UTC(), a.Reason
	e.Info.AnsweredBy, e.Info.ByGuardian = k.ID, k.ID != e.Info.To
	if a.Decision == protocol.DecisionApprove {
		e.Info.State, e.Info.Grant = StateApproved, a.Grant.String()
		if !expires.IsZero() {
			e.Info.Expires = expires.UTC()
		}
	}
	if err := r.putRequest(ctx, e); err != nil {
		return RequestInfo{}, err
	}
	r.requestsQueued()
	return e.Info, nil
}

// ReceiveAnswer takes an answer a node delivered. It must answer a
// request held here: in the outbox (this node asked), or in the inbox
// (this node holds the request as the asked account's node or a
// guardian's, and another of them answered it). Its signer must speak for
// the account asked (answerSigner in policy.go: that account, or a
// guardian who may approve for it now) and it must be addressed to the
// requester. The request becomes approved or denied, showing who answered.
// The first answer wins: the same answer again is no error, a different
// one for a request already answered is refused.
func (r *Repo) ReceiveAnswer(ctx context.Context, raw []byte) (RequestInfo, error) {
	a, err := protocol.DecodeAnswer(raw)
	if err != nil {
		return RequestInfo{}, err
	}
	id := a.Request.String()
	if err := r.checkMessageSigner(ctx, a.From, a.SignerKey()); err != nil {
		return RequestInfo{}, fmt.Errorf("answer to %s: %w", id, err)
	}
	requestsMu.Lock()
	defer requestsMu.Unlock()
	e, found, err := r.getRequest(ctx, Outbox, id)
	if err == nil && !found {
		e, found, err = r.getRequest(ctx, Inbox, id)
	}
	if err != nil {
		return RequestInfo{}, err
	}
	if !found {
		return RequestInfo{}, fmt.Errorf("answer to %s: no such request here (neither asked from this node nor received by it)", id)
	}
	f, err := r.answerFacts(ctx, e.Info, a)
	if err != nil {
		return RequestInfo{}, fmt.Errorf("answer to %s: %w", id, err)
	}
	d := answerSigner(f)
	if !d.Allow {
		return RequestInfo{}, fmt.Errorf("answer to %s: %s (%s)", id, d.Reason, d.Rule)
	}
	if e.Answer != nil {
		if bytes.Equal(e.Answer, raw) {
			return e.Info, nil
		}
		return RequestInfo{}, fmt.Errorf("answer to %s: the request is %s already, answered by %s; the first answer stands", id, e.Info.State, e.Info.AnsweredBy)
	}
	if e.Info.Box == Inbox && a.Decision == protocol.DecisionApprove && len(e.Profile) > 0 {
		// As when approving here: the requester becomes known (not a
		// contact), so this node serves it the chains of the grant.
		if _, err := r.state(ctx, e.Info.From); errors.Is(err, ErrUnknownAccount) {
			if err := r.importProfile(ctx, e.Profile); err != nil {
				return RequestInfo{}, fmt.Errorf("answer to %s: %w", id, err)
			}
			// Its nodes are now entitled to the asked account's chain and
			// the guardian's (the grant is on it): have them announced.
			r.chainsChanged([]protocol.AccountID{e.Info.To, f.Signer}, nil, false)
		} else if err != nil {
			return RequestInfo{}, err
		}
	}
	e.Answer = raw
	e.Info.State, e.Info.Updated, e.Info.AnswerReason = StateDenied, r.now().UTC(), a.Reason
	e.Info.AnsweredBy, e.Info.ByGuardian = f.Signer, d.Rule == RuleAnswerGuardian
	if a.Decision == protocol.DecisionApprove {
		e.Info.State, e.Info.Grant = StateApproved, a.Grant.String()
	}
	if err := r.putRequest(ctx, e); err != nil {
		return RequestInfo{}, err
	}
	if e.Info.Box == Inbox {
		r.requestsQueued() // the answer goes on to the requester and the guardians relayed to
	}
	return e.Info, nil
}

// answerFacts loads what answerSigner decides on for answer a to the
// request q.
func (r *Repo) answerFacts(ctx context.Context, q RequestInfo, a *protocol.Answer) (answerFacts, error) {
	f := answerFacts{Asked: q.To, Requester: q.From, Signer: a.FromID(), To: a.ToID()}
	if f.Signer == f.Asked {
		return f, nil
	}
	evs, err := r.guardiansOf(ctx, q.To)
	if err != nil {
		return f, err
	}
	if f.SignerNext, err = r.nextActRef(ctx, f.Signer); err != nil {
		return f, err
	}
	f.Spans = guardianSpans(evs)
	return f, nil
}

// Requests lists the inbox and the outbox, newest first.
func (r *Repo) Requests(ctx context.Context) (inbox, outbox []RequestInfo, err error) {
	for _, box := range []string{Inbox, Outbox} {
		es, err := r.listRequests(ctx, box)
		if err != nil {
			return nil, nil, err
		}
		infos := make([]RequestInfo, len(es))
		for i, e := range es {
			infos[i] = e.Info
			if box == Inbox && e.Info.State == StateNew {
				may, err := r.mayAnswerRelayed(ctx, e.Info.To)
				if err != nil {
					return nil, nil, err
				}
				infos[i].NoLongerYours = !may
			}
		}
		sort.SliceStable(infos, func(i, j int) bool { return infos[i].Created.After(infos[j].Created) })
		if box == Inbox {
			inbox = infos
		} else {
			outbox = infos
		}
	}
	return inbox, outbox, nil
}

// mayAnswerRelayed reports whether a local account of this repo may
// answer a request relayed here for ward: it is ward, or a guardian of
// ward with the approve right now.
func (r *Repo) mayAnswerRelayed(ctx context.Context, ward protocol.AccountID) (bool, error) {
	all, err := r.Accounts(ctx)
	if err != nil {
		return false, err
	}
	for _, a := range all {
		if a.Local && (a.ID == ward || r.MayActFor(ctx, a.ID, ward, protocol.RightApprove) == nil) {
			return true, nil
		}
	}
	return false, nil
}

// FindRequest finds a request of box (Inbox, Outbox, or "" for both) by
// its ID or a unique suffix of it of at least 6 characters.
func (r *Repo) FindRequest(ctx context.Context, box, sel string) (RequestInfo, error) {
	inbox, outbox, err := r.Requests(ctx)
	if err != nil {
		return RequestInfo{}, err
	}
	var all []RequestInfo
	if box != Outbox {
		all = append(all, inbox...)
	}
	if box != Inbox {
		all = append(all, outbox...)
	}
	var matches []RequestInfo
	for _, q := range all {
		if q.ID == sel || (len(sel) >= 6 && strings.HasSuffix(q.ID, sel)) {
			matches = append(matches, q)
		}
	}
	where := "the inbox or outbox"
	if box != "" {
		where = "the " + box
	}
	switch len(matches) {
	case 0:
		return RequestInfo{}, fmt.Errorf("no request %q in %s", sel, where)
	case 1:
		return matches[0], nil
	}
	return RequestInfo{}, fmt.Errorf("%d requests match %q: use the full ID", len(matches), sel)
}

// Outgoing is a message waiting for delivery to the nodes of an account.
type Outgoing struct {
	Kind    string             // protocol.ReqFrameRequest or protocol.ReqFrameAnswer
	ID      string             // the request's ID
	Target  protocol.AccountID // the account whose nodes should get it
	Message []byte
	Profile []byte // with a request: the requester's first chain block
	// Relay is true for a message from the inbox to a node other than
	// the requester's: a request relayed to a guardian, or an answer told
	// to the account asked or to a guardian relayed to. It goes only to
	// the nodes Target's own chain declares (DevicesOf).
	Relay bool
}

// Pending lists the messages still to deliver: outbox requests no node of
// the asked account took yet; inbox requests to a local account not yet
// relayed to each of its guardians who may approve now (relaying stops
// once the request is answered or the guardian loses the right); and
// inbox answers no node of the requester took, or that the account asked
// (when the request came relayed from its node) or a guardian relayed to
// has not been told yet.
func (r *Repo) Pending(ctx context.Context) ([]Outgoing, error) {
	var out []Outgoing
	outs, err := r.listRequests(ctx, Outbox)
	if err != nil {
		return nil, err
	}
	for _, e := range outs {
		if e.Info.State == StatePendingDelivery {
			out = append(out, Outgoing{Kind: protocol.ReqFrameRequest, ID: e.Info.ID, Target: e.Info.To, Message: e.Raw, Profile: e.Profile})
		}
	}
	ins, err := r.listRequests(ctx, Inbox)
	if err != nil {
		return nil, err
	}
	for _, e := range ins {
		if e.Answer == nil {
			relays, err := r.relays(ctx, e)
			if err != nil {
				return nil, err
			}
			out = append(out, relays...)
			continue
		}
		if !e.Info.AnswerSent {
			out = append(out, Outgoing{Kind: protocol.ReqFrameAnswer, ID: e.Info.ID, Target: e.Info.From, Message: e.Answer})
		}
		for _, to := range r.toTell(e) {
			out = append(out, Outgoing{Kind: protocol.ReqFrameAnswer, ID: e.Info.ID, Target: to, Message: e.Answer, Relay: true})
		}
	}
	return out, nil
}

// relays returns the relays of unanswered inbox request e still to make:
// to each guardian of the local account it asks who may approve now,
// whose nodes have not taken it yet.
func (r *Repo) relays(ctx context.Context, e *requestEntry) ([]Outgoing, error) {
	if local, err := r.isLocal(ctx, e.Info.To); err != nil || !local {
		return nil, err
	}
	evs, err := r.guardiansOf(ctx, e.Info.To)
	if err != nil {
		return nil, err
	}
	var out []Outgoing
	for _, s := range guardianSpans(evs) {
		g := s.Guardian
		if s.Closed || slices.Contains(e.Info.RelayedTo, g) || r.MayActFor(ctx, g, e.Info.To, protocol.RightApprove) != nil {
			continue
		}
		if local, err := r.isLocal(ctx, g); err != nil {
			return nil, err
		} else if local {
			continue // this node shows it to g already
		}
		out = append(out, Outgoing{Kind: protocol.ReqFrameRequest, ID: e.Info.ID, Target: g, Message: e.Raw, Profile: e.Profile, Relay: true})
	}
	return out, nil
}

// toTell returns the accounts besides the requester whose nodes are to
// get the answer of inbox request e and did not yet: the account asked,
// when the request came relayed from its node, and the guardians it was
// relayed to; never the one who answered.
func (r *Repo) toTell(e *requestEntry) []protocol.AccountID {
	var want []protocol.AccountID
	if e.Info.Relayed {
		want = append(want, e.Info.To)
	}
	want = append(want, e.Info.RelayedTo...)
	var out []protocol.AccountID
	for _, id := range want {
		if id != e.Info.AnsweredBy && !slices.Contains(e.Told, id) && !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	return out
}

// MarkDelivered records that a node of o's target took o.
func (r *Repo) MarkDelivered(ctx context.Context, o Outgoing) error {
	box := Outbox
	if o.Kind == protocol.ReqFrameAnswer || o.Relay {
		box = Inbox
	}
	requestsMu.Lock()
	defer requestsMu.Unlock()
	e, found, err := r.getRequest(ctx, box, o.ID)
	if err != nil || !found {
		return err
	}
	switch {
	case box == Outbox && e.Info.State == StatePendingDelivery:
		e.Info.State = StateDelivered
	case o.Relay && o.Kind == protocol.ReqFrameRequest && !slices.Contains(e.Info.RelayedTo, o.Target):
		e.Info.RelayedTo = append(e.Info.RelayedTo, o.Target)
	case o.Relay && o.Kind == protocol.ReqFrameAnswer && e.Answer != nil && !slices.Contains(e.Told, o.Target):
		e.Told = append(e.Told, o.Target)
	case !o.Relay && box == Inbox && e.Answer != nil && !e.Info.AnswerSent:
		e.Info.AnswerSent = true
	default:
		return nil
	}
	e.Info.Updated = r.now().UTC()
	return r.putRequest(ctx, e)
}

// AwaitingAnswers returns, per asked account, the IDs of outbox requests
// delivered but not answered yet: what to poll that account's nodes for.
func (r *Repo) AwaitingAnswers(ctx context.Context) (map[protocol.AccountID][]cid.Cid, error) {
	outs, err := r.listRequests(ctx, Outbox)
	if err != nil {
		return nil, err
	}
	m := map[protocol.AccountID][]cid.Cid{}
	for _, e := range outs {
		if e.Info.State != StateDelivered {
			continue
		}
		c, err := cid.Decode(e.Info.ID)
		if err != nil {
			continue
		}
		m[e.Info.To] = append(m[e.Info.To], c)
	}
	return m, nil
}

// AnswersFor returns the answers held for the inbox requests ids (a poll
// by the requester's node; knowing a request's ID is what it takes, since
// only those the request went through know it) and marks them delivered.
func (r *Repo) AnswersFor(ctx context.Context, ids []cid.Cid) ([][]byte, error) {
	var out [][]byte
	for _, id := range ids {
		e, found, err := r.getRequest(ctx, Inbox, id.String())
		if err != nil {
			return nil, err
		}
		if !found || e.Answer == nil {
			continue
		}
		out = append(out, e.Answer)
		if err := r.MarkDelivered(ctx, Outgoing{Kind: protocol.ReqFrameAnswer, ID: e.Info.ID}); err != nil {
			return nil, err
		}
	}
	return out, nil
}
