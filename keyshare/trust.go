package keyshare

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/ipfs/go-datastore"

	"github.com/blockmrs/blockmrs/protocol"
)

// Trusted authorities. The authorities whose attestations make a role
// verified on this repo come from three places:
//
//   - shipped: ShippedTrust, compiled into the release (empty in this
//     release: no health authority runs a BlockMRS account yet), or
//     Options.ShippedTrust;
//   - config: the node's config.json "trust" list (SetConfigTrust);
//   - user: `blockmrs trust add` (stored in the repo).
//
// `trust rm` removes an authority whatever its source: a shipped or
// configured one is remembered as removed (so a restart does not bring it
// back) until `trust add` names it again. `trust ls` shows all of them
// with their source, removed ones included.

// ShippedTrust lists the authorities a new release trusts unless the user
// removes them. It is empty in this release.
var ShippedTrust = []protocol.AccountID{}

// Trust sources.
const (
	TrustShipped = "shipped"
	TrustConfig  = "config"
	TrustUser    = "user"
)

// Trusted is one authority in the trust list.
type Trusted struct {
	Account protocol.AccountID `json:"account"`
	Name    string             `json:"name,omitempty"`
	Role    protocol.Role      `json:"role,omitempty"`
	// Sources lists where it comes from (shipped, config, user).
	Sources []string `json:"sources"`
	// Removed is set on a shipped or configured authority the user
	// removed: it is not trusted.
	Removed bool `json:"removed,omitempty"`
}

// trustSources is the repo's in-memory part of the trust list.
type trustSources struct {
	shipped []protocol.AccountID
	config  []protocol.AccountID
}

// SetConfigTrust sets the authorities the node's configuration trusts
// (the config file's "trust" list). Each must be a valid account ID.
func (r *Repo) SetConfigTrust(ids []protocol.AccountID) error {
	for _, id := range ids {
		if _, err := id.Key(); err != nil {
			return fmt.Errorf("trusted authority %q: %w", id, err)
		}
	}
	cur := r.trustSrc.Load()
	next := &trustSources{config: slices.Clone(ids)}
	if cur != nil {
		next.shipped = cur.shipped
	}
	r.trustSrc.Store(next)
	r.cache.invalidate()
	return nil
}

func (r *Repo) trustSources() trustSources {
	if p := r.trustSrc.Load(); p != nil {
		return *p
	}
	return trustSources{}
}

// TrustList lists every authority of the trust list, removed ones
// included, by account ID.
func (r *Repo) TrustList(ctx context.Context) ([]Trusted, error) {
	src := r.trustSources()
	by := map[protocol.AccountID]*Trusted{}
	add := func(id protocol.AccountID, source string) {
		t, ok := by[id]
		if !ok {
			t = &Trusted{Account: id}
			by[id] = t
		}
		if !slices.Contains(t.Sources, source) {
			t.Sources = append(t.Sources, source)
		}
	}
	for _, id := range src.shipped {
		add(id, TrustShipped)
	}
	for _, id := range src.config {
		add(id, TrustConfig)
	}
	user, err := r.accountsUnder(ctx, trustPrefix)
	if err != nil {
		return nil, err
	}
	for _, id := range user {
		add(id, TrustUser)
	}
	removed, err := r.accountsUnder(ctx, distrustPrefix)
	if err != nil {
		return nil, err
	}
	out := make([]Trusted, 0, len(by))
	for _, t := range by {
		t.Removed = slices.Contains(removed, t.Account) && !slices.Contains(t.Sources, TrustUser)
		if st, err := r.state(ctx, t.Account); err == nil {
			t.Name, t.Role = st.Name, st.Role
		}
		out = append(out, *t)
	}
	slices.SortFunc(out, func(a, b Trusted) int { return strings.Compare(string(a.Account), string(b.Account)) })
	return out, nil
}

// trustedSet returns the authorities trusted now.
func (r *Repo) trustedSet(ctx context.Context) (map[protocol.AccountID]bool, error) {
	list, err := r.TrustList(ctx)
	if err != nil {
		return nil, err
	}
	out := make(map[protocol.AccountID]bool, len(list))
	for _, t := range list {
		if !t.Removed {
			out[t.Account] = true
		}
	}
	return out, nil
}

// Trust adds account id to the user's trusted authorities (and undoes an
// earlier removal of it). The repo must know the account, and it must
// declare the role authority: only an authority's attestations are
// followed to it.
func (r *Repo) Trust(ctx context.Context, id protocol.AccountID) error {
	st, err := r.state(ctx, id)
	if err != nil {
		return fmt.Errorf("trust %s: %w", id, err)
	}
	if st.Role != protocol.RoleAuthority {
		return fmt.Errorf("trust %s: it declares the role %s; only an authority can be trusted", id, st.Role)
	}
	if err := r.ds.Put(ctx, keyTrust(id), nil); err != nil {
		return fmt.Errorf("trust %s: %w", id, err)
	}
	if err := r.ds.Delete(ctx, keyDistrust(id)); err != nil {
		return fmt.Errorf("trust %s: %w", id, err)
	}
	r.cache.invalidate()
	return nil
}

// ErrNotTrusted is returned when removing an authority the trust list
// does not hold (or holds as removed already).
var ErrNotTrusted = errors.New("not in the trust list")

// Distrust removes account id from the trusted authorities, whatever its
// source: from then on no role rests on its attestations.
func (r *Repo) Distrust(ctx context.Context, id protocol.AccountID) error {
	list, err := r.TrustList(ctx)
	if err != nil {
		return err
	}
	i := slices.IndexFunc(list, func(t Trusted) bool { return t.Account == id })
	if i < 0 || list[i].Removed {
		return fmt.Errorf("distrust %s: %w", id, ErrNotTrusted)
	}
	if err := r.ds.Delete(ctx, keyTrust(id)); err != nil {
		return fmt.Errorf("distrust %s: %w", id, err)
	}
	if !slices.Equal(list[i].Sources, []string{TrustUser}) {
		if err := r.ds.Put(ctx, keyDistrust(id), nil); err != nil {
			return fmt.Errorf("distrust %s: %w", id, err)
		}
	}
	r.cache.invalidate()
	return nil
}

func keyTrust(id protocol.AccountID) datastore.Key { return datastore.NewKey(trustPrefix + string(id)) }
func keyDistrust(id protocol.AccountID) datastore.Key {
	return datastore.NewKey(distrustPrefix + string(id))
}
