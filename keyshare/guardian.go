package keyshare

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/ipfs/go-datastore"

	"github.com/blockmrs/blockmrs/protocol"
)

// Guardians (protocol/guardian.go; the rules are in policy.go,
// guardianAct). A ward appoints and removes guardians on her chain; this
// file keeps those events with her chain state, indexes them by guardian
// (so "I am guardian of…" is one prefix read), and writes the entries:
// the ward's appointments and removals, and the guardian's acts for the
// ward (wardgrant, wardrevoke) on the guardian's own chain.

// GuardianReadScope is the standing grant that is a guardian's read right.
const GuardianReadScope = "patient/*.rs"

// guardianEvent is one guardian or unguardian entry of a ward's chain.
type guardianEvent struct {
	Guardian protocol.AccountID       `json:"guardian"`
	May      []protocol.GuardianRight `json:"may,omitempty"`
	From     uint64                   `json:"from,omitempty"`
	Until    int64                    `json:"until,omitempty"`
	End      bool                     `json:"end,omitempty"`
	Before   uint64                   `json:"before,omitempty"`
	Via      EntryRef                 `json:"via"`
}

// addGuardianEvent applies a guardian or unguardian entry to a ward's
// state.
func (st *accountState) addGuardianEvent(body protocol.EntryBody, ref EntryRef) {
	switch b := body.(type) {
	case *protocol.GuardianAppoint:
		st.Guardians = append(st.Guardians, guardianEvent{Guardian: protocol.AccountIDFromKey(b.To), May: b.May, From: b.From, Until: b.Until, Via: ref})
	case *protocol.GuardianEnd:
		st.Guardians = append(st.Guardians, guardianEvent{Guardian: protocol.AccountIDFromKey(b.From), End: true, Before: b.Before, Via: ref})
	default:
		return
	}
	st.guardiansAdded++
}

// addedGuardians returns the guardian events of the blocks being applied
// to st (the last ones), which the index has not seen.
func (st *accountState) addedGuardians() []guardianEvent {
	return st.Guardians[len(st.Guardians)-min(st.guardiansAdded, len(st.Guardians)):]
}

// The guardian index lists, per guardian, the wards whose chains name it:
//
//	/keyshare/idx/guardof/<guardian>/<ward> → (empty)
const guardOfPrefix = "/keyshare/idx/guardof/"

func keyGuardOf(guardian, ward protocol.AccountID) datastore.Key {
	return datastore.NewKey(guardOfPrefix + string(guardian) + "/" + string(ward))
}

// indexGuardians writes to w the guardian index entries of the guardian
// events a commit added to ward's chain (addedGuardians); those of earlier
// commits are indexed already.
func indexGuardians(ctx context.Context, w datastore.Write, ward protocol.AccountID, evs []guardianEvent) error {
	for _, ev := range evs {
		if err := w.Put(ctx, keyGuardOf(ev.Guardian, ward), nil); err != nil {
			return err
		}
	}
	return nil
}

// wardsOf returns the accounts whose chains name id as a guardian.
func (r *Repo) wardsOf(ctx context.Context, id protocol.AccountID) ([]protocol.AccountID, error) {
	return r.accountsUnder(ctx, guardOfPrefix+string(id)+"/")
}

// guardiansOf returns the guardian events of ward's chain (cached with
// its standing-grant events; none for an account the repo has no chain
// of).
func (r *Repo) guardiansOf(ctx context.Context, ward protocol.AccountID) ([]guardianEvent, error) {
	if evs, ok := cacheGet(&r.cache, &r.cache.guardians, ward); ok {
		return evs, nil
	}
	if _, err := r.scopesOf(ctx, ward); err != nil { // fills both caches
		return nil, err
	}
	if evs, ok := cacheGet(&r.cache, &r.cache.guardians, ward); ok {
		return evs, nil
	}
	st, err := r.state(ctx, ward)
	if errors.Is(err, ErrUnknownAccount) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	return st.Guardians, nil
}

// withGuardians fills in f.guardians, the guardian spans of the subjects
// of f's claims, which evaluate needs.
func (r *Repo) withGuardians(ctx context.Context, f *recordFacts) error {
	for _, cl := range f.Claims {
		if _, ok := f.guardians[cl.Subject]; ok {
			continue
		}
		evs, err := r.guardiansOf(ctx, cl.Subject)
		if err != nil {
			return err
		}
		if f.guardians == nil {
			f.guardians = map[protocol.AccountID][]guardianSpan{}
		}
		f.guardians[cl.Subject] = guardianSpans(evs)
	}
	return nil
}

// wardKeys adds the keys of a guardian's wardgrant entry at ref: a grant
// by the guardian (ref.Account) that counts only as far as guardianAct
// says, for the ward the entry names.
func (w *indexWriter) wardKeys(ref EntryRef, body *protocol.WardGrant) error {
	if err := w.grantKeys(ref.Account, ref, body.To, body.Keys, body.Expires, ""); err != nil {
		return err
	}
	ward, to := body.WardID(), protocol.AccountIDFromKey(body.To)
	for _, k := range body.Keys {
		f, err := w.get(k.Record.Cid)
		if err != nil {
			return err
		}
		for i := range f.Keys {
			if f.Keys[i].Via == ref && f.Keys[i].To == to {
				f.Keys[i].Ward = ward
			}
		}
		w.touch(ward, k.Record.Cid)
	}
	return nil
}

// wardRevokes adds the revocations of a guardian's wardrevoke entry.
func (w *indexWriter) wardRevokes(ref EntryRef, body *protocol.WardRevoke) error {
	from, ward := protocol.AccountIDFromKey(body.From), body.WardID()
	for _, rc := range body.Records {
		f, err := w.get(rc.Cid)
		if err != nil {
			return err
		}
		if slices.ContainsFunc(f.Revokes, func(r revokeFact) bool { return r.Via == ref && r.From == from }) {
			continue
		}
		f.Revokes = append(f.Revokes, revokeFact{From: from, Via: ref, Ward: ward})
		w.touch(ref.Account, rc.Cid)
		w.touch(ward, rc.Cid)
	}
	return nil
}

// Guardianship is one appointment of a guardian by a ward, as the ward's
// chain holds it.
type Guardianship struct {
	Ward     protocol.AccountID       `json:"ward"`
	Guardian protocol.AccountID       `json:"guardian"`
	May      []protocol.GuardianRight `json:"may"`
	// From is the first block of the guardian's chain whose acts count;
	// Before, once the ward removed the guardian, the first that does not.
	From   uint64  `json:"from"`
	Before *uint64 `json:"before,omitempty"`
	// Until is the appointment's end (by the guardian's block times).
	Until time.Time `json:"until,omitzero"`
	// Live is true while the appointment is neither removed nor past
	// Until.
	Live      bool      `json:"live"`
	Appointed EntryRef  `json:"appointed"`
	Ended     *EntryRef `json:"ended,omitempty"`
	// Consent is the guardian's answer to the appointment, as the
	// guardian's chain this repo holds says (guardianConsent), with the
	// rule and reason.
	Consent       Consent `json:"consent"`
	ConsentRule   Rule    `json:"consent_rule"`
	ConsentReason string  `json:"consent_reason"`
}

func guardianship(ward protocol.AccountID, s guardianSpan, now time.Time) Guardianship {
	g := Guardianship{Ward: ward, Guardian: s.Guardian, May: s.May, From: s.From, Appointed: s.Appointed,
		Live: !s.Closed && (s.Until == 0 || now.Before(time.UnixMilli(s.Until)))}
	if s.Until != 0 {
		g.Until = time.UnixMilli(s.Until).UTC()
	}
	if s.Closed {
		before, ended := s.Before, s.Ended
		g.Before, g.Ended = &before, &ended
	}
	return g
}

// Guardians returns the guardians account id appointed (on its own
// chain) and the wards that appointed it (on the chains this repo holds
// that name it), newest first, removed and expired ones included.
func (r *Repo) Guardians(ctx context.Context, id protocol.AccountID) (mine, wards []Guardianship, err error) {
	now := r.now()
	evs, err := r.guardiansOf(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	spans := guardianSpans(evs)
	for i, s := range spans {
		g := guardianship(id, s, now)
		cs, err := r.consentsOf(ctx, s.Guardian, id)
		if err != nil {
			return nil, nil, err
		}
		g.setConsent(guardianConsent(spans, i, cs))
		mine = append(mine, g)
	}
	ids, err := r.wardsOf(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	for _, w := range ids {
		evs, err := r.guardiansOf(ctx, w)
		if err != nil {
			return nil, nil, err
		}
		cs, err := r.consentsOf(ctx, id, w)
		if err != nil {
			return nil, nil, err
		}
		spans := guardianSpans(evs)
		for i, s := range spans {
			if s.Guardian == id {
				g := guardianship(w, s, now)
				g.setConsent(guardianConsent(spans, i, cs))
				wards = append(wards, g)
			}
		}
	}
	newest := func(l []Guardianship) {
		sort.SliceStable(l, func(i, j int) bool { return l[j].Appointed.Time < l[i].Appointed.Time })
	}
	slices.Reverse(mine)
	newest(wards)
	return mine, wards, nil
}

// nextSeq returns the sequence number id's next chain block will have,
// as far as this repo knows id's chain (0 when it holds none of it).
func (r *Repo) nextSeq(ctx context.Context, id protocol.AccountID) (uint64, error) {
	st, err := r.state(ctx, id)
	if errors.Is(err, ErrUnknownAccount) {
		return 0, nil
	} else if err != nil {
		return 0, err
	}
	if st.Head == "" {
		return 0, nil
	}
	return st.Seq + 1, nil
}

// AppointGuardian makes account to k's guardian with rights may, until
// until (zero: no end): a guardian entry whose span starts after the
// guardian's chain as this repo holds it, and, when may has read, a
// standing grant of GuardianReadScope to it in the same block (then the
// present records are covered at once). An appointment of a guardian in
// office replaces it (its span closes where the new one starts).
func (r *Repo) AppointGuardian(ctx context.Context, k *Keys, to protocol.AccountID, may []protocol.GuardianRight, until time.Time) (cid.Cid, error) {
	if to == k.ID {
		return cid.Undef, errors.New("cannot be your own guardian")
	}
	if _, err := r.Account(ctx, to); err != nil {
		return cid.Undef, fmt.Errorf("guardian: %w", err)
	}
	if !until.IsZero() && !until.After(r.now()) {
		return cid.Undef, errors.New("until is in the past")
	}
	from, err := r.nextSeq(ctx, to)
	if err != nil {
		return cid.Undef, err
	}
	g := &protocol.GuardianAppoint{To: keyOf(to), May: may, From: from}
	if !until.IsZero() {
		g.Until = until.UnixMilli()
	}
	if err := g.Validate(); err != nil {
		return cid.Undef, err
	}
	entries := []protocol.Entry{protocol.NewEntry(g)}
	evs, err := r.scopesOf(ctx, k.ID)
	if err != nil {
		return cid.Undef, err
	}
	last, found := latestScope(evs, to, GuardianReadScope)
	switch {
	case g.Has(protocol.RightRead):
		entries = append(entries, protocol.NewEntry(&protocol.ScopeGrant{To: keyOf(to), Scope: GuardianReadScope, Expires: g.Until}))
	case found && !last.End:
		entries = append(entries, protocol.NewEntry(&protocol.ScopeEnd{From: keyOf(to), Scope: GuardianReadScope}))
	}
	r.mu.Lock()
	block, err := r.appendBlock(ctx, k, entries)
	r.mu.Unlock()
	if err != nil {
		return cid.Undef, err
	}
	if g.Has(protocol.RightRead) {
		if _, err := r.CoverStanding(ctx, k); err != nil {
			return block, fmt.Errorf("guardian appointed (block %s), but wrapping the present records for it failed (the daemon tries again): %w", block, err)
		}
	}
	return block, nil
}

// ErrNotGuardian is returned when removing a guardian that is not in
// office, or acting for a ward as an account that may not.
var ErrNotGuardian = errors.New("not a guardian")

// RemoveGuardian removes k's guardian g: an unguardian entry cutting its
// span after g's chain as this repo holds it (no later act of g counts,
// whatever its time), and the end of its read right's standing grant.
func (r *Repo) RemoveGuardian(ctx context.Context, k *Keys, g protocol.AccountID) (cid.Cid, error) {
	evs, err := r.guardiansOf(ctx, k.ID)
	if err != nil {
		return cid.Undef, err
	}
	open := false
	for _, s := range guardianSpans(evs) {
		if s.Guardian == g && !s.Closed {
			open = true
		}
	}
	if !open {
		return cid.Undef, fmt.Errorf("%w of %s: %s", ErrNotGuardian, k.ID, g)
	}
	before, err := r.nextSeq(ctx, g)
	if err != nil {
		return cid.Undef, err
	}
	entries := []protocol.Entry{protocol.NewEntry(&protocol.GuardianEnd{From: keyOf(g), Before: before})}
	scopes, err := r.scopesOf(ctx, k.ID)
	if err != nil {
		return cid.Undef, err
	}
	if last, found := latestScope(scopes, g, GuardianReadScope); found && !last.End {
		entries = append(entries, protocol.NewEntry(&protocol.ScopeEnd{From: keyOf(g), Scope: GuardianReadScope}))
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.appendBlock(ctx, k, entries)
}

// mayActFor decides, before k writes an act for ward, whether the act
// would count (MayActFor).
func (r *Repo) mayActFor(ctx context.Context, k *Keys, ward protocol.AccountID, right protocol.GuardianRight) error {
	return r.MayActFor(ctx, k.ID, ward, right)
}

// MayActFor tells (nil) whether an act of right by guardian for ward,
// in the guardian's next chain block at the repo's time, would count by
// the chains this repo holds (guardianAct), and the guardian accepted
// the appointment (guardianConsent: a guardian's node acts, takes relayed
// requests and is relayed to only once it has); else the error, wrapping
// ErrNotGuardian, says why not.
func (r *Repo) MayActFor(ctx context.Context, guardian, ward protocol.AccountID, right protocol.GuardianRight) error {
	if guardian == ward {
		return fmt.Errorf("%w: an account does not act as its own guardian", ErrNotGuardian)
	}
	evs, err := r.guardiansOf(ctx, ward)
	if err != nil {
		return err
	}
	ref, err := r.nextActRef(ctx, guardian)
	if err != nil {
		return err
	}
	spans := guardianSpans(evs)
	if d, _ := guardianAct(spans, ref, right); !d.Allow {
		return fmt.Errorf("%w: %s", ErrNotGuardian, d.Reason)
	}
	cs, err := r.consentsOf(ctx, guardian, ward)
	if err != nil {
		return err
	}
	if d := guardianConsent(spans, latestSpan(spans, guardian), cs); !d.Allow {
		return fmt.Errorf("%w: %s", ErrNotGuardian, d.Reason)
	}
	return nil
}

// nextActRef returns where an act by guardian would be: its next chain
// block as this repo holds its chain, at the repo's time.
func (r *Repo) nextActRef(ctx context.Context, guardian protocol.AccountID) (EntryRef, error) {
	seq, err := r.nextSeq(ctx, guardian)
	if err != nil {
		return EntryRef{}, err
	}
	return EntryRef{Account: guardian, Seq: seq, Time: r.now().UnixMilli()}, nil
}

// wardRecords returns the access state, in k's view, of records whose
// subject is ward, for k to act on as ward's guardian (verb names the
// act).
func (r *Repo) wardRecords(ctx context.Context, ward protocol.AccountID, records []cid.Cid, verb string) ([]*Access, error) {
	if len(records) == 0 {
		return nil, errors.New("no records given")
	}
	out := make([]*Access, 0, len(records))
	for _, c := range records {
		a, err := r.AccessFor(ctx, c, ward)
		if err != nil {
			return nil, err
		}
		if d := changeRecord(a, ward, verb); !d.Allow {
			return nil, errors.New(d.Reason)
		}
		out = append(out, a)
	}
	return out, nil
}

// GrantForWard grants records of ward to account to, until expires
// (zero: no expiry), as k acting as ward's guardian: a wardgrant entry on
// k's chain with each record's key (which k opens under its read right)
// wrapped for to. It fails unless the act would count.
func (r *Repo) GrantForWard(ctx context.Context, k *Keys, ward protocol.AccountID, records []cid.Cid, to protocol.AccountID, expires time.Time) (cid.Cid, error) {
	if err := r.mayActFor(ctx, k, ward, protocol.RightGrant); err != nil {
		return cid.Undef, err
	}
	grantee, err := r.Account(ctx, to)
	if err != nil {
		return cid.Undef, fmt.Errorf("grantee: %w", err)
	}
	if to == ward {
		return cid.Undef, errors.New("cannot grant the ward her own records")
	}
	if !expires.IsZero() && !expires.After(r.now()) {
		return cid.Undef, errors.New("expiry is in the past")
	}
	as, err := r.wardRecords(ctx, ward, records, "grant")
	if err != nil {
		return cid.Undef, err
	}
	g := &protocol.WardGrant{Ward: keyOf(ward), To: keyOf(to)}
	if !expires.IsZero() {
		g.Expires = expires.UnixMilli()
	}
	for _, a := range as {
		key, _, err := r.RecordKey(ctx, k, a.Record)
		if err != nil {
			return cid.Undef, fmt.Errorf("%s: the guardian cannot open it (is it wrapped for you yet?): %w", a.Record, err)
		}
		wrapped, err := wrapKey(key, grantee)
		if err != nil {
			return cid.Undef, err
		}
		g.Keys = append(g.Keys, protocol.RecordKey{Record: protocol.NewLink(a.Record), Key: wrapped})
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.appendBlock(ctx, k, []protocol.Entry{protocol.NewEntry(g)})
}

// RevokeForWard revokes records of ward from account from, as k acting
// as ward's guardian: a critical wardrevoke entry on k's chain.
func (r *Repo) RevokeForWard(ctx context.Context, k *Keys, ward protocol.AccountID, records []cid.Cid, from protocol.AccountID) (cid.Cid, error) {
	if err := r.mayActFor(ctx, k, ward, protocol.RightRevoke); err != nil {
		return cid.Undef, err
	}
	as, err := r.wardRecords(ctx, ward, records, "revoke")
	if err != nil {
		return cid.Undef, err
	}
	for _, a := range as {
		if rd, ok := a.Reader(from); !ok || rd.Role != "grantee" {
			return cid.Undef, fmt.Errorf("%s: %s has no grant to revoke", a.Record, from)
		}
	}
	e := protocol.NewEntry(&protocol.WardRevoke{Ward: keyOf(ward), From: keyOf(from), Records: protocol.Links(records)})
	e.Critical = true
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.appendBlock(ctx, k, []protocol.Entry{e})
}

// guardianSharedKeys returns the shared-record index keys pairing a
// guardian that acted on record c with the account it acted for (the
// grantee or the revoked account), who must see the guardian's chain.
func guardianSharedKeys(c cid.Cid, f *recordFacts) []datastore.Key {
	var out []datastore.Key
	for _, k := range f.Keys {
		if k.Ward != "" && k.To != k.Via.Account {
			out = append(out, keyShared(k.To, k.Via.Account, c), keyShared(k.Via.Account, k.To, c))
		}
	}
	for _, rv := range f.Revokes {
		if rv.Ward != "" && rv.From != rv.Via.Account {
			out = append(out, keyShared(rv.From, rv.Via.Account, c), keyShared(rv.Via.Account, rv.From, c))
		}
	}
	return out
}

// GuardianLinks returns the guardians id's chain names and the wards
// whose chains name id.
func (r *Repo) GuardianLinks(ctx context.Context, id protocol.AccountID) ([]protocol.AccountID, error) {
	evs, err := r.guardiansOf(ctx, id)
	if err != nil {
		return nil, err
	}
	out, err := r.wardsOf(ctx, id)
	if err != nil {
		return nil, err
	}
	for _, ev := range evs {
		if !slices.Contains(out, ev.Guardian) {
			out = append(out, ev.Guardian)
		}
	}
	return out, nil
}

// LocalGuardian returns an account of this repo that may act for ward
// with right now (MayActFor), if there is one.
func (r *Repo) LocalGuardian(ctx context.Context, ward protocol.AccountID, right protocol.GuardianRight) (protocol.AccountID, bool, error) {
	evs, err := r.guardiansOf(ctx, ward)
	if err != nil {
		return "", false, err
	}
	for _, s := range guardianSpans(evs) {
		if s.Closed {
			continue
		}
		if local, err := r.isLocal(ctx, s.Guardian); err != nil {
			return "", false, err
		} else if local && r.MayActFor(ctx, s.Guardian, ward, right) == nil {
			return s.Guardian, true, nil
		}
	}
	return "", false, nil
}

// GuardianDevicesOf returns the peer IDs of the nodes acting for the
// guardians of ward that may answer its access requests now (approve):
// where requests to ward go besides ward's own nodes.
func (r *Repo) GuardianDevicesOf(ctx context.Context, ward protocol.AccountID) ([]string, error) {
	evs, err := r.guardiansOf(ctx, ward)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, s := range guardianSpans(evs) {
		if s.Closed || r.MayActFor(ctx, s.Guardian, ward, protocol.RightApprove) != nil {
			continue
		}
		devs, err := r.DevicesOf(ctx, s.Guardian)
		if errors.Is(err, ErrUnknownAccount) {
			continue
		} else if err != nil {
			return nil, err
		}
		out = append(out, devs...)
	}
	return out, nil
}

// grantableFor returns the records id may grant (GrantableRecords).
func (r *Repo) grantableFor(ctx context.Context, id protocol.AccountID) ([]cid.Cid, error) {
	as, err := r.RecordsOf(ctx, id)
	if err != nil {
		return nil, err
	}
	var out []cid.Cid
	for _, a := range as {
		if changeRecord(a, id, "grant").Allow && a.proven() && !a.Hidden {
			out = append(out, a.Record)
		}
	}
	return out, nil
}
