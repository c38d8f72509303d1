package keyshare

// Attestations, trust and verified roles (PROTOCOL.md §5.11). The rules
// are in policy.go (verifyRole, mayAttest); this file keeps the facts and
// writes the entries:
//
//	/keyshare/attest/<attester>/<account>     → the attester's latest attestation event about the account (JSON attestEvent)
//	/keyshare/idx/attestby/<account>/<attester> → (empty): who has attested the account
//	/keyshare/trust/<account>                 → (empty): an authority the user trusts (`trust add`)
//	/keyshare/distrust/<account>              → (empty): a shipped or configured authority the user removed (`trust rm`)
//
// An attestation event is written when the block holding it is applied
// (applyToState collects them, indexAttests writes them in the same
// batch), so the latest event per pair is always the chain's word as far
// as the repo holds it: a withdrawal stops the attestation counting from
// the commit that brings it.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/ipfs/go-datastore"

	"github.com/blockmrs/blockmrs/protocol"
)

// attestEvent is an attester's attestation of an account (or, End, its
// withdrawal), as its chain holds it.
type attestEvent struct {
	Attester   protocol.AccountID `json:"attester"`
	To         protocol.AccountID `json:"to"`
	Role       protocol.Role      `json:"role,omitempty"`
	Department string             `json:"department,omitempty"`
	Emergency  bool               `json:"emergency,omitempty"`
	Expires    int64              `json:"expires,omitempty"`
	End        bool               `json:"end,omitempty"`
	Via        EntryRef           `json:"via"`
}

const (
	attestPrefix   = "/keyshare/attest/"
	attestByPrefix = "/keyshare/idx/attestby/"
	trustPrefix    = "/keyshare/trust/"
	distrustPrefix = "/keyshare/distrust/"
)

func keyAttest(attester, to protocol.AccountID) datastore.Key {
	return datastore.NewKey(attestPrefix + string(attester) + "/" + string(to))
}

func keyAttestBy(to, attester protocol.AccountID) datastore.Key {
	return datastore.NewKey(attestByPrefix + string(to) + "/" + string(attester))
}

// addAttestEvent collects an attest or unattest entry of an applied block.
func (st *accountState) addAttestEvent(body protocol.EntryBody, ref EntryRef) {
	switch b := body.(type) {
	case *protocol.Attestation:
		st.attests = append(st.attests, attestEvent{Attester: ref.Account, To: protocol.AccountIDFromKey(b.To), Role: b.Role,
			Department: b.Department, Emergency: b.Emergency, Expires: b.Expires, Via: ref})
	case *protocol.AttestEnd:
		st.attests = append(st.attests, attestEvent{Attester: ref.Account, To: protocol.AccountIDFromKey(b.From), End: true, Via: ref})
	}
}

// indexAttests writes the attestation events one commit collected for
// account id; a later event about the same account replaces an earlier.
func indexAttests(ctx context.Context, w datastore.Write, id protocol.AccountID, evs []attestEvent) error {
	for _, ev := range evs {
		if err := putJSON(ctx, w, keyAttest(id, ev.To), ev); err != nil {
			return err
		}
		if err := w.Put(ctx, keyAttestBy(ev.To, id), nil); err != nil {
			return err
		}
	}
	return nil
}

// attestsOf returns the latest attestation event of every attester that
// ever attested account id, by attester ID.
func (r *Repo) attestsOf(ctx context.Context, id protocol.AccountID) ([]attestEvent, error) {
	prefix := attestByPrefix + string(id) + "/"
	attesters, err := r.accountsUnder(ctx, prefix)
	if err != nil {
		return nil, err
	}
	out := make([]attestEvent, 0, len(attesters))
	for _, attester := range attesters {
		var ev attestEvent
		found, err := getJSON(ctx, r.ds, keyAttest(attester, id), &ev)
		if err != nil {
			return nil, err
		}
		if found {
			out = append(out, ev)
		}
	}
	slices.SortFunc(out, func(a, b attestEvent) int { return strings.Compare(string(a.Attester), string(b.Attester)) })
	return out, nil
}

// attestsBy returns the latest attestation event of attester about every
// account it ever attested, by account ID.
func (r *Repo) attestsBy(ctx context.Context, attester protocol.AccountID) ([]attestEvent, error) {
	prefix := attestPrefix + string(attester) + "/"
	entries, err := queryAll(ctx, r.ds, prefix, false)
	if err != nil {
		return nil, err
	}
	out := make([]attestEvent, 0, len(entries))
	for _, e := range entries {
		var ev attestEvent
		if err := json.Unmarshal(e.Value, &ev); err != nil {
			return nil, fmt.Errorf("decode %s: %w", e.Key, err)
		}
		out = append(out, ev)
	}
	slices.SortFunc(out, func(a, b attestEvent) int { return strings.Compare(string(a.To), string(b.To)) })
	return out, nil
}

// roleFacts loads what verifyRole needs to judge id: the declared roles
// and attestations of every account on a path up from id (at most
// MaxRolePath deep, at most maxAttestersPerAccount attesters of each),
// and the trusted authorities.
func (r *Repo) roleFacts(ctx context.Context, id protocol.AccountID) (*roleFacts, error) {
	trusted, err := r.trustedSet(ctx)
	if err != nil {
		return nil, err
	}
	f := &roleFacts{declared: map[protocol.AccountID]protocol.Role{}, attests: map[protocol.AccountID][]attestEvent{}, trusted: trusted}
	level := []protocol.AccountID{id}
	seen := map[protocol.AccountID]bool{id: true}
	for depth := 0; depth <= MaxRolePath && len(level) > 0; depth++ {
		var next []protocol.AccountID
		for _, a := range level {
			st, err := r.state(ctx, a)
			if err != nil && !errors.Is(err, ErrUnknownAccount) {
				return nil, err
			}
			if err == nil {
				f.declared[a] = st.Role
			} else if a != id {
				continue
			}
			evs, err := r.attestsOf(ctx, a)
			if err != nil {
				return nil, err
			}
			if len(evs) > maxAttestersPerAccount {
				evs = evs[:maxAttestersPerAccount]
			}
			f.attests[a] = evs
			for _, ev := range evs {
				if !seen[ev.Attester] {
					seen[ev.Attester] = true
					next = append(next, ev.Attester)
				}
			}
		}
		level = next
	}
	return f, nil
}

// maxAttestersPerAccount bounds the attesters of one account a role
// decision looks at (anyone may attest anyone; only a few matter).
const maxAttestersPerAccount = 64

// VerifiedRole tells whether account id holds role at now: verified when
// a path of live attestations leads to it from an authority the user
// trusts (verifyRole in policy.go). An account the repo holds no chain of
// is refused with RuleRoleUnknown (see RoleProofBlocks for how a node gets
// the chains).
func (r *Repo) VerifiedRole(ctx context.Context, id protocol.AccountID, role protocol.Role, now time.Time) (RoleProof, error) {
	f, err := r.roleFacts(ctx, id)
	if err != nil {
		return RoleProof{}, fmt.Errorf("verify role of %s: %w", id, err)
	}
	return verifyRole(id, role, f, now), nil
}

// RoleOf judges the role account id declares, at the repo's clock: what
// every list that shows a role shows. A patient's or an app's role is
// never verified (RuleRoleNotAttests).
func (r *Repo) RoleOf(ctx context.Context, id protocol.AccountID) (RoleProof, error) {
	st, err := r.state(ctx, id)
	if err != nil {
		return RoleProof{}, err
	}
	return r.VerifiedRole(ctx, id, st.Role, r.now())
}

// RoleOfRequester judges the role declared (in a signed request's
// profile) by account id, whose chain the repo may not hold: the request's
// profile stands for the chain's first block. The attesters' chains must
// be held (a role proof brings them: ApplyAttesterChains).
func (r *Repo) RoleOfRequester(ctx context.Context, id protocol.AccountID, declared protocol.Role) (RoleProof, error) {
	f, err := r.roleFacts(ctx, id)
	if err != nil {
		return RoleProof{}, fmt.Errorf("verify role of %s: %w", id, err)
	}
	if _, ok := f.declared[id]; !ok {
		f.declared[id] = declared
	}
	return verifyRole(id, declared, f, r.now()), nil
}

// Attestation is one attestation as `attest ls` shows it.
type Attestation struct {
	Attester   protocol.AccountID `json:"attester"`
	Account    protocol.AccountID `json:"account"`
	Name       string             `json:"name,omitempty"`
	Role       protocol.Role      `json:"role,omitempty"`
	Department string             `json:"department,omitempty"`
	Emergency  bool               `json:"emergency,omitempty"`
	Until      time.Time          `json:"until,omitzero"`
	// Live is false once withdrawn (Withdrawn is set) or expired.
	Live      bool      `json:"live"`
	Withdrawn *EntryRef `json:"withdrawn,omitempty"`
	Via       EntryRef  `json:"via"`
}

func (r *Repo) attestation(ctx context.Context, ev attestEvent, now time.Time) Attestation {
	a := Attestation{Attester: ev.Attester, Account: ev.To, Role: ev.Role, Department: ev.Department, Emergency: ev.Emergency, Via: ev.Via}
	if st, err := r.state(ctx, ev.To); err == nil {
		a.Name = st.Name
	}
	if ev.Expires != 0 {
		a.Until = time.UnixMilli(ev.Expires).UTC()
	}
	if ev.End {
		via := ev.Via
		a.Withdrawn = &via
	}
	a.Live = !ev.End && (ev.Expires == 0 || now.Before(a.Until))
	return a
}

// Attestations lists the attestations account id gave (its own chain's
// word, withdrawn ones included) and those it received.
func (r *Repo) Attestations(ctx context.Context, id protocol.AccountID) (given, received []Attestation, err error) {
	now := r.now()
	by, err := r.attestsBy(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	for _, ev := range by {
		given = append(given, r.attestation(ctx, ev, now))
	}
	of, err := r.attestsOf(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	for _, ev := range of {
		a := r.attestation(ctx, ev, now)
		if st, err := r.state(ctx, ev.Attester); err == nil {
			a.Name = st.Name
		}
		received = append(received, a)
	}
	return given, received, nil
}

// AttestOptions are an attestation's terms.
type AttestOptions struct {
	Role       protocol.Role
	Department string
	Emergency  bool
	Until      time.Time // zero: no expiry
}

// Attest writes on k's chain that account to holds o.Role (mayAttest in
// policy.go decides whether k's declared role may attest it; the attested
// account must declare that role, or the attestation could never count).
// A newer attestation of the same account replaces the older one.
func (r *Repo) Attest(ctx context.Context, k *Keys, to protocol.AccountID, o AttestOptions) (cid.Cid, error) {
	if to == k.ID {
		return cid.Undef, errors.New("an account cannot attest itself")
	}
	me, err := r.state(ctx, k.ID)
	if err != nil {
		return cid.Undef, err
	}
	if d := mayAttest(me.Role, o.Role); !d.Allow {
		return cid.Undef, fmt.Errorf("%s (%s)", d.Reason, d.Rule)
	}
	them, err := r.state(ctx, to)
	if err != nil {
		return cid.Undef, fmt.Errorf("attested account: %w", err)
	}
	if them.Role != o.Role {
		return cid.Undef, fmt.Errorf("%s declares the role %s, not %s: its attestation would never count", to, them.Role, o.Role)
	}
	if !o.Until.IsZero() && !o.Until.After(r.now()) {
		return cid.Undef, errors.New("expiry is in the past")
	}
	a := &protocol.Attestation{To: keyOf(to), Role: o.Role, Department: o.Department, Emergency: o.Emergency}
	if !o.Until.IsZero() {
		a.Expires = o.Until.UnixMilli()
	}
	if err := a.Validate(); err != nil {
		return cid.Undef, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.appendBlock(ctx, k, []protocol.Entry{protocol.NewEntry(a)})
}

// ErrNoAttestation is returned when withdrawing an attestation that was
// never given or was withdrawn already.
var ErrNoAttestation = errors.New("no attestation to withdraw")

// Unattest withdraws k's attestation of account from.
func (r *Repo) Unattest(ctx context.Context, k *Keys, from protocol.AccountID) (cid.Cid, error) {
	var ev attestEvent
	found, err := getJSON(ctx, r.ds, keyAttest(k.ID, from), &ev)
	if err != nil {
		return cid.Undef, err
	}
	if !found || ev.End {
		return cid.Undef, fmt.Errorf("%w: %s has no attestation of %s", ErrNoAttestation, k.ID, from)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.appendBlock(ctx, k, []protocol.Entry{protocol.NewEntry(&protocol.AttestEnd{From: keyOf(from)})})
}
