package keyshare

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ipfs/go-datastore"
	"github.com/ipfs/go-datastore/query"

	"github.com/blockmrs/blockmrs/protocol"
)

// Recovery requests over the network (node/recovery, PROTOCOL.md §10,
// "Recovery requests"). The recovering node delivers its request to the
// nodes of the account's recovery contacts; each keeps it in an inbox
// (mayKeepRecoveryRequest), shows it with a safety code derived from its
// ID, and when a contact approves, holds the response until the
// recovering node polls for it. Approving still takes the contact's own
// decision: the safety code is what the patient reads out on the phone.

// Bounds of the recovery inbox and of a request's age.
const (
	// MaxRecoveryInboxPerAccount bounds the requests kept for one account.
	MaxRecoveryInboxPerAccount = 4
	// MaxRecoveryInbox bounds the requests kept in all.
	MaxRecoveryInbox = 64
	// MaxRecoveryRequestAge is how long after it was made a request is
	// kept (and taken): a recovery is finished within days, or started again.
	MaxRecoveryRequestAge = 14 * 24 * time.Hour
	// maxRecoveryClockSkew is how far in the future a request may be dated.
	maxRecoveryClockSkew = 10 * time.Minute
	// maxRecoveryDenied bounds the denied request IDs remembered (replays
	// refused); past it the oldest are forgotten.
	maxRecoveryDenied = 256
	// recoveryIDHex is the length of a request ID in hex.
	recoveryIDHex = 2 * sha256.Size
)

// RecoveryInboxItem is a recovery request a contact's node received.
type RecoveryInboxItem struct {
	// ID is the request's ID (hex): 'recovery approve ID' approves it.
	ID string `json:"id"`
	// Account is the account to recover.
	Account protocol.AccountID `json:"account"`
	// SafetyCode is the code the recovering device shows for this request.
	SafetyCode string `json:"safety_code"`
	// Requested is when the request was made (by its own clock);
	// Received when it arrived here, from Peer.
	Requested time.Time `json:"requested"`
	Received  time.Time `json:"received"`
	Peer      string    `json:"peer,omitempty"`
	// Contacts are this node's accounts the account names as recovery
	// contacts (who may approve); Approved those that did.
	Contacts []protocol.AccountID `json:"contacts"`
	Approved []protocol.AccountID `json:"approved"`
	// Others counts the other requests kept for the same account (set by
	// RecoveryRequests): more than one request at once means someone
	// besides the owner may be asking, perhaps with a code ground to
	// match hers, so the faces warn.
	Others int `json:"others"`
}

// inboxEntry is a kept recovery request and the responses to it.
type inboxEntry struct {
	Request   []byte   `json:"request"`
	Received  int64    `json:"received"`
	Peer      string   `json:"peer,omitempty"`
	Responses [][]byte `json:"responses,omitempty"`
}

const (
	recoveryInboxPrefix  = "/keyshare/recovery-inbox/"
	recoveryDeniedPrefix = "/keyshare/recovery-denied/"
)

func keyRecoveryInbox(id string) datastore.Key { return datastore.NewKey(recoveryInboxPrefix + id) }
func keyRecoveryDenied(id string) datastore.Key {
	return datastore.NewKey(recoveryDeniedPrefix + id)
}

// keyRecoveryDeniedKey marks a new key named by a denied request: a
// request naming it again (the same request re-signed with another time)
// is refused too. It shares the denied IDs' prefix, and so their bound.
func keyRecoveryDeniedKey(newKey []byte) datastore.Key {
	return datastore.NewKey(recoveryDeniedPrefix + "key-" + hex.EncodeToString(newKey))
}

// recoveryInboxMu serialises the inbox's read-modify-writes.
var recoveryInboxMu sync.Mutex

// recoveryKicks holds, per repo, the function to call when a recovery is
// started or a response is queued (WatchRecovery).
var recoveryKicks sync.Map // *Repo → *func()

// WatchRecovery makes r call kick (which must not block) when a recovery
// starts here or a contact here approves one, so a running node delivers
// or polls at once. It returns a function that stops the calls; one
// watcher per repo.
func (r *Repo) WatchRecovery(kick func()) (stop func()) {
	w := &kick
	recoveryKicks.Store(r, w)
	return func() { recoveryKicks.CompareAndDelete(r, w) }
}

func (r *Repo) kickRecovery() {
	if w, ok := recoveryKicks.Load(r); ok {
		(*w.(*func()))()
	}
}

// localKeys returns the keys of this repo's local accounts.
func (r *Repo) localKeys(ctx context.Context) ([][]byte, error) {
	all, err := r.Accounts(ctx)
	if err != nil {
		return nil, err
	}
	var out [][]byte
	for _, a := range all {
		if a.Local {
			out = append(out, keyOf(a.ID))
		}
	}
	return out, nil
}

// inboxID checks and normalises an inbox ID: a request ID in hex.
func inboxID(id string) (string, error) {
	id = strings.ToLower(strings.TrimSpace(id))
	if b, err := hex.DecodeString(id); err != nil || len(b) != sha256.Size {
		return "", fmt.Errorf("recovery request ID %q: give the %d hex characters 'recovery requests' shows", truncateID(id), recoveryIDHex)
	}
	return id, nil
}

func truncateID(s string) string {
	if len(s) > recoveryIDHex+8 {
		return s[:recoveryIDHex] + "…"
	}
	return s
}

// loadInbox reads every kept request, dropping those past
// MaxRecoveryRequestAge. The caller holds recoveryInboxMu.
func (r *Repo) loadInbox(ctx context.Context) (map[string]inboxEntry, error) {
	res, err := r.ds.Query(ctx, query.Query{Prefix: recoveryInboxPrefix})
	if err != nil {
		return nil, err
	}
	defer res.Close()
	out := map[string]inboxEntry{}
	for e := range res.Next() {
		if e.Error != nil {
			return nil, e.Error
		}
		var ie inboxEntry
		if found, err := getJSON(ctx, r.ds, datastore.NewKey(e.Key), &ie); err != nil || !found {
			continue
		}
		if q, err := protocol.DecodeRecoveryRequest(ie.Request); err != nil || r.now().Sub(time.UnixMilli(q.Time)) > MaxRecoveryRequestAge {
			if err := r.ds.Delete(ctx, datastore.NewKey(e.Key)); err != nil {
				return nil, err
			}
			continue
		}
		out[strings.TrimPrefix(e.Key, recoveryInboxPrefix)] = ie
	}
	return out, nil
}

// ReceiveRecoveryRequest keeps a recovery request (its encoding) that
// peer delivered, if mayKeepRecoveryRequest allows: the request must be
// validly signed by the new key it names, for an account whose live setup
// in this repo's copy of its chain names a local account as a contact.
// A redelivery of a kept request changes nothing.
func (r *Repo) ReceiveRecoveryRequest(ctx context.Context, raw []byte, peer string) (*RecoveryInboxItem, error) {
	q, err := protocol.DecodeRecoveryRequest(raw)
	if err != nil {
		return nil, err
	}
	account := protocol.AccountIDFromKey(q.Account)
	f := recoveryInboxFacts{Age: r.now().Sub(time.UnixMilli(q.Time))}
	if st, err := r.state(ctx, account); err == nil {
		f.Recovery = st.Recovery
	} else if !errors.Is(err, ErrUnknownAccount) {
		return nil, err
	}
	if f.Local, err = r.localKeys(ctx); err != nil {
		return nil, err
	}
	id := hex.EncodeToString(protocol.RecoveryRequestID(raw))
	recoveryInboxMu.Lock()
	defer recoveryInboxMu.Unlock()
	inbox, err := r.loadInbox(ctx)
	if err != nil {
		return nil, err
	}
	for k, e := range inbox {
		if k == id {
			f.Known = true
			continue
		}
		f.Held++
		if o, err := protocol.DecodeRecoveryRequest(e.Request); err == nil && bytes.Equal(o.Account, q.Account) {
			f.HeldForAccount++
		}
	}
	if f.Denied, err = r.ds.Has(ctx, keyRecoveryDenied(id)); err != nil {
		return nil, err
	}
	if f.DeniedKey, err = r.ds.Has(ctx, keyRecoveryDeniedKey(q.Key)); err != nil {
		return nil, err
	}
	if d := mayKeepRecoveryRequest(f); !d.Allow {
		return nil, fmt.Errorf("%w: %s (%s)", ErrRecovery, d.Reason, d.Rule)
	}
	e, known := inbox[id]
	if !known {
		e = inboxEntry{Request: raw, Received: r.now().UnixMilli(), Peer: peer}
		if err := putJSON(ctx, r.ds, keyRecoveryInbox(id), e); err != nil {
			return nil, err
		}
	}
	return r.inboxItem(ctx, id, e, f.Local)
}

// inboxItem describes a kept request.
func (r *Repo) inboxItem(ctx context.Context, id string, e inboxEntry, local [][]byte) (*RecoveryInboxItem, error) {
	q, err := protocol.DecodeRecoveryRequest(e.Request)
	if err != nil {
		return nil, err
	}
	account := protocol.AccountIDFromKey(q.Account)
	it := &RecoveryInboxItem{ID: id, Account: account, SafetyCode: RecoverySafetyCode(protocol.RecoveryRequestID(e.Request)),
		Requested: time.UnixMilli(q.Time).UTC(), Received: time.UnixMilli(e.Received).UTC(), Peer: e.Peer,
		Contacts: []protocol.AccountID{}, Approved: []protocol.AccountID{}}
	var rec *recoveryFacts
	if st, err := r.state(ctx, account); err == nil {
		rec = st.Recovery
	}
	for _, k := range local {
		if mayApproveRecovery(rec, k).Allow {
			it.Contacts = append(it.Contacts, protocol.AccountIDFromKey(k))
		}
	}
	for _, raw := range e.Responses {
		if resp, err := protocol.DecodeRecoveryResponse(raw); err == nil {
			it.Approved = append(it.Approved, protocol.AccountIDFromKey(resp.Approval.Contact))
		}
	}
	return it, nil
}

// RecoveryRequests lists the recovery requests this repo keeps, oldest
// first.
func (r *Repo) RecoveryRequests(ctx context.Context) ([]RecoveryInboxItem, error) {
	local, err := r.localKeys(ctx)
	if err != nil {
		return nil, err
	}
	recoveryInboxMu.Lock()
	defer recoveryInboxMu.Unlock()
	inbox, err := r.loadInbox(ctx)
	if err != nil {
		return nil, err
	}
	out := []RecoveryInboxItem{}
	for id, e := range inbox {
		it, err := r.inboxItem(ctx, id, e, local)
		if err != nil {
			continue
		}
		out = append(out, *it)
	}
	per := map[protocol.AccountID]int{}
	for _, it := range out {
		per[it.Account]++
	}
	for i := range out {
		out[i].Others = per[out[i].Account] - 1
	}
	slices.SortFunc(out, func(a, b RecoveryInboxItem) int {
		if c := a.Received.Compare(b.Received); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out, nil
}

// KeptRecoveryRequest returns the encoded request kept under inbox ID id
// (hex), or false when the inbox holds none.
func (r *Repo) KeptRecoveryRequest(ctx context.Context, id string) ([]byte, bool, error) {
	id, err := inboxID(id)
	if err != nil {
		return nil, false, nil
	}
	var e inboxEntry
	found, err := getJSON(ctx, r.ds, keyRecoveryInbox(id), &e)
	return e.Request, found, err
}

// ApproveKeptRecovery approves, as k, the request kept under inbox ID id
// (ApproveRecovery) and keeps the response for the requesting node's
// next poll. It returns the response.
func (r *Repo) ApproveKeptRecovery(ctx context.Context, k *Keys, id string) ([]byte, error) {
	id, err := inboxID(id)
	if err != nil {
		return nil, err
	}
	raw, found, err := r.KeptRecoveryRequest(ctx, id)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, fmt.Errorf("no recovery request %s in this node's inbox (see 'recovery requests')", id)
	}
	resp, err := r.ApproveRecovery(ctx, k, raw)
	if err != nil {
		return nil, err
	}
	recoveryInboxMu.Lock()
	defer recoveryInboxMu.Unlock()
	var e inboxEntry
	if found, err := getJSON(ctx, r.ds, keyRecoveryInbox(id), &e); err != nil || !found {
		return nil, fmt.Errorf("recovery request %s was denied meanwhile", id)
	}
	e.Responses = slices.DeleteFunc(e.Responses, func(o []byte) bool {
		p, err := protocol.DecodeRecoveryResponse(o)
		return err != nil || bytes.Equal(p.Approval.Contact, k.Public())
	})
	e.Responses = append(e.Responses, resp)
	if err := putJSON(ctx, r.ds, keyRecoveryInbox(id), e); err != nil {
		return nil, err
	}
	r.kickRecovery()
	return resp, nil
}

// DenyRecoveryRequest drops the request kept under inbox ID id, and any
// response given to it; the same request delivered again is refused.
func (r *Repo) DenyRecoveryRequest(ctx context.Context, id string) error {
	id, err := inboxID(id)
	if err != nil {
		return err
	}
	recoveryInboxMu.Lock()
	defer recoveryInboxMu.Unlock()
	var e inboxEntry
	if found, err := getJSON(ctx, r.ds, keyRecoveryInbox(id), &e); err != nil || !found {
		return fmt.Errorf("no recovery request %s in this node's inbox (see 'recovery requests')", id)
	}
	res, err := r.ds.Query(ctx, query.Query{Prefix: recoveryDeniedPrefix, KeysOnly: true})
	if err != nil {
		return err
	}
	denied, err := res.Rest()
	if err != nil {
		return err
	}
	// Two marks are added (the ID and the new key): forget the oldest
	// denials past the bound. Their requests are past
	// MaxRecoveryRequestAge soon if not already, and refused by age then.
	if extra := len(denied) + 2 - maxRecoveryDenied; extra > 0 {
		at := make(map[string]int64, len(denied))
		for _, d := range denied {
			var t int64
			_, _ = getJSON(ctx, r.ds, datastore.NewKey(d.Key), &t)
			at[d.Key] = t
		}
		slices.SortFunc(denied, func(a, b query.Entry) int { return cmp.Compare(at[a.Key], at[b.Key]) })
		for _, d := range denied[:min(extra, len(denied))] {
			if err := r.ds.Delete(ctx, datastore.NewKey(d.Key)); err != nil {
				return fmt.Errorf("forget an old recovery denial: %w", err)
			}
		}
	}
	now := r.now().UnixMilli()
	if q, err := protocol.DecodeRecoveryRequest(e.Request); err == nil {
		if err := putJSON(ctx, r.ds, keyRecoveryDeniedKey(q.Key), now); err != nil {
			return err
		}
	}
	if err := putJSON(ctx, r.ds, keyRecoveryDenied(id), now); err != nil {
		return err
	}
	return r.ds.Delete(ctx, keyRecoveryInbox(id))
}

// RecoveryResponsesFor returns the responses this repo's contacts gave to
// the request with ID requestID: what the recovering node polls for. Each
// is encrypted to the request's new age recipient and signed for exactly
// that request, so whoever polls learns nothing usable without its key.
func (r *Repo) RecoveryResponsesFor(ctx context.Context, requestID []byte) ([][]byte, error) {
	var e inboxEntry
	if _, err := getJSON(ctx, r.ds, keyRecoveryInbox(hex.EncodeToString(requestID)), &e); err != nil {
		return nil, err
	}
	return e.Responses, nil
}

// StartedRecovery is a recovery this repo started, as the network
// service needs it.
type StartedRecovery struct {
	Account protocol.AccountID
	// Request is the encoded signed request; ID its ID.
	Request, ID []byte
	// Contacts are the live setup's contacts; Approved those whose
	// response counts.
	Contacts, Approved []protocol.AccountID
	// Via are the contact nodes' addresses named at start.
	Via []string
}

// StartedRecoveries lists the recoveries this repo started and has not
// finished.
func (r *Repo) StartedRecoveries(ctx context.Context) ([]StartedRecovery, error) {
	res, err := r.ds.Query(ctx, query.Query{Prefix: recoveringPrefix, KeysOnly: true})
	if err != nil {
		return nil, err
	}
	keys, err := res.Rest()
	if err != nil {
		return nil, err
	}
	var out []StartedRecovery
	for _, k := range keys {
		id := protocol.AccountID(strings.TrimPrefix(k.Key, recoveringPrefix))
		r.mu.Lock()
		p, _, perr := r.startedRecovery(ctx, id)
		s, serr := r.recoveryStatus(ctx, id)
		r.mu.Unlock()
		if perr != nil || serr != nil {
			continue
		}
		out = append(out, StartedRecovery{Account: id, Request: p.Request, ID: protocol.RecoveryRequestID(p.Request),
			Contacts: s.Contacts, Approved: s.Approved, Via: p.Via})
	}
	return out, nil
}
