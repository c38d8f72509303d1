package keyshare

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"filippo.io/age"
	"github.com/ipfs/go-cid"
	"github.com/ipfs/go-datastore"

	"github.com/blockmrs/blockmrs/protocol"
)

// Standing grants: a subject gives an account a scope of her records,
// present and future (protocol/scope.go; the rules are in policy.go,
// applyScoped and coverRecord). This file keeps each account's
// standing-grant events with its chain state, indexes them by grantee,
// and writes them: the scope and unscope entries, and the keys given
// under a scope — by an author as it writes a record (standingEntries,
// called from AddRecord), and by the subject's node for the records no
// author covered (CoverStanding).

// scopeEvent is one standing-grant event of an account's chain: a scope
// entry, or (End) an unscope entry. To is the grantee either way.
type scopeEvent struct {
	To      protocol.AccountID `json:"to"`
	Scope   string             `json:"scope"`
	Expires int64              `json:"expires,omitempty"`
	End     bool               `json:"end,omitempty"`
	Via     EntryRef           `json:"via"`
}

// addScopeEvent applies a scope or unscope entry to an account's state.
func (st *accountState) addScopeEvent(body protocol.EntryBody, ref EntryRef) {
	switch b := body.(type) {
	case *protocol.ScopeGrant:
		st.Scopes = append(st.Scopes, scopeEvent{To: protocol.AccountIDFromKey(b.To), Scope: b.Scope, Expires: b.Expires, Via: ref})
	case *protocol.ScopeEnd:
		st.Scopes = append(st.Scopes, scopeEvent{To: protocol.AccountIDFromKey(b.From), Scope: b.Scope, End: true, Via: ref})
	}
}

// The standing-grant index lists, per grantee, the accounts whose chains
// name it in a standing-grant event (so ChainsServedTo finds them):
//
//	/keyshare/idx/scopeto/<grantee>/<granter> → (empty)
const scopeToPrefix = "/keyshare/idx/scopeto/"

func keyScopeTo(grantee, granter protocol.AccountID) datastore.Key {
	return datastore.NewKey(scopeToPrefix + string(grantee) + "/" + string(granter))
}

// indexScopes writes to w the standing-grant index entries of account id
// for the events past the first n (those a commit added).
func indexScopes(ctx context.Context, w datastore.Write, id protocol.AccountID, n int, after []scopeEvent) error {
	for _, ev := range after[min(n, len(after)):] {
		if err := w.Put(ctx, keyScopeTo(ev.To, id), nil); err != nil {
			return err
		}
	}
	return nil
}

// scopeGranters returns the accounts whose chains name id in a
// standing-grant event.
func (r *Repo) scopeGranters(ctx context.Context, id protocol.AccountID) ([]protocol.AccountID, error) {
	return r.accountsUnder(ctx, scopeToPrefix+string(id)+"/")
}

// scopesOf returns the standing-grant events of id's chain (cached; none
// for an account the repo has no chain of).
func (r *Repo) scopesOf(ctx context.Context, id protocol.AccountID) ([]scopeEvent, error) {
	if evs, ok := cacheGet(&r.cache, &r.cache.scopes, id); ok {
		return evs, nil
	}
	gen := r.cache.generation()
	var st accountState
	if _, err := getJSON(ctx, r.ds, keyAccount(id), &st); err != nil {
		return nil, err
	}
	cachePut(&r.cache, &r.cache.scopes, gen, id, st.Scopes)
	cachePut(&r.cache, &r.cache.guardians, gen, id, st.Guardians)
	return st.Scopes, nil
}

// withScopes fills in f.scopes, the standing-grant events of the subjects
// of f's claims, which evaluate needs.
func (r *Repo) withScopes(ctx context.Context, f *recordFacts) error {
	for _, cl := range f.Claims {
		if _, ok := f.scopes[cl.Subject]; ok {
			continue
		}
		evs, err := r.scopesOf(ctx, cl.Subject)
		if err != nil {
			return err
		}
		if f.scopes == nil {
			f.scopes = map[protocol.AccountID][]scopeEvent{}
		}
		f.scopes[cl.Subject] = evs
	}
	return r.withGuardians(ctx, f)
}

// Standing is one standing grant, as the chain of its granter holds it.
type Standing struct {
	// From is the granter (the subject whose records it covers), To the
	// grantee.
	From protocol.AccountID `json:"from"`
	To   protocol.AccountID `json:"to"`
	// Scope is the scope in canonical form.
	Scope string `json:"scope"`
	// Expires is the grant's end, if it has one.
	Expires time.Time `json:"expires,omitzero"`
	// Live is false once the grant ended (Ended is set) or expired.
	Live  bool      `json:"live"`
	Ended *EntryRef `json:"ended,omitempty"`
	// Via is the scope entry that made the grant.
	Via EntryRef `json:"via"`
}

// standings folds granter's events, in chain order, into its standing
// grants (as guardianSpans folds appointments): for each grantee and
// scope, the latest scope entry and the unscope entry that ended it, if
// one came after it. An end with no grant before it ends nothing.
func standings(granter protocol.AccountID, evs []scopeEvent, now time.Time) []Standing {
	type key struct {
		to    protocol.AccountID
		scope string
	}
	at := map[key]int{}
	var out []Standing
	for _, ev := range inChainOrder(evs, func(e scopeEvent) EntryRef { return e.Via }) {
		k := key{ev.To, ev.Scope}
		i, granted := at[k]
		switch {
		case !ev.End:
			s := Standing{From: granter, To: ev.To, Scope: ev.Scope, Via: ev.Via, Live: scopeLive(ev, true, now)}
			if ev.Expires != 0 {
				s.Expires = time.UnixMilli(ev.Expires).UTC()
			}
			if !granted {
				at[k] = len(out)
				out = append(out, s)
			} else {
				out[i] = s
			}
		case granted:
			end := ev.Via
			out[i].Ended, out[i].Live = &end, false
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[j].Via.before(out[i].Via) })
	return out
}

// StandingGrants returns the standing grants account id gave (on its own
// chain) and those given to it (on the chains of the accounts this repo
// holds that name it), newest first, ended and expired ones included.
func (r *Repo) StandingGrants(ctx context.Context, id protocol.AccountID) (given, received []Standing, err error) {
	now := r.now()
	evs, err := r.scopesOf(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	given = standings(id, evs, now)
	granters, err := r.scopeGranters(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	for _, g := range granters {
		evs, err := r.scopesOf(ctx, g)
		if err != nil {
			return nil, nil, err
		}
		for _, s := range standings(g, evs, now) {
			if s.To == id {
				received = append(received, s)
			}
		}
	}
	sort.SliceStable(received, func(i, j int) bool { return received[j].Via.Time < received[i].Via.Time })
	return given, received, nil
}

// GrantScope gives account to a standing grant of scope over k's records,
// until expires (zero: no expiry), and gives it at once the keys of k's
// present records in the scope (CoverStanding). It returns the block of
// the scope entry and how many records were covered.
func (r *Repo) GrantScope(ctx context.Context, k *Keys, to protocol.AccountID, scope string, expires time.Time) (cid.Cid, int, error) {
	canonical, err := protocol.CanonicalScope(scope)
	if err != nil {
		return cid.Undef, 0, err
	}
	if to == k.ID {
		return cid.Undef, 0, errors.New("cannot grant to yourself")
	}
	if _, err := r.Account(ctx, to); err != nil {
		return cid.Undef, 0, fmt.Errorf("grantee: %w", err)
	}
	if !expires.IsZero() && !expires.After(r.now()) {
		return cid.Undef, 0, errors.New("expiry is in the past")
	}
	g := &protocol.ScopeGrant{To: keyOf(to), Scope: canonical}
	if !expires.IsZero() {
		g.Expires = expires.UnixMilli()
	}
	r.mu.Lock()
	block, err := r.appendBlock(ctx, k, []protocol.Entry{protocol.NewEntry(g)})
	r.mu.Unlock()
	if err != nil {
		return cid.Undef, 0, err
	}
	n, err := r.CoverStanding(ctx, k)
	if err != nil {
		return block, n, fmt.Errorf("standing grant made (block %s), but covering the present records failed (the daemon tries again): %w", block, err)
	}
	return block, n, nil
}

// ErrNoStanding is returned when ending a standing grant that was never
// made or was ended already (an expired one may still be ended).
var ErrNoStanding = errors.New("no live standing grant")

// EndScope ends k's standing grant of scope to account from: one unscope
// entry, after which no key given to from under that scope counts, so it
// loses every record the scope covered and gets no future one.
func (r *Repo) EndScope(ctx context.Context, k *Keys, from protocol.AccountID, scope string) (cid.Cid, error) {
	canonical, err := protocol.CanonicalScope(scope)
	if err != nil {
		return cid.Undef, err
	}
	evs, err := r.scopesOf(ctx, k.ID)
	if err != nil {
		return cid.Undef, err
	}
	if ev, found := latestScope(evs, from, canonical); !found || ev.End {
		return cid.Undef, fmt.Errorf("%w of %s to %s", ErrNoStanding, canonical, from)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.appendBlock(ctx, k, []protocol.Entry{protocol.NewEntry(&protocol.ScopeEnd{From: keyOf(from), Scope: canonical})})
}

// liveScopes returns the standing grants among evs that hold at now, as
// their latest events.
func liveScopes(evs []scopeEvent, now time.Time) []scopeEvent {
	var out []scopeEvent
	for _, s := range standings("", evs, now) {
		if s.Live {
			ev, _ := latestScope(evs, s.To, s.Scope)
			out = append(out, ev)
		}
	}
	return out
}

// maxScopedBlockBytes bounds the estimated size of the keys CoverStanding
// puts in one block, well under protocol.MaxBlockSize.
const maxScopedBlockBytes = 512 << 10

// CoverStanding gives the grantees of k's live standing grants the keys
// of k's records in their scopes that they cannot read yet (coverRecord
// in policy.go decides: claims of her own or acknowledged, not hidden,
// not revoked from the grantee), in scoped entries of at most
// protocol.MaxKeysPerEntry keys. With only given it looks at those
// records alone (the ones a chain change touched). Without, it looks at
// every record of k's, unless nothing changed since its last such pass
// gave nothing (the pass mark, standing_mark.go). It returns how many
// keys it gave.
func (r *Repo) CoverStanding(ctx context.Context, k *Keys, only ...cid.Cid) (int, error) {
	var digest []byte // a whole pass: the inputs' digest before it looked
	if len(only) == 0 {
		var err error
		if digest, err = r.coverDigest(ctx); err != nil {
			return 0, err
		}
		if done, err := r.coverMarked(ctx, k.ID, digest); err != nil || done {
			return 0, err
		}
	}
	n, err := r.coverStanding(ctx, k, only)
	if err == nil && n == 0 && digest != nil {
		// Written keys change the digest: the pass after this one,
		// finding nothing more, leaves the mark.
		err = r.markCovered(ctx, k.ID, digest)
	}
	return n, err
}

// coverStanding is one pass of CoverStanding: the records in only, or
// all of k's when only is empty.
func (r *Repo) coverStanding(ctx context.Context, k *Keys, only []cid.Cid) (int, error) {
	evs, err := r.scopesOf(ctx, k.ID)
	if err != nil {
		return 0, err
	}
	now := r.now()
	live := liveScopes(evs, now)
	if len(live) == 0 {
		return 0, nil
	}
	type target struct {
		ev    scopeEvent
		scope protocol.Scope
		info  AccountInfo
		keys  []protocol.RecordKey
	}
	targets := make([]*target, 0, len(live))
	for _, ev := range live {
		sc, err := protocol.ParseScope(ev.Scope)
		if err != nil {
			continue // entries are validated; cannot happen
		}
		info, err := r.Account(ctx, ev.To)
		if err != nil {
			continue // the grantee's chain is not here: nothing to wrap to
		}
		targets = append(targets, &target{ev: ev, scope: sc, info: info})
	}
	// coverRecord refuses a record that is not k's: eachOwnRecord leaves
	// those out first.
	err = r.eachOwnRecord(ctx, k, only, func(c cid.Cid, a *Access) error {
		var env *protocol.Envelope
		var key *age.X25519Identity
		for _, t := range targets {
			if !coverRecord(a, k.ID, t.ev.To, t.ev.Scope, evs, true, now).Allow {
				continue
			}
			if env == nil {
				var err error
				if env, key, err = r.Envelope(ctx, k, c); err != nil {
					return nil // her key does not open it: nothing to give
				}
			}
			if !coverRecord(a, k.ID, t.ev.To, t.ev.Scope, evs, t.scope.Matches(env.Kind, env.FHIR), now).Allow {
				continue
			}
			wrapped, err := wrapKey(key, t.info)
			if err != nil {
				return err
			}
			t.keys = append(t.keys, protocol.RecordKey{Record: protocol.NewLink(c), Key: wrapped})
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	var blocks [][]protocol.Entry
	var cur []protocol.Entry
	size := 0
	for _, t := range targets {
		for start := 0; start < len(t.keys); start += protocol.MaxKeysPerEntry {
			part := t.keys[start:min(start+protocol.MaxKeysPerEntry, len(t.keys))]
			n := 0
			for _, rk := range part {
				n += len(rk.Key) + 64
			}
			if len(cur) > 0 && (size+n > maxScopedBlockBytes || len(cur) >= protocol.MaxEntriesPerBlock) {
				blocks, cur, size = append(blocks, cur), nil, 0
			}
			cur = append(cur, protocol.NewEntry(&protocol.ScopedKeys{To: keyOf(t.ev.To), Scope: t.ev.Scope, Keys: part}))
			size += n
		}
	}
	if len(cur) > 0 {
		blocks = append(blocks, cur)
	}
	if len(blocks) == 0 {
		return 0, nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	written := 0
	for _, b := range blocks {
		if _, err := r.appendBlock(ctx, k, b); err != nil {
			return written, err
		}
		for _, e := range b {
			written += len(e.Body.(*protocol.ScopedKeys).Keys)
		}
	}
	return written, nil
}

// standingEntries returns the scoped entries an author writes, in the
// block of its record entry, for the standing grantees of the subject it
// sees on the subject's chain whose scope holds the record (coverRecord
// with no claim yet): the record key wrapped for each, under its scope.
// readers are the accounts the record entry wraps a key for already; a
// grantee whose chain this repo does not hold cannot be wrapped for and
// is left to the subject's node (CoverStanding).
func (r *Repo) standingEntries(ctx context.Context, rec cid.Cid, subject protocol.AccountID, env *protocol.Envelope, key *age.X25519Identity, readers []AccountInfo) ([]protocol.Entry, error) {
	evs, err := r.scopesOf(ctx, subject)
	if err != nil {
		return nil, err
	}
	now := r.now()
	done := map[protocol.AccountID]bool{}
	for _, a := range readers {
		done[a.ID] = true
	}
	var out []protocol.Entry
	for _, ev := range liveScopes(evs, now) {
		sc, err := protocol.ParseScope(ev.Scope)
		if err != nil || done[ev.To] || !coverRecord(nil, subject, ev.To, ev.Scope, evs, sc.Matches(env.Kind, env.FHIR), now).Allow {
			continue
		}
		info, err := r.Account(ctx, ev.To)
		if err != nil {
			continue // not known here: the subject's node covers it
		}
		wrapped, err := wrapKey(key, info)
		if err != nil {
			return nil, err
		}
		done[ev.To] = true
		out = append(out, protocol.NewEntry(&protocol.ScopedKeys{To: keyOf(ev.To), Scope: ev.Scope,
			Keys: []protocol.RecordKey{{Record: protocol.NewLink(rec), Key: wrapped}}}))
	}
	return out, nil
}
